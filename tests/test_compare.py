"""cnnzoo.compare: the numbers are the saved checkpoints', failures get rows, runs resume,
"auto" picks exactly the models that take the data, the data is placed once, and the command
round-trips. Tiny registered nets on the separable stripes task keep every test to seconds."""

from __future__ import annotations

import gc
import json
import os
import weakref
from pathlib import Path

import pytest
import torch
from _synthetic import stripes
from PIL import Image
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import cnnzoo
from cnnzoo.cli import main
from cnnzoo.comparison import Leaderboard, Row, compare, measure, runner
from cnnzoo.comparison import budget as budget_module
from cnnzoo.comparison.plot import pareto_front
from cnnzoo.comparison.selection import DataShape, select
from cnnzoo.models import registry
from cnnzoo.training import TrainingCollapseWarning
from cnnzoo.training.recipes import FALLBACK_LR

TINY = (
    "cmp_tiny",
    "cmp_wide",
    "cmp_nan",
    "cmp_oom",
    "cmp_constant",
    "cmp_big_kernel",
    "cmp_blowup",
)
BUILT: list[weakref.ref] = []  # every model the tiny builders made, to check none is kept
CALLS: dict[str, int] = {}  # training steps taken, by model
INTERRUPT: set[str] = set()  # models whose training raises KeyboardInterrupt (a killed run)
BLOWUP_AFTER = 12  # training steps after which cmp_blowup's logits go wild (in its 2nd epoch)


