"""The public blocks: shapes, parameter counts and behaviour against independent references.

References: seed 003's own ``InceptionA`` and ``IdentityBlock`` (transcribed below from the
tutorial) and torchvision's ``BasicBlock``, ``Bottleneck`` and GoogLeNet ``Inception``.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import resnet as tv_resnet
from torchvision.models.googlenet import Inception as TorchvisionInception

from cnnzoo.blocks import BasicBlock, Bottleneck, ConvBNAct, Inception, InceptionA, ResidualBlock


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def assert_every_parameter_gets_a_gradient(block: nn.Module, x: torch.Tensor) -> None:
    block(x).square().mean().backward()
    for name, p in block.named_parameters():
        assert p.grad is not None, f"no gradient reached {name}"
        assert torch.isfinite(p.grad).all()
        assert p.grad.abs().sum() > 0, f"zero gradient at {name}"


def copy_parameters_in_order(source: nn.Module, target: nn.Module) -> None:
    """Copy parameters pairwise, in registration order (the modules must define them alike)."""
    pairs = list(zip(source.parameters(), target.parameters(), strict=True))
    with torch.no_grad():
        for src, dst in pairs:
            dst.copy_(src)


# --- seed 003, transcribed (the tutorial's code, only renamed) ---------------------------------
class SeedInceptionA(nn.Module):
    def __init__(self, in_channels):
        super().__init__()
        self.branch1x1 = nn.Conv2d(in_channels, 16, kernel_size=1)
        self.branch5x5_1 = nn.Conv2d(in_channels, 16, kernel_size=1)
        self.branch5x5_2 = nn.Conv2d(16, 24, kernel_size=5, padding=2)
        self.branch3x3_1 = nn.Conv2d(in_channels, 16, kernel_size=1)
        self.branch3x3_2 = nn.Conv2d(16, 24, kernel_size=3, padding=1)
        self.branch3x3_3 = nn.Conv2d(24, 24, kernel_size=3, padding=1)
        self.branch_pool = nn.Conv2d(in_channels, 24, kernel_size=1)

    def forward(self, x):
        branch1x1 = self.branch1x1(x)
        branch5x5 = self.branch5x5_2(self.branch5x5_1(x))
        branch3x3 = self.branch3x3_3(self.branch3x3_2(self.branch3x3_1(x)))
        branch_pool = self.branch_pool(F.avg_pool2d(x, kernel_size=3, stride=1, padding=1))
        return torch.cat([branch1x1, branch5x5, branch3x3, branch_pool], dim=1)


class SeedIdentityBlock(nn.Module):
    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, in_channels, kernel_size=3, padding=1)
        self.conv2 = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1)
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1)
        self.activate = nn.ReLU()

    def forward(self, x):
        y = self.activate(self.conv1(x))
        y = self.conv2(y)
        x = self.conv(x)
        return self.activate(x + y)


# --- ConvBNAct ---------------------------------------------------------------------------------
def test_conv_bn_act_children_shapes_and_same_padding():
    block = ConvBNAct(3, 16, kernel_size=5, stride=2)
    assert [name for name, _ in block.named_children()] == ["conv", "bn", "act"]
    assert block.conv.bias is None  # the norm layer makes it redundant
    assert block.out_channels == 16
    assert block(torch.randn(2, 3, 31, 32)).shape == (2, 16, 16, 16)
    assert ConvBNAct(4, 8, kernel_size=(3, 5))(torch.randn(1, 4, 9, 9)).shape == (1, 8, 9, 9)


def test_conv_bn_act_without_norm_or_activation_is_a_biased_conv():
    block = ConvBNAct(3, 8, kernel_size=3, norm_layer=None, act_layer=None)
    assert [name for name, _ in block.named_children()] == ["conv"]
    assert block.conv.bias is not None
    x = torch.randn(1, 3, 6, 6)
    torch.testing.assert_close(block(x), F.conv2d(x, block.conv.weight, block.conv.bias, padding=1))


def test_conv_bn_act_takes_activations_with_and_without_inplace():
    assert ConvBNAct(2, 4, act_layer=nn.ReLU).act.inplace
    gelu = ConvBNAct(2, 4, act_layer=nn.GELU, norm_layer=None)
    assert isinstance(gelu.act, nn.GELU)
    assert_every_parameter_gets_a_gradient(gelu, torch.randn(2, 2, 5, 5))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"in_channels": 0, "out_channels": 4}, "in_channels must be an integer >= 1"),
        ({"in_channels": 3, "out_channels": 4, "groups": 2}, "divisible by groups"),
    ],
)
def test_conv_bn_act_rejects_bad_widths(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ConvBNAct(**kwargs)


# --- InceptionA (seed 003) ---------------------------------------------------------------------
@pytest.mark.parametrize("in_channels", [10, 20])
def test_inception_a_equals_the_seed_module(in_channels):
    torch.manual_seed(0)
    seed, ours = SeedInceptionA(in_channels), InceptionA(in_channels)
    assert n_params(ours) == n_params(seed)
    copy_parameters_in_order(seed, ours)
    x = torch.randn(2, in_channels, 12, 12)
    out = ours(x)
    assert ours.out_channels == 88
    assert out.shape == (2, 88, 12, 12)
    torch.testing.assert_close(out, seed(x))


def test_inception_a_widths_norm_and_gradients():
    block = InceptionA(5, ch1x1=2, ch5x5red=3, ch5x5=4, ch3x3red=3, ch3x3=6, pool_proj=7)
    assert block.out_channels == 2 + 4 + 6 + 7
    assert block(torch.randn(1, 5, 7, 7)).shape == (1, 19, 7, 7)
    normed = InceptionA(5, norm_layer=nn.BatchNorm2d, act_layer=nn.ReLU)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in normed.modules()) == 7
    assert_every_parameter_gets_a_gradient(normed, torch.randn(2, 5, 6, 6))


# --- Inception (GoogLeNet) ---------------------------------------------------------------------
INCEPTION_3A = (192, 64, 96, 128, 16, 32, 32)  # the paper's table 1


def test_inception_has_a_real_5x5_branch_unlike_torchvision():
    ours = Inception(*INCEPTION_3A)
    theirs = TorchvisionInception(*INCEPTION_3A)  # its "5x5" branch is a 3x3 conv
    five_by_five = [m for m in ours.branch3.modules() if isinstance(m, nn.Conv2d)][-1]
    assert tuple(five_by_five.kernel_size) == (5, 5)
    ch5x5red, ch5x5 = INCEPTION_3A[4], INCEPTION_3A[5]
    assert n_params(ours) == n_params(theirs) + (25 - 9) * ch5x5red * ch5x5
    assert ours.out_channels == 64 + 128 + 32 + 32
    assert ours(torch.randn(1, 192, 7, 7)).shape == (1, 256, 7, 7)


def test_inception_uses_a_max_pool_branch_and_a_norm_after_every_conv():
    block = Inception(8, 4, 4, 4, 2, 2, 2)
    assert isinstance(block.branch4[0], nn.MaxPool2d)
    convs = [m for m in block.modules() if isinstance(m, nn.Conv2d)]
    norms = [m for m in block.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(convs) == len(norms) == 6
    assert all(conv.bias is None for conv in convs)
    assert_every_parameter_gets_a_gradient(block, torch.randn(2, 8, 5, 5))


# --- ResidualBlock (seed 003) ------------------------------------------------------------------
def test_residual_block_with_projection_equals_the_seed_block():
    torch.manual_seed(0)
    seed, ours = SeedIdentityBlock(10, 20), ResidualBlock(10, 20)
    assert n_params(ours) == n_params(seed)
    copy_parameters_in_order(seed, ours)
    x = torch.randn(2, 10, 14, 14)
    out = ours(x)
    assert out.shape == (2, 20, 14, 14)
    torch.testing.assert_close(out, seed(x))
    assert_every_parameter_gets_a_gradient(ours, x)


def test_residual_block_with_equal_widths_has_an_identity_shortcut():
    block = ResidualBlock(6, 6)
    assert isinstance(block.shortcut, nn.Identity)
    assert n_params(block) == 2 * (6 * 6 * 9 + 6)  # two 3x3 convs with bias, no projection
    x = torch.randn(2, 6, 5, 5)
    y = block.conv2(F.relu(block.conv1(x)))
    torch.testing.assert_close(block(x), F.relu(x + y))


# --- BasicBlock and Bottleneck (torchvision) ---------------------------------------------------
def _downsample(in_channels: int, out_channels: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
        nn.BatchNorm2d(out_channels),
    )


RESNET_BLOCK_CASES = [
    (BasicBlock, tv_resnet.BasicBlock, 64, 64, 1),
    (BasicBlock, tv_resnet.BasicBlock, 64, 128, 2),
    (Bottleneck, tv_resnet.Bottleneck, 256, 64, 1),
    (Bottleneck, tv_resnet.Bottleneck, 64, 128, 2),
]


@pytest.mark.parametrize(
    ("ours_cls", "tv_cls", "in_channels", "planes", "stride"), RESNET_BLOCK_CASES
)
def test_resnet_blocks_match_torchvision(ours_cls, tv_cls, in_channels, planes, stride):
    out_channels = planes * tv_cls.expansion
    needs_downsample = stride != 1 or in_channels != out_channels
    torch.manual_seed(0)

    def downsample() -> nn.Sequential | None:
        return _downsample(in_channels, out_channels, stride) if needs_downsample else None

    theirs = tv_cls(in_channels, planes, stride, downsample())
    ours = ours_cls(in_channels, planes, stride, downsample())

    assert ours_cls.expansion == tv_cls.expansion
    assert ours.out_channels == out_channels
    ours_shapes = {k: v.shape for k, v in ours.state_dict().items()}
    assert ours_shapes == {k: v.shape for k, v in theirs.state_dict().items()}
    assert n_params(ours) == n_params(theirs)

    ours.load_state_dict(theirs.state_dict(), strict=True)
    x = torch.randn(2, in_channels, 8, 8)
    for mode in (True, False):  # batch statistics, then running statistics
        ours.train(mode)
        theirs.train(mode)
        out = ours(x)
        assert out.shape == (2, out_channels, 8 // stride, 8 // stride)
        torch.testing.assert_close(out, theirs(x))
    ours.train()
    assert_every_parameter_gets_a_gradient(ours, x)


def test_bottleneck_supports_grouped_and_wide_widths_like_torchvision():
    ours = Bottleneck(256, 64, groups=32, base_width=4)
    theirs = tv_resnet.Bottleneck(256, 64, groups=32, base_width=4)
    assert {k: v.shape for k, v in ours.state_dict().items()} == {
        k: v.shape for k, v in theirs.state_dict().items()
    }


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: BasicBlock(64, 64, groups=2), "groups=1 and base_width=64"),
        (lambda: BasicBlock(64, 64, base_width=32), "groups=1 and base_width=64"),
        (lambda: BasicBlock(64, 64, dilation=2), "dilation=1"),
        (lambda: BasicBlock(64, 128), "pass a downsample module"),
        (lambda: BasicBlock(64, 64, stride=2), "pass a downsample module"),
        (lambda: Bottleneck(64, 64), "pass a downsample module"),
        (lambda: Bottleneck(64, 0), "planes must be an integer >= 1"),
    ],
)
def test_resnet_blocks_fail_fast_with_a_clear_message(build, message):
    with pytest.raises(ValueError, match=message):
        build()
