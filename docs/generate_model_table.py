"""Regenerate the model table in docs/models.md and README.md from the registry.

Run ``python docs/generate_model_table.py`` after adding or changing a model; the test suite
(tests/test_docs.py) fails while either file is out of date.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
START, END = "<!-- model-table:start -->", "<!-- model-table:end -->"


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


def replace_block(text: str, table: str) -> str:
    """Replace what stands between the table markers in ``text`` with ``table``."""
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    if not rest:
        raise ValueError(f"the markers {START} ... {END} are missing")
    return f"{head}{START}\n{table}\n{END}{tail}"


def targets() -> list[Path]:
    """The files that hold the generated table."""
    return [ROOT / "docs" / "models.md", ROOT / "README.md"]


def main() -> int:
    """Rewrite the tables in place; print which files changed."""
    table = model_table()
    for path in targets():
        old = path.read_text(encoding="utf-8")
        new = replace_block(old, table)
        if new != old:
            path.write_text(new, encoding="utf-8")
            print(f"updated {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
