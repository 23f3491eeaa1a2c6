"""The model registry: the table of builders, ``register``, ``list_models`` and ``info``.

A registered builder is any callable ``builder(num_classes=..., in_channels=..., **kwargs)`` that
returns an ``nn.Module``; its own keyword defaults are the model's defaults, so every argument
has one. ``register`` checks that contract when it is given the builder. Building a model by
name is the factory's job (``cnnzoo.models.get``); this module only keeps the table, so it
imports nothing else of cnnzoo (but the leaf that words its errors for the command line) and
every other module can depend on it.
"""

from __future__ import annotations

import difflib
import fnmatch
import functools
import inspect
import numbers
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, overload

import torch
from torch import nn

from .._advice import for_cli

__all__ = [
    "Builder",
    "ModelInfo",
    "RegistryEntry",
    "ShortRunRecipe",
    "TrainingRecipe",
    "info",
    "list_models",
    "lookup",
    "register",
]

Builder = Callable[..., nn.Module]
BuilderT = TypeVar("BuilderT", bound=Builder)


def _check_rate(lr: Any, what: str) -> None:
    if isinstance(lr, bool) or not isinstance(lr, numbers.Real):
        raise TypeError(f"{what}'s lr must be a number, got {type(lr).__name__}")
    if not 0 < float(lr) < 10:
        raise ValueError(f"{what}'s lr must be a number in (0, 10), got {lr!r}")


def _check_source(source: Any, what: str) -> None:
    if not isinstance(source, str) or not source.strip():
        raise ValueError(f"{what} needs its source: where the rate comes from")


