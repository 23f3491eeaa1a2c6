"""Transfer learning: pretrained weights, input-channel adaptation and freezing (seed 004).

``cnnzoo.models.get(name, num_classes=..., in_channels=..., weights=...)`` lands in
``build_with_weights``: the model is built at the shape the weights were trained for, loaded
strictly, and only then adapted: its first convolution for another number of input channels,
its classifier for another number of classes. ``weights`` is ``"imagenet"`` (torchvision's
weights, through torchvision's own download code), a torchvision weights name such as
``"IMAGENET1K_V2"``, or a local ``.safetensors`` / ``.pth`` file.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .checkpoint._io import read_state_dict
from .checkpoint._tensors import load_checked
from .checkpoint._weights import CONFIG_KEY, describe_config, read_config

__all__ = ["adapt_first_conv", "build_with_weights", "freeze", "unfreeze"]

# cnnzoo names whose layout (and state-dict names) are torchvision's, so its weights load.
_TORCHVISION_PRETRAINED = re.compile(
    r"alexnet|vgg(11|13|16|19)(_bn)?|resnet(18|34|50|101|152)|densenet121"
)
_IMAGENET_SHAPE = (1000, 3)  # (num_classes, in_channels) of every torchvision ImageNet model
_FROZEN_BN_HOOK = "_cnnzoo_frozen_bn_hook"


# -- building with weights ------------------------------------------------------------------------
def build_with_weights(
    key: str,
    builder: Callable[..., nn.Module],
    build_kwargs: dict[str, Any],
    weights: Any,
) -> nn.Module:
    """Build a registered model, load pretrained weights, then adapt input and head.

    Called by ``cnnzoo.models.get`` when ``weights`` is given.

    Args:
        key: Registry name.
        builder: Its builder.
        build_kwargs: The user's arguments; ``num_classes`` and ``in_channels`` are the
            *target* shape, the rest (e.g. ``small_input``) must be compatible with the weights.
        weights: ``"imagenet"``, a torchvision weights name (``"IMAGENET1K_V1"``) or enum member,
            or the path of a ``.safetensors`` / PyTorch state-dict file.

    Returns:
        The model with the weights loaded, ``in_channels`` and ``num_classes`` as asked.

    Raises:
        ValueError: The model has no such pretrained weights, or they do not fit the options.
        FileNotFoundError: A weights file that does not exist.
        ConnectionError: torchvision's weights could not be downloaded (the message says how to
            use a local copy).
    """
    options = {k: v for k, v in build_kwargs.items() if k not in ("num_classes", "in_channels")}
    state, source, file_config, defaults = _resolve_weights(key, weights)
    src_classes, src_channels = _source_shape(builder, options, state, file_config, defaults)

    model = builder(num_classes=src_classes, in_channels=src_channels, **options)
    if hasattr(model, "model_name"):  # name the model in error messages, as get() will
        model.model_name = key
    hint = describe_config(file_config)
    if options.get("small_input"):
        hint += (
            " small_input=True changes the stem of the network, so weights trained on the "
            "standard stem do not fit it; drop small_input and resize the images instead "
            "(e.g. torchvision.transforms.Resize(224))."
        )
    load_checked(model, state, source=source, hint=hint.strip())

    target_channels = build_kwargs.get("in_channels", src_channels)
    target_classes = build_kwargs.get("num_classes", src_classes)
    if target_channels != src_channels:
        adapt_first_conv(model, target_channels)
    if target_classes != src_classes:
        if not hasattr(model, "reset_classifier"):
            raise ValueError(
                f"{key} has no reset_classifier(), so its {src_classes}-class head cannot be "
                f"replaced by a {target_classes}-class one"
            )
        model.reset_classifier(target_classes)
    return model


def _resolve_weights(
    key: str, weights: Any
) -> tuple[dict[str, torch.Tensor], str, dict[str, Any] | None, tuple[int, int] | None]:
    """Read the weights: ``(state, description, saved cnnzoo config, (classes, channels))``."""
    if _is_torchvision_weights(weights) or (
        isinstance(weights, str) and not _looks_like_path(weights)
    ):
        member = _torchvision_member(key, weights)
        description = f"torchvision's {key} {member.name} weights"
        return _download(key, member), description, None, _IMAGENET_SHAPE
    if not isinstance(weights, (str, os.PathLike)):
        raise TypeError(
            f"weights must be 'imagenet', a torchvision weights name or a file path; got "
            f"{type(weights).__name__}"
        )
    path = Path(weights).expanduser()
    if not path.exists():
        raise FileNotFoundError(
            f"weights file {str(path)!r} does not exist (weights= takes 'imagenet' or the path "
            "of a .safetensors or .pth file)"
        )
    state, metadata = read_state_dict(path)
    config = read_config(path, metadata) if CONFIG_KEY in metadata else None
    return state, repr(str(path)), config, None


def _looks_like_path(text: str) -> bool:
    return (
        os.sep in text
        or "/" in text
        or Path(text).suffix.lower() in (".safetensors", ".pth", ".pt", ".bin", ".ckpt")
        or Path(text).exists()
    )


def _is_torchvision_weights(obj: Any) -> bool:
    return hasattr(obj, "get_state_dict") and hasattr(obj, "url") and hasattr(obj, "name")


def _torchvision_member(key: str, weights: Any) -> Any:
    """The torchvision weights enum member that ``weights`` names for model ``key``."""
    if not _TORCHVISION_PRETRAINED.fullmatch(key):
        extra = (
            " (cnnzoo's googlenet has real 5x5 convolutions, unlike torchvision's, so "
            "torchvision's GoogLeNet weights cannot fit it)"
            if key == "googlenet"
            else ""
        )
        raise ValueError(
            f"{key} has no pretrained weights{extra}. torchvision's ImageNet weights exist for "
            "alexnet, vgg11/13/16/19 (and _bn), resnet18/34/50/101/152 and densenet121; "
            "weights= also takes the path of a .safetensors or .pth file"
        )
    from torchvision.models import get_model_weights

    enum = get_model_weights(key)
    if _is_torchvision_weights(weights):
        if not isinstance(weights, enum):
            raise ValueError(f"{weights!r} are not weights for {key}; use one of {list(enum)}")
        return weights
    if weights.lower() in ("imagenet", "default"):
        return enum.DEFAULT
    try:
        return enum[weights.upper()]
    except KeyError:
        names = ", ".join(repr(m.name) for m in enum)
        raise ValueError(
            f"unknown weights {weights!r} for {key}: use 'imagenet' (torchvision's default, "
            f"{enum.DEFAULT.name}), one of {names}, or the path of a .safetensors or .pth file"
        ) from None


def _download(key: str, member: Any) -> dict[str, torch.Tensor]:
    """Fetch through torchvision's own download and cache (``<torch hub dir>/checkpoints``)."""
    try:
        return member.get_state_dict(progress=True, check_hash=True, weights_only=True)
    except OSError as err:  # urllib's URLError and HTTPError are OSErrors
        file_name = member.url.rsplit("/", 1)[-1]
        cache = Path(torch.hub.get_dir()) / "checkpoints"
        raise ConnectionError(
            f"could not download torchvision's {member.name} weights for {key} from "
            f"{member.url} ({getattr(err, 'reason', err)}). Download that file where there is "
            f"internet access, then either copy it to {str(cache)!r} (torchvision looks there "
            f"first) or pass its path: cnnzoo.get_model({key!r}, weights='/path/to/{file_name}')"
        ) from None
    except Exception as err:  # a corrupted cached file, a hash mismatch
        raise ValueError(
            f"torchvision's {member.name} weights for {key} could not be loaded ({err}). Delete "
            f"the cached copy in {str(Path(torch.hub.get_dir()) / 'checkpoints')!r} to download "
            "it again"
        ) from None


