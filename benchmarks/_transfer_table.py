"""The transfer benchmark's table for the docs (``transfer-table``), from its JSON."""

from __future__ import annotations

from typing import Any

from benchmarks._augmentation_table import _spread


def transfer_table(result: dict[str, Any], header: str) -> str:
    """Per model: from random weights, fine-tuned, fine-tuned at a tenth of the rate.

    Args:
        result: The JSON ``benchmarks/transfer.py`` wrote.
        header: The line naming the script, the file and the machine.
    """
    task = result["task"]
    seeds = ", ".join(map(str, task["seeds"]))
    lines = [
        f"{header} The task: {task['name']}; {task['train_images']:,} training images, "
        f"{task['test_images']:,} test images, {task['epochs']} epochs, seeds {seeds}; test "
        "accuracy median [range].",
        "",
        "| model | start | peak rate, batch | test accuracy | CPU-seconds |",
        "| --- | --- | --- | ---: | ---: |",
    ]
    for row in result["rows"]:
        lines.append(
            f"| `{row['model']}` | {row['way']} | {row['lr']:g}, {row['batch_size']} | "
            f"{_spread(row['test_accuracy'], 3)} | {row['cpu_seconds']['median']:.0f} |"
        )
    return "\n".join(lines)
