"""DenseNet-121 against torchvision (counts, keys, outputs, legacy checkpoint keys), small input
and memory-efficient (checkpointed) dense layers.
"""

from __future__ import annotations

import re

import pytest
import torch
import torchvision
from _reference import (
    assert_counts_and_keys_equal_torchvision,
    assert_min_input_size_is_the_true_minimum,
    assert_torchvision_state_dict_gives_identical_outputs,
    key_shapes,
    small_input_training_step,
)

from cnnzoo.models import get
from cnnzoo.models.densenet import DenseNet


@pytest.mark.parametrize("num_classes", [1000, 7])
def test_counts_and_keys_equal_torchvision(num_classes):
    assert_counts_and_keys_equal_torchvision("densenet121", num_classes)


def test_small_input_keeps_every_key_and_shrinks_only_the_stem():
    with torch.device("meta"):
        ours = key_shapes(get("densenet121"))
        small = key_shapes(get("densenet121", small_input=True))
    assert small.keys() == ours.keys()
    assert {k for k in ours if ours[k] != small[k]} == {"features.conv0.weight"}
    assert small["features.conv0.weight"][-2:] == (3, 3)


def test_torchvision_state_dict_loads_strictly_with_identical_outputs():
    assert_torchvision_state_dict_gives_identical_outputs("densenet121")


def test_loads_legacy_checkpoint_keys():
    # torchvision's published DenseNet files spell "denselayer1.norm.1.weight" (old module names)
    with torch.device("meta"):
        reference = torchvision.models.densenet121()
    # (those files predate BatchNorm's num_batches_tracked buffer, which must be optional)
    legacy = {
        re.sub(r"(denselayer\d+\.(?:norm|conv))([12])\.", r"\1.\2.", key): torch.full(v.shape, 0.5)
        for key, v in reference.state_dict().items()
        if not key.endswith("num_batches_tracked")
    }
    assert any(".norm.1." in key for key in legacy)
    model = get("densenet121")
    model.load_state_dict(legacy, strict=True)
    assert torch.equal(model.features.denseblock1.denselayer1.norm1.weight, torch.full((64,), 0.5))


# Three transitions, each a 2x2 average pool: 28 -> 3 and 32 -> 4.
@pytest.mark.parametrize(("shape", "side"), [((1, 28, 28), 3), ((3, 32, 32), 4)])
def test_small_input_trains_on_28_and_32_pixel_images(shape, side):
    model, feature_side = small_input_training_step("densenet121", shape)
    assert feature_side == (side, side)
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_min_input_size_is_the_true_minimum():
    model = get("densenet121", small_input=True)
    assert model.min_input_size == (8, 8)
    assert_min_input_size_is_the_true_minimum(model)


def test_full_stem_suggests_small_input_for_tiny_images():
    with pytest.raises(ValueError, match="small_input=True"):
        get("densenet121", in_channels=1)(torch.randn(1, 1, 28, 28))


def test_memory_efficient_gives_the_same_outputs_and_gradients():
    # a two-block DenseNet exercises the same checkpointed layers as DenseNet-121, in a blink
    def build(memory_efficient: bool) -> DenseNet:
        return DenseNet(8, (3, 3), 16, num_classes=3, memory_efficient=memory_efficient)

    torch.manual_seed(0)
    plain, efficient = build(False), build(True)
    efficient.load_state_dict(plain.state_dict())
    x = torch.randn(2, 3, 16, 16)
    out_plain, out_efficient = plain(x), efficient(x)
    torch.testing.assert_close(out_efficient, out_plain)
    out_plain.square().sum().backward()
    out_efficient.square().sum().backward()
    for (name, p), q in zip(plain.named_parameters(), efficient.parameters(), strict=True):
        torch.testing.assert_close(q.grad, p.grad, msg=f"gradients differ at {name}")