def _source_shape(
    builder: Callable[..., nn.Module],
    options: dict[str, Any],
    state: dict[str, torch.Tensor],
    file_config: dict[str, Any] | None,
    known: tuple[int, int] | None,
) -> tuple[int, int]:
    """``(num_classes, in_channels)`` the weights were trained with."""
    if known is not None:
        return known
    if file_config is not None and {"num_classes", "in_channels"} <= set(file_config):
        return int(file_config["num_classes"]), int(file_config["in_channels"])
    with torch.device("meta"):  # a free probe: names and default shapes, no weights allocated
        probe = builder(**options)
    classes = int(getattr(probe, "num_classes", 0))
    channels = int(getattr(probe, "in_channels", 3))
    head = state.get(f"{getattr(probe, 'classifier_path', 'classifier')}.weight")
    if head is not None and head.dim() == 2:
        classes = head.shape[0]
    first = _first_conv(probe)
    if first is not None and f"{first[0]}.weight" in state:
        channels = state[f"{first[0]}.weight"].shape[1] * first[1].groups
    return classes, channels


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
        model: The model, changed in place (``in_channels`` and ``input_size`` updated).
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
    new_conv = nn.Conv2d(
        in_channels,
        conv.out_channels,
        conv.kernel_size,
        stride=conv.stride,
        padding=conv.padding,
        dilation=conv.dilation,
        bias=conv.bias is not None,
        padding_mode=conv.padding_mode,
        device=weight.device,
        dtype=weight.dtype,
    )
    with torch.no_grad():
        new_conv.weight.copy_(new_weight)
        if conv.bias is not None:
            new_conv.bias.copy_(conv.bias)
    new_conv.train(conv.training)
    parent_name, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent_name) if parent_name else model, child, new_conv)
    if hasattr(model, "in_channels"):
        model.in_channels = in_channels
    if isinstance(getattr(model, "input_size", None), tuple):
        model.input_size = (in_channels, *model.input_size[1:])


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
        if not hasattr(model, "get_classifier"):
            raise ValueError(
                f"{type(model).__name__} has no get_classifier(), so freeze cannot tell its head "
                "apart; pass train_head=False and set requires_grad_(True) on your head"
            )
        head = model.get_classifier()
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
