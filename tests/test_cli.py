"""The cnnzoo command: listing, inspection, train/eval/predict, and its errors (no traceback)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

from cnnzoo.cli import main


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_list_with_pattern(capsys):
    code, out, _ = run(capsys, "list", "resnet*")
    assert code == 0
    names = [line.split()[0] for line in out.splitlines()[1:]]
    assert names == ["resnet18", "resnet34", "resnet50", "resnet101", "resnet152"]
    assert "11,689,512" in out


def test_info_names_sizes_and_source(capsys):
    code, out, _ = run(capsys, "info", "lenet5")
    assert code == 0
    assert "61,706" in out and "1x28x28" in out and "28x28 (fixed size)" in out
    assert "LeCun" in out


def test_summary_with_options(capsys):
    code, out, _ = run(
        capsys, "summary", "resnet18", "--small-input", "--input-size", "1", "28", "28",
        "--num-classes", "10",
    )  # fmt: skip
    assert code == 0
    assert "[-1, 64, 28, 28]" in out  # the small stem keeps full resolution
    assert "[-1, 10]" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["info", "resnet19"], "unknown model 'resnet19'. Did you mean: resnet18"),
        (["list", "nothing*"], "no model matches 'nothing*'"),
        (["summary", "lenet5", "--input-size", "1", "32", "32"], "lenet5 takes exactly 28x28"),
        (["eval", "missing.safetensors", "--data", "fashion-mnist"], "missing.safetensors"),
    ],
)
def test_errors_print_their_message_with_exit_code_2(capsys, argv, message):
    code, _, err = run(capsys, *argv)
    assert code == 2
    assert err.startswith("cnnzoo: error: ") and message in err
    assert "Traceback" not in err


def test_a_message_of_several_lines_is_printed_whole(capsys, tmp_path, monkeypatch):
    from cnnzoo.data import datasets

    def offline(*args, **kwargs):
        raise ConnectionError("no network")

    monkeypatch.setattr(datasets, "_read_from", lambda *args: None)
    monkeypatch.setattr(datasets, "_download", offline)
    code, _, err = run(capsys, "train", "lenet5", "--data", "mnist", "--out", str(tmp_path / "o"))
    assert code == 2 and err.startswith("cnnzoo: error: cannot find the mnist train split")
    lines = err.strip().splitlines()
    assert lines[1] == "  - " + str(datasets.search_paths("mnist")[0])  # the places looked
    assert "ConnectionError: no network" in err and lines[-1].startswith("To fix:")
    assert "Traceback" not in err


def test_unknown_dataset_is_one_line(capsys, tmp_path):
    code, _, err = run(capsys, "train", "lenet5", "--data", "svhn", "--out", str(tmp_path))
    assert code == 2 and "unknown dataset 'svhn'" in err


def _image_folder(root: Path) -> Path:
    """A two-class RGB ImageFolder: dark squares and bright squares, 28x28."""
    generator = torch.Generator().manual_seed(0)
    for split, count in (("train", 48), ("test", 16)):
        for label, (low, high) in enumerate(((0, 90), (160, 255))):
            folder = root / split / ("dark", "bright")[label]
            folder.mkdir(parents=True)
            for i in range(count):
                pixels = torch.randint(low, high, (28, 28, 3), generator=generator)
                Image.fromarray(pixels.to(torch.uint8).numpy()).save(folder / f"{i}.png")
    return root


def test_train_eval_predict_round_trip(capsys, tmp_path):
    data = _image_folder(tmp_path / "squares")
    out = tmp_path / "run"
    # mini_resnet learns these squares perfectly from every seed tried (lenet5's sigmoids do
    # not, always, in 4 epochs): the test must not hang on one trajectory or one CPU's floats.
    code, stdout, err = run(
        capsys, "train", "mini_resnet", "--data", str(data), "--epochs", "4", "--batch-size",
        "16", "--val", "0.25", "--out", str(out),
    )  # fmt: skip
    assert code == 0, err
    assert "test accuracy: 1.0000" in stdout
    for name in ("model.safetensors", "best.safetensors", "history.json", "metrics.json"):
        assert (out / name).is_file(), name
    for picture in ("curves.png", "confusion_matrix.png"):  # no mistakes: no misclassified.png
        assert (out / picture).read_bytes().startswith(b"\x89PNG"), picture
    assert len(json.loads((out / "history.json").read_text())["val_accuracy"]) == 4
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["accuracy"] == 1.0 and len(metrics["confusion_matrix"]) == 2

    code, stdout, _ = run(capsys, "eval", str(out / "model.safetensors"), "--data", str(data))
    assert code == 0 and "test accuracy: 1.0000" in stdout and "bright" in stdout

    bright = data / "test" / "bright" / "0.png"
    dark = data / "test" / "dark" / "0.png"
    from cnnzoo import load, save_pretrained

    folder = save_pretrained(load(out / "best.safetensors"), tmp_path / "hub-folder")
    for checkpoint in (out / "model.safetensors", out / "best.safetensors", folder):
        code, stdout, err = run(capsys, "predict", str(checkpoint), str(bright), str(dark))
        assert code == 0, err
        lines = stdout.strip().splitlines()
        assert lines[0].startswith(f"{bright}: bright ") and lines[1].startswith(f"{dark}: dark ")


def test_predict_refuses_garbage_checkpoint_and_images(capsys, tmp_path):
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x00" * 5 + b"not a checkpoint")
    code, _, err = run(capsys, "predict", str(garbage), "x.png")
    assert code == 2 and "garbage.safetensors" in err


def test_predict_on_any_checkpoint_prints_indices_without_class_names(capsys, tmp_path):
    from cnnzoo import get_model, save

    plain = save(get_model("lenet5"), tmp_path / "plain.safetensors")  # no class names in it
    Image.new("L", (28, 28), 200).save(tmp_path / "grey.png")
    code, stdout, err = run(capsys, "predict", str(plain), str(tmp_path / "grey.png"), "--top", "2")
    assert code == 0, err
    ranked = stdout.split(": ", 1)[1].split(", ")
    assert len(ranked) == 2 and all(item.split()[0].isdigit() for item in ranked)
    code, _, err = run(capsys, "predict", str(plain), str(tmp_path / "absent.png"))
    assert code == 2 and "no image file at" in err


def test_predict_reads_the_class_names_of_an_earlier_cnnzoo_train(capsys, tmp_path):
    """Checkpoints of earlier versions kept names and normalisation in their cnnzoo_data."""
    from cnnzoo import get_model, save

    names = [f"class {i}" for i in range(10)]
    earlier = {"classes": names, "mean": [0.5], "std": [0.5], "image_size": [28, 28]}
    metadata = {"cnnzoo_data": json.dumps(earlier)}
    checkpoint = save(get_model("lenet5"), tmp_path / "earlier.safetensors", metadata=metadata)
    Image.new("L", (28, 28), 200).save(tmp_path / "grey.png")
    code, stdout, err = run(capsys, "predict", str(checkpoint), str(tmp_path / "grey.png"))
    assert code == 0, err
    assert stdout.split(": ", 1)[1].startswith("class ")


def test_predict_refuses_files_that_are_not_images(capsys, tmp_path):
    from cnnzoo import get_model, save

    not_image = tmp_path / "notes.png"
    not_image.write_text("hello")
    save(get_model("lenet5"), tmp_path / "t.safetensors")
    code, _, err = run(capsys, "predict", str(tmp_path / "t.safetensors"), str(not_image))
    assert code == 2 and "notes.png is not an image file" in err


def test_console_script_is_installed():
    executable = shutil.which("cnnzoo") or str(Path(sys.executable).with_name("cnnzoo"))
    result = subprocess.run([executable, "list", "lenet*"], capture_output=True, text=True)
    assert result.returncode == 0 and "lenet5" in result.stdout
