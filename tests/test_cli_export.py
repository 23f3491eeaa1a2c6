"""``cnnzoo export``: a checkpoint to a checked artifact, and every refusal as one clear line."""

from __future__ import annotations

import sys

import pytest
from _deploy import lenet, own_labels, pixels
from PIL import Image

import cnnzoo
from cnnzoo.cli import main
from cnnzoo.deploy import read_metadata


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def checkpoint(tmp_path):
    path = tmp_path / "lenet.safetensors"
    cnnzoo.save(lenet(), path)
    return path


def test_export_prints_and_stores_the_check(capsys, tmp_path, checkpoint):
    out = tmp_path / "lenet.pt2"
    code, stdout, err = run(
        capsys, "export", str(checkpoint), "--format", "exported-program", "--out", str(out),
        "--bake-normalization",
    )  # fmt: skip
    assert code == 0, err
    assert f"wrote {out}" in stdout and "max abs logit diff 0" in stdout
    assert "top-1 agreement 100.0%" in stdout
    record = read_metadata(out)
    assert record["input"]["dtype"] == "uint8" and record["verification"]["top1_agreement"] == 1
    assert record["data_config"]["label_names"][0] == "class 0"


def test_existing_out_is_refused_before_the_checkpoint_is_read(capsys, tmp_path):
    out = tmp_path / "m.onnx"
    out.write_bytes(b"keep")
    code, _, err = run(capsys, "export", str(tmp_path / "absent.safetensors"), "--out", str(out))
    assert code == 2 and "exists" in err and "--overwrite" in err
    assert out.read_bytes() == b"keep"


def test_refusals_are_one_message_without_traceback(capsys, tmp_path, checkpoint):
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x00" * 5 + b"not a checkpoint")
    cases = [
        ((str(garbage), "--out", str(tmp_path / "a.pt"), "--format", "torchscript"), "garbage"),
        ((str(checkpoint), "--out", str(tmp_path / "b.onnx"), "--int8"), "--calibration DATA"),
        (
            (str(checkpoint), "--out", str(tmp_path / "c.pt"), "--format", "torchscript",
             "--int8", "--calibration", "fashion-mnist"),
            "format='onnx'",
        ),
        ((str(checkpoint), "--out", str(tmp_path / "d.pt"), "--calibration", "x"), "--int8 only"),
    ]  # fmt: skip
    for argv, message in cases:
        code, _, err = run(capsys, "export", *argv)
        assert code == 2 and err.startswith("cnnzoo: error:") and message in err, err
        assert "Traceback" not in err
    with pytest.raises(SystemExit) as exited:  # argparse refuses an unknown format itself
        main(["export", str(checkpoint), "--out", "x", "--format", "tflite"])
    assert exited.value.code == 2
    assert "invalid choice: 'tflite'" in capsys.readouterr().err


def test_missing_onnx_extra_says_which_pip_install(capsys, tmp_path, checkpoint, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)
    code, _, err = run(capsys, "export", str(checkpoint), "--out", str(tmp_path / "m.onnx"))
    assert code == 2 and 'pip install "cnnzoo[onnx]"' in err and "Traceback" not in err


def _folder(root, count):
    """An ImageFolder of ``count`` 28x28 images per class and split (folders read as RGB)."""
    for split in ("train", "test"):
        for label in range(10):
            folder = root / split / f"class {label}"
            folder.mkdir(parents=True)
            for i, image in enumerate(pixels(count, seed=label)):
                Image.fromarray(image[0].numpy()).save(folder / f"{i}.png")
    return root


def test_too_few_calibration_images_in_a_folder(capsys, tmp_path):
    data = _folder(tmp_path / "few", count=2)
    checkpoint = tmp_path / "colour.safetensors"
    cnnzoo.save(lenet(in_channels=3), checkpoint)
    code, _, err = run(
        capsys, "export", str(checkpoint), "--out", str(tmp_path / "q.onnx"), "--int8",
        "--calibration", str(data), "--test", str(data),
    )  # fmt: skip
    assert code == 2 and "at least 32 images" in err and "gives 20" in err
    assert not (tmp_path / "q.onnx").exists()


def test_int8_from_the_command_line(capsys, tmp_path):
    model = lenet(in_channels=3)
    images = pixels(160, size=(3, 28, 28), seed=7)
    labels = own_labels(model, images)
    root = tmp_path / "data"
    for split in ("train", "test"):
        for i, (image, label) in enumerate(zip(images, labels, strict=True)):
            folder = root / split / f"class {int(label)}"
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image.permute(1, 2, 0).numpy()).save(folder / f"{i}.png")
    model.pretrained_cfg = model.pretrained_cfg.replace(label_names=None)  # folder names differ
    checkpoint = tmp_path / "m.safetensors"
    cnnzoo.save(model, checkpoint)
    out = tmp_path / "q.onnx"
    code, stdout, err = run(
        capsys, "export", str(checkpoint), "--out", str(out), "--int8", "--calibration",
        str(root), "--test", str(root), "--calibration-images", "64", "--max-accuracy-drop", "1",
    )  # fmt: skip
    assert code == 0, err
    assert "accuracy on 160 test images: fp32 " in stdout and ", int8 " in stdout
    assert read_metadata(out)["quantization"]["calibration_images"] == 64
