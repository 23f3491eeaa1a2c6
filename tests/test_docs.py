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
