"""Regenerate the tables of the docs from the registry.

The model table lives in docs/models.md and README.md, the stage table in
docs/interoperability.md, the table of training recipes (fit's default rate per model) in
docs/training.md.

Run ``python docs/generate_model_table.py`` after adding or changing a model; the test suite
(tests/test_docs.py) fails while any of these files is out of date.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
START, END = "<!-- model-table:start -->", "<!-- model-table:end -->"
STAGE_START, STAGE_END = "<!-- stage-table:start -->", "<!-- stage-table:end -->"
RECIPE_START, RECIPE_END = "<!-- recipe-table:start -->", "<!-- recipe-table:end -->"


def model_table() -> str:
    """The Markdown table of every registered model, one row each."""
    from cnnzoo.models import info, list_models

    lines = [
        "| model | params | default input | minimum input | classes | source | paper |",
        "|---|---:|---|---|---:|---|---|",
    ]
    for name in list_models():
        meta = info(name)
        minimum = "×".join(map(str, meta.min_input_size))
        if meta.fixed_input_size:
            minimum += " (fixed)"
        lines.append(
            f"| `{name}` | {meta.num_params:,} | {'×'.join(map(str, meta.input_size))} | "
            f"{minimum} | {meta.num_classes} | {meta.source} | {meta.paper} |"
        )
    return "\n".join(lines)


def recipe_table() -> str:
    """The Markdown table of the rate ``fit`` trains each model with by default, and why."""
    from cnnzoo.models import info, list_models

    lines = ["| model | default peak lr (AdamW) | where it comes from |", "|---|---:|---|"]
    for name in list_models():
        recipe = info(name).recipe
        if recipe is None:
            lines.append(f"| `{name}` | fit's rule | no registered recipe |")
        else:
            lines.append(f"| `{name}` | {recipe.lr:g} | {recipe.source} |")
    return "\n".join(lines)


def stage_table() -> str:
    """The Markdown table of the stages of every model that has them (``feature_info``)."""
    import torch

    from cnnzoo.models import get, list_models

    lines = [
        "| model | stage modules (`feature_info.module_name()`) | channels | strides | "
        "strides with `small_input=True` |",
        "|---|---|---|---|---|",
    ]
    for name in list_models():
        with torch.device("meta"):
            stages = get(name).feature_info
            try:
                small = get(name, small_input=True).feature_info.reduction()
            except ValueError:  # no small_input option
                small = None
        if not len(stages):
            continue
        modules = ", ".join(f"`{m}`" for m in stages.module_name())
        lines.append(
            f"| `{name}` | {modules} | {_numbers(stages.channels())} | "
            f"{_numbers(stages.reduction())} | {_numbers(small) if small else '—'} |"
        )
    return "\n".join(lines)


def _numbers(values: list[int]) -> str:
    return ", ".join(map(str, values))


def replace_block(text: str, table: str, start: str = START, end: str = END) -> str:
    """Replace what stands between the table markers in ``text`` with ``table``."""
    head, _, rest = text.partition(start)
    _, _, tail = rest.partition(end)
    if not rest:
        raise ValueError(f"the markers {start} ... {end} are missing")
    return f"{head}{start}\n{table}\n{end}{tail}"


def targets() -> list[Path]:
    """The files that hold the generated table."""
    return [ROOT / "docs" / "models.md", ROOT / "README.md"]


def stage_target() -> Path:
    """The file that holds the generated stage table."""
    return ROOT / "docs" / "interoperability.md"


def main() -> int:
    """Rewrite the tables in place; print which files changed."""
    table = model_table()
    jobs = [(path, table, START, END) for path in targets()]
    jobs.append((stage_target(), stage_table(), STAGE_START, STAGE_END))
    jobs.append((ROOT / "docs" / "training.md", recipe_table(), RECIPE_START, RECIPE_END))
    for path, block, start, end in jobs:
        old = path.read_text(encoding="utf-8")
        new = replace_block(old, block, start, end)
        if new != old:
            path.write_text(new, encoding="utf-8")
            print(f"updated {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
