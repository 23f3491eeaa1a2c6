"""The one model factory: build registered models by name, and rebuild saved ones.

- ``get`` (alias ``get_model``) builds a model and records the arguments it was built with on
  it (``model.cnnzoo_config``), so checkpoints can rebuild it.
- ``rebuild`` turns a recorded configuration and its weights back into a model. Both
  ``cnnzoo.load`` (one safetensors file) and ``cnnzoo.from_pretrained`` (a folder or Hub
  repository) go through it, so they build, check and place models the same way.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from ..checkpoint._io import PathLike, read_safetensors
from ..checkpoint._tensors import load_checked
from ..checkpoint._weights import describe_config, read_config
from ..devices import resolve_device
from ..pretrained import load_pretrained
from ..transfer import adapt_first_conv
from .base import check_size_argument
from .features import FeatureListNet
from .registry import Builder, lookup

__all__ = ["build_from_config", "get", "get_model", "load", "rebuild"]

_SIZE_ARGUMENTS = ("num_classes", "in_channels")


def get(
    name: str,
    num_classes: int | None = None,
    in_channels: int | None = None,
    *,
    weights: Any = None,
    **kwargs: Any,
) -> nn.Module:
    """Build a registered model.

    Args:
        name: Registry name (case-insensitive), e.g. ``"resnet18"``.
        num_classes: Number of classes; ``None`` keeps the model's default.
        in_channels: Input channels; ``None`` keeps the model's default.
        weights: ``"imagenet"`` for torchvision's ImageNet weights (families shared with
            torchvision), or the path of a ``.safetensors`` or torchvision ``.pth`` state dict.
        **kwargs: Model-specific options, such as ``small_input=True``; and, for the families
            with stages, ``features_only=True`` (a backbone returning the feature map of each
            stage, as timm's ``features_only``) with ``out_indices`` (stage numbers, or an int
            ``n`` for the last ``n``; default all).

    Returns:
        The model, in training mode, on the CPU; with ``features_only``, a
        ``cnnzoo.models.features.FeatureListNet``.

    Raises:
        ValueError: Unknown name (with the closest names), or invalid arguments.
    """
    key, entry = lookup(name)
    build_kwargs = dict(kwargs)
    features_only = build_kwargs.pop("features_only", False)
    out_indices = build_kwargs.pop("out_indices", None)
    if not isinstance(features_only, bool):
        raise ValueError(f"features_only must be True or False, got {features_only!r}")
    if out_indices is not None and not features_only:
        raise ValueError(
            "out_indices selects the stages of a backbone: pass it with features_only=True"
        )
    # Checked here as well as by ZooModel: before any download, and for builders of any kind.
    for what, value in zip(_SIZE_ARGUMENTS, (num_classes, in_channels), strict=True):
        if value is not None:
            check_size_argument(key, what, value)
            build_kwargs[what] = value
    _check_kwargs(key, entry.builder, build_kwargs)

    if weights is not None:
        model = _build_pretrained(key, entry.builder, build_kwargs, weights)
    else:
        model = entry.builder(**build_kwargs)
    if isinstance(model, nn.Module):
        if hasattr(model, "model_name"):
            model.model_name = key
        config = {"name": key, **_resolved_arguments(entry.builder, build_kwargs)}
        if features_only:
            model = FeatureListNet(model, out_indices)
            config.update(features_only=True, out_indices=list(model.out_indices))
        model.cnnzoo_config = config
    elif features_only:
        raise ValueError(f"features_only needs an nn.Module; {key}'s builder returned {model!r}")
    return model


get_model = get


def _build_pretrained(
    key: str, builder: Builder, build_kwargs: dict[str, Any], weights: Any
) -> nn.Module:
    """Load the weights at the shape they were trained for, then adapt input and head.

    ``num_classes`` and ``in_channels`` in ``build_kwargs`` are the *target* shape: the first
    convolution is adapted to other channels (``cnnzoo.transfer.adapt_first_conv``) and the
    classifier replaced for other classes, only after the weights loaded strictly.
    """
    options = {k: v for k, v in build_kwargs.items() if k not in _SIZE_ARGUMENTS}
    loaded = load_pretrained(key, builder, options, weights)
    model = loaded.model
    target_channels = build_kwargs.get("in_channels", loaded.in_channels)
    target_classes = build_kwargs.get("num_classes", loaded.num_classes)
    if target_channels != loaded.in_channels:
        adapt_first_conv(model, target_channels)
    if target_classes != loaded.num_classes:
        if not hasattr(model, "reset_classifier"):
            raise ValueError(
                f"{key} has no reset_classifier(), so its {loaded.num_classes}-class head cannot "
                f"be replaced by a {target_classes}-class one"
            )
        model.reset_classifier(target_classes)
    return model


def _check_kwargs(key: str, builder: Builder, kwargs: dict[str, Any]) -> None:
    """Reject an unknown keyword early, listing the ones the builder takes."""
    params = inspect.signature(builder).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    unknown = sorted(set(kwargs) - set(params))
    if unknown:
        accepted = ", ".join(n for n in params if n not in _SIZE_ARGUMENTS)
        raise ValueError(
            f"{key} does not take {', '.join(map(repr, unknown))}; its options are: "
            f"num_classes, in_channels{', ' + accepted if accepted else ''}"
        )


def _resolved_arguments(builder: Builder, kwargs: dict[str, Any]) -> dict[str, Any]:
    """The builder's arguments with its defaults filled in (what a checkpoint must record)."""
    resolved: dict[str, Any] = {}
    for pname, param in inspect.signature(builder).parameters.items():
        if param.kind in (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL):
            continue
        if param.default is not inspect.Parameter.empty:
            resolved[pname] = param.default
    resolved.update(kwargs)
    return resolved