class Tiny(nn.Module):
    """conv(width)-BN-ReLU-pool-Linear; ``mode`` makes it fail in a chosen, exact way."""

    def __init__(
        self, name: str, num_classes: int, in_channels: int, width: int, kernel: int, mode: str
    ):
        super().__init__()
        self.name, self.mode = name, mode
        self.conv = nn.Conv2d(in_channels, width, kernel, padding=kernel // 2 if kernel < 9 else 0)
        self.bn = nn.BatchNorm2d(width)
        self.pool = nn.AdaptiveAvgPool2d(2)
        self.fc = nn.Linear(4 * width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            CALLS[self.name] = CALLS.get(self.name, 0) + 1
            if self.name in INTERRUPT:
                raise KeyboardInterrupt
        if self.mode == "constant":  # sees nothing of the image: one class for every input
            x = x * 0
        logits = self.fc(self.pool(torch.relu(self.bn(self.conv(x)))).flatten(1))
        if self.training and self.mode == "nan":
            return logits * float("nan")
        if self.training and self.mode == "blowup" and CALLS[self.name] > BLOWUP_AFTER:
            return logits * -1000.0  # confidently wrong: a finite loss far above the start
        if self.training and self.mode == "oom":
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return logits


def _builder(name: str, width: int = 4, kernel: int = 3, mode: str = ""):
    def build(num_classes: int = 3, in_channels: int = 1) -> nn.Module:
        model = Tiny(name, num_classes, in_channels, width, kernel, mode)
        BUILT.append(weakref.ref(model))
        return model

    build.__name__ = name
    return build


@pytest.fixture(autouse=True)
def tiny_models():
    """Register the tiny nets for one test, then put the registry back as it was."""
    saved = dict(registry._REGISTRY)
    for name, options in (
        ("cmp_tiny", {}),
        ("cmp_wide", {"width": 32}),
        ("cmp_nan", {"mode": "nan"}),
        ("cmp_oom", {"mode": "oom"}),
        ("cmp_constant", {"mode": "constant"}),
        ("cmp_big_kernel", {"kernel": 9}),  # a 9x9 kernel, no padding: 8x8 images are too small
        ("cmp_blowup", {"mode": "blowup"}),
    ):
        registry.register(name, family="test")(_builder(name, **options))
    CALLS.clear()
    INTERRUPT.clear()
    BUILT.clear()
    yield
    registry._REGISTRY.clear()
    registry._REGISTRY.update(saved)
    registry.info.cache_clear()


@pytest.fixture(scope="module")
def task():
    """Stripes: 300 training and 90 test images, 1x8x8, three classes."""
    x, y = stripes(300, seed=0)
    test = stripes(90, seed=1)
    return (x, y), test


def run(train, test, out=None, **options):
    options = {"epochs": 2, "device": "cpu", "precision": "fp32", "batch_size": 32, **options}
    return compare(options.pop("models", ["cmp_tiny", "cmp_wide"]), train, test, out=out, **options)


def macs_of(model: nn.Module, shape: tuple[int, ...]) -> int:
    counter = FlopCounterMode(display=False)
    model.eval()
    with torch.no_grad(), counter:
        model(torch.zeros(1, *shape))
    return counter.get_total_flops() // 2


def val_split(data, share=0.1, seed=0):
    x, y = data
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    held = order[: round(len(y) * share)]
    return x[held], y[held]


# -- the numbers ----------------------------------------------------------------------------------
def test_every_number_equals_an_independent_measure_of_the_saved_checkpoint(task, tmp_path):
    train, test = task
    board = run(train, test, tmp_path / "cmp")
    assert [r.status for r in board] == ["ok", "ok"]
    for row in board:
        model = cnnzoo.load(row.checkpoint)
        metrics = cnnzoo.evaluate(model, test, precision="fp32")
        assert row.accuracy == metrics["accuracy"]
        assert row.macro_f1 == metrics["macro_f1"]
        assert row.top5_accuracy is None  # three classes: top-5 does not apply
        assert row.params == cnnzoo.count_parameters(model)
        assert row.macs == macs_of(model, (1, 8, 8)) > 0
        assert row.checkpoint_bytes == Path(row.checkpoint).stat().st_size
        assert row.epochs == 2 and 1 <= row.best_epoch <= 2
        # The kept weights are the best validation epoch's: they score that on the split.
        # (fit validates channels-last batches, evaluate contiguous ones: allow one image.)
        val = cnnzoo.evaluate(model, val_split(train), precision="fp32")
        assert row.best_val_accuracy == pytest.approx(val["accuracy"], abs=1 / 30)
        assert row.train_seconds > 0 and row.images_per_second > 0 and row.latency_ms > 0
    accuracies = [r.accuracy for r in board]
    assert accuracies == sorted(accuracies, reverse=True)


def test_top5_is_reported_where_it_applies(tmp_path):
    generator = torch.Generator().manual_seed(0)
    labels = torch.arange(240) % 6
    images = torch.rand(240, 1, 8, 8, generator=generator) * 0.3
    for k in range(6):
        images[labels == k, :, k, :] += 0.7
    test = (images[:60], labels[:60])
    board = run((images, labels), test, tmp_path / "six", models=["cmp_tiny"])
    row = board["cmp_tiny"]
    metrics = cnnzoo.evaluate(cnnzoo.load(row.checkpoint), test, precision="fp32")
    assert row.top5_accuracy == metrics["top5_accuracy"]


def test_without_test_data_the_validation_split_is_scored_and_said_so(task):
    train, _ = task
    board = compare(["cmp_tiny"], train, epochs=1, device="cpu", precision="fp32", verbose=0)
    assert board.evaluated_on == "validation"
    assert "val top-1" in board.to_markdown()
    assert board["cmp_tiny"].checkpoint is None  # no out=: the checkpoints were temporary


# -- failures -------------------------------------------------------------------------------
def test_a_failing_model_gets_its_row_and_the_others_go_on(task, tmp_path):
    train, test = task
    models = ["cmp_nan", "cmp_oom", "cmp_big_kernel", "cmp_tiny", "cmp_constant"]
    board = run(train, test, tmp_path / "cmp", models=models)
    rows = {r.model: r for r in board}
    assert rows["cmp_tiny"].status == "ok"
    assert board.rows[0].model == "cmp_tiny"  # trained models rank first
    assert rows["cmp_nan"].status == "failed" and "NaN" in rows["cmp_nan"].reason
    assert rows["cmp_oom"].status == "failed"
    assert (
        rows["cmp_oom"].reason.startswith("out of memory")
        and "batch_size" in rows["cmp_oom"].reason
    )
    big = rows["cmp_big_kernel"]
    assert big.status == "failed" and big.accuracy is None and big.reason
    assert "cmp_big_kernel" not in CALLS  # probed on the meta device only, never trained
    collapsed = rows["cmp_constant"]
    assert collapsed.status == "collapsed" and "every image" in collapsed.reason
    assert collapsed.accuracy is not None
    assert [r.status for r in board.rows] == ["ok", "collapsed", "failed", "failed", "failed"]
    table = board.to_markdown()
    assert "failed: " in table and "collapsed: " in table


def test_a_run_fit_warned_about_keeps_the_warning_and_its_rate_in_its_row(task, tmp_path):
    train, test = task
    # 9 steps an epoch: cmp_blowup's loss goes far above its start in its second epoch.
    with pytest.warns(TrainingCollapseWarning):
        board = run(train, test, tmp_path / "cmp", models=["cmp_blowup"])
    (row,) = board.rows
    # no recipe: fit's rate for a model without one
    assert row.lr == FALLBACK_LR and row.alert is not None
    assert row.alert["kind"] == "blow-up" and row.alert["epoch"] == 2
    assert "lr=" in row.alert["message"]
    assert "fit warned: blow-up at epoch 2" in board.to_markdown()
    again = Leaderboard.from_json(tmp_path / "cmp" / "leaderboard.json")
    assert again.rows[0].alert == row.alert and again.rows[0].lr == FALLBACK_LR
    assert '""kind"": ""blow-up""' in (tmp_path / "cmp" / "leaderboard.csv").read_text()


def test_a_healthy_run_has_no_alert_and_records_its_recipes_rate(task):
    train, test = task
    board = run(train, test, models=["cmp_tiny"], lr=0.05)
    assert board.rows[0].alert is None and board.rows[0].lr == 0.05
    assert "fit warned" not in board.to_markdown()


GOOD_ALERT = {
    "kind": "stall",
    "epoch": 3,
    "message": "fit: at epoch 3 the training learned nothing: ... fit goes on as asked; "
    "History.alerts records this.",
}


@pytest.mark.parametrize(
    "field",
    [
        {"alert": ["stall"]},
        {"alert": {**GOOD_ALERT, "kind": "x|y"}},  # would break the Markdown table
        {"alert": {**GOOD_ALERT, "extra": [float("nan")]}},
        {"alert": {**GOOD_ALERT, "epoch": 0}},
        {"alert": {**GOOD_ALERT, "message": "x" * 10_000}},
        {"lr": "fast"},
        {"lr": True},
        {"lr": float("-inf")},
        {"lr": -5.0},
        {"accuracy": "abc"},
        {"accuracy": float("inf")},
        {"epochs": "two"},
        {"epochs": 1.5},
        {"params": -1},
        {"options": "x"},
        {"options": {"in_channels": [3]}},
        {"reason": 5},
        {"model": 7},
    ],
)
def test_a_row_from_a_file_with_a_field_of_the_wrong_kind_is_refused(field):
    with pytest.raises(ValueError, match=r"a row's|not a leaderboard row"):
        Row.from_dict({"model": "lenet5", **field})
    assert Row.from_dict({"model": "lenet5", "alert": GOOD_ALERT, "lr": 1e-3}).alert == GOOD_ALERT


def test_a_resumed_row_that_is_unreadable_or_another_models_is_trained_again(task, tmp_path):
    train, test = task
    out = tmp_path / "cmp"
    run(train, test, out, models=["cmp_tiny"])
    row_file = out / "rows" / "cmp_tiny.json"
    good = json.loads(row_file.read_text())
    nested = "[" * 100_000 + "]" * 100_000  # too deep for the JSON decoder
    for text in (
        json.dumps({**good, "accuracy": "abc"}),
        json.dumps({**good, "model": "cmp_wide"}),
        '{"model": "cmp_tiny", "alert": ' + nested + "}",
    ):
        row_file.write_text(text)
        CALLS.clear()
        board = run(train, test, out, models=["cmp_tiny"])
        assert CALLS.get("cmp_tiny", 0) > 0  # trained again, not kept
        assert board.rows[0].model == "cmp_tiny" and board.rows[0].status == "ok"


def test_no_model_is_kept_in_memory_after_its_row(task):
    train, test = task
    board = run(train, test, models=["cmp_tiny", "cmp_wide", "cmp_nan"], verbose=0)
    gc.collect()
    assert len(BUILT) >= 3
    assert [ref() for ref in BUILT] == [None] * len(BUILT)
    assert len(board) == 3


def test_the_data_is_placed_once_and_every_model_trains_on_that_copy(task, monkeypatch):
    train, test = task
    seen = []
    real_fit = runner.fit

    def spy(model, train_data, val_data, **options):
        seen.append((train_data[0].data_ptr(), val_data[0].data_ptr()))
        return real_fit(model, train_data, val_data, **options)

    monkeypatch.setattr(runner, "fit", spy)
    run(train, test, models=["cmp_tiny", "cmp_wide"], verbose=0)
    assert len(seen) == 2 and seen[0] == seen[1]


# -- resuming -------------------------------------------------------------------------------------
def test_a_killed_run_resumes_without_retraining_finished_rows(task, tmp_path, capsys):
    train, test = task
    out = tmp_path / "cmp"
    INTERRUPT.add("cmp_wide")
    with pytest.raises(KeyboardInterrupt):
        run(train, test, out)
    first = json.loads((out / "rows" / "cmp_tiny.json").read_text())
    assert not (out / "rows" / "cmp_wide.json").exists()
    assert (out / "leaderboard.md").is_file()  # the tables so far are on disk
    INTERRUPT.clear()
    CALLS.clear()
    board = run(train, test, out)
    assert "cmp_tiny" not in CALLS and CALLS["cmp_wide"] > 0
    assert board["cmp_tiny"].to_dict() == first
    assert {r.model for r in board} == {"cmp_tiny", "cmp_wide"}
    assert "finished earlier, kept" in capsys.readouterr().out


def test_a_rerun_with_other_settings_is_refused_with_the_fix(task, tmp_path):
    train, test = task
    out = tmp_path / "cmp"
    run(train, test, out, models=["cmp_tiny"], verbose=0)
    before = (out / "compare.json").read_text()
    with pytest.raises(ValueError, match=r"budget\.epochs: 2 when started, 3 now") as error:
        run(train, test, out, models=["cmp_tiny"], epochs=3)
    assert "delete" in str(error.value) and "another --out" in str(error.value)
    other = (train[0].flip(0), train[1].flip(0))
    with pytest.raises(ValueError, match=r"data\.fingerprint"):
        run(other, test, out, models=["cmp_tiny"])
    assert (out / "compare.json").read_text() == before  # the comparison is left as it was


def test_a_folder_of_something_else_is_refused(task, tmp_path):
    train, test = task
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="holds files but no comparison"):
        run(train, test, tmp_path, models=["cmp_tiny"])


# -- choosing the models --------------------------------------------------------------------
def test_auto_picks_exactly_the_registered_models_that_can_take_the_data(monkeypatch):
    for name in list(registry._REGISTRY):
        if name not in TINY:
            del registry._REGISTRY[name]
    candidates, left_out = select("auto", DataShape(1, 8, 8, 3))
    assert [c.name for c in candidates] == [
        "cmp_blowup",
        "cmp_constant",
        "cmp_nan",
        "cmp_oom",
        "cmp_tiny",
        "cmp_wide",
    ]
    assert list(left_out) == ["cmp_big_kernel"]
    wide = cnnzoo.count_parameters(cnnzoo.get_model("cmp_wide", num_classes=3))
    candidates, left_out = select("auto", DataShape(1, 8, 8, 3), max_params=wide - 1)
    assert "cmp_wide" not in [c.name for c in candidates]
    assert "max_params" in left_out["cmp_wide"]
    # On 9x9 images the big kernel fits.
    assert "cmp_big_kernel" in [c.name for c in select("auto", DataShape(1, 9, 9, 3))[0]]


@pytest.mark.parametrize(
    ("shape", "cannot"),
    [
        # Fashion-MNIST: the fixed heads of other sizes cannot take 28x28 greys.
        (
            DataShape(1, 28, 28, 10),
            {"alexnet_original", "cifar_cnn", "network_bn", "network_bn_v2"},
        ),
        # CIFAR-10: the 28x28 tutorial nets and the 224/227 fixed heads cannot take 32x32.
        (
            DataShape(3, 32, 32, 10),
            {"alexnet_original", "lenet5", "mini_inception", "mini_resnet", "network_bn"}
            | {"network_bn_v2"},
        ),
    ],
)
def test_auto_on_the_zoo_follows_each_architectures_input_rule(shape, cannot):
    for name in TINY:
        del registry._REGISTRY[name]
    candidates, left_out = select("auto", shape)
    assert set(left_out) == cannot
    assert {c.name for c in candidates} == set(cnnzoo.list_models()) - cannot
    small = {c.name for c in candidates if c.options.get("small_input")}
    assert "resnet18" in small and "vgg11" in small and "lenet5" not in small
    assert all(c.options["in_channels"] == shape.channels for c in candidates)


def test_names_and_patterns_are_expanded_in_order_each_once():
    candidates, _ = select(["cmp_wide", "cmp_t*", "CMP_WIDE"], DataShape(1, 8, 8, 3))
    assert [c.name for c in candidates] == ["cmp_wide", "cmp_tiny"]
    with pytest.raises(ValueError, match="matches no registered model"):
        select(["nothing*"], DataShape(1, 8, 8, 3))
    with pytest.raises(ValueError, match=r"unknown model 'cmp_tiyn'.*cmp_tiny"):
        select(["cmp_tiyn"], DataShape(1, 8, 8, 3))


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"epochs": 2, "time_budget": 10.0}, ValueError, "not both"),
        ({"epochs": 0}, ValueError, "at least 1"),
        ({"time_budget": -1.0, "epochs": None}, ValueError, "positive"),
        ({"lr_schedule": 1}, TypeError, "fit does not take"),
        ({"checkpoint_dir": "x"}, ValueError, "set by compare"),
        ({"callbacks": []}, ValueError, "set by compare"),
    ],
)
def test_bad_options_are_refused_before_any_training(task, options, error, match):
    train, test = task
    with pytest.raises(error, match=match):
        run(train, test, **options)
    assert not CALLS


