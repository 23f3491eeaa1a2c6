"""``fit``'s shortcut options, built as the callbacks they stand for.

- ``checkpoint=path``: ``ModelCheckpoint(path, monitor)``;
- ``checkpoint_dir=d`` without ``checkpoint``: ``ModelCheckpoint(d / "best.safetensors",
  monitor)`` as well, when the run records ``monitor``;
- ``patience=n`` and/or ``restore_best=True``: ``EarlyStopping(monitor, patience=n,
  restore_best_weights=restore_best)``;
- ``checkpoint_dir=d``, ``resume=r``: ``BackupAndRestore(d, resume=r)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .arguments import FitConfig
from .callbacks import BackupAndRestore, EarlyStopping, ModelCheckpoint

__all__ = ["BEST_FILE", "shortcut_callbacks"]

# Where a run with checkpoint_dir and no checkpoint keeps its best weights, inside the directory.
BEST_FILE = "best.safetensors"
_TRAIN_METRICS = ("loss", "accuracy")
_VAL_METRICS = ("val_loss", "val_accuracy")


def shortcut_callbacks(config: FitConfig, has_validation: bool) -> list[Any]:
    """The callbacks ``config``'s shortcut options ask for, in the order ``fit`` runs them.

    Args:
        config: The options of the ``fit`` call.
        has_validation: Whether the run has validation data.

    Returns:
        ``ModelCheckpoint``, ``EarlyStopping`` and ``BackupAndRestore`` as asked (possibly none).

    Raises:
        ValueError: ``checkpoint``, ``restore_best`` or ``patience`` with a ``monitor`` the run
            cannot rank: a validation metric without validation data, or a metric ``fit`` does
            not record.
    """
    monitor = config.monitor
    recorded = _TRAIN_METRICS + (_VAL_METRICS if has_validation else ())
    asked = [
        name
        for name, wanted in (
            ("checkpoint", config.checkpoint is not None),
            ("restore_best", config.restore_best),
            ("patience", config.patience is not None),
        )
        if wanted
    ]
    if asked and monitor.startswith("val_") and not has_validation:
        raise ValueError(
            f"{', '.join(asked)} monitor {monitor!r}, which needs validation data; pass val_data "
            "(e.g. val_data=0.1) or monitor a training metric (monitor='loss')"
        )
    if asked and monitor not in recorded:
        raise ValueError(
            f"monitor={monitor!r} is not a metric fit records and ranks; choose one of "
            f"{sorted(recorded)}, or rank another metric with callbacks=[ModelCheckpoint(..., "
            "monitor=..., mode='min' or 'max')] or EarlyStopping(...)"
        )

    built: list[Any] = []
    if config.checkpoint is not None:
        built.append(ModelCheckpoint(config.checkpoint, monitor=monitor))
    elif config.checkpoint_dir is not None and monitor in recorded:
        # The state directory keeps the best weights too, when the monitor can rank them.
        built.append(ModelCheckpoint(Path(config.checkpoint_dir) / BEST_FILE, monitor=monitor))
    if config.patience is not None or config.restore_best:
        built.append(
            EarlyStopping(
                monitor,
                patience=config.patience,
                restore_best_weights=config.restore_best,
            )
        )
    if config.checkpoint_dir is not None:
        built.append(BackupAndRestore(config.checkpoint_dir, resume=config.resume))
    return built
