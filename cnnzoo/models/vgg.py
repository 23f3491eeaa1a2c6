"""VGG-11/13/16/19, with and without BatchNorm (Simonyan & Zisserman 2014), as in torchvision.

With the default ``small_input=False`` each model is torchvision's, parameter for parameter:
the same names (``features.<i>``, ``classifier.{0,3,6}``), shapes and initialisation, so
torchvision's ImageNet weights load with ``strict=True``.

``small_input=True`` is the adaptation for 28x28 and 32x32 images. Five 2x2 max-pools would
shrink a 28x28 image to nothing (28 -> 14 -> 7 -> 3 -> 1 -> 0), so the fourth and fifth pools
become ``nn.Identity``: the last two convolution blocks run at 3x3 (28x28 input) or 4x4 (32x32)
and every convolution keeps its torchvision name and shape. A 25088-wide head over a 7x7 copy of
such a small map would be 120M parameters of redundancy, so the head becomes a global average
pool and a 512-512-512 classifier (same names ``classifier.{0,3,6}``, hence the same
``reset_classifier`` behaviour) whose two hidden layers are He-initialised, since torchvision's
N(0, 0.01) would all but silence a 512-wide layer; the smallest accepted image is then 8x8.

Without BatchNorm such a small-input VGG still starts with a vanishing signal (on small maps
most taps of a 3x3 kernel see padding), so ``fit`` starts its layers with LSUV on the first
training batch before the first step (:meth:`VGG.init_from_data`), once, and only while the
weights are still the ones the model was built with.
"""

from __future__ import annotations

import math
from typing import cast

import torch
from torch import nn

from .base import ZooModel
from .checks import resolve_drop_rate
from .data_init import layer_sequential_unit_variance, weights_signature
from .heads import check_global_pool, classifier_head, pool_layer
from .registry import TrainingRecipe, register

__all__ = [
    "VGG",
    "vgg11",
    "vgg11_bn",
    "vgg13",
    "vgg13_bn",
    "vgg16",
    "vgg16_bn",
    "vgg19",
    "vgg19_bn",
]

_POOL = "M"
# Convolution widths of each block, per depth: the paper's configurations A, B, D, E. A 2x2
# max-pool ("M" in torchvision's notation) ends every block.
_BLOCKS: dict[int, tuple[tuple[int, ...], ...]] = {
    11: ((64,), (128,), (256, 256), (512, 512), (512, 512)),
    13: ((64, 64), (128, 128), (256, 256), (512, 512), (512, 512)),
    16: ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512)),
    19: ((64, 64), (128, 128), (256,) * 4, (512,) * 4, (512,) * 4),
}


# The same in torchvision's flat notation, which fixes the indices of features.<i>.
def _flat(blocks: tuple[tuple[int, ...], ...]) -> list[int | str]:
    flat: list[int | str] = []
    for block in blocks:
        flat.extend(block)
        flat.append(_POOL)
    return flat


_CONFIGS = {depth: _flat(blocks) for depth, blocks in _BLOCKS.items()}
_SMALL_INPUT_POOLS = 3  # max-pools kept with small_input=True
_SMALL_INPUT_HIDDEN = 512  # hidden width of the small-input classifier
# The hidden classifier layers read a pooled map of a fixed size, so the pool cannot be removed.
_POOL_CHOICES = ("avg", "max")
_DROP_RATE = 0.5

_SOURCE = "the AlexNet/VGG/ResNet transfer-learning tutorial; torchvision-compatible"
_PAPER = (
    "Simonyan & Zisserman 2014, Very deep convolutional networks for large-scale image recognition"
)
_PAPER_BN = _PAPER + "; Ioffe & Szegedy 2015, Batch normalization"


def _make_features(
    config: list[int | str], in_channels: int, batch_norm: bool, pools_kept: int
) -> tuple[nn.Sequential, list[tuple[str, int, int]]]:
    """Build torchvision's ``features`` stack; pools past ``pools_kept`` become ``nn.Identity``.

    The Identity placeholders keep every later index, so the parameter names do not move.

    Returns:
        The stack, and ``(module, channels, reduction)`` of each block's last ReLU: the stages.
    """
    layers: list[nn.Module] = []
    stages: list[tuple[str, int, int]] = []
    channels = in_channels
    pools_seen = 0
    reduction = 1
    for item in config:
        if item == _POOL:
            stages.append((f"features.{len(layers) - 1}", channels, reduction))
            pools_seen += 1
            keep = pools_seen <= pools_kept
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2) if keep else nn.Identity())
            reduction *= 2 if keep else 1
            continue
        width = int(item)
        layers.append(nn.Conv2d(channels, width, kernel_size=3, padding=1))
        if batch_norm:
            layers.append(nn.BatchNorm2d(width))
        layers.append(nn.ReLU(inplace=True))
        channels = width
    return nn.Sequential(*layers), stages


