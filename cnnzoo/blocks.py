"""Reusable building blocks of the cnnzoo networks.

Every block takes its input width (``in_channels``) and its other widths as explicit arguments
and exposes the width it produces as ``out_channels``, so blocks stack without guesswork:

- ``ConvBNAct``: convolution, normalisation, activation; the brick the others are made of.
- ``InceptionA``: the advanced-CNN tutorial's small Inception module (88 output channels).
- ``Inception``: GoogLeNet's module (Szegedy et al. 2014), with a real 5x5 branch.
- ``ResidualBlock``: the advanced-CNN tutorial's residual block (projection shortcut when the
  width changes).
- ``BasicBlock``, ``Bottleneck``: ResNet's blocks, parameter names identical to torchvision's.

All blocks map ``(N, in_channels, H, W)`` to ``(N, out_channels, H', W')``; only the ResNet
blocks change the resolution (``H' = ceil(H / stride)``).

Longer than 450 lines because it is one catalogue: six independent blocks of under 100 lines
each, which the families and users import from one place; a new block belongs in a room of its
own.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import torch
from torch import nn

__all__ = ["BasicBlock", "Bottleneck", "ConvBNAct", "Inception", "InceptionA", "ResidualBlock"]

LayerFactory = Callable[..., nn.Module]
KernelSize = int | tuple[int, int]


def _require_positive(block: str, **widths: int) -> None:
    """Raise a ``ValueError`` naming the first width that is not a positive integer."""
    for name, value in widths.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{block}: {name} must be an integer >= 1, got {value!r}")


def _make_activation(act_layer: LayerFactory) -> nn.Module:
    """Instantiate an activation, in place when its constructor allows it (saves memory)."""
    try:
        takes_inplace = "inplace" in inspect.signature(act_layer).parameters
    except (TypeError, ValueError):  # a builtin or C callable without a readable signature
        takes_inplace = False
    return act_layer(inplace=True) if takes_inplace else act_layer()


def _same_padding(kernel_size: KernelSize, dilation: int) -> int | tuple[int, int]:
    """Padding that keeps the resolution at stride 1 (odd kernels)."""
    if isinstance(kernel_size, int):
        return (kernel_size - 1) // 2 * dilation
    return tuple((k - 1) // 2 * dilation for k in kernel_size)  # type: ignore[return-value]


class ConvBNAct(nn.Sequential):
    """Convolution, then normalisation, then activation (children ``conv``, ``bn``, ``act``).

    Input ``(N, in_channels, H, W)``, output ``(N, out_channels, H', W')`` with
    ``H' = ceil(H / stride)`` under the default padding (odd kernels).

    Args:
        in_channels: Channels of the input.
        out_channels: Channels of the output.
        kernel_size: Convolution kernel size.
        stride: Convolution stride.
        padding: Convolution padding; ``None`` pads ``(kernel_size - 1) // 2 * dilation``, which
            keeps the resolution at stride 1 ("same").
        groups: Convolution groups.
        dilation: Convolution dilation.
        norm_layer: Normalisation factory called with ``out_channels``; ``None`` for no
            normalisation, in which case the convolution gets a bias.
        act_layer: Activation factory (in place when it supports it); ``None`` for none.

    Example:
        >>> block = ConvBNAct(3, 16, kernel_size=3, stride=2)
        >>> block(torch.zeros(1, 3, 32, 32)).shape
        torch.Size([1, 16, 16, 16])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: KernelSize = 3,
        stride: int = 1,
        padding: int | tuple[int, int] | None = None,
        groups: int = 1,
        dilation: int = 1,
        norm_layer: LayerFactory | None = nn.BatchNorm2d,
        act_layer: LayerFactory | None = nn.ReLU,
    ) -> None:
        super().__init__()
        _require_positive("ConvBNAct", in_channels=in_channels, out_channels=out_channels)
        if in_channels % groups or out_channels % groups:
            raise ValueError(
                f"ConvBNAct: in_channels ({in_channels}) and out_channels ({out_channels}) must "
                f"both be divisible by groups ({groups})"
            )
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.conv = nn.Conv2d(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=_same_padding(kernel_size, dilation) if padding is None else padding,
            dilation=dilation,
            groups=groups,
            bias=norm_layer is None,  # a norm layer right after makes a bias redundant
        )
        if norm_layer is not None:
            self.bn = norm_layer(out_channels)
        if act_layer is not None:
            self.act = _make_activation(act_layer)


