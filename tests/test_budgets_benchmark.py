"""The budgets benchmark: the rule a cell is held to, its summary, its table, a smoke run."""

import importlib
import json
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # the scripts live in benchmarks/, outside the package
    sys.path.insert(0, str(ROOT))
budgets = importlib.import_module("benchmarks.budgets")
render_docs = importlib.import_module("benchmarks.render_docs")


@pytest.mark.parametrize(
    ("defaults", "tutorial", "holds"),
    [
        (0.75, 0.74, True),
        (0.74, 0.74, True),
        (0.73, 0.74, False),  # below the tutorial: does not hold
        (0.985, 0.995, True),  # both within 2 points of 100%: 0.98x of it is enough
        (0.97, 0.99, False),
    ],
)
def test_a_cell_holds_when_the_defaults_reach_the_tutorial(defaults, tutorial, holds):
    assert budgets.holds(defaults, tutorial) is holds


def _row(model, side, seed, accuracy, images=500, epochs=5):
    row = {
        "model": model,
        "side": side,
        "seed": seed,
        "test_accuracy": accuracy,
        "train_images": images,
        "epochs": epochs,
        "seconds_as_seen": 1.0 + seed,
        "cpu_seconds": 2.0 + seed,
        "steps": 75,
    }
    if side == "defaults":
        row.update(batch_size=32, lr=3e-3, lr_source="x", warned=["learned nothing"] * (seed == 2))
    return row


def test_the_summary_averages_the_seeds_of_each_side():
    rows = [
        *(_row("a", "defaults", s, acc) for s, acc in enumerate((0.70, 0.80, 0.90))),
        *(_row("a", "tutorial", s, acc) for s, acc in enumerate((0.60, 0.70, 0.80))),
        _row("b", "defaults", 0, 0.5),  # no tutorial side yet: not summarised
    ]
    (line,) = budgets.summarise(rows)
    assert line["model"] == "a" and line["defaults"] == pytest.approx(0.8)
    assert line["tutorial"] == pytest.approx(0.7) and line["holds"]
    assert line["difference"] == pytest.approx(0.1)


def test_the_table_names_the_worst_cell_the_machine_and_each_cell(tmp_path):
    rows = [
        *(
            _row("a", side, s, acc)
            for side, acc in (("defaults", 0.7), ("tutorial", 0.6))
            for s in range(3)
        ),
        *(
            _row("b", side, s, acc, 2000, 1)
            for side, acc in (("defaults", 0.5), ("tutorial", 0.6))
            for s in range(3)
        ),
    ]
    result = {
        "machine": {
            "cpu": "A CPU",
            "cpu_flags": ["avx2"],
            "cpu_cores": 2,
            "torch_threads": 2,
            "device": "cpu",
            "torch": "2.x",
        },
        "seconds_as_seen": 600.0,
        "tutorial": budgets.TUTORIAL,
        "seeds": [0, 1, 2],
        "test_images": 2000,
        "rows": rows,
        "summary": budgets.summarise(rows),
    }
    table = render_docs.budgets_table(result, tmp_path / "budgets-1.json")
    assert table.startswith("1 of 2 cells hold")
    assert "the worst: `b` on 2,000 images x 1 epoch(s), 0.500 against 0.600" in table
    assert "A CPU (avx2)" in table
    assert (
        "| `a` | 500 x 5 | 32, 75, 0.003 | 0.700 (1 warned) | 0.600 | +0.100 | yes | 3 / 3 |"
        in table
    )
    assert "| **no** |" in table


def test_a_user_net_is_built_as_a_user_writes_it():
    torch.manual_seed(0)
    for name in budgets.USER_NETS:
        model = budgets.make_model(name, 10)
        side = 32 if budgets.kind_of(name) == "rgb32" else 28
        channels = 3 if side == 32 else 1
        assert model(torch.zeros(2, channels, side, side)).shape == (2, 10)
        assert not hasattr(model, "pretrained_cfg")  # not a cnnzoo model: fit's fallbacks apply


def test_the_costly_nets_train_in_fewer_cells():
    assert budgets.cells_of("network_bn", budgets.CELLS) == [(500, 5)]
    assert "network_bn" not in budgets.DEFAULT_ZOO_MODELS  # by name only: hours on 2 cores
    assert {"lenet5", "resnet18", "vgg16", "densenet121"} <= set(budgets.DEFAULT_ZOO_MODELS)
    assert budgets.cells_of("user_plain", budgets.CELLS) == list(budgets.CELLS)
    assert budgets.cells_of("resnet18", budgets.CELLS) == list(budgets.SHORT_CELLS)
    assert (60000, 1) not in budgets.cells_of("mini_inception", budgets.CELLS)
    assert (10000, 1) in budgets.cells_of("mini_inception", budgets.CELLS)


