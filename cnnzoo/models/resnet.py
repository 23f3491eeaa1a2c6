"""ResNet-18/34/50/101/152 (He et al. 2015), compatible with torchvision.

Module names, state-dict keys, parameter counts and initialisation are torchvision's, so its
ImageNet weights load with ``strict=True`` (at 3 input channels and without ``small_input``).
``small_input=True`` swaps the 7x7 stride-2 stem and its max pool for a 3x3 stride-1 conv, the
usual CIFAR recipe, so 28x28 and 32x32 images reach the last stage at 4x4 instead of 1x1.
"""

from __future__ import annotations

from typing import cast

import torch
from torch import nn

from ..blocks import BasicBlock, Bottleneck
from .base import ZooModel
from .heads import check_global_pool, classifier_head, pool_layer
from .registry import TrainingRecipe, register

__all__ = ["ResNet", "resnet18", "resnet34", "resnet50", "resnet101", "resnet152"]

_PAPER = "He et al. 2015, Deep Residual Learning for Image Recognition"
_SOURCE = "the AlexNet/VGG/ResNet transfer-learning tutorial; torchvision-compatible"


def _make_stage(
    block: type[BasicBlock | Bottleneck], in_channels: int, planes: int, blocks: int, stride: int
) -> nn.Sequential:
    """One ResNet stage; its first block changes the width and/or resolution."""
    out_channels = planes * block.expansion
    downsample = None
    if stride != 1 or in_channels != out_channels:
        downsample = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False),
            nn.BatchNorm2d(out_channels),
        )
    layers = [block(in_channels, planes, stride, downsample)]
    layers += [block(out_channels, planes) for _ in range(1, blocks)]
    return nn.Sequential(*layers)