# -- the time budget ------------------------------------------------------------------------------
def test_a_time_budget_is_sized_from_the_measured_step_cost(task, monkeypatch):
    train, _ = task
    ticks = iter(range(10_000))
    monkeypatch.setattr(measure.time, "perf_counter", lambda: 0.5 * next(ticks))  # 0.5 s a step

    def build():
        return cnnzoo.get_model("cmp_tiny", num_classes=3)

    train_part = (train[0][:270], train[1][:270])
    val_part = (train[0][270:], train[1][270:])
    options = {"device": "cpu", "precision": "fp32", "batch_size": 10, "seed": 0}
    plan = budget_module.plan_epochs(
        build, train_part, val_part, time_budget=100, fit_options=options
    )
    # 27 training steps and 3 validation batches at a third of a step: 0.5 * 28 = 14 s an epoch.
    assert plan.seconds_per_epoch == pytest.approx(14.0)
    assert plan.epochs == 7
    assert plan.batch_size == 10  # the size it was timed at, which the run then trains with
    tight = budget_module.plan_epochs(build, train_part, None, time_budget=1, fit_options=options)
    assert tight.epochs == 1  # never untrained


def test_compare_with_a_time_budget_trains_the_planned_epochs(task, monkeypatch):
    train, test = task
    planned = []

    def plan(build, train_data, val_data, *, time_budget, fit_options):
        planned.append(time_budget)
        return budget_module.EpochPlan(3, 1.0)

    monkeypatch.setattr(runner, "plan_epochs", plan)
    board = run(train, test, epochs=None, time_budget=5.0, models=["cmp_tiny"], verbose=0)
    assert planned == [5.0] and board["cmp_tiny"].epochs == 3
    assert board.settings["budget"] == {"epochs": None, "time_budget": 5.0}


