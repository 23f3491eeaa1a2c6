"""LeNet-5, both AlexNets, VGG and the seed tutorial nets against independent references.

The references are torchvision's own models (parameter counts, strict state-dict loading and
identical outputs) and the seed tutorials' classes, copied here as the tutorials wrote them.
Parameter counts and shape checks build the giants on the ``meta`` device, which allocates
nothing, so VGG-19's 143M parameters cost no time.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from cnnzoo.models import get, info

VGG_NAMES = [f"vgg{depth}{bn}" for depth in (11, 13, 16, 19) for bn in ("", "_bn")]
TORCHVISION_NAMES = ["alexnet", *VGG_NAMES]


def _count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _torchvision_model(name: str, **kwargs) -> nn.Module:
    return getattr(torchvision.models, name)(weights=None, **kwargs)


def _randomize_batch_norm_statistics(model: nn.Module) -> None:
    """Fresh BatchNorms are the identity in eval mode; make them do something to compare."""
    generator = torch.Generator().manual_seed(0)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            size = module.num_features
            module.running_mean.copy_(torch.randn(size, generator=generator) * 0.1)
            module.running_var.copy_(torch.rand(size, generator=generator) + 0.5)
            module.weight.data.copy_(torch.rand(size, generator=generator) + 0.5)
            module.bias.data.copy_(torch.randn(size, generator=generator) * 0.1)


# -- parameter counts -------------------------------------------------------------------------
@pytest.mark.parametrize("name", TORCHVISION_NAMES)
@pytest.mark.parametrize("num_classes", [1000, 7])
def test_parameter_count_equals_torchvision(name, num_classes):
    with torch.device("meta"):
        ours = get(name, num_classes=num_classes)
        reference = _torchvision_model(name, num_classes=num_classes)
    assert _count(ours) == _count(reference)


@pytest.mark.parametrize("name", TORCHVISION_NAMES)
def test_parameter_names_and_shapes_equal_torchvision(name):
    with torch.device("meta"):
        ours = get(name).state_dict()
        reference = _torchvision_model(name).state_dict()
    assert {k: v.shape for k, v in ours.items()} == {k: v.shape for k, v in reference.items()}


@pytest.mark.parametrize(
    ("name", "num_classes", "expected"),
    [
        ("lenet5", 10, 61_706),
        ("alexnet_original", 10, 58_299_082),
        ("network_bn", 2, 146_318),
        ("network_bn_v2", 2, 106_046),
        ("cifar_cnn", 10, 652_426),
    ],
)
def test_parameter_count_of_the_design_spec(name, num_classes, expected):
    with torch.device("meta"):
        model = get(name, num_classes=num_classes)
    assert _count(model) == expected
    assert info(name).num_params == expected


# -- torchvision state dicts load strictly and compute the same function ----------------------
def _torchvision_with_random_weights(name: str) -> nn.Module:
    """Torchvision's model with He-scaled random weights, skipping its slow 138M-weight init."""
    with torch.device("meta"):
        model = _torchvision_model(name)
    model.to_empty(device="cpu")
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for parameter in model.parameters():
            is_weight = parameter.dim() > 1
            std = (2.0 / parameter[0].numel()) ** 0.5 if is_weight else 0.1
            parameter.normal_(0.0, std, generator=generator)
        for buffer in model.buffers():  # to_empty left BatchNorm's statistics uninitialised
            buffer.zero_()
    _randomize_batch_norm_statistics(model)
    return model.eval()


@pytest.mark.parametrize("name", ["alexnet", "vgg11", "vgg16_bn"])
def test_torchvision_state_dict_loads_strictly_with_identical_outputs(name):
    reference = _torchvision_with_random_weights(name)
    with torch.device("meta"):  # the weights come from the state dict: skip our init too
        ours = get(name)
    ours.load_state_dict(reference.state_dict(), strict=True, assign=True)
    ours.eval()
    image = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = reference(image)
        assert expected.std() > 0.1  # a real signal reached the logits, not a vanishing one
        torch.testing.assert_close(ours(image), expected)


# -- small_input ------------------------------------------------------------------------------
SMALL_INPUT_CASES = [
    # name, input (C, H, W), feature map side
    ("alexnet", (1, 28, 28), 6),
    ("alexnet", (3, 32, 32), 7),
    ("vgg11_bn", (1, 28, 28), 3),
    ("vgg16", (3, 32, 32), 4),
]


