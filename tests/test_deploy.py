"""cnnzoo.export: the formats, the data contract inside them, the check, int8, and bad input."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest
import torch
from _deploy import lenet, own_labels, pixels

import cnnzoo
from cnnzoo.data import DataConfig
from cnnzoo.deploy import ExportError, MissingExtraError, export, read_metadata
from cnnzoo.deploy import api as deploy_api

onnxruntime = pytest.importorskip("onnxruntime")


def _run_artifact(path, format: str, batch: np.ndarray) -> np.ndarray:
    """Run an artifact the way a serving app does: the runtime alone, no cnnzoo."""
    if format == "onnx":
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return session.run(None, {session.get_inputs()[0].name: batch})[0]
    with torch.inference_mode():
        if format == "torchscript":
            module = torch.jit.load(str(path))
        else:
            module = torch.export.load(str(path)).module()
        return module(torch.from_numpy(batch)).numpy()


@pytest.mark.parametrize("format", ["onnx", "torchscript", "exported-program"])
@pytest.mark.parametrize("baked", [False, True], ids=["float-input", "uint8-input"])
def test_artifact_answers_as_predict_at_any_batch_with_its_contract_inside(tmp_path, format, baked):
    model = lenet()
    path = tmp_path / f"lenet.{format}"
    report = export(model, path, format, bake_normalization=baked)
    images = pixels(5, seed=1)  # batch 5: not the batch of 2 the model was captured with
    if baked:
        batch = images.numpy()
    else:
        batch = torch.stack([cnnzoo.transforms(model)(image) for image in images]).numpy()
    logits = _run_artifact(path, format, batch)
    torch.testing.assert_close(torch.from_numpy(logits), cnnzoo.predict(model, images))

    record = read_metadata(path)
    assert DataConfig.from_dict(record["data_config"]) == model.pretrained_cfg
    assert record["input"]["dtype"] == ("uint8" if baked else "float32")
    assert record["input"]["shape"] == ["batch", 1, 28, 28]
    check = record["verification"]
    assert check["top1_agreement"] == report.top1_agreement == 1.0
    assert check["max_abs_diff"] == report.max_abs_diff <= 1e-4 * max(1, check["logit_scale"])
    assert "top-1 agreement 100.0%" in str(report)


def test_the_model_given_is_left_as_it_was(tmp_path):
    model = lenet().train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    export(model, tmp_path / "m.pt2", "exported-program")
    assert model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_a_failed_check_writes_nothing_and_gives_the_figures(tmp_path, monkeypatch):
    real_load = deploy_api.load

    def drifting(format, data, threads=None):  # an exporter that gets the graph slightly wrong
        run = real_load(format, data, threads)
        return lambda batch: run(batch) + 0.5

    monkeypatch.setattr(deploy_api, "load", drifting)
    path = tmp_path / "m.pt"
    with pytest.raises(ExportError, match=r"max abs logit diff 0\.5 > .*top-1 agreement 100\.0%"):
        export(lenet(), path, "torchscript")
    assert os.listdir(tmp_path) == []


def test_existing_file_is_refused_unless_overwrite(tmp_path):
    path = tmp_path / "m.pt"
    path.write_bytes(b"keep me")
    with pytest.raises(ExportError, match=r"exists.*--overwrite"):
        export(lenet(), path, "torchscript")
    assert path.read_bytes() == b"keep me"
    export(lenet(), path, "torchscript", overwrite=True)
    assert read_metadata(path)["format"] == "torchscript"
    with pytest.raises(ExportError, match="is a directory"):
        export(lenet(), tmp_path, "torchscript", overwrite=True)


def test_written_file_gets_the_umask_permissions(tmp_path):
    old = os.umask(0o027)
    try:
        export(lenet(), tmp_path / "m.pt", "torchscript")
    finally:
        os.umask(old)
    assert (tmp_path / "m.pt").stat().st_mode & 0o777 == 0o640


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"format": "tflite"}, "unknown export format 'tflite'; choose one of onnx, torchscript"),
        ({"format": "torchscript", "int8": True}, "use format='onnx'"),
        ({"int8": True}, "int8 needs calibration images"),
    ],
)
def test_bad_options_are_refused_before_any_work(tmp_path, options, message):
    with pytest.raises(ExportError, match=message):
        export(lenet(), tmp_path / "m", **options)


def test_a_model_without_data_contract_or_classes_is_refused(tmp_path):
    with pytest.raises(ExportError, match=r"no complete data contract .* to export it.*cnnzoo.fit"):
        export(cnnzoo.get_model("lenet5"), tmp_path / "m.pt", "torchscript")
    backbone = cnnzoo.get_model("resnet18", features_only=True)
    with pytest.raises(ValueError, match="features_only backbone"):
        export(backbone, tmp_path / "m.pt", "torchscript")


def test_missing_onnx_extra_names_the_pip_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime now fails
    with pytest.raises(MissingExtraError, match=r'onnxruntime.*pip install "cnnzoo\[onnx\]"'):
        export(lenet(), tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


def test_read_metadata_refuses_files_cnnzoo_did_not_write(tmp_path):
    scripted = tmp_path / "plain.pt"
    torch.jit.save(torch.jit.script(torch.nn.ReLU()), str(scripted))
    with pytest.raises(ExportError, match=r"not written by cnnzoo\.export"):
        read_metadata(scripted)
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x08\x07garbage" * 10)
    with pytest.raises(ExportError):
        read_metadata(garbage)
    with pytest.raises(FileNotFoundError):
        read_metadata(tmp_path / "absent.onnx")


# -- int8 -----------------------------------------------------------------------------------------
def test_int8_reports_and_stores_the_accuracy_of_both(tmp_path):
    model = lenet()
    images = pixels(200, seed=2)
    labels = own_labels(model, images)  # float32 accuracy 1.0 by construction
    path = tmp_path / "q.onnx"
    report = export(
        model, path, int8=True, calibration=(images, labels), calibration_images=128,
        bake_normalization=True, max_accuracy_drop=1.0,
    )  # fmt: skip
    assert report.accuracy["fp32"] == 1.0
    assert report.accuracy["images"] == 72 and report.accuracy["on"] == "held-out calibration"
    record = read_metadata(path)
    assert record["quantization"]["calibration_images"] == 128
    assert record["quantization"]["accuracy"] == report.accuracy
    assert record["format"] == "onnx int8"
    import onnx

    operators = {node.op_type for node in onnx.load(str(path)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= operators
    batch = images[:3].numpy()
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert session.run(None, {"input": batch})[0].shape == (3, 10)
    assert "int8" in str(report) and "points" in str(report)


def test_int8_measures_on_test_data_when_given(tmp_path):
    model = lenet()
    test_images = pixels(40, seed=3)
    report = export(
        model, tmp_path / "q.onnx", int8=True, calibration=pixels(64, seed=4),
        test=(test_images, own_labels(model, test_images)), max_accuracy_drop=1.0,
    )  # fmt: skip
    assert report.accuracy["on"] == "test" and report.accuracy["images"] == 40


def test_int8_that_loses_too_much_accuracy_writes_nothing(tmp_path, monkeypatch):
    real_load = deploy_api.load

    def shuffled(format, data, threads=None):  # a quantization that ruins the ranking
        run = real_load(format, data, threads)
        return lambda batch: run(batch)[:, ::-1].copy()

    monkeypatch.setattr(deploy_api, "load", shuffled)
    model = lenet()
    images = pixels(200, seed=5)
    with pytest.raises(ExportError, match=r"int8 loses too much accuracy: 1\.0000 in float32"):
        export(
            model, tmp_path / "q.onnx", int8=True, calibration=(images, own_labels(model, images))
        )
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(
    ("calibration", "message"),
    [
        (pixels(100, size=(1, 20, 20)), "calibration data: the images are 20x20 .* 28x28"),
        (
            pixels(100, size=(3, 28, 28)),
            "calibration data: the images are 3x28x28 .* takes 1x28x28",
        ),
        ((pixels(50), torch.zeros(50, dtype=torch.long)), "50 images: too few to calibrate"),
        (pixels(100), "no labels"),
    ],
    ids=["wrong-size", "wrong-channels", "too-few", "no-labels"],
)
def test_bad_calibration_data_is_named(tmp_path, calibration, message):
    with pytest.raises(ExportError, match=message):
        export(lenet(), tmp_path / "q.onnx", int8=True, calibration=calibration)
    assert os.listdir(tmp_path) == []


def test_too_few_calibration_images_with_test_data(tmp_path):
    images = pixels(40)
    with pytest.raises(ExportError, match=r"at least 32 images .* gives 20"):
        export(lenet(), tmp_path / "q.onnx", int8=True, calibration=pixels(20),
               test=(images, torch.zeros(40, dtype=torch.long)))  # fmt: skip


class _NoWeights(torch.nn.Module):
    """A classifier with nothing for int8 to speed up: an average of the pixels per class."""

    num_classes, in_channels = 2, 1

    def __init__(self) -> None:
        super().__init__()
        self.pretrained_cfg = DataConfig(input_size=(1, 8, 8), mean=(0.5,), std=(0.5,))

    def forward(self, x):
        return torch.cat([x.mean((1, 2, 3))[:, None], -x.mean((1, 2, 3))[:, None]], 1)


def test_a_model_int8_cannot_speed_up_is_refused(tmp_path):
    images = pixels(200, size=(1, 8, 8))
    with pytest.raises(ExportError, match=r"no convolution or linear layer.*without int8"):
        export(_NoWeights(), tmp_path / "q.onnx", int8=True,
               calibration=(images, torch.zeros(200, dtype=torch.long)))  # fmt: skip


def test_an_export_shows_its_stages_and_is_quiet_under_verbose_0(tmp_path, monkeypatch, capsys):
    import cnnzoo._progress as progress

    monkeypatch.setattr(progress, "LINE_INTERVAL_SECONDS", 0.0)  # a log line at every stage
    export(lenet(), tmp_path / "m.onnx")
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("exporting m.onnx: 1/3 stages") and "onnx graph captured" in lines[0]
    assert "checked on" in lines[1] and lines[-1].startswith("exporting m.onnx: 3 stages in")
    export(lenet(), tmp_path / "q.onnx", verbose=0)
    assert capsys.readouterr().out == ""
