"""The tutorials' small networks, each for exactly one input size.

- ``network_bn`` and ``network_bn_v2``: the monkeypox BatchNorm CNN tutorial's ``Network_bn``,
  as first written and as adjusted there, for 224x224 images.
- ``cifar_cnn``: the CIFAR-10 BatchNorm CNN tutorial's ``Net``, for 32x32 images.
- ``mini_inception`` and ``mini_resnet``: the advanced-CNN tutorial's Inception net (two
  ``InceptionA`` modules) and residual net (two ``ResidualBlock``s), for 28x28 images, with the
  tutorial's layer order (conv, max pool, then ReLU).

The BatchNorm nets keep the parameter names of the tutorials' own classes, so a state dict
trained with a tutorial's code loads with ``strict=True`` and gives the same outputs; the mini
nets keep the tutorial's blocks, whose state dicts load one by one. Every head flattens a
fixed-size map into a Linear layer, hence the single input size.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from ..blocks import InceptionA, ResidualBlock
from .base import ZooModel
from .checks import resolve_drop_rate
from .heads import classifier_head
from .registry import ShortRunRecipe, TrainingRecipe, register

__all__ = [
    "CifarCNN",
    "MiniInception",
    "MiniResNet",
    "NetworkBN",
    "NetworkBNv2",
    "cifar_cnn",
    "mini_inception",
    "mini_resnet",
    "network_bn",
    "network_bn_v2",
]

_MONKEYPOX = "the monkeypox BatchNorm CNN tutorial"
_CIFAR = "the CIFAR-10 BatchNorm CNN tutorial"
_ADVANCED = "the advanced-CNN tutorial (Inception module, residual block, on MNIST)"
_DROP_RATE = 0.5  # the CIFAR-10 tutorial's classifier dropout
_BATCH_NORM = (
    "Ioffe & Szegedy 2015, Batch normalization: accelerating deep network training by "
    "reducing internal covariate shift"
)


def _conv_bn_relu(in_channels: int, out_channels: int) -> list[nn.Module]:
    """A 5x5 unpadded convolution, BatchNorm and ReLU: the monkeypox tutorial's repeated unit."""
    return [
        nn.Conv2d(in_channels, out_channels, kernel_size=5),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    ]


class NetworkBN(ZooModel):
    """``Network_bn``: four 5x5 conv-BN-ReLU layers, two max-pools, one Linear.

    The monkeypox BatchNorm CNN tutorial's network as first written.

    224 -> 220 -> 216 -> pool 108 -> 104 -> 100 -> pool 50: a 24x50x50 map feeds the classifier.
    The numbering ``conv1, conv2, conv4, conv5`` (no ``conv3``) is the tutorial's, kept for its
    state dicts.

    Args:
        num_classes: Outputs of the classifier ``fc1``; 0 leaves it out.
        in_channels: Channels of the input images.
    """

    fixed_input_size = True
    classifier_path = "fc1"

    def __init__(self, num_classes: int = 2, in_channels: int = 3) -> None:
        super().__init__(num_classes, in_channels)
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

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Flatten, then ``fc1``; ``pre_logits`` stops before ``fc1``."""
        x = self.pre_logits(x)
        return x if pre_logits else self.fc1(x)


class NetworkBNv2(ZooModel):
    """The adjusted ``Network_bn``: a fifth conv-BN-ReLU block and a third max-pool.

    The monkeypox BatchNorm CNN tutorial's second version of its network.

    ... -> pool 50 -> 46 -> pool 23: a 48x23x23 map feeds the classifier, which shrinks the
    model from 146,318 to 106,046 parameters at 2 classes.

    Args:
        num_classes: Outputs of the ``classifier``; 0 leaves it out.
        in_channels: Channels of the input images.
    """

    fixed_input_size = True
    classifier_path = "classifier"

    def __init__(self, num_classes: int = 2, in_channels: int = 3) -> None:
        super().__init__(num_classes, in_channels)
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

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Flatten, then ``classifier``; ``pre_logits`` stops before ``classifier``."""
        x = self.pre_logits(x)
        return x if pre_logits else self.classifier(x)


