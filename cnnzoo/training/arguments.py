"""``FitConfig``: the options of one ``fit`` call, checked once, then passed around read-only."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from .optimizers import OptimizerArg

__all__ = ["DEFAULT_BATCH_SIZE", "FitConfig", "auto"]

DEFAULT_BATCH_SIZE = 128


@dataclass(frozen=True)
class FitConfig:
    """``fit``'s keyword options (see :func:`cnnzoo.fit` for each one's meaning).

    Bad scalar options are refused on construction with a message that names the fix; options
    that need the data or the device (precision, optimizer, schedule, augment) are checked when
    the run is built from them.
    """

    epochs: int = 4
    batch_size: int = DEFAULT_BATCH_SIZE
    optimizer: OptimizerArg = "adamw"
    lr: float | None = None
    weight_decay: float | None = None
    schedule: Any = "onecycle"
    label_smoothing: float = 0.0
    augment: Any = None
    precision: str = "auto"
    channels_last: bool | str = "auto"
    compile: bool | str = "auto"
    seed: int = 0
    callbacks: tuple[Any, ...] = ()
    verbose: int = 1
    checkpoint: str | os.PathLike | None = None
    monitor: str = "val_accuracy"
    restore_best: bool = False
    patience: int | None = None
    checkpoint_dir: str | os.PathLike | None = None
    resume: bool = False
    num_workers: int | None = None

    def __post_init__(self) -> None:
        epochs, batch_size = self.epochs, self.batch_size
        if not isinstance(epochs, int) or epochs < 1:
            raise ValueError(f"epochs must be an integer >= 1, got {epochs!r}")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {self.label_smoothing!r}")
        if self.verbose not in (0, 1, 2):
            raise ValueError(f"verbose must be 0, 1 or 2, got {self.verbose!r}")
        patience = self.patience
        if patience is not None and (not isinstance(patience, int) or patience < 1):
            raise ValueError(f"patience must be None or an integer >= 1, got {patience!r}")
        if self.resume and self.checkpoint_dir is None:
            raise ValueError("resume=True needs checkpoint_dir=<directory of the interrupted run>")


def auto(value: bool | str, automatic: bool, name: str) -> bool:
    """Resolve a ``True``/``False``/``"auto"`` option; ``automatic`` is what "auto" means here."""
    if value == "auto":
        return automatic
    if isinstance(value, bool):
        return value
    raise ValueError(f"{name} must be True, False or 'auto', got {value!r}")
