"""ResNet-18 to 152 against torchvision (counts, keys, outputs, initialisation), small input."""

from __future__ import annotations

import pytest
import torch
from _reference import (
    assert_counts_and_keys_equal_torchvision,
    assert_min_input_size_is_the_true_minimum,
    assert_torchvision_state_dict_gives_identical_outputs,
    key_shapes,
    small_input_training_step,
)

from cnnzoo.models import get

RESNET_NAMES = ["resnet18", "resnet34", "resnet50", "resnet101", "resnet152"]


@pytest.mark.parametrize("name", RESNET_NAMES)
@pytest.mark.parametrize("num_classes", [1000, 7])
def test_counts_and_keys_equal_torchvision(name, num_classes):
    assert_counts_and_keys_equal_torchvision(name, num_classes)


@pytest.mark.parametrize("name", RESNET_NAMES)
def test_small_input_keeps_every_key_and_shrinks_only_the_stem(name):
    with torch.device("meta"):
        ours, small = key_shapes(get(name)), key_shapes(get(name, small_input=True))
    assert small.keys() == ours.keys()
    assert {k for k in ours if ours[k] != small[k]} == {"conv1.weight"}
    assert small["conv1.weight"][-2:] == (3, 3)


@pytest.mark.parametrize("name", ["resnet18", "resnet50"])
def test_torchvision_state_dict_loads_strictly_with_identical_outputs(name):
    assert_torchvision_state_dict_gives_identical_outputs(name)


def test_initialisation_and_zero_init_residual():
    model = get("resnet18")  # zero_init_residual is the default
    last_norms = [block.bn2.weight for stage in (model.layer1, model.layer4) for block in stage]
    assert all(torch.count_nonzero(w) == 0 for w in last_norms)
    assert torch.count_nonzero(model.layer1[0].bn1.weight) == 64
    deep = get("resnet50")
    assert torch.count_nonzero(deep.layer2[0].bn3.weight) == 0
    # zero_init_residual=False: torchvision's init exactly, every norm weight at one
    plain = get("resnet50", zero_init_residual=False)
    assert torch.count_nonzero(plain.layer2[0].bn3.weight) == plain.layer2[0].bn3.weight.numel()
    # torchvision's init: Kaiming normal with fan_out on the convs (std sqrt(2 / fan_out))
    conv = get("resnet18").layer3[0].conv2.weight
    fan_out = conv.shape[0] * conv.shape[2] * conv.shape[3]
    assert conv.std().item() == pytest.approx((2 / fan_out) ** 0.5, rel=0.05)


# Three padded stride-2 stages: the last stage works at 4x4 (ceil(28 / 8) and 32 / 8), not 1x1.
@pytest.mark.parametrize(("shape", "side"), [((1, 28, 28), 4), ((3, 32, 32), 4)])
def test_small_input_trains_on_28_and_32_pixel_images(shape, side):
    model, feature_side = small_input_training_step("resnet18", shape)
    assert feature_side == (side, side)
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_min_input_size_is_the_true_minimum():
    model = get("resnet18", small_input=True)
    assert model.min_input_size == (1, 1)
    assert_min_input_size_is_the_true_minimum(model)
