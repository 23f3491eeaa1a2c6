"""What a resumed run must share with the run that saved its state, and what may change.

A training state records the settings of its run (:func:`run_settings`). Resuming compares them
with the new run's (:func:`check_resumable`), like Keras's ``BackupAndRestore`` with a guard:

- everything that shapes the training so far must be the same — optimizer, learning rate, weight
  decay, schedule and warm-up, batch size and accumulation, seed, the training and validation
  data (their sizes and the held-out share), loss and label smoothing, augmentation, gradient
  clipping and EMA. A difference is refused with a message that
  lists each one, rather than ignored (a changed seed or ``val_data`` fraction would re-split the
  data and put training samples in the validation set);
- ``epochs`` may grow (or shrink, down to the epochs already done). The run then follows the
  schedule a run of the new length follows, from the step where the state stopped
  (:func:`continue_schedule`), as a Keras schedule that is a function of the global step does:
  a resumed run with unchanged ``epochs`` ends bit-identical to the uninterrupted one; with more
  epochs, the one-cycle or cosine schedule is stretched over the new total, so the learning rate
  rises again towards the longer schedule's value at that step (a finished one-cycle run resumed
  with twice the epochs continues from the middle of the longer cycle).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import torch

from .._advice import for_cli
from ..checkpoint import TrainingState
from .arguments import FitConfig
from .feed import Batches

__all__ = [
    "CHECKED_SETTINGS",
    "check_resumable",
    "continue_schedule",
    "run_settings",
]

# Settings a resumed run must share with the saved one, in the order messages list them.
CHECKED_SETTINGS = (
    "optimizer",
    "lr",
    "weight_decay",
    "schedule",
    "batch_size",
    "steps_per_epoch",
    "seed",
    "val_data",
    "train_samples",
    "val_samples",
    "label_smoothing",
    "augment",
    "loss_fn",
    "warmup",
    "accumulate",
    "grad_clip",
    "ema",
    "mixup",
    "cutmix",
    "drop_path_rate",
)


def run_settings(
    config: FitConfig,
    optimizer: torch.optim.Optimizer,
    val_data: Any,
    train_batches: Batches,
    val_batches: Batches | None,
) -> dict[str, Any]:
    """The settings of a run, as plain JSON, for its training state.

    Args:
        config: The options of the ``fit`` call.
        optimizer: The optimizer, before a schedule has changed its learning rate.
        val_data: ``fit``'s ``val_data`` argument.
        train_batches: The training feed.
        val_batches: The validation feed, or None.
    """
    groups = optimizer.param_groups
    return {
        "epochs": config.epochs,
        "optimizer": _describe(config.optimizer),
        "lr": max(float(group["lr"]) for group in groups),
        "weight_decay": max(float(group.get("weight_decay", 0.0)) for group in groups),
        "schedule": _describe(config.schedule),
        "batch_size": config.batch_size,
        "steps_per_epoch": len(train_batches),
        "seed": config.seed,
        "val_data": val_data if isinstance(val_data, float) or val_data is None else "data",
        "train_samples": train_batches.num_samples,
        "val_samples": 0 if val_batches is None else val_batches.num_samples,
        "label_smoothing": float(config.label_smoothing),
        "augment": _describe(config.augment),
        "loss_fn": _describe(config.loss_fn),
        "warmup": _describe(config.warmup),
        "accumulate": config.accumulate,
        "grad_clip": _describe(config.grad_clip),
        "ema": _describe(config.ema),
        "mixup": float(config.mixup),
        "cutmix": float(config.cutmix),
        "drop_path_rate": float(config.drop_path_rate),
    }


def check_resumable(
    saved: TrainingState, settings: dict[str, Any], directory: str | os.PathLike
) -> None:
    """Refuse to resume ``saved`` with settings that differ, or with fewer epochs than it did.

    Args:
        saved: The state found (its ``settings`` are empty for states of older cnnzoo versions,
            which are then resumed unchecked).
        settings: The new run's :func:`run_settings`.
        directory: The state directory, for messages.

    Raises:
        ValueError: The message lists every difference and how to go on.
    """
    where = str(Path(directory))
    start_over = f"start a new run: delete {where!r} or choose another checkpoint_dir"
    cli_start_over = f"start a new run: delete {where!r} or choose another --out"
    done = saved.epoch + 1
    if settings["epochs"] < done:
        cannot = (
            f"cannot resume from the training state in {where!r}: it has finished {done} "
            "epoch(s), more than "
        )
        raise for_cli(
            ValueError(
                f"{cannot}epochs={settings['epochs']}. Pass epochs >= {done} to continue it "
                f"(epochs={done} returns the finished run), or {start_over}"
            ),
            f"{cannot}--epochs {settings['epochs']}. Pass --epochs {done} or more to continue "
            f"it (--epochs {done} returns the finished run), or {cli_start_over}",
        )
    differences = [
        f"  - {key}: {_show(saved.settings[key])} when saved, {_show(settings[key])} now"
        for key in CHECKED_SETTINGS
        if key in saved.settings and saved.settings[key] != settings[key]
    ]
    if differences:
        differ = (
            f"cannot resume from the training state in {where!r}: this run's settings differ "
            "from the ones it was saved with:\n"
            + "\n".join(differences)
            + "\nA resumed run goes on with the same training; only epochs may change (more "
            "epochs stretch the schedule over the new total). Resume with the saved settings, "
            "or "
        )
        raise for_cli(ValueError(f"{differ}{start_over}."), f"{differ}{cli_start_over}.")


def continue_schedule(
    scheduler: Any, fresh: dict[str, Any], fresh_lrs: list[float], optimizer: Any, steps: int
) -> None:
    """Put a schedule built for the new total number of steps at step ``steps``.

    Replays ``steps`` steps of the fresh schedule (a closed form for one-cycle, the same
    recursion the uninterrupted run computes for cosine), so the learning rate is exactly the
    one a run planned with the new length from the start would have there.

    Args:
        scheduler: The run's scheduler (its saved state was just loaded into it).
        fresh: Its ``state_dict()`` as built for the new total, before the state was loaded.
        fresh_lrs: The optimizer's learning rates at that moment.
        optimizer: The optimizer whose learning rates the schedule sets.
        steps: Optimizer steps already taken.
    """
    for group, lr in zip(optimizer.param_groups, fresh_lrs, strict=True):
        group["lr"] = lr
    scheduler.load_state_dict(fresh)
    with warnings.catch_warnings():  # "scheduler.step() before optimizer.step()": on purpose
        warnings.simplefilter("ignore", UserWarning)
        for _ in range(steps):
            scheduler.step()


def _describe(option: Any) -> Any:
    """A JSON value naming an option: itself when plain, else what kind of object it is."""
    if option is None or isinstance(option, bool | int | float):
        return option
    if isinstance(option, str):
        return option.lower()
    if isinstance(option, list | tuple) and all(isinstance(o, str) for o in option):
        return "+".join(o.lower() for o in option)
    if isinstance(option, torch.optim.Optimizer):
        return type(option).__name__
    return f"custom {getattr(option, '__qualname__', type(option).__name__)}"


def _show(value: Any) -> str:
    return "None" if value is None else repr(value)
