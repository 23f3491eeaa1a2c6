"""The small BatchNorm CNNs of the seed tutorials: ``network_bn``, ``network_bn_v2``, ``cifar_cnn``.

Each keeps the parameter names of the tutorial's own class (seed 000's ``Network_bn`` in both
versions, seed 001's ``Net``), so a state dict trained with the tutorial's code loads into the
zoo model with ``strict=True`` and gives the same outputs. Their heads flatten a fixed-size map
into a Linear layer, so each takes exactly one input size.
"""

from __future__ import annotations

import torch
from torch import nn

from .base import ZooModel, classifier_head
from .registry import register

__all__ = ["CifarCNN", "NetworkBN", "NetworkBNv2", "cifar_cnn", "network_bn", "network_bn_v2"]

_BATCH_NORM = (
    "Ioffe & Szegedy 2015, Batch normalization: accelerating deep network training by "
    "reducing internal covariate shift"
)


def _conv_bn_relu(in_channels: int, out_channels: int) -> list[nn.Module]:
    """A 5x5 unpadded convolution, BatchNorm and ReLU: seed 000's repeated unit."""
    return [
        nn.Conv2d(in_channels, out_channels, kernel_size=5),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    ]


class NetworkBN(ZooModel):
    """Seed 000's ``Network_bn``: four 5x5 conv-BN-ReLU layers, two max-pools, one Linear.

    224 -> 220 -> 216 -> pool 108 -> 104 -> 100 -> pool 50: a 24x50x50 map feeds the classifier.
    The numbering ``conv1, conv2, conv4, conv5`` (no ``conv3``) is the seed's, kept for its
    state dicts.

    Args:
        num_classes: Outputs of the classifier ``fc1``; 0 leaves it out.
        in_channels: Channels of the input images.
    """

    fixed_input_size = True
    classifier_path = "fc1"

    def __init__(self, num_classes: int = 2, in_channels: int = 3) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.num_features = 24 * 50 * 50
        self.input_size = (in_channels, 224, 224)
        self.min_input_size = (224, 224)

        self.conv1 = nn.Conv2d(in_channels, 12, kernel_size=5)
        self.bn1 = nn.BatchNorm2d(12)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(12, 12, kernel_size=5)
        self.bn2 = nn.BatchNorm2d(12)
        self.relu2 = nn.ReLU(inplace=True)
        self.pool1 = nn.MaxPool2d(2, 2)
        self.conv4 = nn.Conv2d(12, 24, kernel_size=5)
        self.bn4 = nn.BatchNorm2d(24)
        self.relu4 = nn.ReLU(inplace=True)
        self.conv5 = nn.Conv2d(24, 24, kernel_size=5)
        self.bn5 = nn.BatchNorm2d(24)
        self.relu5 = nn.ReLU(inplace=True)
        self.pool2 = nn.MaxPool2d(2, 2)
        self.flatten = nn.Flatten()
        self.fc1 = classifier_head(self.num_features, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Return the ``(N, 24, 50, 50)`` map after the second max-pool."""
        x = self.relu1(self.bn1(self.conv1(x)))
        x = self.pool1(self.relu2(self.bn2(self.conv2(x))))
        x = self.relu4(self.bn4(self.conv4(x)))
        return self.pool2(self.relu5(self.bn5(self.conv5(x))))

    def pre_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Flatten the map into the ``(N, 60000)`` vector the classifier reads."""
        return self.flatten(x)


class NetworkBNv2(ZooModel):
    """Seed 000's adjusted ``Network_bn``: a fifth conv-BN-ReLU block and a third max-pool.

    ... -> pool 50 -> 46 -> pool 23: a 48x23x23 map feeds the classifier, which shrinks the
    model from 146,318 to 106,046 parameters at 2 classes.

    Args:
        num_classes: Outputs of the ``classifier``; 0 leaves it out.
        in_channels: Channels of the input images.
    """

    fixed_input_size = True
    classifier_path = "classifier"

    def __init__(self, num_classes: int = 2, in_channels: int = 3) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.num_features = 48 * 23 * 23
        self.input_size = (in_channels, 224, 224)
        self.min_input_size = (224, 224)

        self.features = nn.Sequential(
            *_conv_bn_relu(in_channels, 12),
            *_conv_bn_relu(12, 12),
            nn.MaxPool2d(2, 2),
            *_conv_bn_relu(12, 24),
            *_conv_bn_relu(24, 24),
            nn.MaxPool2d(2, 2),
            *_conv_bn_relu(24, 48),
            nn.MaxPool2d(2, 2),
        )
        self.classifier = classifier_head(self.num_features, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Return the ``(N, 48, 23, 23)`` map after the third max-pool."""
        return self.features(x)

    def pre_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Flatten the map into the ``(N, 25392)`` vector the classifier reads."""
        return torch.flatten(x, 1)


def _cifar_block(in_channels: int, out_channels: int) -> nn.Sequential:
    """A 3x3 padded convolution, BatchNorm, ReLU and 2x2 max-pool: seed 001's unit."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2, 2),
    )


class CifarCNN(ZooModel):
    """Seed 001's CIFAR-10 ``Net``: three conv-BN-ReLU-pool blocks and a dropout MLP head.

    32 -> 16 -> 8 -> 4: a 128x4x4 map, flattened to 2048, then 256 -> 128 -> classes.

    Args:
        num_classes: Outputs of the last layer ``fc3``; 0 leaves it out.
        in_channels: Channels of the input images.
        dropout: Dropout probability after each hidden fully connected layer.
    """

    fixed_input_size = True
    classifier_path = "fc3"

    def __init__(self, num_classes: int = 10, in_channels: int = 3, dropout: float = 0.5) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.num_features = 128
        self.input_size = (in_channels, 32, 32)
        self.min_input_size = (32, 32)

        self.conv1 = _cifar_block(in_channels, 32)
        self.conv2 = _cifar_block(32, 64)
        self.conv3 = _cifar_block(64, 128)
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(128 * 4 * 4, 256)
        self.relu1 = nn.ReLU(inplace=True)
        self.dropout1 = nn.Dropout(dropout)
        self.fc2 = nn.Linear(256, 128)
        self.relu2 = nn.ReLU(inplace=True)
        self.dropout2 = nn.Dropout(dropout)
        self.fc3 = classifier_head(128, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Return the ``(N, 128, 4, 4)`` map after the third block."""
        return self.conv3(self.conv2(self.conv1(x)))

    def pre_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Flatten and apply ``fc1`` and ``fc2``: ``(N, 128)``."""
        x = self.dropout1(self.relu1(self.fc1(self.flatten(x))))
        return self.dropout2(self.relu2(self.fc2(x)))


@register(family="tutorial", source="seed 000 (monkeypox BN CNN tutorial)", paper=_BATCH_NORM)
def network_bn(num_classes: int = 2, in_channels: int = 3) -> NetworkBN:
    """Seed 000's BatchNorm CNN for 224x224 images (146,318 parameters at 2 classes).

    Args:
        num_classes: Number of classes.
        in_channels: Channels of the input images.

    Returns:
        The model, with PyTorch's default initialisation (as in the seed).
    """
    return NetworkBN(num_classes=num_classes, in_channels=in_channels)


@register(family="tutorial", source="seed 000 (monkeypox BN CNN tutorial)", paper=_BATCH_NORM)
def network_bn_v2(num_classes: int = 2, in_channels: int = 3) -> NetworkBNv2:
    """Seed 000's adjusted BatchNorm CNN, one block deeper (106,046 parameters at 2 classes).

    Args:
        num_classes: Number of classes.
        in_channels: Channels of the input images.

    Returns:
        The model, with PyTorch's default initialisation (as in the seed).
    """
    return NetworkBNv2(num_classes=num_classes, in_channels=in_channels)


@register(family="tutorial", source="seed 001 (CIFAR-10 CNN tutorial)", paper=_BATCH_NORM)
def cifar_cnn(num_classes: int = 10, in_channels: int = 3, dropout: float = 0.5) -> CifarCNN:
    """Seed 001's CIFAR-10 CNN for 32x32 images (652,426 parameters at 10 classes).

    Args:
        num_classes: Number of classes.
        in_channels: Channels of the input images.
        dropout: Dropout probability after each hidden fully connected layer.

    Returns:
        The model, with PyTorch's default initialisation (as in the seed).
    """
    return CifarCNN(num_classes=num_classes, in_channels=in_channels, dropout=dropout)
