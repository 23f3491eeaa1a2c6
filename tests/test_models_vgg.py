"""VGG-11/13/16/19, with and without BatchNorm, against torchvision, and their small-input form."""

from __future__ import annotations

import pytest
import torch
from _reference import (
    assert_counts_and_keys_equal_torchvision,
    assert_min_input_size_is_the_true_minimum,
    assert_torchvision_state_dict_gives_identical_outputs,
    small_input_training_step,
    torchvision_model,
)
from torch import nn

from cnnzoo.models import get
from cnnzoo.models.vgg import VGG

VGG_NAMES = [f"vgg{depth}{bn}" for depth in (11, 13, 16, 19) for bn in ("", "_bn")]


@pytest.mark.parametrize("name", VGG_NAMES)
@pytest.mark.parametrize("num_classes", [1000, 7])
def test_counts_and_keys_equal_torchvision(name, num_classes):
    assert_counts_and_keys_equal_torchvision(name, num_classes)


@pytest.mark.parametrize("name", ["vgg11", "vgg16_bn"])
def test_torchvision_state_dict_loads_strictly_with_identical_outputs(name):
    assert_torchvision_state_dict_gives_identical_outputs(name)


@pytest.mark.parametrize(
    ("name", "shape", "side"), [("vgg11_bn", (1, 28, 28), 3), ("vgg16", (3, 32, 32), 4)]
)
def test_small_input_trains_on_28_and_32_pixel_images(name, shape, side):
    model, feature_side = small_input_training_step(name, shape)
    assert feature_side == (side, side)
    first_conv = model.features[0]
    assert torch.isfinite(first_conv.weight.grad).all()
    assert first_conv.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("name", VGG_NAMES)
def test_small_input_keeps_torchvision_convolution_names_and_shapes(name):
    with torch.device("meta"):
        ours = get(name, small_input=True).state_dict()
        reference = torchvision_model(name).state_dict()
    features = {k: v.shape for k, v in ours.items() if k.startswith("features.")}
    assert features == {k: v.shape for k, v in reference.items() if k.startswith("features.")}
    assert ours["classifier.6.weight"].shape == (1000, 512)


@pytest.mark.parametrize("name", VGG_NAMES)
@pytest.mark.parametrize(("small_input", "minimum"), [(False, (32, 32)), (True, (8, 8))])
def test_min_input_size_is_the_true_minimum(name, small_input, minimum):
    with torch.device("meta"):
        model = get(name, small_input=small_input)
    assert model.min_input_size == minimum
    assert assert_min_input_size_is_the_true_minimum(model).shape[-2:] == (1, 1)


def test_too_small_image_suggests_small_input_only_when_it_is_off():
    with torch.device("meta"):
        default = get("vgg11")
        small = get("vgg11", small_input=True)
    with pytest.raises(ValueError, match=r"got 28x28.*small_input=True"):
        default.check_input(torch.empty(1, 3, 28, 28, device="meta"))
    with pytest.raises(ValueError, match=r"at least 8x8; got 7x7") as caught:
        small.check_input(torch.empty(1, 3, 7, 7, device="meta"))
    assert "small_input" not in str(caught.value)


def test_small_input_runs_at_its_minimum_size():
    model = get("vgg11_bn", num_classes=3, in_channels=1, small_input=True).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 1, 8, 8)).shape == (1, 3)


def test_reset_classifier_replaces_only_the_last_linear():
    torch.manual_seed(0)
    model = get("vgg11", num_classes=10, small_input=True).eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.reset_classifier(4)
    after = model.state_dict()
    assert model.classifier[6].out_features == 4
    assert after.keys() == before.keys()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed == {"classifier.6.weight", "classifier.6.bias"}
    assert after["classifier.6.weight"].shape == (4, 512)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        features = model.forward_head(model.forward_features(x), pre_logits=True)
        assert features.shape == (2, model.num_features) == (2, 512)
        torch.testing.assert_close(model(x), model.classifier[6](features))


def test_options_reach_the_layers():
    with torch.device("meta"):
        model = get("vgg13_bn", dropout=0.1, in_channels=5)
    assert [m.p for m in model.modules() if isinstance(m, nn.Dropout)] == [0.1, 0.1]
    assert model.features[0].in_channels == 5
    assert model.input_size == (5, 224, 224)


def test_refuses_an_unknown_depth():
    with pytest.raises(ValueError, match=r"depth must be one of \[11, 13, 16, 19\], got 12"):
        VGG(depth=12)
