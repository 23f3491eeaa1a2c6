"""Argument checks and best-model tracking for ``fit`` (kept apart from the loop itself)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch

from ..data import Batches, LoaderBatches
from .evaluation import check_label_range

__all__ = ["Best", "auto", "check_arguments", "cpu_copy", "install_label_check"]


@dataclass
class Best:
    """Tracking of the monitored metric (for checkpoint, restore_best and patience)."""

    monitor: str
    higher_is_better: bool
    value: float = math.nan
    epoch: int = -1
    wait: int = 0
    weights: dict[str, torch.Tensor] | None = field(default=None, repr=False)

    def improved(self, value: float) -> bool:
        """True when ``value`` beats the best so far (NaN never does)."""
        if math.isnan(value):
            return False
        if math.isnan(self.value):
            return True
        return value > self.value if self.higher_is_better else value < self.value


# -- helpers -------------------------------------------------------------------------------------
def check_arguments(
    epochs: int, batch_size: int, label_smoothing: float, verbose: int,
    patience: int | None, resume: bool, checkpoint_dir: Any,
) -> None:  # fmt: skip
    """Refuse bad scalar arguments of ``fit`` with a message that names the fix."""
    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be an integer >= 1, got {epochs!r}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    if not 0.0 <= label_smoothing < 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing!r}")
    if verbose not in (0, 1, 2):
        raise ValueError(f"verbose must be 0, 1 or 2, got {verbose!r}")
    if patience is not None and (not isinstance(patience, int) or patience < 1):
        raise ValueError(f"patience must be None or an integer >= 1, got {patience!r}")
    if resume and checkpoint_dir is None:
        raise ValueError("resume=True needs checkpoint_dir=<directory of the interrupted run>")


def auto(value: bool | str, automatic: bool, name: str) -> bool:
    """Resolve a ``True``/``False``/``"auto"`` option; ``automatic`` is what "auto" means here."""
    if value == "auto":
        return automatic
    if isinstance(value, bool):
        return value
    raise ValueError(f"{name} must be True, False or 'auto', got {value!r}")


def install_label_check(batches: Batches | None, num_classes: int, what: str) -> None:
    """Check all labels now when known, else on each DataLoader batch as it arrives."""
    if batches is None:
        return
    if batches.labels is not None:
        check_label_range(batches.labels, num_classes, what)
    elif isinstance(batches, LoaderBatches):
        batches.check_labels = lambda y: check_label_range(y, num_classes, what)


def cpu_copy(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A detached CPU copy of a state dict (the in-memory best weights)."""
    return {key: value.detach().to("cpu", copy=True) for key, value in state.items()}