@dataclass(frozen=True)
class ShortRunRecipe:
    """How ``cnnzoo.fit`` trains a model on a budget too small for its main recipe.

    ``fit`` trains a model with a recipe at batch 128 while the run has at least 80 optimizer
    steps there; below that it halves the batch towards 80 steps, down to 32, and keeps the
    recipe's rate (``cnnzoo.training.budget``). That holds for most of the zoo. A model whose
    short runs were measured to want more and smaller steps, and another rate, registers them
    here; ``fit`` then halves the batch towards ``min_steps``, down to ``smallest_batch``, and
    trains at ``lr``.

    Attributes:
        lr: Peak AdamW rate of such a run (other named optimizers are scaled as for the recipe).
        min_steps: Optimizer steps the batch is halved towards.
        smallest_batch: The smallest batch it is halved to: a power of two up to 128.
        source: The measurement behind it.
    """

    lr: float
    min_steps: int
    smallest_batch: int
    source: str

    def __post_init__(self) -> None:
        _check_rate(self.lr, "a short-run recipe")
        for name, top in (("min_steps", 100_000), ("smallest_batch", 128)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= top:
                raise ValueError(
                    f"a short-run recipe's {name} must be an integer in [1, {top}], got {value!r}"
                )
        if self.smallest_batch & (self.smallest_batch - 1):
            raise ValueError(
                f"a short-run recipe's smallest_batch must be a power of two (fit halves the "
                f"batch from 128), got {self.smallest_batch}"
            )
        _check_source(self.source, "a short-run recipe")


@dataclass(frozen=True)
class TrainingRecipe:
    """How ``cnnzoo.fit`` trains a model when the user leaves the rate at its default.

    torchvision records the recipe behind each set of its weights; cnnzoo records, with each
    model, the peak learning rate that trains it from scratch under fit's other defaults
    (AdamW, one-cycle, batch 128), and where that figure comes from.

    Attributes:
        lr: Peak learning rate for AdamW under the one-cycle schedule. For ``optimizer="adam"``
            and ``"sgd"`` fit scales their own default rates by the same factor.
        source: Where the rate comes from: the measurement or the paper behind it.
        short_runs: How runs too short for batch 128 train, where that was measured to differ
            from the recipe at a smaller batch (None: the recipe's rate).
    """

    lr: float
    source: str
    short_runs: ShortRunRecipe | None = None

    def __post_init__(self) -> None:
        _check_rate(self.lr, "a training recipe")
        _check_source(self.source, "a training recipe")
        if self.short_runs is not None and not isinstance(self.short_runs, ShortRunRecipe):
            raise TypeError(
                f"a training recipe's short_runs must be a ShortRunRecipe or None, got "
                f"{type(self.short_runs).__name__}"
            )


@dataclass(frozen=True)
class RegistryEntry:
    """One registered model: its builder, what the listings say about it, its recipe."""

    builder: Builder
    family: str
    source: str
    paper: str
    recipe: TrainingRecipe | None = None


_REGISTRY: dict[str, RegistryEntry] = {}


@dataclass(frozen=True)
class ModelInfo:
    """What a registered model is, at its default configuration.

    A model that does not state a size (a user's plain ``nn.Sequential``, say) gets ``None``
    for it: unknown, not zero.

    Attributes:
        name: Registry name.
        family: Architecture family ("resnet", "vgg", ...).
        description: First line of the builder's docstring.
        input_size: Default input ``(C, H, W)``, or ``None`` when the model does not say.
        min_input_size: Smallest accepted ``(H, W)``, or ``None`` when the model does not say.
        fixed_input_size: True when only ``input_size`` itself is accepted.
        num_classes: Default number of classes (the model's ``num_classes``, else the
            builder's default), or ``None`` when neither says.
        in_channels: Default number of input channels, likewise.
        num_params: Parameters at the default classes and channels (``None`` while a lazy
            layer has not seen its first batch).
        source: Where the architecture comes from (a tutorial, torchvision).
        paper: The paper that introduced the architecture.
        recipe: The :class:`TrainingRecipe` ``fit`` trains it with by default, or ``None``
            when none is registered (fit then uses its rate for models without one).
        weights: cnnzoo's own weights for it, shipped inside the package
            (``get_model(name, weights=w.tag)``), each with its test accuracy, recipe, epochs,
            wall time, parameters, MACs and sha256 (:class:`cnnzoo.weights.ShippedWeights`;
            filled in by ``cnnzoo.models.info``, this leaf module knowing nothing of files).
    """

    name: str
    family: str
    description: str
    input_size: tuple[int, int, int] | None
    min_input_size: tuple[int, int] | None
    fixed_input_size: bool
    num_classes: int | None
    in_channels: int | None
    num_params: int | None
    source: str
    paper: str
    recipe: TrainingRecipe | None = None
    weights: tuple[Any, ...] = ()


@overload
def register(
    name: BuilderT,
    *,
    family: str = "",
    source: str = "",
    paper: str = "",
    recipe: TrainingRecipe | None = None,
    overwrite: bool = False,
) -> BuilderT: ...


@overload
def register(
    name: str | None = None,
    *,
    family: str = "",
    source: str = "",
    paper: str = "",
    recipe: TrainingRecipe | None = None,
    overwrite: bool = False,
) -> Callable[[BuilderT], BuilderT]: ...


def register(
    name: str | Builder | None = None,
    *,
    family: str = "",
    source: str = "",
    paper: str = "",
    recipe: TrainingRecipe | None = None,
    overwrite: bool = False,
) -> Callable[[BuilderT], BuilderT] | Builder:
    """Register a model builder under a name (a decorator).

    The builder is a callable ``builder(num_classes=..., in_channels=..., **options)`` returning
    an ``nn.Module``: both size arguments as keywords (or a ``**kwargs`` catch-all), and a
    default for every argument, which are the model's defaults. ``@register`` without
    parentheses registers under the builder's ``__name__``.

    Args:
        name: Registry name; defaults to the builder's ``__name__``. Names are case-insensitive.
        family: Architecture family, for listings.
        source: Where the architecture comes from.
        paper: The paper that introduced it.
        recipe: The :class:`TrainingRecipe` ``fit`` uses for it when ``lr`` is not given
            (default: none; fit then uses its rate for models without one, 1e-3).
        overwrite: Replace an existing registration of the same name instead of raising.

    Returns:
        A decorator that registers the builder and returns it unchanged (used bare, as
        ``@register``, it registers the function under its own name).

    Raises:
        TypeError: ``name`` is not a string, ``recipe`` is not a :class:`TrainingRecipe`, or the
            builder is not callable or breaks the contract above (raised when the decorator
            is applied).
        ValueError: The name is taken (without ``overwrite``) or empty.

    Example:
        >>> @register(family="custom")
        ... def tiny_cnn(num_classes=10, in_channels=1):
        ...     return MyNet(num_classes, in_channels)
    """
    if callable(name) and not isinstance(name, str):  # used bare: @register
        return register(
            family=family, source=source, paper=paper, recipe=recipe, overwrite=overwrite
        )(name)
    if name is not None and not isinstance(name, str):
        raise TypeError(
            f"register takes the model's name (a str) and decorates its builder, e.g. "
            f'@register("tiny_cnn"); got {name!r} ({type(name).__name__})'
        )
    if name is not None and not name.strip():
        raise ValueError("register needs a non-empty model name")
    if recipe is not None and not isinstance(recipe, TrainingRecipe):
        raise TypeError(
            f"register's recipe must be a cnnzoo.models.TrainingRecipe(lr=..., source=...), got "
            f"{type(recipe).__name__}"
        )

    def decorator(builder: BuilderT) -> BuilderT:
        _check_builder(name, builder)
        key = (name or builder.__name__).lower()
        if key in _REGISTRY and not overwrite:
            raise ValueError(
                f"a model named {key!r} is already registered; pick another name or pass "
                "overwrite=True"
            )
        _REGISTRY[key] = RegistryEntry(builder, family or key, source, paper, recipe)
        info.cache_clear()
        return builder

    return decorator


_SIZE_ARGUMENTS = ("num_classes", "in_channels")


def _check_builder(name: str | None, builder: object) -> None:
    """Refuse a builder that ``get`` and ``info`` could not call as the contract says."""
    label = name or getattr(builder, "__name__", repr(builder))
    if not callable(builder):
        raise TypeError(
            f"register({label!r}) needs a model builder: a callable taking num_classes and "
            f"in_channels keywords and returning an nn.Module; got {builder!r} "
            f"({type(builder).__name__})"
        )
    try:
        params = inspect.signature(builder).parameters
    except (TypeError, ValueError):  # a builtin or C callable without a readable signature
        return
    kinds = inspect.Parameter
    takes_any_keyword = any(p.kind is kinds.VAR_KEYWORD for p in params.values())
    missing = [
        arg
        for arg in _SIZE_ARGUMENTS
        if not takes_any_keyword
        and (arg not in params or params[arg].kind in (kinds.POSITIONAL_ONLY, kinds.VAR_POSITIONAL))
    ]
    no_default = [
        p.name
        for p in params.values()
        if p.default is kinds.empty and p.kind not in (kinds.VAR_KEYWORD, kinds.VAR_POSITIONAL)
    ]
    if missing or no_default:
        problems = []
        if missing:
            problems.append(f"it does not take {' and '.join(missing)} as keyword arguments")
        if no_default:
            problems.append(
                f"{', '.join(no_default)} ha{'s' if len(no_default) == 1 else 've'} no default"
            )
        raise TypeError(
            f"register({label!r}): {'; '.join(problems)}. A builder is called as "
            "builder(num_classes=..., in_channels=..., **options) and with no arguments at all "
            "(its defaults are the model's defaults), e.g. "
            "def tiny_cnn(num_classes: int = 10, in_channels: int = 1) -> nn.Module"
        )


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
        unknown = f"unknown model {name!r}.{hint}"
        raise for_cli(
            ValueError(
                f"{unknown} See cnnzoo.models.list_models() for all {len(_REGISTRY)} models."
            ),
            f"{unknown} See 'cnnzoo list' for all {len(_REGISTRY)} models.",
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
    if not isinstance(model, nn.Module):
        raise TypeError(
            f"the builder registered as {key!r} returned {type(model).__name__}, not an nn.Module"
        )
    parameters = list(model.parameters())
    lazy = any(isinstance(p, nn.parameter.UninitializedParameter) for p in parameters)
    num_params = None if lazy else sum(p.numel() for p in parameters)
    input_size = _sizes(getattr(model, "input_size", None), 3)
    doc = inspect.getdoc(entry.builder) or ""
    defaults = _builder_defaults(entry.builder)
    in_channels = _size(model, "in_channels", defaults)
    if in_channels is None and input_size is not None:
        in_channels = input_size[0]
    return ModelInfo(
        name=key,
        family=entry.family,
        description=doc.splitlines()[0] if doc else "",
        input_size=input_size,  # type: ignore[arg-type]
        min_input_size=_sizes(getattr(model, "min_input_size", None), 2),  # type: ignore[arg-type]
        fixed_input_size=bool(getattr(model, "fixed_input_size", False)),
        num_classes=_size(model, "num_classes", defaults),
        in_channels=in_channels,
        num_params=num_params,
        source=entry.source,
        paper=entry.paper,
        recipe=entry.recipe,
    )


def _sizes(value: object, length: int) -> tuple[int, ...] | None:
    """``value`` as a tuple of ``length`` positive ints, or ``None`` when it is not one."""
    if not isinstance(value, (tuple, list)) or len(value) != length:
        return None
    if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value):
        return None
    return tuple(value)


def _builder_defaults(builder: Builder) -> dict[str, object]:
    try:
        params = inspect.signature(builder).parameters
    except (TypeError, ValueError):
        return {}
    return {n: p.default for n, p in params.items() if p.default is not inspect.Parameter.empty}


def _size(model: nn.Module, what: str, defaults: dict[str, object]) -> int | None:
    """The model's ``num_classes``/``in_channels``, else the builder's default, else ``None``."""
    for value in (getattr(model, what, None), defaults.get(what)):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None
