"""The deployment road across the zoo: every family through every format, int8 on a sample.

Each family is represented by one model at a small input (``small_input=True`` where it has
it; DenseNet by a four-block DenseNet of two layers each, the same classes and code paths as
``densenet121``): the export captures the model's code, and the models of a family share it.
tests/test_interop.py runs the capture tools themselves on every model.

int8 runs on the models that bring a new kind of graph to ONNX Runtime's quantizer: residual
additions (mini_resnet), Inception's concatenations (mini_inception) and DenseNet's growing
concatenations; LeNet-5 in tests/test_deploy.py. ResNet-18, AlexNet and VGG add no kind of graph
to these (convolutions, ReLU, pooling, linear layers, residual additions) and their millions of
weights make quantization take tens of seconds each, so they are left to benchmarks/deploy.py
(ResNet-18) and out of the suite's time budget.
"""

from __future__ import annotations

import pytest
import torch
from _deploy import own_labels, pixels

import cnnzoo
from cnnzoo.data import DataConfig
from cnnzoo.deploy import export, read_metadata
from cnnzoo.models.densenet import DenseNet

pytest.importorskip("onnxruntime")

SMALL_DENSENET = {"growth_rate": 8, "block_config": (2, 2, 2, 2), "num_init_features": 16}
FAMILIES = {
    "alexnet": ("alexnet", {"small_input": True}),
    "densenet": ("densenet121", {"small_input": True}),
    "googlenet": ("googlenet", {"small_input": True}),
    "lenet": ("lenet5", {}),
    "resnet": ("resnet18", {"small_input": True}),
    "tutorial": ("mini_resnet", {}),
    "tutorial-inception": ("mini_inception", {}),
    "vgg": ("vgg11_bn", {"small_input": True}),
}
INT8 = ("densenet", "tutorial", "tutorial-inception")


def _model(family: str) -> torch.nn.Module:
    name, options = FAMILIES[family]
    torch.manual_seed(0)
    if family == "densenet":  # the registry builds densenet121 only: its class takes the rest
        model = DenseNet(**SMALL_DENSENET, num_classes=10, **options).eval()
        config = DataConfig(input_size=(3, 32, 32), num_classes=10)
    else:
        model = cnnzoo.get_model(name, num_classes=10, **options).eval()
        config = model.pretrained_cfg
    channels = config.input_size[0]
    model.pretrained_cfg = config.replace(mean=(0.5,) * channels, std=(0.25,) * channels)
    return model


def test_every_family_is_in_the_matrix():
    families = {cnnzoo.info(name).family for name in cnnzoo.list_models()}
    assert families == {key.split("-")[0] for key in FAMILIES}


@pytest.mark.parametrize("format", ["onnx", "torchscript", "exported-program"])
@pytest.mark.parametrize("family", list(FAMILIES))
def test_every_family_exports_and_checks_in_every_format(tmp_path, family, format):
    model = _model(family)
    report = export(model, tmp_path / "model", format, bake_normalization=True)
    assert report.top1_agreement == 1.0
    assert report.max_abs_diff <= 1e-4 * max(1.0, report.record["verification"]["logit_scale"])
    assert read_metadata(tmp_path / "model")["input"]["shape"][1:] == list(
        model.pretrained_cfg.input_size
    )


@pytest.mark.parametrize("family", INT8)
def test_int8_quantizes_each_kind_of_graph(tmp_path, family):
    model = _model(family)
    images = pixels(160, size=model.pretrained_cfg.input_size, seed=1)
    report = export(
        model, tmp_path / "q.onnx", int8=True, calibration=(images, own_labels(model, images)),
        calibration_images=64, max_accuracy_drop=1.0,
    )  # fmt: skip
    assert report.accuracy["fp32"] == 1.0 and 0.0 <= report.accuracy["int8"] <= 1.0
    assert read_metadata(tmp_path / "q.onnx")["format"] == "onnx int8"