def _cifar_block(in_channels: int, out_channels: int) -> nn.Sequential:
    """A 3x3 padded convolution, BatchNorm, ReLU and 2x2 max-pool: the CIFAR-10 tutorial's unit."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2, 2),
    )


class CifarCNN(ZooModel):
    """The CIFAR-10 tutorial's ``Net``: three conv-BN-ReLU-pool blocks and a dropout MLP head.

    32 -> 16 -> 8 -> 4: a 128x4x4 map, flattened to 2048, then 256 -> 128 -> classes.

    Args:
        num_classes: Outputs of the last layer ``fc3``; 0 leaves it out.
        in_channels: Channels of the input images.
        drop_rate: Dropout probability after each hidden fully connected layer.
    """

    fixed_input_size = True
    classifier_path = "fc3"

    def __init__(
        self, num_classes: int = 10, in_channels: int = 3, drop_rate: float = _DROP_RATE
    ) -> None:
        super().__init__(num_classes, in_channels)
        drop_rate = resolve_drop_rate(self.model_name, drop_rate, None, drop_rate)
        self.num_features = 128
        self.input_size = (in_channels, 32, 32)
        self.min_input_size = (32, 32)

        self.conv1 = _cifar_block(in_channels, 32)
        self.conv2 = _cifar_block(32, 64)
        self.conv3 = _cifar_block(64, 128)
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(128 * 4 * 4, 256)
        self.relu1 = nn.ReLU(inplace=True)
        self.dropout1 = nn.Dropout(drop_rate)
        self.fc2 = nn.Linear(256, 128)
        self.relu2 = nn.ReLU(inplace=True)
        self.dropout2 = nn.Dropout(drop_rate)
        self.fc3 = classifier_head(128, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Return the ``(N, 128, 4, 4)`` map after the third block."""
        return self.conv3(self.conv2(self.conv1(x)))

    def pre_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Flatten and apply ``fc1`` and ``fc2``: ``(N, 128)``."""
        x = self.dropout1(self.relu1(self.fc1(self.flatten(x))))
        return self.dropout2(self.relu2(self.fc2(x)))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Flatten, ``fc1`` and ``fc2``, then ``fc3``; ``pre_logits`` stops before ``fc3``."""
        x = self.pre_logits(x)
        return x if pre_logits else self.fc3(x)


_RECIPE_NETWORK_BN = TrainingRecipe(
    3e-4,
    (
        "the best of 1e-4 to 1e-3 for network_bn in the zoo benchmark (a folder of 224x224 "
        "Fashion-MNIST images, 28 steps): 0.80 test accuracy; BatchNorm does not shield its "
        "60,000-input linear layer, whose loss blew up from 3e-3 on a shorter run"
    ),
)
_RECIPE_CIFAR = TrainingRecipe(
    3e-3,
    (
        "the best of 3e-4 to 2e-2 for cifar_cnn in the zoo benchmark (84 steps of "
        "Fashion-MNIST padded to 32x32): 0.81 test accuracy"
    ),
    # At batch 64 with 3e-3 it lost to the tutorial's loop on 2,000 images x 4 epochs (0.790
    # against 0.798, 5 seeds) and tied on 500 x 5. In an exploratory grid (not kept as a
    # result) no rate from 1e-3 to 5e-3 at batch 64 held there; more, smaller steps at 1e-3 did.
    short_runs=ShortRunRecipe(
        1e-3,
        min_steps=200,
        smallest_batch=16,
        source=(
            "the budgets benchmark's cells below 80 steps at batch 128, 5 seeds each, against "
            "the tutorial loop (Adam 1e-3, batch 32): 0.750 against 0.731 on 500 images x 5 "
            "epochs (batch 16), 0.724 against 0.695 on 2,000 x 1 (16), 0.806 against 0.796 on "
            "2,000 x 4 (32), 0.807 against 0.799 on 10,000 x 1 (32)"
        ),
    ),
)
_RECIPE_INCEPTION = TrainingRecipe(
    3e-3,
    (
        "the best of 3e-4 to 2e-2 for mini_inception in the zoo benchmark (84 steps of "
        "Fashion-MNIST): 0.76 test accuracy, as at 1e-2; it collapses to chance at 2e-2 (the "
        "advanced-CNN tutorial trains it with SGD at 0.01)"
    ),
)
_RECIPE_RESNET = TrainingRecipe(
    1e-2,
    (
        "mini_resnet in the zoo benchmark (84 steps of Fashion-MNIST): 0.84 test accuracy, "
        "within 2% of the grid's best (2e-2, 0.85) of 1e-3 to 5e-2; it reaches 0.90 test "
        "accuracy in 2 to 4 epochs of all 60,000 images"
    ),
)


@register(family="tutorial", source=_MONKEYPOX, paper=_BATCH_NORM, recipe=_RECIPE_NETWORK_BN)
def network_bn(num_classes: int = 2, in_channels: int = 3) -> NetworkBN:
    """The monkeypox tutorial's BatchNorm CNN for 224x224 images (146,318 parameters at 2 classes).

    Args:
        num_classes: Number of classes.
        in_channels: Channels of the input images.

    Returns:
        The model, with PyTorch's default initialisation (as in the tutorial).
    """
    return NetworkBN(num_classes=num_classes, in_channels=in_channels)


@register(family="tutorial", source=_MONKEYPOX, paper=_BATCH_NORM, recipe=_RECIPE_NETWORK_BN)
def network_bn_v2(num_classes: int = 2, in_channels: int = 3) -> NetworkBNv2:
    """The monkeypox tutorial's BatchNorm CNN, one block deeper (106,046 parameters at 2 classes).

    Args:
        num_classes: Number of classes.
        in_channels: Channels of the input images.

    Returns:
        The model, with PyTorch's default initialisation (as in the tutorial).
    """
    return NetworkBNv2(num_classes=num_classes, in_channels=in_channels)


