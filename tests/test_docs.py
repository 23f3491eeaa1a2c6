"""The generated docs stay true to the code."""

from __future__ import annotations

import importlib.util
import re
import warnings
from pathlib import Path

import pytest

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


def test_the_layout_page_names_every_room_and_only_rooms_that_exist():
    import re

    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    named = set(re.findall(r"cnnzoo/([a-z_]+(?:\.py)?)", text))
    package = ROOT / "cnnzoo"
    rooms = {
        p.name for p in package.iterdir() if p.suffix == ".py" or (p / "__init__.py").is_file()
    }
    rooms -= {"__init__.py", "__pycache__"}
    assert {name for name in named if not (package / name).exists()} == set()
    assert rooms - named == set(), "docs/architecture.md does not place these modules"


def test_stage_table_is_current():
    generator = _generator()
    path = generator.stage_target()
    text = path.read_text(encoding="utf-8")
    table = generator.stage_table()
    block = generator.replace_block(text, table, generator.STAGE_START, generator.STAGE_END)
    assert block == text, f"{path.name} is out of date: run python docs/generate_model_table.py"


def test_recipe_table_is_current():
    generator = _generator()
    path = generator.ROOT / "docs" / "training.md"
    text = path.read_text(encoding="utf-8")
    table = generator.recipe_table()
    block = generator.replace_block(text, table, generator.RECIPE_START, generator.RECIPE_END)
    assert block == text, f"{path.name} is out of date: run python docs/generate_model_table.py"


def _python_blocks(markdown: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", markdown, flags=re.DOTALL)


@pytest.fixture
def scratch_registry():
    """Let a doc example register models without leaving them behind (the tables list all)."""
    from cnnzoo.models import registry

    saved = dict(registry._REGISTRY)
    yield
    registry._REGISTRY.clear()
    registry._REGISTRY.update(saved)
    registry.info.cache_clear()


@pytest.mark.parametrize(
    ("page", "section"),
    [("models.md", "## Your own model"), ("interoperability.md", "# Interoperability")],
)
def test_doc_examples_run_as_written(page, section, tmp_path, monkeypatch, scratch_registry):
    text = (ROOT / "docs" / page).read_text(encoding="utf-8")
    assert section in text
    blocks = _python_blocks(text.split(section, 1)[1])
    assert blocks
    monkeypatch.chdir(tmp_path)  # the examples write files
    namespace: dict = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TorchScript's deprecation, the ONNX exporter's notes
        for block in blocks:
            exec(compile(block, f"{page} example", "exec"), namespace)


def test_benchmark_figures_in_the_docs_match_the_newest_results():
    spec = importlib.util.spec_from_file_location(
        "render_docs", ROOT / "benchmarks" / "render_docs.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--check"]) == 0, (
        "the docs lag behind benchmarks/results: run python benchmarks/render_docs.py"
    )


def test_the_changelog_has_a_section_for_this_version_and_the_first():
    from cnnzoo._version import __version__

    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    headings = re.findall(r"^## \[(\d+\.\d+\.\d+)\] - \d{4}-\d{2}-\d{2}$", text, flags=re.M)
    assert headings[0] == __version__, "CHANGELOG.md: the newest section is not this version"
    assert headings[-1] == "0.1.0"
    assert headings == sorted(headings, key=lambda v: tuple(map(int, v.split("."))), reverse=True)