# -- the leaderboard ------------------------------------------------------------------------------
def test_leaderboard_sorts_and_round_trips_through_json_and_csv(tmp_path):
    rows = [
        Row("b", accuracy=0.8, train_seconds=2.0, params=10),
        Row("a", accuracy=0.9, train_seconds=5.0, params=1_500_000, options={"small_input": True}),
        Row("c", status="failed", reason="too small | really"),
        Row("d", accuracy=0.8, train_seconds=1.0, params=20, macro_f1=float("nan")),
    ]
    board = Leaderboard(rows, {"seed": 0})
    assert [r.model for r in board] == ["a", "d", "b", "c"]
    again = Leaderboard.from_json(board.to_json(tmp_path / "board.json"))
    assert [r.to_dict() for r in again] == [r.to_dict() for r in board]
    assert again["d"].macro_f1 is None  # NaN is written as null, never as invalid JSON
    assert Leaderboard.from_json(tmp_path / "board.json").settings == {"seed": 0}
    text = board.to_csv(tmp_path / "board.csv")
    assert text.splitlines()[0].startswith("model,status,reason,options,accuracy")
    assert (tmp_path / "board.csv").read_text() == text
    table = board.to_markdown()
    assert "| 1 | `a`* | 0.9000 |" in table and "1.50M" in table
    assert "too small \\| really" in table and "small_input=True" in table
    with pytest.raises(ValueError, match="not a cnnzoo leaderboard"):
        Leaderboard.from_json('{"rows": [{"name": 1}]}')


