"""The reproduction table for the docs (``reproduce-table``), from its JSON."""

from __future__ import annotations

from typing import Any


def _published(result: dict[str, Any], source: str, model: str) -> str:
    figure = result["published"][source].get(model)
    return f"{figure[1]:.3f} ({figure[0]})" if figure else "-"


def reproduce_table(result: dict[str, Any], header: str) -> str:
    """Per model: test accuracy, median and range over the seeds, beside the published figures.

    Args:
        result: The JSON ``benchmarks/reproduce.py`` wrote.
        header: The line naming the script, the file and the machine.
    """
    lines = [
        header,
        "",
        "| model | params | input | epochs | seeds | **test accuracy** median [range] "
        "| train s (median) | d2l (10 epochs, SGD) | Zalando |",
        "| --- | ---: | --- | ---: | --- | ---: | ---: | --- | --- |",
    ]
    for row in result["summary"]:
        accuracy = row["test_accuracy"]
        side = row["input_size"][-1]
        spread = (
            ""
            if accuracy["min"] == accuracy["max"]
            else (f" [{accuracy['min']:.4f}–{accuracy['max']:.4f}]")
        )
        lines.append(
            f"| {row['model']} | {row['parameters']:,} | {side}x{side} | {row['epochs']} "
            f"| {', '.join(map(str, row['seeds']))} | **{accuracy['median']:.4f}**{spread} "
            f"| {row['train_seconds']['median']:.0f} "
            f"| {_published(result, 'd2l', row['model'])} "
            f"| {_published(result, 'zalando', row['model'])} |"
        )
    return "\n".join(lines)
