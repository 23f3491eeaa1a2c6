"""The loss ``fit`` minimises: cross-entropy by default, auxiliary heads included, or the user's.

A model may give more than its logits while training: GoogLeNet built with ``aux_logits=True``
has two auxiliary classifiers, reached through ``forward_with_aux(x) -> (logits, aux1, aux2)``.
``fit`` trains such a model on that method (:func:`training_forward`), so the loss sees the tuple
``(logits, *aux)``; validation, ``evaluate`` and ``predict`` call ``forward`` and see the logits
only. :class:`CrossEntropy`, the default loss, adds the auxiliary losses with the weight of the
GoogLeNet paper (Szegedy et al., 2015: "the losses of the auxiliary classifiers were weighted by
0.3").
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, cast

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "AUX_WEIGHT",
    "CrossEntropy",
    "LossFn",
    "as_float",
    "check_loss",
    "main_logits",
    "training_forward",
    "uses_aux_heads",
]

# GoogLeNet (Szegedy et al., 2015), section 5: auxiliary losses weighted by 0.3.
AUX_WEIGHT = 0.3

LossFn = Callable[[Any, torch.Tensor], torch.Tensor]
Outputs = torch.Tensor | Sequence[torch.Tensor | None]


class CrossEntropy:
    """Cross-entropy of the logits; with auxiliary outputs, the weighted sum of GoogLeNet.

    ``outputs`` is the logits ``(N, C)``, or a tuple ``(logits, *aux)`` from a model with
    auxiliary heads: the loss is then ``CE(logits) + aux_weight * sum(CE(a) for a in aux)``
    (``None`` entries are skipped).

    Args:
        label_smoothing: Label smoothing in [0, 1), applied to every term.
        aux_weight: Weight of each auxiliary loss (0.3, as in the GoogLeNet paper).

    Example:
        >>> loss_fn = CrossEntropy(label_smoothing=0.1, aux_weight=0.4)
        >>> logits, labels = torch.zeros(2, 3), torch.tensor([0, 2])
        >>> round(float(loss_fn(logits, labels)), 4)
        1.0986
    """

    def __init__(self, label_smoothing: float = 0.0, aux_weight: float = AUX_WEIGHT) -> None:
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing!r}")
        if not aux_weight >= 0.0:
            raise ValueError(f"aux_weight must be >= 0, got {aux_weight!r}")
        self.label_smoothing = float(label_smoothing)
        self.aux_weight = float(aux_weight)

    def __call__(self, outputs: Outputs, targets: torch.Tensor) -> torch.Tensor:
        """The mean loss of the batch."""
        smoothing = self.label_smoothing
        if isinstance(outputs, torch.Tensor):
            return F.cross_entropy(outputs, targets, label_smoothing=smoothing)
        loss = F.cross_entropy(main_logits(outputs), targets, label_smoothing=smoothing)
        for extra in outputs[1:]:
            if extra is not None:
                loss = loss + self.aux_weight * F.cross_entropy(
                    extra, targets, label_smoothing=smoothing
                )
        return loss

    def __repr__(self) -> str:
        return f"CrossEntropy(label_smoothing={self.label_smoothing}, aux_weight={self.aux_weight})"


def uses_aux_heads(model: nn.Module) -> bool:
    """True for a model built with auxiliary heads that it exposes through ``forward_with_aux``."""
    return getattr(model, "aux_logits", False) is True and callable(
        getattr(model, "forward_with_aux", None)
    )


class _AuxForward(nn.Module):
    """``forward`` is the model's ``forward_with_aux``: DDP and ``torch.compile`` see one call."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> Any:
        return cast(_WithAux, self.model).forward_with_aux(x)


class _WithAux(Protocol):
    def forward_with_aux(self, x: torch.Tensor) -> Any: ...


def training_forward(model: nn.Module) -> nn.Module:
    """The module training steps call: ``model`` itself, or its ``forward_with_aux`` as a module.

    Both share the same parameters; only the training steps go through the auxiliary heads.
    """
    return _AuxForward(model) if uses_aux_heads(model) else model


def as_float(outputs: Outputs) -> Outputs:
    """``outputs`` in float32 (autocast may leave them in bf16/fp16); tuples stay tuples."""
    if isinstance(outputs, torch.Tensor):
        return outputs.float()
    return tuple(None if o is None else o.float() for o in outputs)


def main_logits(outputs: Outputs) -> torch.Tensor:
    """The logits among ``outputs``: the tensor itself, or the first of a tuple.

    Raises:
        TypeError: A tuple whose first output is not a tensor.
    """
    if isinstance(outputs, torch.Tensor):
        return outputs
    logits = outputs[0] if len(outputs) else None
    if not isinstance(logits, torch.Tensor):
        raise TypeError(
            "the model returned a tuple whose first output is not a logits tensor "
            f"({type(logits).__name__}); return the logits first, then any auxiliary outputs"
        )
    return logits


def check_loss(loss: Any) -> torch.Tensor:
    """Refuse a loss function's result that cannot be minimised (not a scalar tensor).

    Metadata checks only: no device sync.
    """
    if not isinstance(loss, torch.Tensor) or loss.dim() != 0:
        shape = tuple(loss.shape) if isinstance(loss, torch.Tensor) else type(loss).__name__
        raise ValueError(
            f"loss_fn must return a scalar tensor (the batch's mean loss), got {shape}; "
            "reduce it, e.g. with .mean()"
        )
    if not loss.requires_grad:
        raise ValueError(
            "loss_fn returned a tensor without gradient: compute it from the outputs with torch "
            "operations (no .item(), .detach() or numpy)"
        )
    return loss