def test_pareto_front_keeps_only_the_points_nothing_beats():
    points = [(1.0, 0.5), (2.0, 0.7), (3.0, 0.6), (4.0, 0.9), (2.0, 0.7)]
    assert pareto_front(points) == [0, 1, 4, 3]
    assert pareto_front([(1.0, 0.9), (2.0, 0.8)]) == [0]


def test_plot_writes_a_png(task, tmp_path):
    pytest.importorskip("matplotlib")
    board = Leaderboard([Row("a", accuracy=0.9, train_seconds=3.0, params=100)])
    board.plot(tmp_path / "p.png")
    assert (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ValueError, match="no model trained"):
        Leaderboard([Row("c", status="failed", reason="x")]).plot(tmp_path / "q.png")


def test_compare_is_exported_lazily():
    assert cnnzoo.compare is compare and cnnzoo.Leaderboard is Leaderboard


# -- the command ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def squares(tmp_path_factory) -> Path:
    """A two-class grey ImageFolder of 8x8 images: dark squares and bright squares."""
    root = tmp_path_factory.mktemp("squares")
    generator = torch.Generator().manual_seed(0)
    for split, count in (("train", 30), ("test", 10)):
        for label, (low, high) in enumerate(((0, 90), (160, 255))):
            folder = root / split / ("dark", "bright")[label]
            folder.mkdir(parents=True)
            for i in range(count):
                pixels = torch.randint(low, high, (8, 8, 3), generator=generator)
                Image.fromarray(pixels.to(torch.uint8).numpy()).save(folder / f"{i}.png")
    return root


