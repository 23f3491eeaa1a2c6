"""ResNet, DenseNet, GoogLeNet and the seed-003 mini nets.

torchvision's own models are the reference for the ResNets and DenseNet-121 (counts, keys and
outputs); seed 003's networks, transcribed below, for the mini nets. Parameter counts and keys
are compared on the ``meta`` device, which allocates nothing, so even ResNet-152 is instant.
The registry-wide contract (every model at its default and minimum sizes) is tested in
``test_contract.py``; this file tests what is particular to these families.
"""

from __future__ import annotations

import re

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from cnnzoo.blocks import InceptionA, ResidualBlock
from cnnzoo.models import get
from cnnzoo.models.densenet import DenseNet
from cnnzoo.models.googlenet import GoogLeNet

TORCHVISION_COMPATIBLE = [
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet152",
    "densenet121",
]


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def key_shapes(module: nn.Module) -> list[tuple[str, torch.Size]]:
    return [(k, v.shape) for k, v in module.state_dict().items()]


def randomize_norm_statistics(model: nn.Module) -> None:
    """Give every BatchNorm non-trivial running statistics and affine parameters.

    Freshly initialised models have mean 0, var 1, weight 1, bias 0 everywhere, which would let
    an eval-mode comparison pass with the norm layers wired wrongly.
    """
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                size = m.num_features
                m.running_mean.copy_(torch.randn(size, generator=generator) * 0.1)
                m.running_var.copy_(torch.rand(size, generator=generator) + 0.5)
                m.weight.copy_(torch.rand(size, generator=generator) + 0.5)
                m.bias.copy_(torch.randn(size, generator=generator) * 0.1)


# --- torchvision compatibility ------------------------------------------------------------------
@pytest.mark.parametrize("name", TORCHVISION_COMPATIBLE)
@pytest.mark.parametrize("num_classes", [1000, 7])
def test_counts_and_keys_equal_torchvision(name, num_classes):
    with torch.device("meta"):
        theirs = getattr(torchvision.models, name)(num_classes=num_classes)
        ours = get(name, num_classes=num_classes)
        ours_small = get(name, num_classes=num_classes, small_input=True)
    assert n_params(ours) == n_params(theirs)
    assert key_shapes(ours) == key_shapes(theirs)
    # the small-input stem keeps every key; only the first conv's kernel shrinks to 3x3
    stem = "conv1.weight" if name.startswith("resnet") else "features.conv0.weight"
    small_shapes = dict(key_shapes(ours_small))
    assert small_shapes.keys() == dict(key_shapes(theirs)).keys()
    assert small_shapes[stem][-2:] == (3, 3)


@pytest.mark.parametrize("name", ["resnet18", "resnet50", "densenet121"])
def test_torchvision_state_dict_loads_strictly_and_gives_identical_outputs(name):
    torch.manual_seed(0)
    theirs = getattr(torchvision.models, name)().eval()
    randomize_norm_statistics(theirs)
    ours = get(name).eval()
    ours.load_state_dict(theirs.state_dict(), strict=True)
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x))


def test_densenet_loads_legacy_checkpoint_keys():
    # torchvision's published DenseNet files spell "denselayer1.norm.1.weight" (old module names)
    with torch.device("meta"):
        reference = torchvision.models.densenet121()
    # (those files predate BatchNorm's num_batches_tracked buffer, which must be optional)
    legacy = {
        re.sub(r"(denselayer\d+\.(?:norm|conv))([12])\.", r"\1.\2.", key): torch.full(v.shape, 0.5)
        for key, v in reference.state_dict().items()
        if not key.endswith("num_batches_tracked")
    }
    assert any(".norm.1." in key for key in legacy)
    model = get("densenet121")
    model.load_state_dict(legacy, strict=True)
    assert torch.equal(model.features.denseblock1.denselayer1.norm1.weight, torch.full((64,), 0.5))


