"""Every registered model honours the cnnzoo model contract.

Parametrized from the registry itself, so a newly registered model is tested without editing
this file.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cnnzoo import count_parameters
from cnnzoo.models import get, info, list_models
from cnnzoo.models.registry import lookup

MODEL_NAMES = list_models()


def _input(model: nn.Module, batch: int, height: int, width: int) -> torch.Tensor:
    torch.manual_seed(0)
    return torch.randn(batch, model.in_channels, height, width)


def test_registry_holds_every_design_model():
    expected = {
        "lenet5", "alexnet_original", "alexnet", "googlenet", "mini_inception", "mini_resnet",
        "densenet121", "network_bn", "network_bn_v2", "cifar_cnn",
        *(f"vgg{d}{bn}" for d in (11, 13, 16, 19) for bn in ("", "_bn")),
        *(f"resnet{d}" for d in (18, 34, 50, 101, 152)),
    }  # fmt: skip
    assert expected <= set(MODEL_NAMES)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_default_size_forward_and_backward_reach_every_parameter(name):
    model = get(name, num_classes=3)
    _, height, width = model.input_size
    with torch.no_grad():  # the 224x224 giants once, forward only: the suite must stay fast
        logits = model.eval()(_input(model, 1, height, width))
    assert logits.shape == (1, 3)
    assert torch.isfinite(logits).all()

    # Backward in training mode at a small size: cheap, and it still reaches every layer. (At a
    # 1x1 minimum, BatchNorm would normalise two values per channel: numerically meaningless.)
    model.train()
    small = [
        min(max(m, 64), d) for m, d in zip(model.min_input_size, model.input_size[1:], strict=True)
    ]
    logits = model(_input(model, 2, *small))
    assert logits.shape == (2, 3)
    nn.functional.cross_entropy(logits, torch.tensor([0, 2])).backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, f"no gradient reached {missing[:5]}"
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_minimum_size_info_and_reset_classifier(name):
    model = get(name).eval()
    meta = info(name)
    assert count_parameters(model) == meta.num_params
    assert tuple(model.input_size) == meta.input_size
    assert (model.num_classes, model.in_channels) == (meta.num_classes, meta.in_channels)
    assert meta.input_size[0] == meta.in_channels
    assert meta.source and meta.paper and meta.description

    # The minimum size works and one pixel less is refused with the model's own message.
    min_h, min_w = meta.min_input_size
    assert tuple(model.min_input_size) == (min_h, min_w)
    x = _input(model, 1, min_h, min_w)
    with torch.no_grad():
        out = model(x)
    assert out.shape == (1, model.num_classes)
    assert torch.isfinite(out).all()
    word = "exactly" if model.fixed_input_size else "at least"
    for height, width in ((min_h - 1, min_w), (min_h, min_w - 1)):
        if min(height, width) < 1:
            continue
        with pytest.raises(ValueError, match=rf"{name}.*{word} {min_h}x{min_w}"):
            model(_input(model, 1, height, width))

    model.reset_classifier(5)
    assert model.num_classes == 5
    with torch.no_grad():
        assert model(x).shape == (1, 5)
        features = model.forward_head(model.forward_features(x), pre_logits=True)
    assert features.shape == (1, model.num_features)

    model.reset_classifier(0)
    assert model.num_classes == 0
    with torch.no_grad():
        pooled = model(x)
    torch.testing.assert_close(pooled, features)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_non_default_in_channels_and_wrong_channels_error(name):
    channels = 2 if info(name).in_channels != 2 else 4
    model = get(name, num_classes=4, in_channels=channels).eval()
    assert model.in_channels == channels
    height, width = model.min_input_size
    with torch.no_grad():
        assert model(_input(model, 1, height, width)).shape == (1, 4)
    wrong = torch.zeros(1, channels + 1, height, width)
    with pytest.raises(
        ValueError, match=rf"expects {channels} input channel\(s\), got {channels + 1}"
    ):
        model(wrong)


BAD_SIZES = [
    ("num_classes", -1),
    ("num_classes", True),
    ("num_classes", 2.0),
    ("in_channels", 0),
    ("in_channels", True),
]


@pytest.mark.parametrize("name", MODEL_NAMES)
@pytest.mark.parametrize(("argument", "bad"), BAD_SIZES)
def test_bad_sizes_are_refused_naming_the_model(name, argument, bad):
    low = 0 if argument == "num_classes" else 1
    with pytest.raises(ValueError, match=rf"^{argument} must be an integer >= {low} for {name},"):
        get(name, **{argument: bad})
    # The family's own class refuses it too (ZooModel validates), with no factory in front.
    builder = lookup(name)[1].builder
    with torch.device("meta"), pytest.raises(ValueError, match=rf"^{argument} must be an integer"):
        builder(**{argument: bad})
