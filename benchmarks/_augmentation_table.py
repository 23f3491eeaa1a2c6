"""The augmentation benchmark's table for the docs (``augmentation-table``), from its JSON."""

from __future__ import annotations

from typing import Any


def _spread(spread: dict[str, float], digits: int, unit: str = "") -> str:
    return (
        f"{spread['median']:.{digits}f}{unit} "
        f"[{spread['min']:.{digits}f}–{spread['max']:.{digits}f}{unit}]"
    )


def _argument(options: dict[str, Any]) -> str:
    if not options:
        return "(reference)"
    return ", ".join(f"`{key}={value!r}`" for key, value in options.items())


def augmentation_table(result: dict[str, Any], header: str) -> str:
    """The table: per option, test accuracy and training time against the plain run.

    Args:
        result: The JSON ``benchmarks/augmentation.py`` wrote.
        header: The line naming the script, the file and the machine.
    """
    task = result["task"]
    lines = [
        header,
        "",
        f"`{task['model']}` trained with `fit`'s defaults for {task['epochs']} epochs on "
        f"{task['train_images']:,} Fashion-MNIST training images (one seeded subset), tested on "
        f"the {task['test_images']:,} test images; {task['rounds']} rounds (seeds "
        f"0–{task['rounds'] - 1}), every option once per round, the order rotating.",
        "",
        "| option | `fit` argument | test accuracy, median [range] | change | "
        "training time against none, median [range] |",
        "| --- | --- | --- | ---: | --- |",
    ]
    for row in result["rows"]:
        lines.append(
            f"| {row['option']} | {_argument(row['fit_options'])} | "
            f"{_spread(row['test_accuracy'], 4)} | {row['accuracy_change']:+.4f} | "
            f"{_spread(row['time_ratio'], 2, '×')} |"
        )
    return "\n".join(lines)