@pytest.mark.parametrize(("name", "shape", "side"), SMALL_INPUT_CASES)
def test_small_input_trains_on_28_and_32_pixel_images(name, shape, side):
    torch.manual_seed(0)
    channels = shape[0]
    model = get(name, num_classes=10, in_channels=channels, small_input=True)
    assert model.input_size == (channels, 32, 32)
    x = torch.randn(2, *shape)
    assert model.forward_features(x).shape[-2:] == (side, side)
    logits = model(x)
    assert logits.shape == (2, 10)
    assert torch.isfinite(logits).all()
    F.cross_entropy(logits, torch.tensor([1, 9])).backward()
    first_conv = model.features[0]
    assert first_conv.weight.grad is not None
    assert torch.isfinite(first_conv.weight.grad).all()
    assert first_conv.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("name", VGG_NAMES)
def test_vgg_small_input_keeps_torchvision_convolution_names_and_shapes(name):
    with torch.device("meta"):
        ours = get(name, small_input=True).state_dict()
        reference = _torchvision_model(name).state_dict()
    features = {k: v.shape for k, v in ours.items() if k.startswith("features.")}
    assert features == {k: v.shape for k, v in reference.items() if k.startswith("features.")}
    assert ours["classifier.6.weight"].shape == (1000, 512)


def test_alexnet_small_input_changes_only_the_stem_shape():
    with torch.device("meta"):
        ours = get("alexnet", small_input=True).state_dict()
        reference = _torchvision_model("alexnet").state_dict()
    assert ours.keys() == reference.keys()
    changed = sorted(k for k in ours if ours[k].shape != reference[k].shape)
    assert changed == ["features.0.weight"]
    assert ours["features.0.weight"].shape == (64, 3, 3, 3)


# -- input size: the stated minimum is the true one --------------------------------------------
MIN_SIZE_CASES = [
    ("alexnet", {}, (63, 63)),
    ("alexnet", {"small_input": True}, (7, 7)),
    *((name, {}, (32, 32)) for name in VGG_NAMES),
    *((name, {"small_input": True}, (8, 8)) for name in VGG_NAMES),
]


@pytest.mark.parametrize(("name", "options", "minimum"), MIN_SIZE_CASES)
def test_min_input_size_is_the_true_minimum(name, options, minimum):
    with torch.device("meta"):
        model = get(name, **options).eval()  # BatchNorm in training mode refuses a 1x1 batch of 1
    assert model.min_input_size == minimum
    height, width = minimum
    features = model.forward_features(torch.empty(1, 3, height, width, device="meta"))
    assert features.shape[-2:] == (1, 1)
    # One pixel less: torch itself fails inside the trunk, and check_input catches it first.
    for smaller in ((height - 1, width), (height, width - 1)):
        x = torch.empty(1, 3, *smaller, device="meta")
        with pytest.raises(RuntimeError, match="too small"):
            model.forward_features(x)
        with pytest.raises(ValueError, match=rf"{name} needs images of at least {height}x{width}"):
            model.check_input(x)


def test_too_small_image_suggests_small_input_only_when_it_is_off():
    with torch.device("meta"):
        default = get("vgg11")
        small = get("vgg11", small_input=True)
    with pytest.raises(ValueError, match=r"got 28x28.*small_input=True"):
        default.check_input(torch.empty(1, 3, 28, 28, device="meta"))
    with pytest.raises(ValueError, match=r"at least 8x8; got 7x7") as caught:
        small.check_input(torch.empty(1, 3, 7, 7, device="meta"))
    assert "small_input" not in str(caught.value)


def test_small_input_vgg_runs_at_its_minimum_size():
    model = get("vgg11_bn", num_classes=3, in_channels=1, small_input=True).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 1, 8, 8)).shape == (1, 3)


@pytest.mark.parametrize(
    ("name", "size"),
    [("lenet5", 28), ("alexnet_original", 227), ("network_bn", 224), ("cifar_cnn", 32)],
)
def test_fixed_size_models_refuse_any_other_size(name, size):
    with torch.device("meta"):
        model = get(name)
    assert model.fixed_input_size
    assert model.min_input_size == (size, size)
    channels = model.in_channels
    for other in (size - 1, size + 1):
        with pytest.raises(ValueError, match=rf"{name} takes exactly {size}x{size} images.*Resize"):
            model.check_input(torch.empty(2, channels, other, size, device="meta"))


def test_wrong_channel_count_names_the_fix():
    model = get("lenet5")
    with pytest.raises(
        ValueError, match=r"lenet5 expects 1 input channel\(s\), got 3.*in_channels=3"
    ):
        model(torch.randn(2, 3, 28, 28))
    with pytest.raises(ValueError, match=r"unsqueeze\(0\)"):
        model(torch.randn(1, 28, 28))


