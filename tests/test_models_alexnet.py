"""Both AlexNets: torchvision's layout against torchvision, Krizhevsky's 2012 widths against the
LeNet-5 and AlexNet Fashion-MNIST tutorial's own class (copied below as the tutorial wrote it).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from _reference import (
    assert_counts_and_keys_equal_torchvision,
    assert_fixed_size_refuses_any_other,
    assert_min_input_size_is_the_true_minimum,
    assert_torchvision_state_dict_gives_identical_outputs,
    assert_tutorial_state_dict_gives_identical_outputs,
    n_params,
    small_input_training_step,
    torchvision_model,
)
from torch import nn

from cnnzoo.models import get, info


# -- alexnet: torchvision's layout ----------------------------------------------------------------
@pytest.mark.parametrize("num_classes", [1000, 7])
def test_counts_and_keys_equal_torchvision(num_classes):
    assert_counts_and_keys_equal_torchvision("alexnet", num_classes)


def test_torchvision_state_dict_loads_strictly_with_identical_outputs():
    assert_torchvision_state_dict_gives_identical_outputs("alexnet")


@pytest.mark.parametrize(("shape", "side"), [((1, 28, 28), 6), ((3, 32, 32), 7)])
def test_small_input_trains_on_28_and_32_pixel_images(shape, side):
    model, feature_side = small_input_training_step("alexnet", shape)
    assert feature_side == (side, side)
    first_conv = model.features[0]
    assert torch.isfinite(first_conv.weight.grad).all()
    assert first_conv.weight.grad.abs().sum() > 0


def test_small_input_changes_only_the_stem_shape():
    with torch.device("meta"):
        ours = get("alexnet", small_input=True).state_dict()
        reference = torchvision_model("alexnet").state_dict()
    assert ours.keys() == reference.keys()
    changed = sorted(k for k in ours if ours[k].shape != reference[k].shape)
    assert changed == ["features.0.weight"]
    assert ours["features.0.weight"].shape == (64, 3, 3, 3)


@pytest.mark.parametrize(("small_input", "minimum"), [(False, (63, 63)), (True, (7, 7))])
def test_min_input_size_is_the_true_minimum(small_input, minimum):
    with torch.device("meta"):
        model = get("alexnet", small_input=small_input)
    assert model.min_input_size == minimum
    assert assert_min_input_size_is_the_true_minimum(model).shape[-2:] == (1, 1)


def test_options_reach_the_layers():
    with torch.device("meta"):
        model = get("alexnet", dropout=0.25)
    assert [m.p for m in model.modules() if isinstance(m, nn.Dropout)] == [0.25, 0.25]


# -- alexnet_original: the 2012 widths, as the Fashion-MNIST tutorial builds it --------------------
class TutorialAlexNet(nn.Module):
    """The tutorial's AlexNet; its F.dropout(x, 0.5) is told about eval mode here."""

    def __init__(self):
        super().__init__()
        self.ReLu = nn.ReLU()
        self.c1 = nn.Conv2d(in_channels=1, out_channels=96, kernel_size=11, stride=4)
        self.s2 = nn.MaxPool2d(kernel_size=3, stride=2)
        self.c3 = nn.Conv2d(in_channels=96, out_channels=256, kernel_size=5, padding=2)
        self.s4 = nn.MaxPool2d(kernel_size=3, stride=2)
        self.c5 = nn.Conv2d(in_channels=256, out_channels=384, kernel_size=3, padding=1)
        self.c6 = nn.Conv2d(in_channels=384, out_channels=384, kernel_size=3, padding=1)
        self.c7 = nn.Conv2d(in_channels=384, out_channels=256, kernel_size=3, padding=1)
        self.s8 = nn.MaxPool2d(kernel_size=3, stride=2)
        self.flatten = nn.Flatten()
        self.f1 = nn.Linear(6 * 6 * 256, 4096)
        self.f2 = nn.Linear(4096, 4096)
        self.f3 = nn.Linear(4096, 10)

    def forward(self, x):
        x = self.s2(self.ReLu(self.c1(x)))
        x = self.s4(self.ReLu(self.c3(x)))
        x = self.ReLu(self.c5(x))
        x = self.ReLu(self.c6(x))
        x = self.s8(self.ReLu(self.c7(x)))
        x = self.flatten(x)
        x = F.dropout(self.ReLu(self.f1(x)), 0.5, self.training)
        x = F.dropout(self.ReLu(self.f2(x)), 0.5, self.training)
        return self.f3(x)


def test_original_parameter_count():
    with torch.device("meta"):
        model = get("alexnet_original", num_classes=10)
    assert n_params(model) == info("alexnet_original").num_params == 58_299_082


def test_original_tutorial_state_dict_loads_strictly_with_identical_outputs():
    assert_tutorial_state_dict_gives_identical_outputs("alexnet_original", TutorialAlexNet)


def test_original_takes_exactly_227x227():
    assert_fixed_size_refuses_any_other("alexnet_original", 227)
