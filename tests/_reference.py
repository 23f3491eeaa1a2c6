"""Shared checks of the per-family model tests: torchvision as the reference, small inputs, sizes.

Parameter counts and key shapes are compared on the ``meta`` device, which allocates nothing, so
even VGG-19 and ResNet-152 cost no time.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from cnnzoo.models import get


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def key_shapes(module: nn.Module) -> dict[str, torch.Size]:
    return {k: v.shape for k, v in module.state_dict().items()}


def torchvision_model(name: str, **kwargs) -> nn.Module:
    return getattr(torchvision.models, name)(weights=None, **kwargs)


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


def torchvision_with_random_weights(name: str) -> nn.Module:
    """Torchvision's model with He-scaled random weights, skipping its slow 138M-weight init."""
    with torch.device("meta"):
        model = torchvision_model(name)
    model.to_empty(device="cpu")
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for parameter in model.parameters():
            is_weight = parameter.dim() > 1
            std = (2.0 / parameter[0].numel()) ** 0.5 if is_weight else 0.1
            parameter.normal_(0.0, std, generator=generator)
        for buffer in model.buffers():  # to_empty left BatchNorm's statistics uninitialised
            buffer.zero_()
    randomize_norm_statistics(model)
    return model.eval()


# -- torchvision compatibility --------------------------------------------------------------------
def assert_counts_and_keys_equal_torchvision(name: str, num_classes: int) -> None:
    with torch.device("meta"):
        ours = get(name, num_classes=num_classes)
        reference = torchvision_model(name, num_classes=num_classes)
    assert n_params(ours) == n_params(reference)
    assert list(key_shapes(ours).items()) == list(key_shapes(reference).items())


def assert_torchvision_state_dict_gives_identical_outputs(name: str) -> None:
    """Torchvision's state dict loads strictly and the two models compute the same function."""
    reference = torchvision_with_random_weights(name)
    with torch.device("meta"):  # the weights come from the state dict: skip our init too
        ours = get(name)
    ours.load_state_dict(reference.state_dict(), strict=True, assign=True)
    ours.eval()
    image = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = reference(image)
        assert expected.std() > 0.1  # a real signal reached the logits, not a vanishing one
        torch.testing.assert_close(ours(image), expected)


# -- small inputs and sizes -----------------------------------------------------------------------
def small_input_training_step(name: str, shape: tuple[int, int, int]) -> tuple[nn.Module, tuple]:
    """Build ``name`` with ``small_input=True``, run a training step on two ``shape`` images.

    Returns:
        The model (gradients filled in) and the spatial size of its last feature map.
    """
    torch.manual_seed(0)
    channels = shape[0]
    model = get(name, num_classes=10, in_channels=channels, small_input=True)
    assert model.input_size == (channels, 32, 32)
    features = model.forward_features(torch.randn(2, *shape))
    logits = model.forward_head(features)
    assert logits.shape == (2, 10)
    assert torch.isfinite(logits).all()
    F.cross_entropy(logits, torch.tensor([1, 7])).backward()
    return model, tuple(features.shape[-2:])


def assert_min_input_size_is_the_true_minimum(model: nn.Module) -> torch.Tensor:
    """At the minimum the trunk runs; one pixel less our check refuses and torch would fail.

    Returns:
        The feature map of one image at the minimum size.
    """
    model.eval()  # BatchNorm in training mode refuses a 1x1 batch of 1
    device = next(model.parameters()).device
    height, width = model.min_input_size
    channels = model.in_channels
    with torch.no_grad():
        features = model.forward_features(torch.randn(1, channels, height, width, device=device))
        for smaller in ((height - 1, width), (height, width - 1)):
            x = torch.zeros(1, channels, *smaller, device=device)
            message = rf"{model.model_name} needs images of at least {height}x{width}"
            with pytest.raises(ValueError, match=message):
                model.check_input(x)
            with pytest.raises(RuntimeError):  # without our check: a raw torch error, deep inside
                model.forward_features(x)
    return features


def assert_fixed_size_refuses_any_other(name: str, size: int) -> None:
    with torch.device("meta"):
        model = get(name)
    assert model.fixed_input_size
    assert model.min_input_size == (size, size)
    channels = model.in_channels
    for other in (size - 1, size + 1):
        with pytest.raises(ValueError, match=rf"{name} takes exactly {size}x{size} images.*Resize"):
            model.check_input(torch.empty(2, channels, other, size, device="meta"))


def assert_tutorial_state_dict_gives_identical_outputs(name: str, tutorial_class: type) -> None:
    """The tutorial's own class's state dict loads strictly and computes the same function."""
    torch.manual_seed(0)
    reference = tutorial_class().eval()
    randomize_norm_statistics(reference)
    ours = get(name).eval()
    ours.load_state_dict(reference.state_dict(), strict=True)
    image = torch.randn(2, *ours.input_size)
    with torch.no_grad():
        torch.testing.assert_close(ours(image), reference(image))
