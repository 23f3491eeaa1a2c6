"""The generated docs stay true to the code."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _generator():
    spec = importlib.util.spec_from_file_location(
        "generate_model_table", ROOT / "docs" / "generate_model_table.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_model_tables_are_current():
    generator = _generator()
    table = generator.model_table()
    for path in generator.targets():
        text = path.read_text(encoding="utf-8")
        assert generator.replace_block(text, table) == text, (
            f"{path.name} is out of date: run python docs/generate_model_table.py"
        )


def test_every_model_has_a_row():
    from cnnzoo.models import list_models

    table = _generator().model_table()
    for name in list_models():
        assert f"| `{name}` |" in table


def test_benchmark_figures_in_the_docs_match_the_newest_results():
    spec = importlib.util.spec_from_file_location(
        "render_docs", ROOT / "benchmarks" / "render_docs.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--check"]) == 0, (
        "the docs lag behind benchmarks/results: run python benchmarks/render_docs.py"
    )