# -- rebuilding saved models ----------------------------------------------------------------------
def build_from_config(config: dict[str, Any], source: str) -> nn.Module:
    """Build the model a saved configuration describes, with fresh weights.

    Args:
        config: A recorded ``cnnzoo_config``: the registry ``name`` and the build arguments.
        source: Where the configuration came from, for error messages (a quoted path).

    Returns:
        The model, as ``get(**config)`` builds it.

    Raises:
        ValueError: The configuration names no registered model, or options it refuses; the
            message names ``source``.
    """
    options = dict(config)
    name = options.pop("name")
    try:
        return get(name, **options)
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"cannot rebuild the model stored in {source} (model {name!r}, options {options}): "
            f"{err}. If it is your own model, register it with cnnzoo.models.register before "
            "loading"
        ) from None


def rebuild(
    config: dict[str, Any],
    tensors: Mapping[str, torch.Tensor],
    *,
    source: str,
    device: str | torch.device = "cpu",
    config_source: str | None = None,
) -> nn.Module:
    """Rebuild a saved model from its configuration and load its weights strictly.

    Args:
        config: The recorded configuration (registry ``name`` and build arguments).
        tensors: The saved state dict.
        source: Where the weights came from, for error messages (a quoted path).
        device: Where to put the model. Callers resolve it before reading large files, so a
            missing device fails first.
        config_source: Where the configuration came from, when not from ``source`` itself.

    Returns:
        The model, in evaluation mode, on ``device``.

    Raises:
        ValueError: A configuration that cannot be built, weights that do not fit it, or a
            device this machine does not have.
    """
    target = resolve_device(device)
    model = build_from_config(config, config_source or source)
    hint = describe_config(config) + " The weights do not fit the configuration saved with them."
    load_checked(model, tensors, source=source, hint=hint)
    return model.to(target).eval()


def load(path: PathLike, device: str | torch.device = "cpu") -> nn.Module:
    """Rebuild a model saved by ``cnnzoo.save`` and load its weights strictly.

    Args:
        path: A file written by ``cnnzoo.save``.
        device: Where to put the model: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, a ``torch.device``.

    Returns:
        The model, in evaluation mode, on ``device``.

    Raises:
        FileNotFoundError: No such file.
        ValueError: Not a valid safetensors file (truncated, corrupted), no cnnzoo
            configuration in it, weights that do not fit the configuration, or a device this
            machine does not have.

    Example:
        >>> cnnzoo.save(cnnzoo.get_model("lenet5"), "lenet5.safetensors")
        >>> model = cnnzoo.load("lenet5.safetensors")
    """
    target = resolve_device(device)  # fail before reading a large file
    tensors, metadata = read_safetensors(path)
    config = read_config(path, metadata)
    return rebuild(config, tensors, source=repr(str(path)), device=target)