def test_resnet_initialisation_and_zero_init_residual():
    model = get("resnet18", zero_init_residual=True)
    last_norms = [block.bn2.weight for stage in (model.layer1, model.layer4) for block in stage]
    assert all(torch.count_nonzero(w) == 0 for w in last_norms)
    assert torch.count_nonzero(model.layer1[0].bn1.weight) == 64
    deep = get("resnet50", zero_init_residual=True)
    assert torch.count_nonzero(deep.layer2[0].bn3.weight) == 0
    # torchvision's init: Kaiming normal with fan_out on the convs (std sqrt(2 / fan_out))
    conv = get("resnet18").layer3[0].conv2.weight
    fan_out = conv.shape[0] * conv.shape[2] * conv.shape[3]
    assert conv.std().item() == pytest.approx((2 / fan_out) ** 0.5, rel=0.05)


# --- small_input --------------------------------------------------------------------------------
SMALL_FINAL_MAP = {"resnet18": 4, "densenet121": 4, "googlenet": 8}  # at 32x32: 32/8 and 32/4


@pytest.mark.parametrize("name", ["resnet18", "densenet121", "googlenet"])
@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32)])
def test_small_input_models_train_on_28_and_32_pixel_images(name, shape):
    torch.manual_seed(0)
    model = get(name, num_classes=10, in_channels=shape[0], small_input=True)
    assert model.input_size == (shape[0], 32, 32)
    x = torch.randn(2, *shape)
    features = model.forward_features(x)
    if shape[1] == 32:
        assert features.shape[-2:] == (SMALL_FINAL_MAP[name],) * 2
    logits = model.forward_head(features)
    assert logits.shape == (2, 10)
    assert torch.isfinite(logits).all()
    F.cross_entropy(logits, torch.tensor([1, 7])).backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize(
    ("name", "small_input"),
    [("resnet18", True), ("densenet121", True), ("googlenet", True), ("googlenet", False)],
)
def test_min_input_size_is_the_true_minimum(name, small_input):
    """At the minimum the network runs; one pixel less our check refuses and torch would fail."""
    model = get(name, small_input=small_input).eval()
    size = model.min_input_size[0]
    with torch.no_grad():
        assert model(torch.randn(1, model.in_channels, size, size)).shape == (1, 1000)
        too_small = torch.randn(1, model.in_channels, size - 1, size)
        with pytest.raises(ValueError, match=rf"at least {size}x{size}"):
            model(too_small)
        with pytest.raises(RuntimeError):  # without our check: a raw torch error, deep inside
            model.forward_features(too_small)


def test_full_stem_suggests_small_input_for_tiny_images():
    with pytest.raises(ValueError, match="small_input=True"):
        get("densenet121", in_channels=1)(torch.randn(1, 1, 28, 28))


def test_densenet_memory_efficient_gives_the_same_outputs_and_gradients():
    # a two-block DenseNet exercises the same checkpointed layers as DenseNet-121, in a blink
    def build(memory_efficient: bool) -> DenseNet:
        return DenseNet(8, (3, 3), 16, num_classes=3, memory_efficient=memory_efficient)

    torch.manual_seed(0)
    plain, efficient = build(False), build(True)
    efficient.load_state_dict(plain.state_dict())
    x = torch.randn(2, 3, 16, 16)
    out_plain, out_efficient = plain(x), efficient(x)
    torch.testing.assert_close(out_efficient, out_plain)
    out_plain.square().sum().backward()
    out_efficient.square().sum().backward()
    for (name, p), q in zip(plain.named_parameters(), efficient.parameters(), strict=True):
        torch.testing.assert_close(q.grad, p.grad, msg=f"gradients differ at {name}")


