"""DenseNet-121 (Huang et al. 2017), compatible with torchvision.

Module names, state-dict keys, parameter counts and initialisation are torchvision's. Old
checkpoints (torchvision's ImageNet files among them) spell the dense-layer keys ``norm.1``,
``conv.2``...; the model renames those on ``load_state_dict``, so they load with ``strict=True``
too. ``small_input=True`` swaps the 7x7 stride-2 stem and its max pool for a 3x3 stride-1 conv,
for 28x28 and 32x32 images.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .base import ZooModel
from .heads import check_global_pool, classifier_head, pool_layer
from .registry import TrainingRecipe, register
from .stages import checkpointed

__all__ = ["DenseNet", "densenet121"]

# Keys such as "features.denseblock1.denselayer1.norm.1.weight" in pre-2019 checkpoints.
_LEGACY_KEY = re.compile(
    r"^(.*denselayer\d+\.(?:norm|relu|conv))\."
    r"([12]\.(?:weight|bias|running_mean|running_var|num_batches_tracked))$"
)


class _DenseLayer(nn.Module):
    """BN-ReLU-Conv1x1 (to ``bn_size * growth_rate``), BN-ReLU-Conv3x3 (to ``growth_rate``)."""

    # Stochastic depth drops the layer's new features (cnnzoo.augmentation.depth).
    drop_path_site = ""

    def __init__(
        self,
        in_channels: int,
        growth_rate: int,
        bn_size: int,
        drop_rate: float,
        memory_efficient: bool,
    ) -> None:
        super().__init__()
        self.norm1 = nn.BatchNorm2d(in_channels)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(in_channels, bn_size * growth_rate, kernel_size=1, bias=False)
        self.norm2 = nn.BatchNorm2d(bn_size * growth_rate)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(
            bn_size * growth_rate, growth_rate, kernel_size=3, padding=1, bias=False
        )
        self.drop_rate = float(drop_rate)
        self.memory_efficient = memory_efficient

    def _bottleneck(self, features: list[torch.Tensor]) -> torch.Tensor:
        return self.conv1(self.relu1(self.norm1(torch.cat(features, 1))))

    def _eager_bottleneck(self, features: list[torch.Tensor]) -> torch.Tensor:
        if self.memory_efficient and any(f.requires_grad for f in features):
            # Recompute the concatenation and bottleneck in the backward pass instead of
            # storing them: memory grows linearly rather than quadratically with depth.
            return checkpointed(lambda *f: self._bottleneck(list(f)), [self.norm1], *features)
        return self._bottleneck(features)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        """Map the block's feature maps so far to ``growth_rate`` new channels."""
        if torch.jit.is_scripting():  # no checkpointing in TorchScript
            out = self._bottleneck(features)
        else:
            out = self._eager_bottleneck(features)
        out = self.conv2(self.relu2(self.norm2(out)))
        if self.drop_rate > 0:
            out = F.dropout(out, p=self.drop_rate, training=self.training)
        return out


