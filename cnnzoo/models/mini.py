"""The two small networks of seed 003, for 28x28 single-channel images.

``mini_inception`` stacks two ``InceptionA`` modules, ``mini_resnet`` two ``ResidualBlock``s;
both end in a fixed-size Flatten-Linear head, so they take exactly 28x28 images. The layer order
(conv, max pool, then ReLU) is the seed's.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from ..blocks import InceptionA, ResidualBlock
from .base import ZooModel, classifier_head
from .registry import register

__all__ = ["MiniInception", "MiniResNet", "mini_inception", "mini_resnet"]

_SOURCE = "seed 003 (advanced CNN tutorial)"


class _MiniNet(ZooModel):
    """A 28x28 trunk (``features``) followed by Flatten and a Linear ``fc``."""

    fixed_input_size = True
    classifier_path = "fc"

    def __init__(
        self, features: nn.Sequential, num_features: int, num_classes: int, in_channels: int
    ) -> None:
        super().__init__()
        if num_classes < 0 or in_channels < 1:
            raise ValueError(
                f"need num_classes >= 0 and in_channels >= 1, got {num_classes} and {in_channels}"
            )
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.num_features = num_features
        self.input_size = (in_channels, 28, 28)
        self.min_input_size = (28, 28)
        self.features = features
        self.fc = classifier_head(num_features, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Return the last feature map of the trunk."""
        return self.features(x)

    def pre_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Flatten the feature map to ``(N, num_features)``."""
        return torch.flatten(x, 1)


class MiniInception(_MiniNet):
    """Seed 003's Inception net: conv 5x5, InceptionA, conv 5x5, InceptionA, Linear.

    Shapes for a 28x28 input: 10x12x12 after the first conv and pool, 88x12x12 after the first
    InceptionA, 20x4x4 after the second conv and pool, 88x4x4 (= 1408 features) at the end.

    Args:
        num_classes: Outputs of ``fc``; 0 replaces it with ``nn.Identity``.
        in_channels: Channels of the input images.
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1) -> None:
        inception1 = InceptionA(10)
        inception2 = InceptionA(20)
        features = nn.Sequential(
            OrderedDict(
                conv1=nn.Conv2d(in_channels, 10, kernel_size=5),
                pool1=nn.MaxPool2d(2),
                relu1=nn.ReLU(inplace=True),
                inception1=inception1,
                conv2=nn.Conv2d(inception1.out_channels, 20, kernel_size=5),
                pool2=nn.MaxPool2d(2),
                relu2=nn.ReLU(inplace=True),
                inception2=inception2,
            )
        )
        super().__init__(features, inception2.out_channels * 4 * 4, num_classes, in_channels)


class MiniResNet(_MiniNet):
    """Seed 003's residual net: ResidualBlock(1->10), pool, ResidualBlock(10->20), pool, Linear.

    Shapes for a 28x28 input: 10x14x14 after the first block and pool, 20x7x7 (= 980 features)
    at the end.

    Args:
        num_classes: Outputs of ``fc``; 0 replaces it with ``nn.Identity``.
        in_channels: Channels of the input images.
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1) -> None:
        features = nn.Sequential(
            OrderedDict(
                block1=ResidualBlock(in_channels, 10),
                pool1=nn.MaxPool2d(2),
                relu1=nn.ReLU(inplace=True),
                block2=ResidualBlock(10, 20),
                pool2=nn.MaxPool2d(2),
                relu2=nn.ReLU(inplace=True),
            )
        )
        super().__init__(features, 20 * 7 * 7, num_classes, in_channels)


@register(
    family="tutorial",
    source=_SOURCE,
    paper="Szegedy et al. 2014, Going Deeper with Convolutions (module as in seed 003)",
)
def mini_inception(num_classes: int = 10, in_channels: int = 1) -> MiniInception:
    """Seed 003's small Inception net for 28x28 images (97,298 parameters at 10 classes).

    Args:
        num_classes: Number of classes.
        in_channels: Channels of the input images (1 for Fashion-MNIST).

    Returns:
        The model, with PyTorch's default initialisation (as in the seed).
    """
    return MiniInception(num_classes=num_classes, in_channels=in_channels)


@register(
    family="tutorial",
    source=_SOURCE,
    paper="He et al. 2015, Deep Residual Learning for Image Recognition (block as in seed 003)",
)
def mini_resnet(num_classes: int = 10, in_channels: int = 1) -> MiniResNet:
    """Seed 003's small residual net for 28x28 images (14,570 parameters at 10 classes).

    Args:
        num_classes: Number of classes.
        in_channels: Channels of the input images (1 for Fashion-MNIST).

    Returns:
        The model, with PyTorch's default initialisation (as in the seed).
    """
    return MiniResNet(num_classes=num_classes, in_channels=in_channels)
