"""One budget for every model: a number of epochs, or seconds of training each.

A time budget is turned into epochs per model before it trains, from a measured step cost: a
short ``fit`` of a fresh copy of the model on the real training data (same batch size, precision
and layout as the run) times a few steps after a warm-up and is thrown away. The schedule is then
planned for the whole run (one-cycle over exactly those epochs), which a run cut off at the
deadline would not have. An epoch that alone costs more than the budget is still run once: a
model is never scored untrained.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

from ..training import fit
from .measure import StepTimer

__all__ = ["VALIDATION_SHARE", "EpochPlan", "plan_epochs"]

# A validation batch (forward only, no gradients) costs about a third of a training step.
VALIDATION_SHARE = 1 / 3


@dataclass(frozen=True)
class EpochPlan:
    """How long one model trains.

    Attributes:
        epochs: Epochs to train.
        seconds_per_epoch: The estimate the plan was made from (None for a fixed budget).
        batch_size: The batch size the estimate was measured at, which the run must use (fit
            sizes its default batch by the epochs: a run of more epochs than the one-epoch
            probe would otherwise train at another, with another cost per epoch; compare
            gives fit's default, 128, unless the comparison names one).
    """

    epochs: int
    seconds_per_epoch: float | None = None
    batch_size: int | None = None


def plan_epochs(
    build: Callable[[], nn.Module],
    train: Any,
    val: Any,
    *,
    time_budget: float,
    fit_options: dict[str, Any],
) -> EpochPlan:
    """The epochs a fresh model of ``build()`` can train in ``time_budget`` seconds.

    Args:
        build: Builds the model (a fresh copy is timed and discarded).
        train: The training data.
        val: The validation data, or None.
        time_budget: Seconds of training for the model.
        fit_options: The options every ``fit`` of the comparison gets.

    Returns:
        The plan: ``floor(time_budget / seconds_per_epoch)`` epochs, at least 1.
    """
    timer = StepTimer()
    options = {**fit_options, "epochs": 1, "verbose": 0}
    options["callbacks"] = [*options.get("callbacks", ()), timer]
    history = fit(build(), train, None, **options)
    batch_size = history.params["batch_size"]
    train_steps = math.ceil(_length(train) / batch_size)
    val_steps = 0 if val is None else math.ceil(_length(val) / batch_size)
    if timer.times:
        per_train_step = timer.seconds_per_step
    else:  # the whole epoch ran before the warm-up was over: its own time is the measure
        per_train_step = history.history["epoch_seconds"][0] / max(train_steps, 1)
    seconds = per_train_step * (train_steps + VALIDATION_SHARE * val_steps)
    return EpochPlan(max(1, math.floor(time_budget / seconds)), seconds, batch_size)


def _length(data: Any) -> int:
    if isinstance(data, tuple | list):
        return len(data[1])
    return len(data)