class _DenseBlock(nn.ModuleDict):
    """``num_layers`` dense layers, each fed the concatenation of all earlier outputs."""

    def __init__(
        self,
        num_layers: int,
        in_channels: int,
        bn_size: int,
        growth_rate: int,
        drop_rate: float,
        memory_efficient: bool,
    ) -> None:
        super().__init__()
        for i in range(num_layers):
            layer = _DenseLayer(
                in_channels + i * growth_rate, growth_rate, bn_size, drop_rate, memory_efficient
            )
            self.add_module(f"denselayer{i + 1}", layer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``(N, C, H, W)`` to ``(N, C + num_layers * growth_rate, H, W)``."""
        features = [x]
        for _, layer in self.items():
            features.append(layer(features))
        return torch.cat(features, 1)


class _Transition(nn.Sequential):
    """BN-ReLU-Conv1x1 then 2x2 average pool: halves the width and the resolution."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(in_channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=1, bias=False)
        self.pool = nn.AvgPool2d(kernel_size=2, stride=2)


class DenseNet(ZooModel):
    """DenseNet-BC: stem, dense blocks joined by transitions, final norm, ``classifier``.

    Args:
        growth_rate: Channels each dense layer adds (``k`` in the paper).
        block_config: Number of layers in each dense block.
        num_init_features: Width of the stem conv.
        bn_size: Bottleneck width factor (the 1x1 conv outputs ``bn_size * growth_rate``).
        drop_rate: Dropout after each dense layer.
        num_classes: Outputs of ``classifier``; 0 replaces it with ``nn.Identity``.
        in_channels: Channels of the input images.
        small_input: Use a 3x3 stride-1 stem conv and no max pool, for 28x28/32x32 images.
        memory_efficient: Recompute the bottleneck inputs in the backward pass (gradient
            checkpointing): much less memory, somewhat slower.
        global_pool: Pooling before ``classifier``: ``"avg"`` (torchvision's), ``"max"``, or
            ``""`` (none; with ``num_classes=0`` the model returns the last feature map).

    Stages (``feature_info``): ``features.relu0`` (the stem), ``features.denseblock1`` to
    ``denseblock3`` and ``final_relu`` (after ``norm5``), at strides 2, 4, 8, 16, 32 (1, 1, 2,
    4, 8 with ``small_input``).
    """

    classifier_path = "classifier"

    def __init__(
        self,
        growth_rate: int = 32,
        block_config: tuple[int, ...] = (6, 12, 24, 16),
        num_init_features: int = 64,
        bn_size: int = 4,
        drop_rate: float = 0.0,
        num_classes: int = 1000,
        in_channels: int = 3,
        small_input: bool = False,
        memory_efficient: bool = False,
        global_pool: str = "avg",
    ) -> None:
        super().__init__(num_classes, in_channels)
        if not 0.0 <= drop_rate < 1.0:
            raise ValueError(f"drop_rate must be in [0, 1), got {drop_rate}")
        self.global_pool = check_global_pool(self.model_name, global_pool, num_classes)
        self.small_input = small_input
        self.input_size = (in_channels, 32, 32) if small_input else (in_channels, 224, 224)
        # Each of the len(block_config) - 1 transitions needs at least 2x2 pixels; the stride-2
        # stem and max pool divide the resolution by 4 first (rounding up).
        min_after_stem = 2 ** (len(block_config) - 1)
        min_size = min_after_stem if small_input else 4 * min_after_stem - 3
        self.min_input_size = (min_size, min_size)

        if small_input:
            stem: list[tuple[str, nn.Module]] = [
                ("conv0", nn.Conv2d(in_channels, num_init_features, 3, padding=1, bias=False)),
                ("norm0", nn.BatchNorm2d(num_init_features)),
                ("relu0", nn.ReLU(inplace=True)),
                ("pool0", nn.Identity()),
            ]
        else:
            stem = [
                ("conv0", nn.Conv2d(in_channels, num_init_features, 7, 2, 3, bias=False)),
                ("norm0", nn.BatchNorm2d(num_init_features)),
                ("relu0", nn.ReLU(inplace=True)),
                ("pool0", nn.MaxPool2d(kernel_size=3, stride=2, padding=1)),
            ]
        self.features = nn.Sequential(OrderedDict(stem))

        stride = 1 if small_input else 2
        stages = [("features.relu0", num_init_features, stride)]
        stride *= 1 if small_input else 2  # the stem's max pool
        width = num_init_features
        for i, num_layers in enumerate(block_config):
            block = _DenseBlock(
                num_layers, width, bn_size, growth_rate, drop_rate, memory_efficient
            )
            self.features.add_module(f"denseblock{i + 1}", block)
            width += num_layers * growth_rate
            if i != len(block_config) - 1:
                stages.append((f"features.denseblock{i + 1}", width, stride))
                self.features.add_module(f"transition{i + 1}", _Transition(width, width // 2))
                width //= 2
                stride *= 2
        self.features.add_module("norm5", nn.BatchNorm2d(width))
        # torchvision applies this ReLU functionally; as a module (no parameters, so the same
        # state dict) it is a stage end that feature extractors can name.
        self.final_relu = nn.ReLU(inplace=True)
        stages.append(("final_relu", width, stride))

        self.num_features = width
        self.avgpool = pool_layer(global_pool, (1, 1))
        self.classifier = classifier_head(width, num_classes)
        self._init_weights()
        self.register_load_state_dict_pre_hook(_rename_legacy_keys)
        plan = [f"features.{name}" for name in self.features._modules]
        self._set_stages([*plan, "final_relu"], stages)

    def _init_weights(self) -> None:
        # torchvision's initialisation.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)
            elif isinstance(m, nn.Linear):
                nn.init.constant_(m.bias, 0)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Return the final ``(N, num_features, H/32, W/32)`` map, after norm5 and ReLU."""
        if self.grad_checkpointing and not torch.jit.is_scripting():
            return self.forward_features_checkpointed(x)
        return self.final_relu(self.features(x))

    def pre_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Pool and flatten to ``(N, num_features)`` (the map itself when unpooled)."""
        x = self.avgpool(x)
        return x if self.global_pool == "" else torch.flatten(x, 1)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Pool, then ``classifier``; ``pre_logits`` stops before it."""
        x = self.pre_logits(x)
        return x if pre_logits else self.classifier(x)

    def set_global_pool(self, global_pool: str, num_classes: int) -> None:
        """Switch the pooling before ``classifier`` to ``"avg"``, ``"max"`` or ``""`` (none)."""
        self.global_pool = check_global_pool(self.model_name, global_pool, num_classes)
        self.avgpool = pool_layer(global_pool, (1, 1))


def _rename_legacy_keys(
    module: nn.Module, state_dict: dict[str, Any], prefix: str, *args: Any
) -> None:
    """Rename ``...denselayerN.norm.1.weight`` to ``...denselayerN.norm1.weight`` in place."""
    for key in list(state_dict):
        match = _LEGACY_KEY.match(key)
        if key.startswith(prefix) and match:
            state_dict[match.group(1) + match.group(2)] = state_dict.pop(key)


_RECIPE = TrainingRecipe(
    3e-3,
    (
        "DenseNet-121 (small_input, 8x8 images) in the zoo benchmark (84 steps of "
        "Fashion-MNIST): 0.80 test accuracy over 3 seeds; every rate of 3e-4 to 1e-2 reaches "
        "0.78 to 0.80 there"
    ),
)


@register(
    family="densenet",
    source="named as the next step in the monkeypox BatchNorm CNN tutorial; torchvision-compatible",
    paper="Huang et al. 2017, Densely Connected Convolutional Networks",
    recipe=_RECIPE,
)
def densenet121(
    num_classes: int = 1000,
    in_channels: int = 3,
    small_input: bool = False,
    memory_efficient: bool = False,
    drop_rate: float = 0.0,
    global_pool: str = "avg",
) -> DenseNet:
    """DenseNet-121: growth rate 32, blocks [6, 12, 24, 16] (7,978,856 parameters at 1000 classes).

    Args:
        num_classes: Number of classes.
        in_channels: Channels of the input images.
        small_input: 3x3 stride-1 stem without max pool, for 28x28 and 32x32 images.
        memory_efficient: Gradient checkpointing in the dense layers: much less memory when
            training, somewhat slower.
        drop_rate: Dropout rate after each dense layer.
        global_pool: Pooling before the classifier: ``"avg"``, ``"max"`` or ``""`` (none).

    Returns:
        The model, with torchvision's initialisation.
    """
    return DenseNet(
        32,
        (6, 12, 24, 16),
        64,
        num_classes=num_classes,
        in_channels=in_channels,
        small_input=small_input,
        memory_efficient=memory_efficient,
        drop_rate=drop_rate,
        global_pool=global_pool,
    )
