"""The cnnzoo command's help and training options: --version, defaults and examples, --seed
that repeats a run exactly, and train's loss, EMA, clipping, accumulation and loggers."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

import cnnzoo
from cnnzoo.cli import build_parser, main
from cnnzoo.cli import train as train_command


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def squares(tmp_path_factory) -> Path:
    """A two-class RGB ImageFolder: dark squares and bright squares, 16x16."""
    root = tmp_path_factory.mktemp("squares")
    generator = torch.Generator().manual_seed(0)
    for split, count in (("train", 24), ("test", 8)):
        for label, (low, high) in enumerate(((0, 90), (160, 255))):
            folder = root / split / ("dark", "bright")[label]
            folder.mkdir(parents=True)
            for i in range(count):
                pixels = torch.randint(low, high, (16, 16, 3), generator=generator)
                Image.fromarray(pixels.to(torch.uint8).numpy()).save(folder / f"{i}.png")
    return root


def train(capsys, squares: Path, out: Path, *options: str) -> tuple[int, str, str]:
    return run(
        capsys,
        "train",
        "lenet5",
        "--data",
        str(squares),
        "--image-size",
        "28",
        "--epochs",
        "1",
        "--batch-size",
        "8",
        "--out",
        str(out),
        "--device",
        "cpu",
        *options,
    )


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"cnnzoo {cnnzoo.__version__}"


def test_help_shows_defaults_and_examples():
    parser = build_parser()
    top = parser.format_help()
    assert "examples:" in top and "cnnzoo train lenet5" in top
    train_help = parser._subparsers._group_actions[0].choices["train"].format_help()
    assert "(default: 4)" in train_help  # --epochs, as fit
    assert "(default: onecycle)" in train_help
    assert "examples:" in train_help and "--accumulate 4" in train_help
    assert "--data DATA" in train_help and "(default: None)" not in train_help
    for option in (
        "--weights",
        "--precision",
        "--workers",
        "--loss",
        "--label-smoothing",
        "--ema",
        "--grad-clip",
        "--accumulate",
        "--log-dir",
        "--warmup",
    ):
        assert option in train_help, option


def test_the_cli_precisions_are_fits():
    from cnnzoo.training.precision import PRECISIONS

    assert train_command.PRECISIONS == PRECISIONS


def test_two_runs_with_the_same_seed_write_identical_weights(capsys, tmp_path, squares):
    for name, seed in (("a", "0"), ("b", "0"), ("c", "1")):
        torch.manual_seed(1234 if name == "b" else 99)  # what ran before must not matter
        code, _, err = train(capsys, squares, tmp_path / name, "--seed", seed)
        assert code == 0, err
    a, b, c = (load_file(tmp_path / n / "model.safetensors") for n in "abc")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[key], b[key]) for key in a)
    assert not all(torch.equal(a[key], c[key]) for key in a)  # the seed does matter


def test_train_with_every_step_option_and_loggers(capsys, tmp_path, squares):
    out, log_dir = tmp_path / "run", tmp_path / "tb"
    code, stdout, err = train(
        capsys,
        squares,
        out,
        "--epochs",
        "2",
        "--loss",
        "label-smoothing",
        "--ema",
        "0.9",
        "--grad-clip",
        "1.0",
        "--accumulate",
        "2",
        "--schedule",
        "cosine",
        "--warmup",
        "0.2",
        "--precision",
        "fp32",
        "--workers",
        "0",
        "--log-dir",
        str(log_dir),
    )
    assert code == 0, err
    assert "macro F1:" in stdout
    with open(out / "log.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    history = json.loads((out / "history.json").read_text())
    assert [float(r["val_accuracy"]) for r in rows] == pytest.approx(history["val_accuracy"])
    assert any(path.name.startswith("events.out.tfevents") for path in log_dir.iterdir())
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"precision", "recall", "f1", "macro_f1"} <= set(metrics)


def test_train_starts_from_weights(capsys, tmp_path, squares):
    torch.manual_seed(3)
    start = cnnzoo.get_model("lenet5", num_classes=2, in_channels=3)  # not --seed 0's weights
    path = cnnzoo.save(start, tmp_path / "start.safetensors")
    code, _, err = train(
        capsys,
        squares,
        tmp_path / "run",
        "--weights",
        str(path),
        "--lr",
        "1e-12",
        "--schedule",
        "none",
        "--val",
        "0",
    )
    assert code == 0, err
    trained = load_file(tmp_path / "run" / "model.safetensors")
    for key, value in start.state_dict().items():
        torch.testing.assert_close(trained[key], value, rtol=0, atol=1e-9)


def test_label_smoothing_options_that_contradict_are_refused(capsys, tmp_path, squares):
    code, _, err = train(
        capsys, squares, tmp_path / "x", "--loss", "label-smoothing", "--label-smoothing", "0"
    )
    assert code == 2 and "--label-smoothing > 0" in err
    args = build_parser().parse_args(
        ["train", "lenet5", "--data", "d", "--out", "o", "--loss", "label-smoothing"]
    )
    assert train_command._label_smoothing(args) == 0.1


def test_train_with_augmentation_and_regularisation_flags(capsys, tmp_path, squares):
    code, _, err = train(
        capsys,
        squares,
        tmp_path / "run",
        "--augment",
        "trivialaugment",
        "erasing",
        "--mixup",
        "0.2",
    )
    assert code == 0, err
    state = json.loads((tmp_path / "run" / "state" / "training_state.json").read_text())
    assert (
        state["settings"]["mixup"] == 0.2
        and state["settings"]["augment"] == "trivialaugment+erasing"
    )
    # lenet5 has no residual branch: a clean refusal, no traceback
    code, _, err = train(capsys, squares, tmp_path / "other", "--drop-path-rate", "0.1")
    assert code != 0 and "lenet5 has none" in err and "Traceback" not in err
