"""Which models a comparison trains, and how each is built for the data.

Every model is built for the data's contract: ``num_classes`` and ``in_channels`` from the data,
and ``small_input=True`` (the 3×3 stride-1 stem of the CIFAR recipe) for the families that have
the option when the images are at most :data:`SMALL_INPUT_MAX` pixels on a side. Whether a model
can take the images is not guessed from a table: the model is built on the ``meta`` device (no
memory, no arithmetic) and runs one forward pass on a meta batch of the data's shape, so its own
input check (fixed heads, minimum sizes) and every layer's shape arithmetic decide.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from .._advice import for_cli
from ..models import get, list_models
from ..models.registry import lookup
from ..summarize import count_parameters
from .shape import DataShape

__all__ = [
    "SMALL_INPUT_MAX",
    "Candidate",
    "DataShape",
    "build_options",
    "checked_max_params",
    "left_out_lines",
    "model_names",
    "probe",
    "select",
]

# Images up to this size on a side get small_input=True where a family offers it: 28x28 and
# 32x32 (MNIST, CIFAR) keep their resolution instead of shrinking to nothing in an ImageNet stem.
SMALL_INPUT_MAX = 64


@dataclass
class Candidate:
    """A model to train: its name, its build options, and why it cannot run (if it cannot).

    Attributes:
        name: Registry name.
        options: Keyword arguments for ``cnnzoo.get_model``.
        params: Parameters of the model so built, or None when it could not be built.
        problem: Why the model cannot take the data (its own message), or None.
    """

    name: str
    options: dict[str, Any] = field(default_factory=dict)
    params: int | None = None
    problem: str | None = None


def build_options(name: str, shape: DataShape) -> dict[str, Any]:
    """The ``get_model`` options that fit ``name`` to data of ``shape``.

    Args:
        name: Registry name.
        shape: The data's images and classes.

    Returns:
        ``num_classes`` and ``in_channels`` from the data, plus ``small_input`` for the
        families that have it (True for images of at most :data:`SMALL_INPUT_MAX` pixels).
    """
    options: dict[str, Any] = {"num_classes": shape.num_classes, "in_channels": shape.channels}
    if _takes_option(name, "small_input"):
        options["small_input"] = max(shape.height, shape.width) <= SMALL_INPUT_MAX
    return options


def probe(name: str, shape: DataShape) -> Candidate:
    """Build ``name`` for ``shape`` on the meta device and push one meta batch through it.

    Returns:
        The candidate, with ``problem`` set (the model's own error message) when it cannot
        take the data.
    """
    options = build_options(name, shape)
    candidate = Candidate(name, options)
    try:
        with torch.device("meta"):
            model = get(name, **options)
        candidate.params = count_parameters(model)
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, shape.channels, shape.height, shape.width, device="meta"))
    except (ValueError, TypeError, RuntimeError) as error:
        candidate.problem = str(error).strip() or type(error).__name__
    return candidate


def select(
    models: str | Sequence[str], shape: DataShape, *, max_params: int | None = None
) -> tuple[list[Candidate], dict[str, str]]:
    """The candidates ``models`` names, probed against ``shape``.

    Args:
        models: ``"auto"`` (every registered model that can take the data), or names and
            ``fnmatch`` patterns (``"resnet1*"``), a single string or a sequence of them.
            Named models that cannot take the data stay in, so the leaderboard says why.
        shape: The data's images and classes.
        max_params: Leave out models with more parameters than this (as built for the data).

    Returns:
        ``(candidates, left_out)``: the models to train, in the order asked (registry order for
        patterns and "auto"), and the models left out with the reason.

    Raises:
        ValueError: An unknown name, a pattern matching nothing, an empty selection, or a
            ``max_params`` below 1.
    """
    max_params = checked_max_params(max_params)
    names, auto = model_names(models)
    candidates: list[Candidate] = []
    left_out: dict[str, str] = {}
    for name in names:
        candidate = probe(name, shape)
        if auto and candidate.problem is not None:
            left_out[name] = candidate.problem
        elif max_params is not None and (candidate.params or 0) > max_params:
            left_out[name] = f"{candidate.params:,} {_MORE_THAN}{max_params:,}"
        else:
            candidates.append(candidate)
    if not candidates:
        raise _nothing_left(left_out, shape, max_params)
    return candidates, left_out


# How select words a model left out for its size (left_out_lines counts them by it).
_MORE_THAN = "parameters, more than max_params="


def left_out_lines(left_out: dict[str, str], shape: DataShape) -> list[str]:
    """What left the models out, a line per constraint: how many, and an example.

    Args:
        left_out: :func:`select`'s models left out, with the reason.
        shape: The data's images and classes.

    Returns:
        Up to two lines: the models that cannot take the images (with the first one's reason,
        cut short), and those larger than the parameter limit (with the smallest of them).
    """
    too_large = {name: why for name, why in left_out.items() if _MORE_THAN in why}
    cannot = {name: why for name, why in left_out.items() if name not in too_large}
    lines = []
    if cannot:
        name, why = next(iter(cannot.items()))
        first = (why.splitlines() or [""])[0].rstrip(".")
        if not first.startswith(name):  # most models' own messages start with their name
            first = f"{name}: {first}"
        first = first if len(first) <= 100 else first[:97] + "..."
        lines.append(
            f"{len(cannot)} cannot take {shape.channels}x{shape.height}x{shape.width} images "
            f"(e.g. {first})"
        )
    if too_large:
        smallest = min(too_large, key=lambda n: _params(too_large[n]))
        limit = too_large[smallest].split(_MORE_THAN)[1]
        lines.append(
            f"{len(too_large)} have more than {limit} parameters (the smallest: {smallest}, "
            f"{_params(too_large[smallest]):,})"
        )
    return lines


def _params(reason: str) -> int:
    """The parameter count at the start of a "too large" reason."""
    return int(reason.split(" ", 1)[0].replace(",", ""))


def _nothing_left(left_out: dict[str, str], shape: DataShape, max_params: int | None) -> ValueError:
    """The error of a selection that left out every model: a line per constraint and the fix."""
    lines = "\n".join(f"  {line}" for line in left_out_lines(left_out, shape))
    found = f"no model to compare: of {len(left_out)} models,\n{lines}"
    if max_params is None:
        return ValueError(f"{found}\nName models that take the data, or resize the images")
    return for_cli(
        ValueError(f"{found}\nRaise max_params, or name models explicitly"),
        f"{found}\nRaise --max-params, resize the images (--image-size), or name models",
    )


def model_names(models: Any) -> tuple[list[str], bool]:
    """The registry names ``models`` asks for, and whether it is "auto"; no data needed.

    Called before any data is read, so an unknown name or a pattern matching nothing is
    refused at once, not after the data is decoded.

    Raises:
        ValueError: ``models`` is not "auto", a name or pattern, or a list of them; an empty
            name; an unknown name (with the registry's suggestions); a pattern matching nothing.
    """
    if not isinstance(models, str) and not (
        isinstance(models, Sequence) and all(isinstance(m, str) for m in models)
    ):
        raise ValueError(
            "models is 'auto', a model name or fnmatch pattern, or a list of them; got "
            f"{_shown(models)}"
        )
    if models == "auto" or (not isinstance(models, str) and list(models) == ["auto"]):
        return list_models(), True
    return _expand(models), False


def checked_max_params(max_params: Any) -> int | None:
    """``max_params`` as a whole number of parameters (``1e6`` taken as 1,000,000), or None.

    Raises:
        ValueError: Text (``"1e6"``), a boolean, a fraction, an infinity or a number below 1.
    """
    if max_params is None:
        return None
    whole = (
        isinstance(max_params, int | float)
        and not isinstance(max_params, bool)
        and math.isfinite(max_params)
        and max_params == int(max_params)
    )
    if not whole or max_params < 1:
        problem = f"must be a positive whole number of parameters, got {_shown(max_params)}"
        raise for_cli(
            ValueError(f"max_params {problem} (e.g. 1_000_000)"), f"--max-params {problem}"
        )
    return int(max_params)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _expand(models: str | Sequence[str]) -> list[str]:
    """Names and patterns -> registry names, in the order given, each once."""
    asked = [models] if isinstance(models, str) else list(models)
    if not asked:
        raise ValueError("models is empty: name at least one model, a pattern, or 'auto'")
    names: list[str] = []
    for item in asked:
        if not isinstance(item, str):
            raise TypeError(f"models holds names and patterns (str), got {item!r}")
        if not item.strip():
            raise ValueError(
                "models holds an empty name: name a model, a pattern such as 'resnet*', or 'auto'"
            )
        if any(ch in item for ch in "*?["):
            matched = list_models(item)
            if not matched:
                no_match = f"the pattern {item!r} matches no registered model"
                raise for_cli(
                    ValueError(f"{no_match}; see cnnzoo.list_models()"),
                    f"{no_match}; see 'cnnzoo list'",
                )
        else:
            matched = [lookup(item)[0]]  # unknown names: the registry's "did you mean"
        names.extend(n for n in matched if n not in names)
    return names


def _takes_option(name: str, option: str) -> bool:
    builder = lookup(name)[1].builder
    try:
        parameters = inspect.signature(builder).parameters
    except (TypeError, ValueError):
        return False
    return option in parameters