def test_cli_round_trip(squares, tmp_path, capsys):
    out = tmp_path / "cmp"
    argv = ["compare", "cmp_tiny", "cmp_w*", "--data", str(squares), "--epochs", "1"]
    argv += ["--batch-size", "8", "--device", "cpu", "--precision", "fp32", "--out", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "[1/2] cmp_tiny: test accuracy" in printed and "[2/2] cmp_wide" in printed
    for name in ("leaderboard.md", "leaderboard.csv", "leaderboard.json", "compare.json"):
        assert (out / name).is_file()
    if _has_matplotlib():
        assert (out / "pareto.png").read_bytes()[:4] == b"\x89PNG"
    board = Leaderboard.from_json(out / "leaderboard.json")
    assert {r.model for r in board} == {"cmp_tiny", "cmp_wide"}
    assert (out / "leaderboard.md").read_text() == board.to_markdown()
    for row in board:
        assert row.options == {"num_classes": 2, "in_channels": 3}
        model = cnnzoo.load(row.checkpoint)
        test = cnnzoo.data.load_dataset(squares, "test")
        assert cnnzoo.evaluate(model, test, precision="fp32")["accuracy"] == row.accuracy

    assert main(argv) == 0  # again: both rows are kept, untrained (no epoch's line)
    again = capsys.readouterr().out
    assert "[1/2] cmp_tiny  epoch 1/1  " in printed and "  epoch " not in again
    assert printed.count("cmp_tiny") - printed.count("cmp_tiny  epoch") <= again.count("cmp_tiny")
    code = main([*argv[:6], "2", *argv[7:]])  # other epochs: refused
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("cnnzoo: error:") and "another --out" in err
    assert "Traceback" not in err


def test_cli_refuses_a_bad_budget(capsys):
    with pytest.raises(SystemExit):
        main(
            [
                "compare",
                "cmp_tiny",
                "--data",
                "x",
                "--out",
                "o",
                *("--epochs", "1", "--time-budget", "5"),
            ]
        )
    assert "not allowed with argument" in capsys.readouterr().err


def _has_matplotlib() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def test_describe_failure_names_memory_and_keeps_other_messages():
    assert runner.describe_failure(torch.OutOfMemoryError("CUDA out of memory.")).startswith(
        "out of memory"
    )
    assert runner.describe_failure(ValueError("bad\nmore")) == "ValueError: bad"


def test_a_folder_path_brings_its_test_split_and_a_tree_without_one_scores_validation(
    squares, tmp_path
):
    options = {"epochs": 1, "device": "cpu", "precision": "fp32", "batch_size": 8, "verbose": 0}
    board = compare(["cmp_tiny"], str(squares), **options)
    assert board.evaluated_on == "test" and board.settings["data"]["test_samples"] == 20
    assert board.settings["data"]["name"] == str(squares)
    board = compare(["cmp_tiny"], str(squares / "train"), **options)  # class folders only
    assert board.evaluated_on == "validation" and board.settings["data"]["test_samples"] is None


# -- rows read back: checked for values, not only kinds ------------------------------------------
def _bad_rows(good: dict, out: Path) -> list[tuple[str, object]]:
    """What a hostile editor (or a crash of another tool) could leave in a row file."""
    huge, text = "9" * 400, json.dumps(good)
    seconds = f'"train_seconds": {json.dumps(good["train_seconds"])}'
    ansi = "\x1b[2J\x1b[31mdone\x1b[0m"
    editor = {"kind": "stall", "epoch": 1, "message": "rm -rf ~"}
    return [
        ("null accuracy", {**good, "accuracy": None}),
        ("NaN accuracy", text.replace(f'"accuracy": {good["accuracy"]}', '"accuracy": NaN')),
        ("missing accuracy", {k: v for k, v in good.items() if k != "accuracy"}),
        ("400-digit epochs", text.replace(f'"epochs": {good["epochs"]}', f'"epochs": {huge}')),
        ("400-digit seconds", text.replace(seconds, f'"train_seconds": {huge}')),
        ("accuracy 5.0", {**good, "accuracy": 5.0}),
        ("checkpoint outside models/", {**good, "checkpoint": str(out / "rows" / "cmp_tiny.json")}),
        ("alert in an editor's words", {**good, "alert": editor}),
        ("ANSI escapes", {**good, "status": "failed", "reason": ansi}),
        ("a huge file", " " * (2 * 1024 * 1024) + text),
    ]


def test_a_resumed_row_with_a_bad_value_is_trained_again_never_a_traceback(task, tmp_path, capsys):
    train, test = task
    out = tmp_path / "cmp"
    run(train, test, out, models=["cmp_tiny"])
    row_file = out / "rows" / "cmp_tiny.json"
    good = json.loads(row_file.read_text())
    for what, bad in _bad_rows(good, out):
        row_file.write_text(bad if isinstance(bad, str) else json.dumps(bad))
        CALLS.clear()
        capsys.readouterr()
        board = run(train, test, out, models=["cmp_tiny"], verbose=1)
        printed = capsys.readouterr().out
        assert CALLS.get("cmp_tiny", 0) > 0, what  # trained again, not kept
        assert board["cmp_tiny"].status == "ok" and "\x1b" not in printed, what
        assert "finished earlier" not in printed, what


def test_a_resumed_row_whose_checkpoint_is_truncated_or_another_models_is_trained_again(
    task, tmp_path
):
    train, test = task
    out = tmp_path / "cmp"
    run(train, test, out, models=["cmp_tiny", "cmp_wide"])
    tiny, wide = out / "models" / "cmp_tiny.safetensors", out / "models" / "cmp_wide.safetensors"
    saved = tiny.read_bytes()
    for damage in ("truncate", "foreign"):
        if damage == "truncate":
            tiny.write_bytes(saved[: len(saved) // 2])
        else:  # another model's checkpoint, its size written into the row
            tiny.write_bytes(wide.read_bytes())
            row_file = out / "rows" / "cmp_tiny.json"
            row = json.loads(row_file.read_text())
            row_file.write_text(json.dumps({**row, "checkpoint_bytes": tiny.stat().st_size}))
        CALLS.clear()
        board = run(train, test, out, models=["cmp_tiny", "cmp_wide"])
        assert CALLS.get("cmp_tiny", 0) > 0 and "cmp_wide" not in CALLS, damage
        assert cnnzoo.load(board["cmp_tiny"].checkpoint).name == "cmp_tiny"


@pytest.mark.parametrize(
    "text",
    [
        '{"rows": [{"model": "a", "accuracy": 5.0}]}',
        '{"rows": [{"model": "a", "epochs": ' + "9" * 400 + "}]}",
        '{"rows": [{"model": "a", "accuracy": NaN}]}',
        '{"rows": [{"model": "a", "reason": "\\u001b[2J"}]}',
        '{"rows": [{"model": "a"}], "settings": [1]}',
        '{"rows": [{"model": "a"}], "left_out": {"b": 5}}',
        '{"rows": {"model": "a"}}',
        '{"rows": ' + "[" * 5000 + "]" * 5000 + "}",
    ],
)
def test_leaderboard_from_json_raises_its_own_clear_error(text, tmp_path):
    with pytest.raises(ValueError, match="not a cnnzoo leaderboard"):
        Leaderboard.from_json(text)
    path = tmp_path / "board.json"
    path.write_text(text)
    with pytest.raises(ValueError, match="not a cnnzoo leaderboard"):
        Leaderboard.from_json(path)


def test_a_sparse_multi_gigabyte_leaderboard_or_settings_file_is_refused_by_its_size(
    task, tmp_path
):
    board = tmp_path / "board.json"
    with open(board, "w") as f:
        f.write('{"rows": [')
        f.truncate(4 * 2**30)  # sparse: no disk used, and never read
    with pytest.raises(ValueError, match="bytes long"):
        Leaderboard.from_json(board)
    train, test = task
    out = tmp_path / "cmp"
    out.mkdir()
    with open(out / "compare.json", "w") as f:
        f.truncate(4 * 2**30)
    with pytest.raises(ValueError, match=r"bytes long.*delete"):
        run(train, test, out, models=["cmp_tiny"])


# -- arguments checked before any data is read; one writer per out ------------------------------
@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"models": ["no_such_net"]}, "unknown model 'no_such_net'"),
        ({"models": [""]}, "empty name"),
        ({"models": ["zz*"]}, "matches no registered model"),
        ({"models": None}, "models is 'auto'"),
        ({"max_params": "1e6"}, "max_params must be a positive whole number"),
        ({"max_params": 1.5}, "max_params must be a positive whole number"),
        ({"seed": "abc"}, "seed must be a whole number"),
        ({"num_classes": 1.5}, "num_classes must be a whole number"),
        ({"val_data": 1.5}, r"val_data as a share must be in \(0, 1\)"),
    ],
)
def test_compare_refuses_a_bad_argument_before_reading_any_data(options, message, monkeypatch):
    from cnnzoo.comparison import api

    def no_data(*args, **kwargs):
        raise AssertionError("the data was read before the arguments were checked")

    monkeypatch.setattr(api, "prepare", no_data)
    options = {"models": ["cmp_tiny"], **options}
    with pytest.raises(ValueError, match=message):
        compare(options.pop("models"), "fashion-mnist", epochs=1, device="cpu", **options)


