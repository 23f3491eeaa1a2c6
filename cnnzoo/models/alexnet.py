"""AlexNet, twice: Krizhevsky's 2012 widths and torchvision's layout.

``alexnet_original`` is the network of the 2012 paper on one GPU's worth of layers, at the
widths of the paper (96-256-384-384-256), for a fixed 227x227 input as the LeNet-5 and AlexNet
Fashion-MNIST tutorial builds it; its attribute names are the tutorial's, so the tutorial's state
dict loads with ``strict=True``.

``alexnet`` is torchvision's model, the one the AlexNet/VGG/ResNet transfer-learning tutorial
fine-tunes (widths 64-192-384-256-256 from Krizhevsky's 2014 "one weird
trick" paper, an adaptive 6x6 pool before the classifier) with identical parameter names, so
torchvision's ImageNet weights load strictly. ``small_input=True`` swaps the 11x11 stride-4 stem
and its max-pool for a 3x3 stride-1 convolution and no pool, the usual CIFAR adaptation: a
28x28 image then reaches the adaptive pool as exactly 6x6 instead of vanishing.
"""

from __future__ import annotations

import torch
from torch import nn

from .base import ZooModel
from .checks import resolve_drop_rate
from .heads import check_global_pool, classifier_head, pool_layer
from .registry import TrainingRecipe, register

__all__ = ["AlexNet", "AlexNetOriginal", "alexnet", "alexnet_original"]

_FASHION_MNIST_TUTORIAL = "the LeNet-5 and AlexNet Fashion-MNIST tutorial"
_TRANSFER_TUTORIAL = "the AlexNet/VGG/ResNet transfer-learning tutorial; torchvision-compatible"
_KRIZHEVSKY_2012 = (
    "Krizhevsky et al. 2012, ImageNet classification with deep convolutional neural networks"
)
_KRIZHEVSKY_2014 = (
    "Krizhevsky 2014, One weird trick for parallelizing convolutional neural networks"
)
_DROP_RATE = 0.5
# The hidden classifier layers read a pooled 6x6 map, so the pool cannot be removed.
_POOL_CHOICES = ("avg", "max")


class AlexNetOriginal(ZooModel):
    """AlexNet at the widths of Krizhevsky et al. 2012, for a fixed 227x227 input.

    Args:
        num_classes: Outputs of the last layer; 0 leaves it out.
        in_channels: Channels of the input images.
        drop_rate: Dropout probability after each hidden fully connected layer.

    Stages (``feature_info``): ``act1``, ``act3`` and ``act7``, the last ReLU at strides 4, 8
    and 16.
    """

    fixed_input_size = True
    classifier_path = "f3"

    def __init__(
        self, num_classes: int = 10, in_channels: int = 1, drop_rate: float = _DROP_RATE
    ) -> None:
        super().__init__(num_classes, in_channels)
        drop_rate = resolve_drop_rate(self.model_name, drop_rate, None, drop_rate)
        self.num_features = 4096
        self.input_size = (in_channels, 227, 227)
        self.min_input_size = (227, 227)

        # 227 -> c1 55 -> s2 27 -> c3 27 -> s4 13 -> c5..c7 13 -> s8 6: a 256x6x6 map.
        self.c1 = nn.Conv2d(in_channels, 96, kernel_size=11, stride=4)
        self.act1 = nn.ReLU(inplace=True)
        self.s2 = nn.MaxPool2d(kernel_size=3, stride=2)
        self.c3 = nn.Conv2d(96, 256, kernel_size=5, padding=2)
        self.act3 = nn.ReLU(inplace=True)
        self.s4 = nn.MaxPool2d(kernel_size=3, stride=2)
        self.c5 = nn.Conv2d(256, 384, kernel_size=3, padding=1)
        self.act5 = nn.ReLU(inplace=True)
        self.c6 = nn.Conv2d(384, 384, kernel_size=3, padding=1)
        self.act6 = nn.ReLU(inplace=True)
        self.c7 = nn.Conv2d(384, 256, kernel_size=3, padding=1)
        self.act7 = nn.ReLU(inplace=True)
        self.s8 = nn.MaxPool2d(kernel_size=3, stride=2)
        self.flatten = nn.Flatten()
        self.f1 = nn.Linear(256 * 6 * 6, 4096)
        self.act_f1 = nn.ReLU(inplace=True)
        # Module dropout, not the tutorial's F.dropout(x, 0.5): that one stays on in eval mode.
        self.drop1 = nn.Dropout(drop_rate)
        self.f2 = nn.Linear(4096, 4096)
        self.act_f2 = nn.ReLU(inplace=True)
        self.drop2 = nn.Dropout(drop_rate)
        self.f3 = classifier_head(4096, num_classes)
        trunk = ["c1", "act1", "s2", "c3", "act3", "s4", "c5", "act5", "c6", "act6", "c7", "act7"]
        self._set_stages([*trunk, "s8"], [("act1", 96, 4), ("act3", 256, 8), ("act7", 256, 16)])

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Return the ``(N, 256, 6, 6)`` map after the last max-pool."""
        if self.grad_checkpointing and not torch.jit.is_scripting():
            return self.forward_features_checkpointed(x)
        x = self.s2(self.act1(self.c1(x)))
        x = self.s4(self.act3(self.c3(x)))
        x = self.act5(self.c5(x))
        x = self.act6(self.c6(x))
        return self.s8(self.act7(self.c7(x)))

    def pre_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Flatten and apply the two hidden fully connected layers: ``(N, 4096)``."""
        x = self.drop1(self.act_f1(self.f1(self.flatten(x))))
        return self.drop2(self.act_f2(self.f2(x)))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """The hidden layers, then ``f3``; ``pre_logits`` stops before ``f3``."""
        x = self.pre_logits(x)
        return x if pre_logits else self.f3(x)


