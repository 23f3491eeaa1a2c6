"""The checks of what a user hands a model: its build arguments and its input batches.

Build arguments (``num_classes``, ``in_channels``, ``drop_rate``) are refused when the model is
built, with the model named; input batches are checked by every forward in eager mode, so a wrong
channel count, too small an image or integer pixels fail with a message that names the model and
the fix, not with a matrix-shape error from deep in torch. Under ``torch.jit.script``/``trace``,
``torch.fx``, ``torch.compile`` and ``torch.export`` the input check stays out of the graph
(``is_eager``), so every model scripts, traces and exports cleanly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from .._advice import for_cli, resize_flag

__all__ = ["check_image_batch", "check_size_argument", "is_eager", "resolve_drop_rate"]

# The smallest value each size argument may take: 0 classes means "no classifier, features out".
_MINIMUM = {"num_classes": 0, "in_channels": 1}


def check_size_argument(model_name: str, what: str, value: object) -> None:
    """Refuse a ``num_classes`` or ``in_channels`` that is not an integer at or above its minimum.

    ``True`` is refused too: it is an ``int`` to Python, but never what the caller meant.

    Args:
        model_name: The model the argument is for, named in the message.
        what: ``"num_classes"`` or ``"in_channels"``.
        value: The value given.

    Raises:
        ValueError: The value is not acceptable.
    """
    low = _MINIMUM[what]
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise ValueError(f"{what} must be an integer >= {low} for {model_name}, got {value!r}")


def resolve_drop_rate(
    model_name: str, drop_rate: float, dropout: float | None, default: float
) -> float:
    """The classifier dropout probability, from ``drop_rate`` or its older name ``dropout``.

    ``dropout`` was the option's name before ``drop_rate`` (timm's) replaced it; it stays
    accepted so existing code and saved configurations keep building the same model.

    Args:
        model_name: The model, named in messages.
        drop_rate: The ``drop_rate`` argument.
        dropout: The ``dropout`` argument (``None`` when not given).
        default: The builder's default ``drop_rate``, to tell a given one from the default.

    Raises:
        TypeError: Not a number.
        ValueError: Outside ``[0, 1)``, or both names given with different values.
    """
    if dropout is not None:
        if drop_rate != default and drop_rate != dropout:
            raise ValueError(
                f"{model_name} got drop_rate={drop_rate!r} and dropout={dropout!r}; dropout is "
                "the older name of drop_rate, give only drop_rate"
            )
        drop_rate = dropout
    if isinstance(drop_rate, bool) or not isinstance(drop_rate, (int, float)):
        raise TypeError(f"drop_rate must be a number in [0, 1) for {model_name}, got {drop_rate!r}")
    if not 0.0 <= drop_rate < 1.0:
        raise ValueError(f"drop_rate must be in [0, 1) for {model_name}, got {drop_rate!r}")
    return float(drop_rate)


# -- input checks, eager mode only ----------------------------------------------------------------
def is_eager(x: torch.Tensor) -> bool:
    """True when ``x`` is a real tensor run eagerly, not traced, compiled or exported.

    A tracer sees shape checks as data-dependent control flow (``torch.fx``), warns about them
    (``torch.jit.trace``) or bakes them into guards (``torch.compile``, ``torch.export``); the
    checks exist for people, who run models eagerly.
    """
    return not (
        isinstance(x, torch.fx.Proxy) or torch.jit.is_tracing() or torch.compiler.is_compiling()
    )


def check_image_batch(
    x: Any,
    *,
    name: str,
    in_channels: int,
    min_input_size: Sequence[int] | None,
    fixed_input_size: Sequence[int] | None = None,
    small_input_hint: str = "",
) -> None:
    """Raise a clear error when ``x`` is not a batch of images a model can take.

    Args:
        x: The input.
        name: The model, named in the messages.
        in_channels: The channels the model expects.
        min_input_size: The smallest ``(H, W)`` accepted, or ``None`` when unknown.
        fixed_input_size: The only ``(H, W)`` accepted, for fixed-size heads; else ``None``.
        small_input_hint: Extra advice appended to the too-small message.

    Raises:
        TypeError: ``x`` is not a tensor, or not floating point (e.g. ``uint8`` pixels).
        ValueError: Wrong number of dimensions, channels or image size.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} expects a torch.Tensor of images, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(
            f"{name} expects floating-point images, got a {x.dtype} tensor. Convert them first, "
            "e.g. x.float() / 255 for 8-bit pixels, normalised as the model was trained (its "
            "data configuration), or let cnnzoo.predict/evaluate convert them."
        )
    if x.dim() != 4:
        hint = " Add a batch dimension with x.unsqueeze(0)." if x.dim() == 3 else ""
        raise ValueError(
            f"{name} expects a batch of images shaped (N, C, H, W); got shape "
            f"{tuple(x.shape)}.{hint}"
        )
    channels, height, width = x.shape[1], x.shape[2], x.shape[3]
    if channels != in_channels and x.shape[3] == in_channels:
        raise ValueError(
            f"{name} expects images shaped (N, C, H, W) with C={in_channels}; got shape "
            f"{tuple(x.shape)}, which looks channels-last (N, H, W, C), as NumPy and PIL store "
            "images. Permute them: x.permute(0, 3, 1, 2) (one (H, W, C) image: "
            "x.permute(2, 0, 1).unsqueeze(0)), or pass NumPy arrays to cnnzoo.predict, which "
            "reads them channels-last."
        )
    if channels != in_channels:
        raise ValueError(
            f"{name} expects {in_channels} input channel(s), got {channels} (input shape "
            f"{tuple(x.shape)}). Convert the images, or build the model with "
            f"in_channels={channels}."
        )
    if fixed_input_size is not None:
        expected = tuple(fixed_input_size)
        if (height, width) != expected:
            problem = (
                f"{name} takes exactly {expected[0]}x{expected[1]} images (its head is a "
                f"fixed-size Linear layer); got {height}x{width}."
            )
            raise for_cli(
                ValueError(f"{problem} Resize the images to {expected[0]}x{expected[1]}."),
                f"{problem} {resize_flag((expected[0], expected[1])).capitalize()}.",
            )
        return
    if min_input_size is None:
        return
    min_h, min_w = min_input_size
    if height < min_h or width < min_w:
        problem = f"{name} needs images of at least {min_h}x{min_w}; got {height}x{width}."
        raise for_cli(
            ValueError(f"{problem} Resize the images up{small_input_hint}."),
            f"{problem} {resize_flag((max(min_h, min_w), max(min_h, min_w))).capitalize()}"
            + small_input_hint.replace("small_input=True", "--small-input")
            + ".",
        )
