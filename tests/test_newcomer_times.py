"""benchmarks/newcomer_times.py measures the README's two commands; render_docs writes the
figures into the README from its JSON (and tests/test_docs.py keeps them tied)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


newcomer_times = _load("newcomer_times")
render_docs = _load("render_docs")


def test_a_command_is_measured_in_cpu_seconds_of_its_children_and_wall_time():
    busy = [sys.executable, "-c", "sum(i * i for i in range(3_000_000))"]
    figures = newcomer_times.measure(busy)
    assert figures["cpu_seconds"] > 0.05 and figures["wall_seconds"] > 0


def _result(rounds: int) -> dict:
    def part(cpu: list[float], wall: list[float]) -> dict:
        return {
            "rounds": len(cpu),
            "cpu_seconds": {"median": sorted(cpu)[len(cpu) // 2], "min": min(cpu), "max": max(cpu)},
            "wall_seconds": {"median": sorted(wall)[len(wall) // 2], "min": min(wall),
                             "max": max(wall)},
        }  # fmt: skip

    return {
        "machine": {"cpu": "Example CPU", "cpu_cores": 2, "cpu_flags": ["avx2"]},
        "main_job": part([370.0, 360.0, 400.0][:rounds], [540.0, 500.0, 600.0][:rounds]),
        "test_suite": part([1260.0], [900.0]),
    }


def test_the_readme_figures_are_rendered_from_the_json(tmp_path):
    source = tmp_path / "newcomer_times-20270101-000000.json"
    source.write_text(json.dumps(_result(3)))
    doc = "cost: <!-- bench:newcomer-times -->old<!-- /bench:newcomer-times -->."
    rendered = render_docs.render(doc, {"newcomer_times": source})
    assert "old" not in rendered
    assert "the main job takes **370 CPU-seconds** [360–400] (at least 3 min on 2 cores; " in (
        rendered
    )
    assert "9 min of wall time measured, median of 3)" in rendered
    assert "the tests **1,260 CPU-seconds** (at least 10 min on 2 cores; 15 min" in rendered
    assert "on Example CPU (AVX2, no AVX-512)" in rendered
    assert render_docs.render(doc, {"newcomer_times": None}) == doc  # not measured: left alone


def test_the_readme_has_the_part_and_no_hand_typed_times():
    readme = (ROOT / "README.md").read_text()
    assert "<!-- bench:newcomer-times -->" in readme
    assert "~1 min on 2 cores" not in readme and "about 6 minutes" not in readme


def test_quick_results_are_never_the_ones_rendered(tmp_path, monkeypatch):
    monkeypatch.setattr(render_docs, "RESULTS", tmp_path)
    (tmp_path / "newcomer_times-quick-20270102-000000.json").write_text("{}")
    assert render_docs.newest("newcomer_times") is None
    (tmp_path / "newcomer_times-20270101-000000.json").write_text("{}")
    assert render_docs.newest("newcomer_times").name == "newcomer_times-20270101-000000.json"
