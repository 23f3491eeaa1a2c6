"""Transfer learning: input-channel adaptation and freezing.

``adapt_first_conv`` makes a pretrained model take another number of input channels while
keeping what its first convolution learned; ``freeze`` and ``unfreeze`` choose what trains.
Loading the pretrained weights themselves is ``cnnzoo.pretrained``'s job; building a model with
``weights=`` goes through ``cnnzoo.models.get``, which uses both.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from .data import DataConfig

__all__ = ["adapt_first_conv", "freeze", "unfreeze"]

_FROZEN_BN_HOOK = "_cnnzoo_frozen_bn_hook"


# -- adapting the input ---------------------------------------------------------------------------
def _first_conv(model: nn.Module) -> tuple[str, nn.Conv2d] | None:
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            return name, module
    return None


def adapt_first_conv(model: nn.Module, in_channels: int) -> None:
    """Make a pretrained model take ``in_channels`` input channels, keeping what it learned.

    The first convolution's filters are summed over their input channels for one channel
    (a grey image fed as three equal RGB planes gives the same response), or repeated and
    rescaled by ``old / new`` for more channels so activations keep their magnitude.

    Args:
        model: The model, changed in place (``in_channels``, ``input_size`` and the data
            configuration's statistics updated; see :meth:`cnnzoo.data.DataConfig.for_channels`).
        in_channels: The new number of input channels.

    Raises:
        ValueError: No convolution to adapt, or a grouped first convolution.
    """
    found = _first_conv(model)
    if found is None:
        raise ValueError(f"{type(model).__name__} has no Conv2d to adapt to {in_channels} channels")
    name, conv = found
    if conv.groups != 1:
        raise ValueError(f"cannot adapt the grouped first convolution {name!r}")
    weight = conv.weight.detach()
    old = weight.shape[1]
    if in_channels == 1:
        new_weight = weight.sum(dim=1, keepdim=True)
    else:
        repeats = math.ceil(in_channels / old)
        new_weight = weight.repeat(1, repeats, 1, 1)[:, :in_channels] * (old / in_channels)
    padding = conv.padding if isinstance(conv.padding, str) else _pair(conv.padding)
    new_conv = nn.Conv2d(
        in_channels,
        conv.out_channels,
        _pair(conv.kernel_size),
        stride=_pair(conv.stride),
        padding=padding,
        dilation=_pair(conv.dilation),
        bias=conv.bias is not None,
        padding_mode=conv.padding_mode,
        device=weight.device,
        dtype=weight.dtype,
    )
    with torch.no_grad():
        new_conv.weight.copy_(new_weight)
        if conv.bias is not None and new_conv.bias is not None:
            new_conv.bias.copy_(conv.bias)
    new_conv.train(conv.training)
    parent_name, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent_name) if parent_name else model, child, new_conv)
    if hasattr(model, "in_channels"):
        model.in_channels = in_channels  # type: ignore[assignment]  # torch's stub: a Module takes any attribute
    size = getattr(model, "input_size", None)
    if isinstance(size, tuple):
        model.input_size = (in_channels, *size[1:])  # type: ignore[assignment]  # torch's stub: a Module takes any attribute
    cfg = getattr(model, "pretrained_cfg", None)
    if isinstance(cfg, DataConfig):
        model.pretrained_cfg = cfg.for_channels(in_channels)  # type: ignore[assignment]  # torch's stub: a Module takes any attribute


def _pair(values: tuple[int, ...]) -> tuple[int, int]:
    """A Conv2d's size attribute (always two values; torch types it as any length)."""
    return values[0], values[1]


# -- freezing -------------------------------------------------------------------------------------
def _keep_in_eval_mode(module: nn.Module, args: Any) -> None:
    # Frozen BatchNorm normalises with its ImageNet statistics and does not update them, even
    # while the model trains (Keras' behaviour): batch statistics of a few new images would
    # otherwise shift every frozen feature.
    module.training = False


def freeze(
    model: nn.Module, train_head: bool = True, *, freeze_batchnorm: bool = True
) -> nn.Module:
    """Freeze a model for feature extraction: only its classifier keeps training.

    Args:
        model: The model, changed in place.
        train_head: Leave the final classifier (``model.get_classifier()``) trainable.
        freeze_batchnorm: Also keep the frozen BatchNorm layers in evaluation mode, so they use
            and keep their pretrained running statistics during training.

    Returns:
        The model, for chaining.

    Raises:
        ValueError: ``train_head`` on a model without ``get_classifier()``.

    Example:
        >>> model = cnnzoo.get_model("resnet18", num_classes=2, weights="imagenet")
        >>> cnnzoo.freeze(model)  # only model.fc trains
    """
    head: nn.Module | None = None
    if train_head:
        get_classifier = getattr(model, "get_classifier", None)
        if not callable(get_classifier):
            raise ValueError(
                f"{type(model).__name__} has no get_classifier(), so freeze cannot tell its head "
                "apart; pass train_head=False and set requires_grad_(True) on your head"
            )
        head = get_classifier()
    head_params = {id(p) for p in head.parameters()} if head is not None else set()
    head_modules = {id(m) for m in head.modules()} if head is not None else set()
    for parameter in model.parameters():
        parameter.requires_grad_(id(parameter) in head_params)
    if freeze_batchnorm:
        for module in model.modules():
            is_bn = isinstance(module, nn.modules.batchnorm._BatchNorm)
            if is_bn and id(module) not in head_modules and not hasattr(module, _FROZEN_BN_HOOK):
                setattr(
                    module, _FROZEN_BN_HOOK, module.register_forward_pre_hook(_keep_in_eval_mode)
                )
    return model


def unfreeze(model: nn.Module) -> nn.Module:
    """Make every parameter trainable again and let BatchNorm layers train normally.

    Args:
        model: The model, changed in place.

    Returns:
        The model, for chaining.
    """
    for parameter in model.parameters():
        parameter.requires_grad_(True)
    for module in model.modules():
        handle = getattr(module, _FROZEN_BN_HOOK, None)
        if handle is not None:
            handle.remove()
            delattr(module, _FROZEN_BN_HOOK)
            module.training = model.training
    return model