def test_compare_refuses_an_unwritable_or_foreign_out_before_reading_any_data(
    tmp_path, monkeypatch
):
    from cnnzoo.comparison import api

    monkeypatch.setattr(api, "prepare", lambda *a, **k: pytest.fail("data read"))
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="is a file"):
        compare(["cmp_tiny"], "fashion-mnist", out=tmp_path / "file", device="cpu")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="holds files but no comparison"):
        compare(["cmp_tiny"], "fashion-mnist", out=tmp_path / "other", device="cpu")
    if os.geteuid() != 0:  # root writes anywhere
        (tmp_path / "locked").mkdir(mode=0o500)
        with pytest.raises(PermissionError):
            compare(["cmp_tiny"], "fashion-mnist", out=tmp_path / "locked" / "c", device="cpu")


def test_a_second_comparison_into_the_same_out_is_refused_while_the_first_runs(task, tmp_path):
    from cnnzoo.checkpoint import FolderInUseError
    from cnnzoo.comparison.store import Store

    train, test = task
    out = tmp_path / "cmp"
    with Store.lock(out), pytest.raises(FolderInUseError, match="is writing a comparison"):
        run(train, test, out, models=["cmp_tiny"])
    assert "cmp_tiny" not in CALLS  # refused before any training
    board = run(train, test, out, models=["cmp_tiny"])  # released: the folder is usable
    assert board["cmp_tiny"].status == "ok" and not (out / ".cnnzoo.lock").exists()