class ResNet(ZooModel):
    """A ResNet: stem, four stages of residual blocks, global average pool, ``fc``.

    Args:
        block: ``BasicBlock`` (ResNet-18/34) or ``Bottleneck`` (ResNet-50 and deeper).
        layers: Number of blocks in each of the four stages.
        num_classes: Outputs of ``fc``; 0 replaces it with ``nn.Identity`` (pooled features).
        in_channels: Channels of the input images.
        small_input: Use a 3x3 stride-1 stem conv and no max pool, for 28x28/32x32 images.
        zero_init_residual: Start the last norm layer of every residual branch at zero, so each
            block starts as the identity (Goyal et al. 2017, "Accurate, Large Minibatch SGD";
            timm's default). On by default: trained from scratch on a small budget, the deep
            ResNets otherwise start far behind ResNet-18 (ResNet-152 on 84 steps of
            Fashion-MNIST: 0.72 test accuracy without, 0.81 with). ``False`` gives torchvision's
            initialisation exactly.
        global_pool: Pooling before ``fc``: ``"avg"`` (torchvision's), ``"max"``, or ``""``
            (none; with ``num_classes=0`` the model returns the last feature map).

    Stages (``feature_info``): ``relu`` (the stem, stride 2), ``layer1`` to ``layer4`` (strides
    4 to 32); with ``small_input`` the strides are 1, 1, 2, 4 and 8.
    """

    classifier_path = "fc"

    def __init__(
        self,
        block: type[BasicBlock | Bottleneck],
        layers: list[int],
        num_classes: int = 1000,
        in_channels: int = 3,
        small_input: bool = False,
        zero_init_residual: bool = True,
        global_pool: str = "avg",
    ) -> None:
        super().__init__(num_classes, in_channels)
        self.global_pool = check_global_pool(self.model_name, global_pool, num_classes)
        if len(layers) != 4 or any(n < 1 for n in layers):
            raise ValueError(f"layers must be four positive block counts, got {layers!r}")
        self.small_input = small_input
        self.num_features = 512 * block.expansion
        self.input_size = (in_channels, 32, 32) if small_input else (in_channels, 224, 224)
        # Every strided layer maps a 1-pixel input to a 1-pixel output, so 1x1 is the minimum
        # (with batch >= 2 in training mode, as BatchNorm needs two values per channel).
        self.min_input_size = (1, 1)

        if small_input:
            self.conv1 = nn.Conv2d(in_channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
        else:
            self.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool: nn.Module = (
            nn.Identity() if small_input else nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        )
        self.layer1 = _make_stage(block, 64, 64, layers[0], stride=1)
        self.layer2 = _make_stage(block, 64 * block.expansion, 128, layers[1], stride=2)
        self.layer3 = _make_stage(block, 128 * block.expansion, 256, layers[2], stride=2)
        self.layer4 = _make_stage(block, 256 * block.expansion, 512, layers[3], stride=2)
        self.avgpool = pool_layer(global_pool, (1, 1))
        self.fc = classifier_head(self.num_features, num_classes)
        self._init_weights(zero_init_residual)

        e = block.expansion
        stem = 1 if small_input else 2
        first = 1 if small_input else 4
        self._set_stages(
            ["conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4"],
            [
                ("relu", 64, stem),
                ("layer1", 64 * e, first),
                ("layer2", 128 * e, first * 2),
                ("layer3", 256 * e, first * 4),
                ("layer4", 512 * e, first * 8),
            ],
        )

    def _init_weights(self, zero_init_residual: bool) -> None:
        # torchvision's initialisation; the Linear head keeps PyTorch's default, as there.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, Bottleneck):
                    nn.init.constant_(cast(torch.Tensor, m.bn3.weight), 0)  # an affine norm
                elif isinstance(m, BasicBlock):
                    nn.init.constant_(cast(torch.Tensor, m.bn2.weight), 0)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Return the ``(N, num_features, H/32, W/32)`` map of ``layer4`` (``H/8`` small)."""
        if self.grad_checkpointing and not torch.jit.is_scripting():
            return self.forward_features_checkpointed(x)
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer1(x)
        x = self.layer2(x)
        x = self.layer3(x)
        return self.layer4(x)

    def pre_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Pool and flatten to ``(N, num_features)`` (the map itself when unpooled)."""
        x = self.avgpool(x)
        return x if self.global_pool == "" else torch.flatten(x, 1)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Pool, then ``fc``; ``pre_logits`` stops before ``fc``."""
        x = self.pre_logits(x)
        return x if pre_logits else self.fc(x)

    def set_global_pool(self, global_pool: str, num_classes: int) -> None:
        """Switch the pooling before ``fc`` to ``"avg"``, ``"max"`` or ``""`` (none)."""
        self.global_pool = check_global_pool(self.model_name, global_pool, num_classes)
        self.avgpool = pool_layer(global_pool, (1, 1))


_RECIPE = TrainingRecipe(
    1e-3,
    (
        "ResNet-18 (small_input, 8x8 images) in the zoo benchmark (84 steps of Fashion-MNIST): "
        "0.80 test accuracy, within 2% of the grid's best (3e-3, 0.81) of 3e-4 to 1e-2; every "
        "deeper ResNet reaches at least 95% of that best at this rate"
    ),
)


@register(family="resnet", source=_SOURCE, paper=_PAPER, recipe=_RECIPE)
def resnet18(
    num_classes: int = 1000,
    in_channels: int = 3,
    small_input: bool = False,
    zero_init_residual: bool = True,
    global_pool: str = "avg",
) -> ResNet:
    """ResNet-18: basic blocks [2, 2, 2, 2] (11,689,512 parameters at 1000 classes).

    The arguments are ``ResNet``'s; ``small_input=True`` adapts it to 28x28 and 32x32 images.
    """
    return ResNet(
        BasicBlock,
        [2, 2, 2, 2],
        num_classes,
        in_channels,
        small_input,
        zero_init_residual,
        global_pool,
    )


@register(family="resnet", source=_SOURCE, paper=_PAPER, recipe=_RECIPE)
def resnet34(
    num_classes: int = 1000,
    in_channels: int = 3,
    small_input: bool = False,
    zero_init_residual: bool = True,
    global_pool: str = "avg",
) -> ResNet:
    """ResNet-34: basic blocks [3, 4, 6, 3] (21,797,672 parameters at 1000 classes).

    The arguments are ``ResNet``'s; ``small_input=True`` adapts it to 28x28 and 32x32 images.
    """
    return ResNet(
        BasicBlock,
        [3, 4, 6, 3],
        num_classes,
        in_channels,
        small_input,
        zero_init_residual,
        global_pool,
    )


@register(family="resnet", source=_SOURCE, paper=_PAPER, recipe=_RECIPE)
def resnet50(
    num_classes: int = 1000,
    in_channels: int = 3,
    small_input: bool = False,
    zero_init_residual: bool = True,
    global_pool: str = "avg",
) -> ResNet:
    """ResNet-50: bottleneck blocks [3, 4, 6, 3] (25,557,032 parameters at 1000 classes).

    The arguments are ``ResNet``'s; ``small_input=True`` adapts it to 28x28 and 32x32 images.
    """
    return ResNet(
        Bottleneck,
        [3, 4, 6, 3],
        num_classes,
        in_channels,
        small_input,
        zero_init_residual,
        global_pool,
    )


@register(family="resnet", source=_SOURCE, paper=_PAPER, recipe=_RECIPE)
def resnet101(
    num_classes: int = 1000,
    in_channels: int = 3,
    small_input: bool = False,
    zero_init_residual: bool = True,
    global_pool: str = "avg",
) -> ResNet:
    """ResNet-101: bottleneck blocks [3, 4, 23, 3] (44,549,160 parameters at 1000 classes).

    The arguments are ``ResNet``'s; ``small_input=True`` adapts it to 28x28 and 32x32 images.
    """
    return ResNet(
        Bottleneck,
        [3, 4, 23, 3],
        num_classes,
        in_channels,
        small_input,
        zero_init_residual,
        global_pool,
    )


@register(family="resnet", source=_SOURCE, paper=_PAPER, recipe=_RECIPE)
def resnet152(
    num_classes: int = 1000,
    in_channels: int = 3,
    small_input: bool = False,
    zero_init_residual: bool = True,
    global_pool: str = "avg",
) -> ResNet:
    """ResNet-152: bottleneck blocks [3, 8, 36, 3] (60,192,808 parameters at 1000 classes).

    The arguments are ``ResNet``'s; ``small_input=True`` adapts it to 28x28 and 32x32 images.
    """
    return ResNet(
        Bottleneck,
        [3, 8, 36, 3],
        num_classes,
        in_channels,
        small_input,
        zero_init_residual,
        global_pool,
    )
