"""The model registry: the table of builders, ``register``, ``list_models`` and ``info``.

A registered builder is any callable ``builder(num_classes=..., in_channels=..., **kwargs)`` that
returns an ``nn.Module``; its own keyword defaults are the model's defaults. Building a model by
name is the factory's job (``cnnzoo.models.get``); this module only keeps the table, so it
imports nothing else of cnnzoo and every other module can depend on it.
"""

from __future__ import annotations

import difflib
import fnmatch
import functools
import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import torch
from torch import nn

__all__ = ["Builder", "ModelInfo", "RegistryEntry", "info", "list_models", "lookup", "register"]

Builder = Callable[..., nn.Module]
BuilderT = TypeVar("BuilderT", bound=Builder)


@dataclass(frozen=True)
class RegistryEntry:
    """One registered model: its builder and what the listings say about it."""

    builder: Builder
    family: str
    source: str
    paper: str


_REGISTRY: dict[str, RegistryEntry] = {}


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
        source: Where the architecture comes from (a tutorial, torchvision).
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
    name: str | Callable[..., nn.Module] | None = None,
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
        A decorator that registers the builder and returns it unchanged (used bare, as
        ``@register``, it registers the function under its own name).

    Raises:
        TypeError: ``name`` is neither a string nor None, or what is decorated is not callable.

    Example:
        >>> @register(family="custom")
        ... def tiny_cnn(num_classes=10, in_channels=1):
        ...     return MyNet(num_classes, in_channels)
    """
    if callable(name):  # used bare, as @register: the builder came as the name
        return register(family=family, source=source, paper=paper, overwrite=overwrite)(name)
    if name is not None and (not isinstance(name, str) or not name):
        raise TypeError(
            f"register takes the model's name as a non-empty string (or nothing, to use the "
            f"builder's __name__), got {name!r}; use @register('my_net') or @register()"
        )

    def decorator(builder: BuilderT) -> BuilderT:
        if not callable(builder):
            raise TypeError(
                f"register decorates a builder function or class returning an nn.Module, got "
                f"{builder!r}"
            )
        key = (name or builder.__name__).lower()
        if key in _REGISTRY and not overwrite:
            raise ValueError(
                f"a model named {key!r} is already registered; pick another name or pass "
                "overwrite=True"
            )
        _REGISTRY[key] = RegistryEntry(builder, family or key, source, paper)
        info.cache_clear()
        return builder

    return decorator


def lookup(name: str) -> tuple[str, RegistryEntry]:
    """The registry key (lower case) and entry of ``name``.

    Raises:
        TypeError: ``name`` is not a string.
        ValueError: No model of that name; the message lists the closest names.
    """
    if not isinstance(name, str):
        raise TypeError(f"model name must be a str, got {type(name).__name__}")
    key = name.lower()
    if key not in _REGISTRY:
        close = difflib.get_close_matches(key, list(_REGISTRY), n=5, cutoff=0.5)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise ValueError(
            f"unknown model {name!r}.{hint} See cnnzoo.models.list_models() for all "
            f"{len(_REGISTRY)} models."
        )
    return key, _REGISTRY[key]


def list_models(pattern: str = "*") -> list[str]:
    """List registered model names matching an ``fnmatch`` pattern, in natural order.

    Args:
        pattern: Shell-style pattern, case-insensitive: ``"resnet*"``, ``"*_bn"``.

    Returns:
        The names sorted with their numbers as numbers: ``resnet18`` before ``resnet101``.

    Example:
        >>> list_models("resnet*")
        ['resnet18', 'resnet34', 'resnet50', 'resnet101', 'resnet152']
    """
    return sorted((n for n in _REGISTRY if fnmatch.fnmatch(n, pattern.lower())), key=natural_key)


def natural_key(name: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key reading the digits of ``name`` as numbers ("vgg11" < "vgg13" < "vgg100")."""
    return tuple(
        (0, int(part)) if part.isdigit() else (1, part) for part in re.split(r"(\d+)", name) if part
    )


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
    key, entry = lookup(name)
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