class VGG(ZooModel):
    """VGG with torchvision's parameter names and initialisation.

    Args:
        depth: 11, 13, 16 or 19 weight layers.
        batch_norm: Put a BatchNorm after every convolution (the ``_bn`` variants).
        num_classes: Outputs of the last layer (``classifier.6``); 0 leaves it out.
        in_channels: Channels of the input images.
        drop_rate: Dropout probability in the classifier.
        small_input: Adapt to 28x28 and 32x32 images: keep only the first three max-pools and
            use a global-average-pool, 512-wide classifier (see the module docstring).
        global_pool: The adaptive pooling before the classifier (to 7x7, or 1x1 with
            ``small_input``): ``"avg"`` (torchvision's) or ``"max"``.

    Stages (``feature_info``): the last ReLU of each of the five blocks, before its max-pool:
    ``features.<i>`` at strides 1, 2, 4, 8, 16 (1, 2, 4, 8, 8 with ``small_input``).

    Raises:
        ValueError: ``depth`` is not one of 11, 13, 16, 19, or a bad ``drop_rate`` or
            ``global_pool``.
    """

    classifier_path = "classifier.6"

    def __init__(
        self,
        depth: int = 16,
        batch_norm: bool = False,
        num_classes: int = 1000,
        in_channels: int = 3,
        drop_rate: float = 0.5,
        small_input: bool = False,
        global_pool: str = "avg",
    ) -> None:
        super().__init__(num_classes, in_channels)
        if depth not in _CONFIGS:
            raise ValueError(f"VGG depth must be one of {sorted(_CONFIGS)}, got {depth!r}")
        drop_rate = resolve_drop_rate(self.model_name, drop_rate, None, drop_rate)
        self.global_pool = check_global_pool(
            self.model_name, global_pool, num_classes, _POOL_CHOICES
        )
        self.small_input = small_input
        self.depth = depth
        self.batch_norm = batch_norm

        config = _CONFIGS[depth]
        total_pools = config.count(_POOL)
        pools_kept = _SMALL_INPUT_POOLS if small_input else total_pools
        self.features, stages = _make_features(config, in_channels, batch_norm, pools_kept)
        # Each kept 2x2 pool halves (flooring) the map, which must stay at least 1 pixel wide.
        side = 2**pools_kept
        self.min_input_size = (side, side)
        if small_input:
            self.input_size = (in_channels, 32, 32)
            self.pool_size = 1
            pooled, hidden = 512, _SMALL_INPUT_HIDDEN
        else:
            self.input_size = (in_channels, 224, 224)
            self.pool_size = 7
            pooled, hidden = 512 * 7 * 7, 4096
        self.avgpool = pool_layer(global_pool, self.pool_size)
        self.num_features = hidden
        self.classifier = nn.Sequential(
            nn.Linear(pooled, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(p=drop_rate),
            nn.Linear(hidden, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(p=drop_rate),
            classifier_head(hidden, num_classes),
        )
        self._init_weights()
        self._set_stages([f"features.{i}" for i in range(len(self.features))], stages)
        # Whether fit may start the layers from LSUV on the first batch (init_from_data); set it to
        # False to keep the He start as built.
        self.data_init = small_input and not batch_norm
        # The weights as built: init_from_data acts only while they are unchanged.
        self._built_weights = weights_signature(self) if self.data_init else 0.0

    def wants_data_init(self) -> bool:
        """Whether :meth:`init_from_data` would act: ``data_init`` on, the weights as built.

        Weights found changed since the build are never new again (the check is not repeated).
        """
        if not self.data_init or not self._built_weights:
            return False
        if math.isclose(weights_signature(self), self._built_weights, rel_tol=1e-9):
            return True
        self._built_weights = 0.0
        return False

    def init_from_data(self, images: torch.Tensor) -> bool:
        """Start every layer from LSUV on ``images``: orthonormal, then unit output variance.

        For a small-input VGG without BatchNorm only (``data_init``, which may be set to False),
        and only while its weights are exactly the ones it was built with (not loaded, trained
        or edited since), and once: ``fit`` calls it with the first training batch. Every
        convolution and linear layer, the output layer included, as Mishkin & Matas 2016 do;
        layers with a frozen parameter are left alone. See :mod:`cnnzoo.models.data_init` for why.

        Args:
            images: A batch of normalised training images.

        Returns:
            True when the layers were set; False when the model is not new or the images give
            nothing to measure (each one flat, or not finite), and then the weights are as they
            were (as they are when the forward pass raises).
        """
        if not self.wants_data_init():
            return False
        layers = [m for m in self.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
        if not layer_sequential_unit_variance(self, layers, images):
            return False  # nothing measurable (flat images): a later fit may try again
        self._built_weights = 0.0
        return True

    def _init_weights(self) -> None:
        """Torchvision's VGG initialisation, with a rescaled small-input head.

        Convolutions are Kaiming-normal, BatchNorms the identity, linears N(0, 0.01).
        """
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                if module.bias is not None:
                    nn.init.constant_(module.bias, 0)
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.constant_(module.weight, 1)
                nn.init.constant_(module.bias, 0)
            elif isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, 0, 0.01)
                nn.init.constant_(module.bias, 0)
        if self.small_input:
            # N(0, 0.01) suits torchvision's 25088- and 4096-wide inputs; on the 512-wide
            # hidden layers it would shrink the signal ~5x per layer (logits ~200x smaller than
            # the full-size model's). He initialisation keeps their scale; the last layer keeps
            # N(0, 0.01), so the first logits stay small.
            for index in (0, 3):
                layer = cast(nn.Linear, self.classifier[index])  # the hidden Linear layers
                nn.init.kaiming_normal_(layer.weight, mode="fan_in", nonlinearity="relu")

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Return the ``(N, 512, H', W')`` map after the last convolution block."""
        if self.grad_checkpointing and not torch.jit.is_scripting():
            return self.forward_features_checkpointed(x)
        return self.features(x)

    def pre_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Pool, flatten and apply the hidden classifier layers: ``(N, num_features)``."""
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
        """Switch the adaptive pooling before the classifier to ``"avg"`` or ``"max"``."""
        self.global_pool = check_global_pool(
            self.model_name, global_pool, num_classes, _POOL_CHOICES
        )
        self.avgpool = pool_layer(global_pool, self.pool_size)


_RECIPE = TrainingRecipe(
    1e-3,
    (
        "VGG-11 without BatchNorm (small_input, 8x8 images, LSUV start) in the zoo benchmark "
        "(84 steps of Fashion-MNIST): 0.76 test accuracy over 3 seeds, within 2% of the grid's "
        "best (3e-3, 0.77) of 3e-4 to 1e-2, and VGG-13 holds to it too; 0.69 at 1e-2"
    ),
)
_RECIPE_DEEP = TrainingRecipe(
    3e-4,
    (
        "VGG-16 and VGG-19 without BatchNorm (small_input, 8x8 images, LSUV start) in the zoo "
        "benchmark (84 steps of Fashion-MNIST): 0.73 and 0.72 test accuracy over 3 seeds, 99% "
        "and 98% of the best of VGG-16's grid of 3e-4 to 1e-2 (1e-3, 0.73); 0.65 at 3e-3 and "
        "chance at 1e-2: the deeper plain VGGs want a lower rate than VGG-11"
    ),
)
_RECIPE_BN = TrainingRecipe(
    1e-3,
    (
        "the best of 3e-4 to 1e-2 for VGG-11 with BatchNorm (small_input, 8x8 images) in the "
        "zoo benchmark (84 steps of Fashion-MNIST): 0.80 test accuracy; every BatchNorm VGG "
        "reaches at least 97% of it there"
    ),
)


@register(family="vgg", source=_SOURCE, paper=_PAPER, recipe=_RECIPE)
def vgg11(
    num_classes: int = 1000,
    in_channels: int = 3,
    drop_rate: float = _DROP_RATE,
    small_input: bool = False,
    global_pool: str = "avg",
    dropout: float | None = None,
) -> VGG:
    """VGG-11 (configuration A), torchvision-compatible (132,863,336 parameters at 1000 classes).

    The arguments are ``VGG``'s; ``small_input=True`` adapts it to 28x28 and 32x32 images.
    ``dropout`` is the older name of ``drop_rate``.
    """
    rate = resolve_drop_rate("vgg11", drop_rate, dropout, _DROP_RATE)
    return VGG(11, False, num_classes, in_channels, rate, small_input, global_pool)


@register(family="vgg", source=_SOURCE, paper=_PAPER_BN, recipe=_RECIPE_BN)
def vgg11_bn(
    num_classes: int = 1000,
    in_channels: int = 3,
    drop_rate: float = _DROP_RATE,
    small_input: bool = False,
    global_pool: str = "avg",
    dropout: float | None = None,
) -> VGG:
    """VGG-11 with BatchNorm, torchvision-compatible (132,868,840 parameters at 1000 classes).

    The arguments are ``VGG``'s; ``small_input=True`` adapts it to 28x28 and 32x32 images.
    ``dropout`` is the older name of ``drop_rate``.
    """
    rate = resolve_drop_rate("vgg11_bn", drop_rate, dropout, _DROP_RATE)
    return VGG(11, True, num_classes, in_channels, rate, small_input, global_pool)


@register(family="vgg", source=_SOURCE, paper=_PAPER, recipe=_RECIPE)
def vgg13(
    num_classes: int = 1000,
    in_channels: int = 3,
    drop_rate: float = _DROP_RATE,
    small_input: bool = False,
    global_pool: str = "avg",
    dropout: float | None = None,
) -> VGG:
    """VGG-13 (configuration B), torchvision-compatible (133,047,848 parameters at 1000 classes).

    The arguments are ``VGG``'s; ``small_input=True`` adapts it to 28x28 and 32x32 images.
    ``dropout`` is the older name of ``drop_rate``.
    """
    rate = resolve_drop_rate("vgg13", drop_rate, dropout, _DROP_RATE)
    return VGG(13, False, num_classes, in_channels, rate, small_input, global_pool)


@register(family="vgg", source=_SOURCE, paper=_PAPER_BN, recipe=_RECIPE_BN)
def vgg13_bn(
    num_classes: int = 1000,
    in_channels: int = 3,
    drop_rate: float = _DROP_RATE,
    small_input: bool = False,
    global_pool: str = "avg",
    dropout: float | None = None,
) -> VGG:
    """VGG-13 with BatchNorm, torchvision-compatible (133,053,736 parameters at 1000 classes).

    The arguments are ``VGG``'s; ``small_input=True`` adapts it to 28x28 and 32x32 images.
    ``dropout`` is the older name of ``drop_rate``.
    """
    rate = resolve_drop_rate("vgg13_bn", drop_rate, dropout, _DROP_RATE)
    return VGG(13, True, num_classes, in_channels, rate, small_input, global_pool)


@register(family="vgg", source=_SOURCE, paper=_PAPER, recipe=_RECIPE_DEEP)
def vgg16(
    num_classes: int = 1000,
    in_channels: int = 3,
    drop_rate: float = _DROP_RATE,
    small_input: bool = False,
    global_pool: str = "avg",
    dropout: float | None = None,
) -> VGG:
    """VGG-16 (configuration D), torchvision-compatible (138,357,544 parameters at 1000 classes).

    The arguments are ``VGG``'s; ``small_input=True`` adapts it to 28x28 and 32x32 images.
    ``dropout`` is the older name of ``drop_rate``.
    """
    rate = resolve_drop_rate("vgg16", drop_rate, dropout, _DROP_RATE)
    return VGG(16, False, num_classes, in_channels, rate, small_input, global_pool)


@register(family="vgg", source=_SOURCE, paper=_PAPER_BN, recipe=_RECIPE_BN)
def vgg16_bn(
    num_classes: int = 1000,
    in_channels: int = 3,
    drop_rate: float = _DROP_RATE,
    small_input: bool = False,
    global_pool: str = "avg",
    dropout: float | None = None,
) -> VGG:
    """VGG-16 with BatchNorm, torchvision-compatible (138,365,992 parameters at 1000 classes).

    The arguments are ``VGG``'s; ``small_input=True`` adapts it to 28x28 and 32x32 images.
    ``dropout`` is the older name of ``drop_rate``.
    """
    rate = resolve_drop_rate("vgg16_bn", drop_rate, dropout, _DROP_RATE)
    return VGG(16, True, num_classes, in_channels, rate, small_input, global_pool)


@register(family="vgg", source=_SOURCE, paper=_PAPER, recipe=_RECIPE_DEEP)
def vgg19(
    num_classes: int = 1000,
    in_channels: int = 3,
    drop_rate: float = _DROP_RATE,
    small_input: bool = False,
    global_pool: str = "avg",
    dropout: float | None = None,
) -> VGG:
    """VGG-19 (configuration E), torchvision-compatible (143,667,240 parameters at 1000 classes).

    The arguments are ``VGG``'s; ``small_input=True`` adapts it to 28x28 and 32x32 images.
    ``dropout`` is the older name of ``drop_rate``.
    """
    rate = resolve_drop_rate("vgg19", drop_rate, dropout, _DROP_RATE)
    return VGG(19, False, num_classes, in_channels, rate, small_input, global_pool)


@register(family="vgg", source=_SOURCE, paper=_PAPER_BN, recipe=_RECIPE_BN)
def vgg19_bn(
    num_classes: int = 1000,
    in_channels: int = 3,
    drop_rate: float = _DROP_RATE,
    small_input: bool = False,
    global_pool: str = "avg",
    dropout: float | None = None,
) -> VGG:
    """VGG-19 with BatchNorm, torchvision-compatible (143,678,248 parameters at 1000 classes).

    The arguments are ``VGG``'s; ``small_input=True`` adapts it to 28x28 and 32x32 images.
    ``dropout`` is the older name of ``drop_rate``.
    """
    rate = resolve_drop_rate("vgg19_bn", drop_rate, dropout, _DROP_RATE)
    return VGG(19, True, num_classes, in_channels, rate, small_input, global_pool)
