"""``FitConfig``: the options of one ``fit`` call, checked once, then passed around read-only."""

from __future__ import annotations

import difflib
import math
import os
from dataclasses import dataclass
from typing import Any

from ..augmentation import check_regularisation
from .ema import DEFAULT_EMA_DECAY
from .optimizers import OptimizerArg
from .outputs import check_outputs

__all__ = ["DEFAULT_EPOCHS", "FitConfig", "auto"]

# With AdamW at 2e-2 under one-cycle, LeNet-5 reaches 0.87 and mini_resnet 0.90 Fashion-MNIST
# test accuracy in 4 epochs (benchmarks/sweep_defaults.py; docs/benchmarks.md).
DEFAULT_EPOCHS = 4
# The metrics fit records and its monitor= can rank (others: callbacks with mode=).
FIT_METRICS = ("loss", "accuracy", "val_loss", "val_accuracy")


@dataclass(frozen=True)
class FitConfig:
    """``fit``'s keyword options (see :func:`cnnzoo.fit` for each one's meaning).

    Bad scalar options, a ``monitor`` fit does not record, and outputs that cannot be written
    (see :func:`~cnnzoo.training.outputs.check_outputs`) are refused on construction, before any
    data is read, with a message that names the fix; options that need the data or the device
    (precision, optimizer, schedule, augment) are checked when the run is built from them.
    """

    epochs: int = DEFAULT_EPOCHS
    batch_size: int | None = None
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
    loss_fn: Any = None
    grad_clip: float | None = None
    accumulate: int = 1
    ema: bool | float | None = None
    warmup: float | int | None = None
    mixup: float = 0.0
    cutmix: float = 0.0
    drop_path_rate: float = 0.0

    @property
    def ema_decay(self) -> float | None:
        """The EMA decay asked for (``ema=True`` is :data:`DEFAULT_EMA_DECAY`), or None."""
        if self.ema is None or self.ema is False:
            return None
        return DEFAULT_EMA_DECAY if self.ema is True else float(self.ema)

    def __post_init__(self) -> None:
        epochs, batch_size = self.epochs, self.batch_size
        if not _is_int(epochs) or epochs < 1:
            raise ValueError(f"epochs must be an integer >= 1, got {epochs!r}")
        if batch_size is not None and (not _is_int(batch_size) or batch_size < 1):
            raise ValueError(
                f"batch_size must be None (fit chooses) or an integer >= 1, got {batch_size!r}"
            )
        if not _is_int(self.seed):
            raise ValueError(f"seed must be an integer, got {self.seed!r}")
        for name in ("lr", "weight_decay"):
            value = getattr(self, name)
            if value is not None and not (_is_number(value) and 0 <= value < math.inf):
                raise ValueError(f"{name} must be None or a number >= 0, got {value!r}")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {self.label_smoothing!r}")
        if self.verbose not in (0, 1, 2):
            raise ValueError(f"verbose must be 0, 1 or 2, got {self.verbose!r}")
        patience = self.patience
        if patience is not None and (not _is_int(patience) or patience < 1):
            raise ValueError(f"patience must be None or an integer >= 1, got {patience!r}")
        for name in ("restore_best", "resume"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be True or False, got {getattr(self, name)!r}")
        workers = self.num_workers
        if workers is not None and (not _is_int(workers) or workers < 0):
            raise ValueError(f"num_workers must be None or an integer >= 0, got {workers!r}")
        if self.resume and self.checkpoint_dir is None:
            raise ValueError("resume=True needs checkpoint_dir=<directory of the interrupted run>")
        self._check_step_options()
        check_regularisation(self.mixup, self.cutmix, self.drop_path_rate)
        _check_monitor(self.monitor)
        check_outputs(self.checkpoint, self.checkpoint_dir, self.resume)

    def _check_step_options(self) -> None:
        """The options of the optimizer step: loss, clipping, accumulation, EMA, warm-up."""
        if self.loss_fn is not None:
            if not callable(self.loss_fn):
                raise TypeError(
                    f"loss_fn must be a callable (outputs, targets) -> loss, got "
                    f"{type(self.loss_fn).__name__}"
                )
            if self.label_smoothing:
                raise ValueError(
                    "label_smoothing applies to the default loss only; with loss_fn, smooth "
                    "inside it (e.g. loss_fn=cnnzoo.training.CrossEntropy(label_smoothing=0.1))"
                )
        clip = self.grad_clip
        if clip is not None and (
            isinstance(clip, bool)
            or not isinstance(clip, int | float)
            or not math.isfinite(clip)
            or clip <= 0
        ):
            raise ValueError(f"grad_clip must be None or a number > 0 (a max norm), got {clip!r}")
        k = self.accumulate
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"accumulate must be an integer >= 1 (batches per step), got {k!r}")
        ema = self.ema
        if not (ema is None or isinstance(ema, bool)) and (
            not isinstance(ema, float) or not 0.0 < ema < 1.0
        ):
            raise ValueError(
                f"ema must be None, True (decay {DEFAULT_EMA_DECAY}) or a decay in (0, 1) such "
                f"as 0.99; got {ema!r}"
            )
        warmup = self.warmup
        if warmup is not None and (
            isinstance(warmup, bool)
            or not isinstance(warmup, int | float)
            or (isinstance(warmup, float) and not 0.0 <= warmup < 1.0)
            or (isinstance(warmup, int) and warmup < 0)
        ):
            raise ValueError(
                f"warmup must be None, a fraction of the steps in [0, 1) (e.g. 0.05) or a number "
                f"of steps >= 0; got {warmup!r}"
            )


def _check_monitor(monitor: Any) -> None:
    """Refuse a metric fit does not record (a typo), suggesting the closest it does."""
    if monitor in FIT_METRICS:
        return
    close = difflib.get_close_matches(str(monitor), FIT_METRICS, n=1, cutoff=0.6)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise ValueError(
        f"monitor={monitor!r} is not a metric fit records and ranks.{hint} Choose one of "
        f"{sorted(FIT_METRICS)}, or rank another metric with callbacks=[ModelCheckpoint(..., "
        "monitor=..., mode='min' or 'max')] or EarlyStopping(...)"
    )


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_int(value: Any) -> bool:
    """An integer, and not a bool (``True`` is an int to Python, never what was meant)."""
    return isinstance(value, int) and not isinstance(value, bool)


def auto(value: bool | str, automatic: bool, name: str) -> bool:
    """Resolve a ``True``/``False``/``"auto"`` option; ``automatic`` is what "auto" means here."""
    if value == "auto":
        return automatic
    if isinstance(value, bool):
        return value
    raise ValueError(f"{name} must be True, False or 'auto', got {value!r}")