class InceptionA(nn.Module):
    """The advanced-CNN tutorial's Inception module: four branches concatenated on channels.

    Branches, in concatenation order: 1x1 conv; 1x1 then 5x5 conv; 1x1 then two 3x3 convs;
    3x3 average pool (stride 1, padding 1) then 1x1 conv. Input ``(N, in_channels, H, W)``,
    output ``(N, out_channels, H, W)`` with ``out_channels = ch1x1 + ch5x5 + ch3x3 + pool_proj``
    (88 by default). As in the tutorial, the convolutions are plain (with bias, no activation)
    unless ``norm_layer`` or ``act_layer`` is given.

    Args:
        in_channels: Channels of the input.
        ch1x1: Width of the 1x1 branch.
        ch5x5red: Width of the 1x1 reduction before the 5x5 conv.
        ch5x5: Width of the 5x5 branch.
        ch3x3red: Width of the 1x1 reduction before the two 3x3 convs.
        ch3x3: Width of both 3x3 convs.
        pool_proj: Width of the 1x1 conv after the average pool.
        norm_layer: Normalisation after each conv (``None``: none, convs have a bias).
        act_layer: Activation after each conv (``None``: none, as in the tutorial).
    """

    def __init__(
        self,
        in_channels: int,
        ch1x1: int = 16,
        ch5x5red: int = 16,
        ch5x5: int = 24,
        ch3x3red: int = 16,
        ch3x3: int = 24,
        pool_proj: int = 24,
        norm_layer: LayerFactory | None = None,
        act_layer: LayerFactory | None = None,
    ) -> None:
        super().__init__()
        _require_positive(
            "InceptionA",
            in_channels=in_channels,
            ch1x1=ch1x1,
            ch5x5red=ch5x5red,
            ch5x5=ch5x5,
            ch3x3red=ch3x3red,
            ch3x3=ch3x3,
            pool_proj=pool_proj,
        )

        def conv(cin: int, cout: int, kernel_size: int) -> ConvBNAct:
            return ConvBNAct(cin, cout, kernel_size, norm_layer=norm_layer, act_layer=act_layer)

        self.in_channels = in_channels
        self.out_channels = ch1x1 + ch5x5 + ch3x3 + pool_proj
        self.branch1x1 = conv(in_channels, ch1x1, 1)
        self.branch5x5 = nn.Sequential(conv(in_channels, ch5x5red, 1), conv(ch5x5red, ch5x5, 5))
        self.branch3x3 = nn.Sequential(
            conv(in_channels, ch3x3red, 1), conv(ch3x3red, ch3x3, 3), conv(ch3x3, ch3x3, 3)
        )
        self.branch_pool = nn.Sequential(
            nn.AvgPool2d(kernel_size=3, stride=1, padding=1), conv(in_channels, pool_proj, 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``(N, in_channels, H, W)`` to ``(N, out_channels, H, W)``."""
        # Each branch called by name: TorchScript cannot call modules held in a tuple.
        outputs = [self.branch1x1(x), self.branch5x5(x), self.branch3x3(x), self.branch_pool(x)]
        return torch.cat(outputs, dim=1)


class Inception(nn.Module):
    """GoogLeNet's Inception module (Szegedy et al. 2014, figure 2b).

    Branches, in concatenation order: 1x1 conv; 1x1 reduction then 3x3 conv; 1x1 reduction then
    a real 5x5 conv (torchvision uses a 3x3 there, kept for its old weights); 3x3 max pool
    (stride 1, padding 1) then 1x1 projection. Every conv is followed by ``norm_layer`` and
    ``act_layer``. Input ``(N, in_channels, H, W)``, output ``(N, out_channels, H, W)`` with
    ``out_channels = ch1x1 + ch3x3 + ch5x5 + pool_proj``.

    Args:
        in_channels: Channels of the input.
        ch1x1: Width of the 1x1 branch.
        ch3x3red: Width of the 1x1 reduction before the 3x3 conv.
        ch3x3: Width of the 3x3 branch.
        ch5x5red: Width of the 1x1 reduction before the 5x5 conv.
        ch5x5: Width of the 5x5 branch.
        pool_proj: Width of the 1x1 projection after the max pool.
        norm_layer: Normalisation after each conv (``None``: none, convs have a bias).
        act_layer: Activation after each conv.
    """

    def __init__(
        self,
        in_channels: int,
        ch1x1: int,
        ch3x3red: int,
        ch3x3: int,
        ch5x5red: int,
        ch5x5: int,
        pool_proj: int,
        norm_layer: LayerFactory | None = nn.BatchNorm2d,
        act_layer: LayerFactory | None = nn.ReLU,
    ) -> None:
        super().__init__()
        _require_positive(
            "Inception",
            in_channels=in_channels,
            ch1x1=ch1x1,
            ch3x3red=ch3x3red,
            ch3x3=ch3x3,
            ch5x5red=ch5x5red,
            ch5x5=ch5x5,
            pool_proj=pool_proj,
        )

        def conv(cin: int, cout: int, kernel_size: int) -> ConvBNAct:
            return ConvBNAct(cin, cout, kernel_size, norm_layer=norm_layer, act_layer=act_layer)

        self.in_channels = in_channels
        self.out_channels = ch1x1 + ch3x3 + ch5x5 + pool_proj
        self.branch1 = conv(in_channels, ch1x1, 1)
        self.branch2 = nn.Sequential(conv(in_channels, ch3x3red, 1), conv(ch3x3red, ch3x3, 3))
        self.branch3 = nn.Sequential(conv(in_channels, ch5x5red, 1), conv(ch5x5red, ch5x5, 5))
        self.branch4 = nn.Sequential(
            nn.MaxPool2d(kernel_size=3, stride=1, padding=1), conv(in_channels, pool_proj, 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``(N, in_channels, H, W)`` to ``(N, out_channels, H, W)``."""
        # Each branch called by name: TorchScript cannot call modules held in a tuple.
        outputs = [self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)]
        return torch.cat(outputs, dim=1)


class ResidualBlock(nn.Module):
    """The advanced-CNN tutorial's residual block: ``relu(shortcut(x) + conv2(relu(conv1(x))))``.

    ``conv1`` is a 3x3 conv ``in_channels -> in_channels``, ``conv2`` a 3x3 conv
    ``in_channels -> out_channels``. The shortcut is the identity when the widths are equal and a
    3x3 projection conv otherwise (as in the tutorial). Input ``(N, in_channels, H, W)``, output
    ``(N, out_channels, H, W)``.

    Args:
        in_channels: Channels of the input.
        out_channels: Channels of the output.
        norm_layer: Normalisation after each conv (``None``, the tutorial's choice: plain convs
            with a bias).
    """

    # Where the residual branch ends, for stochastic depth (cnnzoo.augmentation.depth).
    drop_path_site = "conv2"

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        norm_layer: LayerFactory | None = None,
    ) -> None:
        super().__init__()
        _require_positive("ResidualBlock", in_channels=in_channels, out_channels=out_channels)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.conv1 = ConvBNAct(in_channels, in_channels, 3, norm_layer=norm_layer, act_layer=None)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = ConvBNAct(in_channels, out_channels, 3, norm_layer=norm_layer, act_layer=None)
        self.shortcut: nn.Module = (
            nn.Identity()
            if in_channels == out_channels
            else ConvBNAct(in_channels, out_channels, 3, norm_layer=norm_layer, act_layer=None)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``(N, in_channels, H, W)`` to ``(N, out_channels, H, W)``."""
        y = self.conv2(self.relu(self.conv1(x)))
        return self.relu(self.shortcut(x) + y)


def _conv3x3(
    in_channels: int, out_channels: int, stride: int = 1, groups: int = 1, dilation: int = 1
) -> nn.Conv2d:
    return nn.Conv2d(
        in_channels,
        out_channels,
        kernel_size=3,
        stride=stride,
        padding=dilation,
        groups=groups,
        bias=False,
        dilation=dilation,
    )


def _conv1x1(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False)


def _check_shortcut(
    block: str, in_channels: int, out_channels: int, stride: int, downsample: nn.Module | None
) -> None:
    """Fail at construction, not at the first forward, when the identity cannot be added."""
    if downsample is None and (stride != 1 or in_channels != out_channels):
        raise ValueError(
            f"{block}: with stride={stride}, in_channels={in_channels} and "
            f"out_channels={out_channels} the input cannot be added to the output as is; pass "
            "a downsample module (e.g. 1x1 conv + norm) that maps the input to the output shape"
        )


class BasicBlock(nn.Module):
    """ResNet's basic block (two 3x3 convs), parameter names as in torchvision.

    ``relu(bn2(conv2(relu(bn1(conv1(x))))) + downsample(x))``. Input
    ``(N, in_channels, H, W)``, output ``(N, planes, ceil(H / stride), ceil(W / stride))``.

    Args:
        in_channels: Channels of the input.
        planes: Width of both convs; the output has ``planes * expansion`` (= ``planes``)
            channels.
        stride: Stride of ``conv1`` (2 halves the resolution).
        downsample: Module mapping the input to the output shape for the shortcut; required
            when ``stride != 1`` or ``in_channels != planes``, otherwise ``None`` (identity).
        groups: Must be 1 (kept for torchvision's signature).
        base_width: Must be 64 (kept for torchvision's signature).
        dilation: Must be 1 (kept for torchvision's signature).
        norm_layer: Normalisation factory (default ``nn.BatchNorm2d``).

    Raises:
        ValueError: Unsupported ``groups``, ``base_width`` or ``dilation``, or a missing
            ``downsample``.
    """

    expansion: int = 1
    drop_path_site = "bn2"  # the residual branch ends here (stochastic depth)

    def __init__(
        self,
        in_channels: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        groups: int = 1,
        base_width: int = 64,
        dilation: int = 1,
        norm_layer: LayerFactory | None = None,
    ) -> None:
        super().__init__()
        _require_positive("BasicBlock", in_channels=in_channels, planes=planes, stride=stride)
        if groups != 1 or base_width != 64:
            raise ValueError(
                f"BasicBlock only supports groups=1 and base_width=64, got groups={groups}, "
                f"base_width={base_width}; use Bottleneck for grouped or wide blocks"
            )
        if dilation != 1:
            raise ValueError(f"BasicBlock only supports dilation=1, got {dilation}")
        norm_layer = norm_layer or nn.BatchNorm2d
        self.in_channels = in_channels
        self.out_channels = planes * self.expansion
        _check_shortcut("BasicBlock", in_channels, self.out_channels, stride, downsample)
        # conv1 and downsample both reduce the resolution when stride != 1.
        self.conv1 = _conv3x3(in_channels, planes, stride)
        self.bn1 = norm_layer(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv3x3(planes, planes)
        self.bn2 = norm_layer(planes)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``(N, in_channels, H, W)`` to ``(N, out_channels, H / stride, W / stride)``."""
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """ResNet's bottleneck block (1x1, 3x3, 1x1 convs), parameter names as in torchvision.

    The stride sits on the 3x3 conv (ResNet v1.5, as torchvision), not on the first 1x1 conv as
    in He et al. 2015; it is slightly more accurate and keeps torchvision's weights usable.
    Input ``(N, in_channels, H, W)``, output
    ``(N, planes * 4, ceil(H / stride), ceil(W / stride))``.

    Args:
        in_channels: Channels of the input.
        planes: Base width; the inner width is ``planes * base_width / 64 * groups`` and the
            output has ``planes * expansion`` (= ``4 * planes``) channels.
        stride: Stride of ``conv2`` (2 halves the resolution).
        downsample: Module mapping the input to the output shape for the shortcut; required
            when ``stride != 1`` or ``in_channels != 4 * planes``, otherwise ``None``.
        groups: Groups of the 3x3 conv (ResNeXt).
        base_width: Width per group (64 for ResNet; 128 for Wide ResNet-50-2).
        dilation: Dilation of the 3x3 conv.
        norm_layer: Normalisation factory (default ``nn.BatchNorm2d``).

    Raises:
        ValueError: Non-positive widths, or a missing ``downsample``.
    """

    expansion: int = 4
    drop_path_site = "bn3"  # the residual branch ends here (stochastic depth)

    def __init__(
        self,
        in_channels: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        groups: int = 1,
        base_width: int = 64,
        dilation: int = 1,
        norm_layer: LayerFactory | None = None,
    ) -> None:
        super().__init__()
        _require_positive(
            "Bottleneck",
            in_channels=in_channels,
            planes=planes,
            stride=stride,
            groups=groups,
            base_width=base_width,
            dilation=dilation,
        )
        norm_layer = norm_layer or nn.BatchNorm2d
        width = int(planes * (base_width / 64.0)) * groups
        self.in_channels = in_channels
        self.out_channels = planes * self.expansion
        _check_shortcut("Bottleneck", in_channels, self.out_channels, stride, downsample)
        # conv2 and downsample both reduce the resolution when stride != 1.
        self.conv1 = _conv1x1(in_channels, width)
        self.bn1 = norm_layer(width)
        self.conv2 = _conv3x3(width, width, stride, groups, dilation)
        self.bn2 = norm_layer(width)
        self.conv3 = _conv1x1(width, self.out_channels)
        self.bn3 = norm_layer(self.out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``(N, in_channels, H, W)`` to ``(N, out_channels, H / stride, W / stride)``."""
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)
