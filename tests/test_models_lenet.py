"""LeNet-5 against the paper's parameter count and the LeNet-5 and AlexNet Fashion-MNIST tutorial.

The tutorial's own ``LeNet`` class is copied below as the tutorial wrote it (plus the sigmoids
between the Linear layers that LeNet-5 has); its state dict must load into the zoo model.
"""

from __future__ import annotations

import pytest
import torch
from _reference import (
    assert_fixed_size_refuses_any_other,
    assert_tutorial_state_dict_gives_identical_outputs,
    n_params,
)
from torch import nn

from cnnzoo.models import get, info


class TutorialLeNet(nn.Module):
    """The tutorial's LeNet, plus the sigmoids between the Linear layers that LeNet-5 has."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(in_channels=1, out_channels=6, kernel_size=5, padding=2)
        self.sig = nn.Sigmoid()
        self.s2 = nn.AvgPool2d(kernel_size=2, stride=2)
        self.c3 = nn.Conv2d(in_channels=6, out_channels=16, kernel_size=5)
        self.s4 = nn.AvgPool2d(kernel_size=2, stride=2)
        self.flatten = nn.Flatten()
        self.f5 = nn.Linear(400, 120)
        self.f6 = nn.Linear(120, 84)
        self.f7 = nn.Linear(84, 10)

    def forward(self, x):
        x = self.s2(self.sig(self.c1(x)))
        x = self.s4(self.sig(self.c3(x)))
        x = self.flatten(x)
        x = self.sig(self.f5(x))
        x = self.sig(self.f6(x))
        return self.f7(x)


def test_parameter_count():
    with torch.device("meta"):
        model = get("lenet5", num_classes=10)
    assert n_params(model) == info("lenet5").num_params == 61_706


def test_tutorial_state_dict_loads_strictly_with_identical_outputs():
    assert_tutorial_state_dict_gives_identical_outputs("lenet5", TutorialLeNet)


def test_takes_exactly_28x28():
    assert_fixed_size_refuses_any_other("lenet5", 28)


def test_wrong_channel_count_names_the_fix():
    model = get("lenet5")
    with pytest.raises(
        ValueError, match=r"lenet5 expects 1 input channel\(s\), got 3.*in_channels=3"
    ):
        model(torch.randn(2, 3, 28, 28))
    with pytest.raises(ValueError, match=r"unsqueeze\(0\)"):
        model(torch.randn(1, 28, 28))


def test_num_classes_zero_returns_the_84_features():
    model = get("lenet5", num_classes=0).eval()
    with torch.no_grad():
        assert model(torch.randn(2, *model.input_size)).shape == (2, 84)
