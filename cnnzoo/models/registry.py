"""The model registry: ``register``, ``get``, ``list_models`` and ``info``.

A registered builder is any callable ``builder(num_classes=..., in_channels=..., **kwargs)`` that
returns an ``nn.Module``; its own keyword defaults are the model's defaults. ``get`` records the
arguments it built with on the model (``model.cnnzoo_config``) so checkpoints can rebuild it.
"""

from __future__ import annotations

import difflib
import fnmatch
import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
from torch import nn

__all__ = ["ModelInfo", "get", "get_model", "info", "list_models", "register"]

Builder = Callable[..., nn.Module]
BuilderT = TypeVar("BuilderT", bound=Builder)


@dataclass(frozen=True)
class _Entry:
    builder: Builder
    family: str
    source: str
    paper: str


_REGISTRY: dict[str, _Entry] = {}


@dataclass(frozen=True)
class ModelInfo:
    """What a registered model is, at its default configuration.

    Attributes:
        name: Registry name.
        family: Architecture family ("resnet", "vgg", ...).
        description: First line of the builder's docstring.
        input_size: Default input ``(C, H, W)``.
        min_input_size: Smallest accepted ``(H, W)``.
        fixed_input_size: True when only ``input_size`` itself is accepted.
        num_classes: Default number of classes.
        in_channels: Default number of input channels.
        num_params: Parameters at the default classes and channels.
        source: Where the model comes from in this project (a seed tutorial, torchvision).
        paper: The paper that introduced the architecture.
    """

    name: str
    family: str
    description: str
    input_size: tuple[int, int, int]
    min_input_size: tuple[int, int]
    fixed_input_size: bool
    num_classes: int
    in_channels: int
    num_params: int
    source: str
    paper: str


def register(
    name: str | None = None,
    *,
    family: str = "",
    source: str = "",
    paper: str = "",
    overwrite: bool = False,
) -> Callable[[BuilderT], BuilderT]:
    """Register a model builder under a name (a decorator).

    Args:
        name: Registry name; defaults to the builder's ``__name__``. Names are case-insensitive.
        family: Architecture family, for listings.
        source: Where the architecture comes from.
        paper: The paper that introduced it.
        overwrite: Replace an existing registration of the same name instead of raising.

    Returns:
        A decorator that registers the builder and returns it unchanged.

    Example:
        >>> @register(family="custom")
        ... def tiny_cnn(num_classes=10, in_channels=1):
        ...     return MyNet(num_classes, in_channels)
    """

    def decorator(builder: BuilderT) -> BuilderT:
        key = (name or builder.__name__).lower()
        if key in _REGISTRY and not overwrite:
            raise ValueError(
                f"a model named {key!r} is already registered; pick another name or pass "
                "overwrite=True"
            )
        _REGISTRY[key] = _Entry(builder, family or key, source, paper)
        info.cache_clear()
        return builder

    return decorator


def _ensure_builtins_registered() -> None:
    # The built-in model modules register themselves on import; importing the package does it.
    from . import _builtins  # noqa: F401


def _lookup(name: str) -> tuple[str, _Entry]:
    if not isinstance(name, str):
        raise TypeError(f"model name must be a str, got {type(name).__name__}")
    _ensure_builtins_registered()
    key = name.lower()
    if key not in _REGISTRY:
        close = difflib.get_close_matches(key, list(_REGISTRY), n=5, cutoff=0.5)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise ValueError(
            f"unknown model {name!r}.{hint} See cnnzoo.models.list_models() for all "
            f"{len(_REGISTRY)} models."
        )
    return key, _REGISTRY[key]


def get(
    name: str,
    num_classes: int | None = None,
    in_channels: int | None = None,
    *,
    weights: str | None = None,
    **kwargs: Any,
) -> nn.Module:
    """Build a registered model.

    Args:
        name: Registry name (case-insensitive), e.g. ``"resnet18"``.
        num_classes: Number of classes; ``None`` keeps the model's default.
        in_channels: Input channels; ``None`` keeps the model's default.
        weights: ``"imagenet"`` for torchvision's ImageNet weights (families shared with
            torchvision), or the path of a ``.safetensors`` or torchvision ``.pth`` state dict.
        **kwargs: Model-specific options, such as ``small_input=True``.

    Returns:
        The model, in training mode, on the CPU.

    Raises:
        ValueError: Unknown name (with the closest names), or invalid arguments.
    """
    key, entry = _lookup(name)
    build_kwargs = dict(kwargs)
    if num_classes is not None:
        _check_positive("num_classes", num_classes, allow_zero=True)
        build_kwargs["num_classes"] = num_classes
    if in_channels is not None:
        _check_positive("in_channels", in_channels)
        build_kwargs["in_channels"] = in_channels
    _check_kwargs(key, entry.builder, build_kwargs)

    if weights is not None:
        from ..transfer import build_with_weights  # lazy: only transfer learning needs it

        model = build_with_weights(key, entry.builder, build_kwargs, weights)
    else:
        model = entry.builder(**build_kwargs)
    if isinstance(model, nn.Module):
        if hasattr(model, "model_name"):
            model.model_name = key
        model.cnnzoo_config = {"name": key, **_resolved_arguments(entry.builder, build_kwargs)}
    return model


get_model = get


def list_models(pattern: str = "*") -> list[str]:
    """List registered model names matching an ``fnmatch`` pattern, sorted.

    Args:
        pattern: Shell-style pattern, case-insensitive: ``"resnet*"``, ``"*_bn"``.

    Returns:
        Sorted names.
    """
    _ensure_builtins_registered()
    return sorted(n for n in _REGISTRY if fnmatch.fnmatch(n, pattern.lower()))


@functools.cache
def info(name: str) -> ModelInfo:
    """Describe a registered model at its default configuration.

    The model is built on the ``meta`` device, so this is fast even for VGG-19 and allocates no
    weights.

    Args:
        name: Registry name (case-insensitive).

    Returns:
        A ``ModelInfo``.
    """
    key, entry = _lookup(name)
    with torch.device("meta"):
        model = entry.builder()
    num_params = sum(p.numel() for p in model.parameters())
    input_size = tuple(getattr(model, "input_size", (0, 0, 0)))
    doc = inspect.getdoc(entry.builder) or ""
    return ModelInfo(
        name=key,
        family=entry.family,
        description=doc.splitlines()[0] if doc else "",
        input_size=input_size,  # type: ignore[arg-type]
        min_input_size=tuple(getattr(model, "min_input_size", input_size[1:])),  # type: ignore[arg-type]
        fixed_input_size=bool(getattr(model, "fixed_input_size", False)),
        num_classes=int(getattr(model, "num_classes", 0)),
        in_channels=int(getattr(model, "in_channels", input_size[0])),
        num_params=num_params,
        source=entry.source,
        paper=entry.paper,
    )


def _check_positive(what: str, value: object, allow_zero: bool = False) -> None:
    low = 0 if allow_zero else 1
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise ValueError(f"{what} must be an integer >= {low}, got {value!r}")


def _check_kwargs(key: str, builder: Builder, kwargs: dict[str, Any]) -> None:
    """Reject an unknown keyword early, listing the ones the builder takes."""
    params = inspect.signature(builder).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    unknown = sorted(set(kwargs) - set(params))
    if unknown:
        accepted = ", ".join(n for n in params if n not in ("num_classes", "in_channels"))
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