def test_recorded_sample_counts_are_the_images_of_a_pair_not_its_length(task, tmp_path):
    train, test = task
    run(train, test, tmp_path / "cmp", models=["cmp_tiny"])
    data = json.loads((tmp_path / "cmp" / "compare.json").read_text())["data"]
    assert (data["train_samples"], data["val_samples"], data["test_samples"]) == (270, 30, 90)


def test_test_images_no_model_can_take_are_refused_before_any_training(task):
    train, (images, labels) = task
    for other in (images[:, :, :6, :6], images.expand(-1, 3, -1, -1)):
        with pytest.raises(ValueError, match=r"test images are .* training images 1x8x8"):
            run(train, (other, labels), models=["cmp_tiny"])
    assert not CALLS


def test_pythonwarnings_error_does_not_turn_fits_warning_into_a_cli_traceback(
    squares, tmp_path, capsys, monkeypatch
):
    import warnings

    real_fit = runner.fit

    def warning_fit(*args, **kwargs):  # a run fit warns about, constructed
        history = real_fit(*args, **kwargs)
        warnings.warn("fit: at epoch 1 the training collapsed: ...", TrainingCollapseWarning, 2)
        return history

    monkeypatch.setattr(runner, "fit", warning_fit)
    argv = ["compare", "cmp_tiny", "--data", str(squares), "--epochs", "1", "--device", "cpu"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # what PYTHONWARNINGS=error sets up
        assert main([*argv, "--precision", "fp32", "--out", str(tmp_path / "c")]) == 0
    printed = capsys.readouterr()
    assert "cnnzoo: warning: fit: at epoch 1" in printed.err and "Traceback" not in printed.err
    assert "[1/1] cmp_tiny: test accuracy" in printed.out


def test_another_librarys_warning_made_an_error_ends_the_cli_with_its_message(
    squares, tmp_path, capsys, monkeypatch
):
    import warnings

    import cnnzoo.comparison

    def warns(*args, **kwargs):
        warnings.warn("a library's deprecation", DeprecationWarning, stacklevel=2)

    monkeypatch.setattr(cnnzoo.comparison, "compare", warns)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        code = main(["compare", "cmp_tiny", "--data", str(squares), "--out", str(tmp_path / "c")])
    err = capsys.readouterr().err
    assert code == 2 and "a library's deprecation" in err and "PYTHONWARNINGS" in err
    assert "Traceback" not in err