# -- the head: pre_logits, reset_classifier, num_classes=0 --------------------------------------
def test_reset_classifier_replaces_only_the_last_linear():
    torch.manual_seed(0)
    model = get("vgg11", num_classes=10, small_input=True).eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.reset_classifier(4)
    after = model.state_dict()
    assert model.classifier[6].out_features == 4
    assert after.keys() == before.keys()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed == {"classifier.6.weight", "classifier.6.bias"}
    assert after["classifier.6.weight"].shape == (4, 512)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        features = model.forward_head(model.forward_features(x), pre_logits=True)
        assert features.shape == (2, model.num_features) == (2, 512)
        torch.testing.assert_close(model(x), model.classifier[6](features))


@pytest.mark.parametrize(("name", "num_features"), [("lenet5", 84), ("cifar_cnn", 128)])
def test_num_classes_zero_returns_the_features(name, num_features):
    model = get(name, num_classes=0).eval()
    x = torch.randn(2, *model.input_size)
    with torch.no_grad():
        assert model(x).shape == (2, num_features)


def test_options_reach_the_layers():
    with torch.device("meta"):
        alexnet = get("alexnet", dropout=0.25)
        vgg = get("vgg13_bn", dropout=0.1, in_channels=5)
    assert [m.p for m in alexnet.modules() if isinstance(m, nn.Dropout)] == [0.25, 0.25]
    assert [m.p for m in vgg.modules() if isinstance(m, nn.Dropout)] == [0.1, 0.1]
    assert vgg.features[0].in_channels == 5
    assert vgg.input_size == (5, 224, 224)


def test_vgg_refuses_an_unknown_depth():
    from cnnzoo.models.vgg import VGG

    with pytest.raises(ValueError, match=r"depth must be one of \[11, 13, 16, 19\], got 12"):
        VGG(depth=12)


# -- the seed tutorials' own classes load into the zoo models ----------------------------------
class SeedLeNet(nn.Module):
    """Seed 002's LeNet, plus the sigmoids between the Linear layers that LeNet-5 has."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(in_channels=1, out_channels=6, kernel_size=5, padding=2)
        self.sig = nn.Sigmoid()
        self.s2 = nn.AvgPool2d(kernel_size=2, stride=2)
        self.c3 = nn.Conv2d(in_channels=6, out_channels=16, kernel_size=5)
        self.s4 = nn.AvgPool2d(kernel_size=2, stride=2)
        self.flatten = nn.Flatten()
        self.f5 = nn.Linear(400, 120)
        self.f6 = nn.Linear(120, 84)
        self.f7 = nn.Linear(84, 10)

    def forward(self, x):
        x = self.s2(self.sig(self.c1(x)))
        x = self.s4(self.sig(self.c3(x)))
        x = self.flatten(x)
        x = self.sig(self.f5(x))
        x = self.sig(self.f6(x))
        return self.f7(x)


class SeedAlexNet(nn.Module):
    """Seed 002's AlexNet; its F.dropout(x, 0.5) is told about eval mode here."""

    def __init__(self):
        super().__init__()
        self.ReLu = nn.ReLU()
        self.c1 = nn.Conv2d(in_channels=1, out_channels=96, kernel_size=11, stride=4)
        self.s2 = nn.MaxPool2d(kernel_size=3, stride=2)
        self.c3 = nn.Conv2d(in_channels=96, out_channels=256, kernel_size=5, padding=2)
        self.s4 = nn.MaxPool2d(kernel_size=3, stride=2)
        self.c5 = nn.Conv2d(in_channels=256, out_channels=384, kernel_size=3, padding=1)
        self.c6 = nn.Conv2d(in_channels=384, out_channels=384, kernel_size=3, padding=1)
        self.c7 = nn.Conv2d(in_channels=384, out_channels=256, kernel_size=3, padding=1)
        self.s8 = nn.MaxPool2d(kernel_size=3, stride=2)
        self.flatten = nn.Flatten()
        self.f1 = nn.Linear(6 * 6 * 256, 4096)
        self.f2 = nn.Linear(4096, 4096)
        self.f3 = nn.Linear(4096, 10)

    def forward(self, x):
        x = self.s2(self.ReLu(self.c1(x)))
        x = self.s4(self.ReLu(self.c3(x)))
        x = self.ReLu(self.c5(x))
        x = self.ReLu(self.c6(x))
        x = self.s8(self.ReLu(self.c7(x)))
        x = self.flatten(x)
        x = F.dropout(self.ReLu(self.f1(x)), 0.5, self.training)
        x = F.dropout(self.ReLu(self.f2(x)), 0.5, self.training)
        return self.f3(x)


