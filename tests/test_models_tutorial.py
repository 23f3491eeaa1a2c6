"""The tutorials' small nets against the tutorials' own classes, copied here as they wrote them.

- ``network_bn`` and ``network_bn_v2``: the monkeypox BatchNorm CNN tutorial's ``Network_bn``.
- ``cifar_cnn``: the CIFAR-10 BatchNorm CNN tutorial's ``Net``.
- ``mini_inception`` and ``mini_resnet``: the advanced-CNN tutorial's two nets, built from the
  (separately tested, in test_blocks.py) ``InceptionA`` and ``ResidualBlock``.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from _reference import (
    assert_fixed_size_refuses_any_other,
    assert_tutorial_state_dict_gives_identical_outputs,
    n_params,
)
from torch import nn

from cnnzoo.blocks import InceptionA, ResidualBlock
from cnnzoo.models import get, info


# -- the monkeypox and CIFAR-10 BatchNorm CNN tutorials ------------------------------------------
class MonkeypoxNetworkBN(nn.Module):
    """The monkeypox tutorial's original Network_bn."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels=3, out_channels=12, kernel_size=5, stride=1, padding=0)
        self.bn1 = nn.BatchNorm2d(12)
        self.conv2 = nn.Conv2d(in_channels=12, out_channels=12, kernel_size=5, stride=1, padding=0)
        self.bn2 = nn.BatchNorm2d(12)
        self.pool = nn.MaxPool2d(2, 2)
        self.conv4 = nn.Conv2d(in_channels=12, out_channels=24, kernel_size=5, stride=1, padding=0)
        self.bn4 = nn.BatchNorm2d(24)
        self.conv5 = nn.Conv2d(in_channels=24, out_channels=24, kernel_size=5, stride=1, padding=0)
        self.bn5 = nn.BatchNorm2d(24)
        self.fc1 = nn.Linear(24 * 50 * 50, 2)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        x = self.pool(x)
        x = F.relu(self.bn4(self.conv4(x)))
        x = F.relu(self.bn5(self.conv5(x)))
        x = self.pool(x)
        x = x.view(-1, 24 * 50 * 50)
        return self.fc1(x)


class MonkeypoxNetworkBNv2(nn.Module):
    """The monkeypox tutorial's adjusted Network_bn."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels=3, out_channels=12, kernel_size=5, stride=1, padding=0),
            nn.BatchNorm2d(12),
            nn.ReLU(),
            nn.Conv2d(in_channels=12, out_channels=12, kernel_size=5, stride=1, padding=0),
            nn.BatchNorm2d(12),
            nn.ReLU(),
            nn.MaxPool2d(2, 2),
            nn.Conv2d(in_channels=12, out_channels=24, kernel_size=5, stride=1, padding=0),
            nn.BatchNorm2d(24),
            nn.ReLU(),
            nn.Conv2d(in_channels=24, out_channels=24, kernel_size=5, stride=1, padding=0),
            nn.BatchNorm2d(24),
            nn.ReLU(),
            nn.MaxPool2d(2, 2),
            nn.Conv2d(in_channels=24, out_channels=48, kernel_size=5, stride=1, padding=0),
            nn.BatchNorm2d(48),
            nn.ReLU(),
            nn.MaxPool2d(2, 2),
        )
        self.classifier = nn.Linear(48 * 23 * 23, 2)

    def forward(self, x):
        x = self.features(x)
        x = x.view(-1, 48 * 23 * 23)
        return self.classifier(x)


class CifarTutorialNet(nn.Module):
    """The CIFAR-10 tutorial's Net."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Sequential(
            nn.Conv2d(3, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2, 2)
        )
        self.conv2 = nn.Sequential(
            nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2, 2)
        )
        self.conv3 = nn.Sequential(
            nn.Conv2d(64, 128, 3, padding=1), nn.BatchNorm2d(128), nn.ReLU(), nn.MaxPool2d(2, 2)
        )
        self.fc1 = nn.Linear(128 * 4 * 4, 256)
        self.fc2 = nn.Linear(256, 128)
        self.fc3 = nn.Linear(128, 10)
        self.dropout = nn.Dropout(0.5)

    def forward(self, x):
        x = self.conv3(self.conv2(self.conv1(x)))
        x = x.view(-1, 128 * 4 * 4)
        x = self.dropout(F.relu(self.fc1(x)))
        x = self.dropout(F.relu(self.fc2(x)))
        return self.fc3(x)