# --- GoogLeNet ----------------------------------------------------------------------------------
def test_googlenet_follows_the_paper_with_real_5x5_convolutions():
    model = get("googlenet")
    names = ("3a", "3b", "4a", "4b", "4c", "4d", "4e", "5a", "5b")
    modules = [getattr(model, f"inception{n}") for n in names]
    # output widths of the paper's table 1
    assert [m.out_channels for m in modules] == [256, 480, 512, 512, 512, 528, 832, 832, 1024]
    for module in modules:
        kernels = [m.kernel_size for m in module.branch3.modules() if isinstance(m, nn.Conv2d)]
        assert kernels == [(1, 1), (5, 5)]
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(convs) == len(norms)  # batch norm after every conv
    assert model.aux1 is None and model.aux2 is None


def test_googlenet_aux_logits_keep_forward_plain_and_offer_forward_with_aux():
    torch.manual_seed(0)
    model = get("googlenet", num_classes=5, aux_logits=True)
    x = torch.randn(2, 3, 64, 64)  # small enough to be quick, large enough for every pool
    logits = model(x)
    assert isinstance(logits, torch.Tensor)
    assert logits.shape == (2, 5)
    main, aux1, aux2 = model.forward_with_aux(x)
    assert main.shape == aux1.shape == aux2.shape == (2, 5)
    target = torch.tensor([0, 4])
    loss = F.cross_entropy(main, target) + 0.3 * (
        F.cross_entropy(aux1, target) + F.cross_entropy(aux2, target)
    )
    loss.backward()
    assert model.aux1.fc2.weight.grad is not None
    assert model.aux2.conv.conv.weight.grad is not None

    model.reset_classifier(3)
    model.eval()
    with torch.no_grad():
        assert all(out.shape == (2, 3) for out in model.forward_with_aux(x))


def test_googlenet_without_aux_heads_refuses_forward_with_aux():
    model = get("googlenet", small_input=True)
    with pytest.raises(ValueError, match="aux_logits=True"):
        model.forward_with_aux(torch.randn(1, 3, 32, 32))
    assert isinstance(model, GoogLeNet)


# --- seed 003's mini nets -----------------------------------------------------------------------
class SeedInceptionNet(nn.Module):
    """Seed 003's ``Net``, with the (separately tested) ``InceptionA`` block."""

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


class SeedResidualNet(nn.Module):
    """Seed 003's ``MyModule``, with the (separately tested) ``ResidualBlock``."""

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


def test_mini_inception_matches_design_and_the_seed_network():
    torch.manual_seed(0)
    seed, ours = SeedInceptionNet(), get("mini_inception")
    assert n_params(ours) == n_params(seed) == 97_298
    ours.features.conv1.load_state_dict(seed.conv1.state_dict())
    ours.features.inception1.load_state_dict(seed.incep1.state_dict())
    ours.features.conv2.load_state_dict(seed.conv2.state_dict())
    ours.features.inception2.load_state_dict(seed.incep2.state_dict())
    ours.fc.load_state_dict(seed.fc.state_dict())
    x = torch.randn(2, 1, 28, 28)
    torch.testing.assert_close(ours(x), seed(x))
    assert ours.forward_features(x).shape == (2, 88, 4, 4)
    assert ours.num_features == 1408


def test_mini_resnet_matches_design_and_the_seed_network():
    torch.manual_seed(0)
    seed, ours = SeedResidualNet(), get("mini_resnet")
    assert n_params(ours) == n_params(seed) == 14_570
    ours.features.block1.load_state_dict(seed.r1.state_dict())
    ours.features.block2.load_state_dict(seed.r2.state_dict())
    ours.fc.load_state_dict(seed.fc.state_dict())
    x = torch.randn(2, 1, 28, 28)
    torch.testing.assert_close(ours(x), seed(x))
    assert ours.forward_features(x).shape == (2, 20, 7, 7)


@pytest.mark.parametrize("name", ["mini_inception", "mini_resnet"])
def test_mini_nets_take_exactly_28x28(name):
    model = get(name, num_classes=4, in_channels=3)
    assert model.fixed_input_size and model.input_size == (3, 28, 28)
    assert model(torch.randn(1, 3, 28, 28)).shape == (1, 4)
    with pytest.raises(ValueError, match="exactly 28x28"):
        model(torch.randn(1, 3, 32, 32))