class SeedNetworkBN(nn.Module):
    """Seed 000's original Network_bn."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels=3, out_channels=12, kernel_size=5, stride=1, padding=0)
        self.bn1 = nn.BatchNorm2d(12)
        self.conv2 = nn.Conv2d(in_channels=12, out_channels=12, kernel_size=5, stride=1, padding=0)
        self.bn2 = nn.BatchNorm2d(12)
        self.pool = nn.MaxPool2d(2, 2)
        self.conv4 = nn.Conv2d(in_channels=12, out_channels=24, kernel_size=5, stride=1, padding=0)
        self.bn4 = nn.BatchNorm2d(24)
        self.conv5 = nn.Conv2d(in_channels=24, out_channels=24, kernel_size=5, stride=1, padding=0)
        self.bn5 = nn.BatchNorm2d(24)
        self.fc1 = nn.Linear(24 * 50 * 50, 2)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        x = self.pool(x)
        x = F.relu(self.bn4(self.conv4(x)))
        x = F.relu(self.bn5(self.conv5(x)))
        x = self.pool(x)
        x = x.view(-1, 24 * 50 * 50)
        return self.fc1(x)


class SeedNetworkBNv2(nn.Module):
    """Seed 000's adjusted Network_bn."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels=3, out_channels=12, kernel_size=5, stride=1, padding=0),
            nn.BatchNorm2d(12),
            nn.ReLU(),
            nn.Conv2d(in_channels=12, out_channels=12, kernel_size=5, stride=1, padding=0),
            nn.BatchNorm2d(12),
            nn.ReLU(),
            nn.MaxPool2d(2, 2),
            nn.Conv2d(in_channels=12, out_channels=24, kernel_size=5, stride=1, padding=0),
            nn.BatchNorm2d(24),
            nn.ReLU(),
            nn.Conv2d(in_channels=24, out_channels=24, kernel_size=5, stride=1, padding=0),
            nn.BatchNorm2d(24),
            nn.ReLU(),
            nn.MaxPool2d(2, 2),
            nn.Conv2d(in_channels=24, out_channels=48, kernel_size=5, stride=1, padding=0),
            nn.BatchNorm2d(48),
            nn.ReLU(),
            nn.MaxPool2d(2, 2),
        )
        self.classifier = nn.Linear(48 * 23 * 23, 2)

    def forward(self, x):
        x = self.features(x)
        x = x.view(-1, 48 * 23 * 23)
        return self.classifier(x)


class SeedCifarNet(nn.Module):
    """Seed 001's CIFAR-10 Net."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Sequential(
            nn.Conv2d(3, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2, 2)
        )
        self.conv2 = nn.Sequential(
            nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2, 2)
        )
        self.conv3 = nn.Sequential(
            nn.Conv2d(64, 128, 3, padding=1), nn.BatchNorm2d(128), nn.ReLU(), nn.MaxPool2d(2, 2)
        )
        self.fc1 = nn.Linear(128 * 4 * 4, 256)
        self.fc2 = nn.Linear(256, 128)
        self.fc3 = nn.Linear(128, 10)
        self.dropout = nn.Dropout(0.5)

    def forward(self, x):
        x = self.conv3(self.conv2(self.conv1(x)))
        x = x.view(-1, 128 * 4 * 4)
        x = self.dropout(F.relu(self.fc1(x)))
        x = self.dropout(F.relu(self.fc2(x)))
        return self.fc3(x)


@pytest.mark.parametrize(
    ("name", "seed_class"),
    [
        ("lenet5", SeedLeNet),
        ("alexnet_original", SeedAlexNet),
        ("network_bn", SeedNetworkBN),
        ("network_bn_v2", SeedNetworkBNv2),
        ("cifar_cnn", SeedCifarNet),
    ],
)
def test_seed_state_dict_loads_strictly_with_identical_outputs(name, seed_class):
    torch.manual_seed(0)
    reference = seed_class().eval()
    _randomize_batch_norm_statistics(reference)
    ours = get(name).eval()
    ours.load_state_dict(reference.state_dict(), strict=True)
    image = torch.randn(2, *ours.input_size)
    with torch.no_grad():
        torch.testing.assert_close(ours(image), reference(image))