@pytest.mark.parametrize(
    ("name", "tutorial_class", "count"),
    [
        ("network_bn", MonkeypoxNetworkBN, 146_318),
        ("network_bn_v2", MonkeypoxNetworkBNv2, 106_046),
        ("cifar_cnn", CifarTutorialNet, 652_426),
    ],
)
def test_parameter_count_and_tutorial_state_dict(name, tutorial_class, count):
    with torch.device("meta"):
        assert n_params(get(name)) == info(name).num_params == count
    assert_tutorial_state_dict_gives_identical_outputs(name, tutorial_class)


@pytest.mark.parametrize(
    ("name", "size"), [("network_bn", 224), ("network_bn_v2", 224), ("cifar_cnn", 32)]
)
def test_batch_norm_nets_take_exactly_one_size(name, size):
    assert_fixed_size_refuses_any_other(name, size)


def test_cifar_cnn_with_num_classes_zero_returns_the_128_features():
    model = get("cifar_cnn", num_classes=0).eval()
    with torch.no_grad():
        assert model(torch.randn(2, *model.input_size)).shape == (2, 128)


# -- the advanced-CNN tutorial's mini nets --------------------------------------------------------
class TutorialInceptionNet(nn.Module):
    """The advanced-CNN tutorial's ``Net``, with the (separately tested) ``InceptionA`` block."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 10, kernel_size=5)
        self.conv2 = nn.Conv2d(88, 20, kernel_size=5)
        self.incep1 = InceptionA(in_channels=10)
        self.incep2 = InceptionA(in_channels=20)
        self.mp = nn.MaxPool2d(2)
        self.fc = nn.Linear(1408, 10)

    def forward(self, x):
        in_size = x.size(0)
        x = F.relu(self.mp(self.conv1(x)))
        x = self.incep1(x)
        x = F.relu(self.mp(self.conv2(x)))
        x = self.incep2(x)
        return self.fc(x.view(in_size, -1))


class TutorialResidualNet(nn.Module):
    """The advanced-CNN tutorial's ``MyModule``, with the (separately tested) ``ResidualBlock``."""

    def __init__(self):
        super().__init__()
        self.r1 = ResidualBlock(1, 10)
        self.p1 = nn.MaxPool2d(2)
        self.r2 = ResidualBlock(10, 20)
        self.p2 = nn.MaxPool2d(2)
        self.fc = nn.Linear(20 * 7 * 7, 10)
        self.activate = nn.ReLU()

    def forward(self, x):
        x = self.activate(self.p1(self.r1(x)))
        x = self.activate(self.p2(self.r2(x)))
        return self.fc(x.view(-1, 20 * 7 * 7))


def test_mini_inception_matches_the_tutorial_network():
    torch.manual_seed(0)
    tutorial, ours = TutorialInceptionNet(), get("mini_inception")
    assert n_params(ours) == n_params(tutorial) == 97_298
    ours.features.conv1.load_state_dict(tutorial.conv1.state_dict())
    ours.features.inception1.load_state_dict(tutorial.incep1.state_dict())
    ours.features.conv2.load_state_dict(tutorial.conv2.state_dict())
    ours.features.inception2.load_state_dict(tutorial.incep2.state_dict())
    ours.fc.load_state_dict(tutorial.fc.state_dict())
    x = torch.randn(2, 1, 28, 28)
    torch.testing.assert_close(ours(x), tutorial(x))
    assert ours.forward_features(x).shape == (2, 88, 4, 4)
    assert ours.num_features == 1408


def test_mini_resnet_matches_the_tutorial_network():
    torch.manual_seed(0)
    tutorial, ours = TutorialResidualNet(), get("mini_resnet")
    assert n_params(ours) == n_params(tutorial) == 14_570
    ours.features.block1.load_state_dict(tutorial.r1.state_dict())
    ours.features.block2.load_state_dict(tutorial.r2.state_dict())
    ours.fc.load_state_dict(tutorial.fc.state_dict())
    x = torch.randn(2, 1, 28, 28)
    torch.testing.assert_close(ours(x), tutorial(x))
    assert ours.forward_features(x).shape == (2, 20, 7, 7)


@pytest.mark.parametrize("name", ["mini_inception", "mini_resnet"])
def test_mini_nets_take_exactly_28x28(name):
    model = get(name, num_classes=4, in_channels=3)
    assert model.fixed_input_size and model.input_size == (3, 28, 28)
    assert model(torch.randn(1, 3, 28, 28)).shape == (1, 4)
    with pytest.raises(ValueError, match="exactly 28x28"):
        model(torch.randn(1, 3, 32, 32))