@register(family="tutorial", source=_CIFAR, paper=_BATCH_NORM, recipe=_RECIPE_CIFAR)
def cifar_cnn(
    num_classes: int = 10,
    in_channels: int = 3,
    drop_rate: float = _DROP_RATE,
    dropout: float | None = None,
) -> CifarCNN:
    """The CIFAR-10 tutorial's CNN for 32x32 images (652,426 parameters at 10 classes).

    Args:
        num_classes: Number of classes.
        in_channels: Channels of the input images.
        drop_rate: Dropout probability after each hidden fully connected layer.
        dropout: The older name of ``drop_rate``, still accepted.

    Returns:
        The model, with PyTorch's default initialisation (as in the tutorial).
    """
    rate = resolve_drop_rate("cifar_cnn", drop_rate, dropout, _DROP_RATE)
    return CifarCNN(num_classes=num_classes, in_channels=in_channels, drop_rate=rate)


class _MiniNet(ZooModel):
    """A 28x28 trunk (``features``) followed by Flatten and a Linear ``fc``.

    Subclasses call ``super().__init__`` (which validates the arguments) before building any
    layer, then hand their trunk to ``_attach``.
    """

    fixed_input_size = True
    classifier_path = "fc"

    def __init__(self, num_classes: int, in_channels: int) -> None:
        super().__init__(num_classes, in_channels)
        self.input_size = (in_channels, 28, 28)
        self.min_input_size = (28, 28)

    def _attach(self, features: nn.Sequential, num_features: int) -> None:
        """Install the trunk and the classifier that reads its flattened output."""
        self.num_features = num_features
        self.features = features
        self.fc = classifier_head(num_features, self.num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Return the last feature map of the trunk."""
        return self.features(x)

    def pre_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Flatten the feature map to ``(N, num_features)``."""
        return torch.flatten(x, 1)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Flatten, then ``fc``; ``pre_logits`` stops before ``fc``."""
        x = self.pre_logits(x)
        return x if pre_logits else self.fc(x)


class MiniInception(_MiniNet):
    """The advanced-CNN tutorial's Inception net: conv, InceptionA, conv, InceptionA, Linear.

    Shapes for a 28x28 input: 10x12x12 after the first conv and pool, 88x12x12 after the first
    InceptionA, 20x4x4 after the second conv and pool, 88x4x4 (= 1408 features) at the end.

    Args:
        num_classes: Outputs of ``fc``; 0 replaces it with ``nn.Identity``.
        in_channels: Channels of the input images.
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1) -> None:
        super().__init__(num_classes, in_channels)
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
        self._attach(features, inception2.out_channels * 4 * 4)


class MiniResNet(_MiniNet):
    """The advanced-CNN tutorial's residual net: two ResidualBlocks, each pooled, then Linear.

    ResidualBlock(1->10), pool, ResidualBlock(10->20), pool. Shapes for a 28x28 input: 10x14x14
    after the first block and pool, 20x7x7 (= 980 features) at the end.

    Args:
        num_classes: Outputs of ``fc``; 0 replaces it with ``nn.Identity``.
        in_channels: Channels of the input images.
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1) -> None:
        super().__init__(num_classes, in_channels)
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
        self._attach(features, 20 * 7 * 7)


@register(
    family="tutorial",
    source=_ADVANCED,
    paper="Szegedy et al. 2014, Going Deeper with Convolutions (module as in the tutorial)",
    recipe=_RECIPE_INCEPTION,
)
def mini_inception(num_classes: int = 10, in_channels: int = 1) -> MiniInception:
    """The advanced-CNN tutorial's small Inception net for 28x28 images (97,298 parameters).

    Args:
        num_classes: Number of classes (10 by default, for the 97,298 parameters).
        in_channels: Channels of the input images (1 for MNIST and Fashion-MNIST).

    Returns:
        The model, with PyTorch's default initialisation (as in the tutorial).
    """
    return MiniInception(num_classes=num_classes, in_channels=in_channels)


@register(
    family="tutorial",
    source=_ADVANCED,
    paper="He et al. 2015, Deep Residual Learning for Image Recognition (block as in the tutorial)",
    recipe=_RECIPE_RESNET,
)
def mini_resnet(num_classes: int = 10, in_channels: int = 1) -> MiniResNet:
    """The advanced-CNN tutorial's small residual net for 28x28 images (14,570 parameters).

    Args:
        num_classes: Number of classes (10 by default, for the 14,570 parameters).
        in_channels: Channels of the input images (1 for MNIST and Fashion-MNIST).

    Returns:
        The model, with PyTorch's default initialisation (as in the tutorial).
    """
    return MiniResNet(num_classes=num_classes, in_channels=in_channels)