def test_smoke_run(capsys):
    result = budgets.main(["--quick"])
    assert {row["side"] for row in result["rows"]} == {"defaults", "tutorial"}
    assert len(result["summary"]) == 2 and "cells hold" in capsys.readouterr().out


def test_parts_of_the_grid_join_into_one_result(tmp_path, monkeypatch):
    def part(name, rows, seconds):
        path = tmp_path / name
        result = {
            "benchmark": "budgets",
            "machine": {"cpu": "a CPU", "torch": "2.14", "torch_threads": len(name)},
            "tutorial": budgets.TUTORIAL,
            "test_images": 2000,
            "rows": rows,
            "complete": True,
            "seconds_as_seen": seconds,
        }
        path.write_text(json.dumps(result))
        return path

    a_rows = [_row("a", side, s, 0.6) for side in ("defaults", "tutorial") for s in range(3)]
    b_rows = [_row("b", side, s, 0.7, 2000, 1) for side in ("defaults", "tutorial") for s in (0, 1)]
    again = [_row("a", "defaults", 0, 0.9)]  # a run measured again: the later one counts
    first, second = part("one.json", a_rows, 10.0), part("two.json", b_rows + again, 5.0)
    monkeypatch.setattr(budgets, "next_result_path", lambda name: tmp_path / "joined.json")
    joined = budgets.main(["--join", str(first), str(second)])
    assert json.loads((tmp_path / "joined.json").read_text()) == joined
    assert len(joined["rows"]) == 6 + 4 and joined["seconds_as_seen"] == 15.0
    assert joined["seeds"] == [0, 1, 2] and [p["source"] for p in joined["joined"]] == [
        "one.json",
        "two.json",
    ]
    (a,) = [line for line in joined["summary"] if line["model"] == "a"]
    assert a["defaults"] == pytest.approx((0.9 + 0.6 + 0.6) / 3)
    other = part("other.json", [], 1.0)
    data = json.loads(other.read_text())
    other.write_text(json.dumps({**data, "test_images": 500}))
    with pytest.raises(SystemExit, match="another test_images"):
        budgets.main(["--join", str(first), str(other)])
    other.write_text(json.dumps({**data, "machine": {"cpu": "another CPU", "torch": "2.14"}}))
    with pytest.raises(SystemExit, match="ran on another machine"):
        budgets.main(["--join", str(first), str(other)])
    with pytest.raises(SystemExit, match="the same file twice"):
        budgets.main(["--join", str(first), str(first)])
    for bad, why in (("[]", "not a budgets result"), ("{", "not JSON")):
        other.write_text(bad)
        with pytest.raises(SystemExit, match=why):
            budgets.main(["--join", str(first), str(other)])
    other.write_text(json.dumps({**data, "rows": [{"model": "a"}]}))
    with pytest.raises(SystemExit, match="has a row without"):
        budgets.main(["--join", str(first), str(other)])
    for broken in ({"machine": None}, {"seconds_as_seen": "x"}, {"joined": 5}):
        other.write_text(json.dumps({**data, **broken}))
        with pytest.raises(SystemExit, match="broken machine, seconds_as_seen or joined"):
            budgets.main(["--join", str(first), str(other)])
    for row in ({**a_rows[0], "seed": [0]}, {**a_rows[0], "test_accuracy": "high"}):
        other.write_text(json.dumps({**data, "rows": [row]}))
        with pytest.raises(SystemExit, match="has a row without"):
            budgets.main(["--join", str(first), str(other)])
    # a joined result already holds its parts: joining it with one of them again is refused
    with pytest.raises(SystemExit, match=r"a run twice \(one.json\)"):
        budgets.main(["--join", str(tmp_path / "joined.json"), str(first)])
    copy = tmp_path / "copy.json"
    copy.write_text(first.read_text())
    with pytest.raises(SystemExit, match="a run twice"):
        budgets.main(["--join", str(first), str(copy)])
    with pytest.raises(SystemExit, match="cannot read"):
        budgets.main(["--join", str(first), str(tmp_path / "missing.json")])
    (tmp_path / "joined.json").unlink()
    assert budgets.main(["--join", str(first), str(second), "--no-save"])["rows"]
    assert not (tmp_path / "joined.json").exists()