class AlexNet(ZooModel):
    """torchvision's AlexNet, parameter for parameter, with an optional small-image stem.

    Args:
        num_classes: Outputs of the last layer (``classifier.6``); 0 leaves it out.
        in_channels: Channels of the input images.
        drop_rate: Dropout probability in the classifier.
        small_input: Use a 3x3 stride-1 stem and no first max-pool, for 28x28 and 32x32 images.
            Only ``features.0`` changes shape; every parameter keeps its torchvision name.
        global_pool: The adaptive pooling to 6x6 before the classifier: ``"avg"``
            (torchvision's) or ``"max"``.

    Stages (``feature_info``): ``features.1``, ``features.4`` and ``features.11``, the last
    ReLU at strides 4, 8 and 16 (1, 1 and 2 with ``small_input``).
    """

    classifier_path = "classifier.6"

    def __init__(
        self,
        num_classes: int = 1000,
        in_channels: int = 3,
        drop_rate: float = _DROP_RATE,
        small_input: bool = False,
        global_pool: str = "avg",
    ) -> None:
        super().__init__(num_classes, in_channels)
        drop_rate = resolve_drop_rate(self.model_name, drop_rate, None, drop_rate)
        self.global_pool = check_global_pool(
            self.model_name, global_pool, num_classes, _POOL_CHOICES
        )
        self.num_features = 4096
        self.small_input = small_input
        if small_input:
            stem: nn.Module = nn.Conv2d(in_channels, 64, kernel_size=3, stride=1, padding=1)
            stem_pool: nn.Module = nn.Identity()  # keeps the later indices, hence the names
            self.input_size = (in_channels, 32, 32)
            # Two 3x3 stride-2 pools remain: 7 -> 3 -> 1 is the smallest path through them.
            self.min_input_size = (7, 7)
        else:
            stem = nn.Conv2d(in_channels, 64, kernel_size=11, stride=4, padding=2)
            stem_pool = nn.MaxPool2d(kernel_size=3, stride=2)
            self.input_size = (in_channels, 224, 224)
            # 63 -> stem 15 -> 7 -> 3 -> 1 through the three 3x3 stride-2 pools (torchvision's
            # documented minimum too).
            self.min_input_size = (63, 63)

        self.features = nn.Sequential(
            stem,
            nn.ReLU(inplace=True),
            stem_pool,
            nn.Conv2d(64, 192, kernel_size=5, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(192, 384, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
        )
        self.avgpool = pool_layer(global_pool, (6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(p=drop_rate),
            nn.Linear(256 * 6 * 6, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(p=drop_rate),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            classifier_head(4096, num_classes),
        )
        # No init loop: torchvision's AlexNet keeps PyTorch's default initialisation.
        first, second = (1, 1) if small_input else (4, 8)
        self._set_stages(
            [f"features.{i}" for i in range(len(self.features))],
            [
                ("features.1", 64, first),
                ("features.4", 192, second),
                ("features.11", 256, 2 * second),
            ],
        )

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Return the ``(N, 256, H', W')`` map after the last max-pool."""
        if self.grad_checkpointing and not torch.jit.is_scripting():
            return self.forward_features_checkpointed(x)
        return self.features(x)

    def pre_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Pool to 6x6, flatten and apply the hidden classifier layers: ``(N, 4096)``."""
        x = torch.flatten(self.avgpool(x), 1)
        for index, layer in enumerate(self.classifier):
            if index < len(self.classifier) - 1:  # all but the last (TorchScript cannot slice)
                x = layer(x)
        return x

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Pool, the hidden layers, then ``classifier.6``; ``pre_logits`` stops before it."""
        x = self.pre_logits(x)
        return x if pre_logits else self.classifier[6](x)  # TorchScript needs a literal index

    def set_global_pool(self, global_pool: str, num_classes: int) -> None:
        """Switch the adaptive 6x6 pooling before the classifier to ``"avg"`` or ``"max"``."""
        self.global_pool = check_global_pool(
            self.model_name, global_pool, num_classes, _POOL_CHOICES
        )
        self.avgpool = pool_layer(global_pool, (6, 6))


_RECIPE = TrainingRecipe(
    1e-3,
    (
        "the best of 3e-4 to 1e-2 for AlexNet (small_input, 8x8 images) in the zoo benchmark "
        "(84 steps of Fashion-MNIST): 0.71 test accuracy, 0.68 at 3e-4; it stalls at 1e-2 "
        "(Dive into Deep Learning trains it with SGD at 0.01)"
    ),
)
_RECIPE_ORIGINAL = TrainingRecipe(
    3e-4,
    (
        "the best of 1e-4 to 1e-3 for the original AlexNet (227x227 images) in the zoo "
        "benchmark (28 steps of Fashion-MNIST): 0.61 test accuracy, 0.59 at 1e-4, 0.56 at 1e-3"
    ),
)


@register(
    family="alexnet",
    source=_FASHION_MNIST_TUTORIAL,
    paper=_KRIZHEVSKY_2012,
    recipe=_RECIPE_ORIGINAL,
)
def alexnet_original(
    num_classes: int = 10,
    in_channels: int = 1,
    drop_rate: float = _DROP_RATE,
    dropout: float | None = None,
) -> AlexNetOriginal:
    """AlexNet at Krizhevsky's 2012 widths for 227x227 images (58,299,082 parameters).

    Args:
        num_classes: Number of classes.
        in_channels: Channels of the input images (1, as the tutorial trains on Fashion-MNIST).
        drop_rate: Dropout probability in the classifier.
        dropout: The older name of ``drop_rate``, still accepted.

    Returns:
        The model, with PyTorch's default initialisation (as in the tutorial).
    """
    rate = resolve_drop_rate("alexnet_original", drop_rate, dropout, _DROP_RATE)
    return AlexNetOriginal(num_classes=num_classes, in_channels=in_channels, drop_rate=rate)


@register(family="alexnet", source=_TRANSFER_TUTORIAL, paper=_KRIZHEVSKY_2014, recipe=_RECIPE)
def alexnet(
    num_classes: int = 1000,
    in_channels: int = 3,
    drop_rate: float = _DROP_RATE,
    small_input: bool = False,
    global_pool: str = "avg",
    dropout: float | None = None,
) -> AlexNet:
    """AlexNet in torchvision's layout and names (61,100,840 parameters at 1000 classes).

    Args:
        num_classes: Number of classes.
        in_channels: Channels of the input images.
        drop_rate: Dropout probability in the classifier.
        small_input: A 3x3 stride-1 stem without the first max-pool, so 28x28 and 32x32
            images keep their resolution (minimum input 7x7 instead of 63x63).
        global_pool: The adaptive pooling to 6x6 before the classifier, ``"avg"`` or ``"max"``.
        dropout: The older name of ``drop_rate``, still accepted.

    Returns:
        The model, initialised as torchvision initialises it.
    """
    return AlexNet(
        num_classes=num_classes,
        in_channels=in_channels,
        drop_rate=resolve_drop_rate("alexnet", drop_rate, dropout, _DROP_RATE),
        small_input=small_input,
        global_pool=global_pool,
    )
