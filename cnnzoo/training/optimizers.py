"""The optimizer and learning-rate schedule ``fit`` builds from its arguments, with defaults."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any, Literal, TypeGuard

import torch
from torch import nn

__all__ = [
    "DEFAULT_LR",
    "DEFAULT_WEIGHT_DECAY",
    "PLATEAU_FACTOR",
    "PLATEAU_PATIENCE",
    "OptimizerArg",
    "make_optimizer",
    "make_scheduler",
    "steps_per_epoch_end",
]

# Peak learning rates under the default one-cycle schedule, for a model whose recipe takes the
# full rate: fit scales them by the model's own recipe (training/recipes.py). AdamW's 2e-2, with
# fit's default of 4 epochs, was the fastest choice that reached the targets on every seed tried
# (benchmarks/sweep_defaults.py, results in docs/benchmarks.md): LeNet-5 0.87 Fashion-MNIST test
# accuracy in 4 epochs on seeds 0-2 (1e-2: 6 epochs with 10-epoch runs, 5 or never with 5;
# 1.5e-2 and 3e-2: one seed short at 4) and mini_resnet 0.90 in 3-4 (1e-2 with 10 epochs: 4).
# adam and sgd keep the rates of before (not swept).
DEFAULT_LR = {"adamw": 2e-2, "adam": 1e-2, "sgd": 0.05}
DEFAULT_WEIGHT_DECAY = {"adamw": 5e-4, "adam": 0.0, "sgd": 5e-4}
# schedule="plateau": Keras's and torch's factor; a patience for runs of tens of epochs, not 10.
PLATEAU_FACTOR = 0.1
PLATEAU_PATIENCE = 2

OptimizerArg = (
    str | torch.optim.Optimizer | Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]
)


def make_optimizer(
    optimizer: OptimizerArg, model: nn.Module, lr: float | None, weight_decay: float | None
) -> torch.optim.Optimizer:
    """Build the optimizer ``fit`` was asked for.

    Args:
        optimizer: "adamw", "adam", "sgd" (Nesterov momentum 0.9), a built optimizer, or a
            callable ``params -> optimizer``.
        model: Whose trainable parameters to optimise.
        lr: Peak learning rate; None picks :data:`DEFAULT_LR` for the named optimizers (fit
            passes the model's rate from :func:`cnnzoo.training.recipes.default_rate`).
        weight_decay: None picks the optimizer's default (5e-4 for adamw and sgd, 0 for adam).
            Biases and normalisation weights are never decayed.

    Returns:
        The optimizer.
    """
    if isinstance(optimizer, torch.optim.Optimizer):
        if lr is not None:
            for group in optimizer.param_groups:
                group["lr"] = lr
        return optimizer
    trainable = [p for p in model.parameters() if p.requires_grad]
    if not trainable:
        raise ValueError("the model has no trainable parameters (all frozen?); unfreeze some")
    if callable(optimizer):
        built = optimizer(trainable)
        if lr is not None:
            for group in built.param_groups:
                group["lr"] = lr
        return built
    name = str(optimizer).lower()
    if name not in DEFAULT_LR:
        raise ValueError(
            f"unknown optimizer {optimizer!r}; use 'adamw', 'adam', 'sgd', a torch.optim "
            "optimizer, or a callable that takes the parameters and returns one"
        )
    lr = DEFAULT_LR[name] if lr is None else lr
    decay = DEFAULT_WEIGHT_DECAY[name] if weight_decay is None else weight_decay
    # Decay weight matrices and kernels only: decaying biases and BN scales just hurts.
    groups = [
        {"params": [p for p in trainable if p.dim() > 1], "weight_decay": decay},
        {"params": [p for p in trainable if p.dim() <= 1], "weight_decay": 0.0},
    ]
    groups = [g for g in groups if g["params"]]
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=0.9, nesterov=True)
    if name == "adam":
        return torch.optim.Adam(groups, lr=lr)
    return torch.optim.AdamW(groups, lr=lr)


def make_scheduler(
    schedule: Any,
    optimizer: torch.optim.Optimizer,
    total_steps: int,
    *,
    warmup: float | int | None = None,
    mode: Literal["min", "max"] = "min",
) -> torch.optim.lr_scheduler.LRScheduler | None:
    """Build the learning-rate schedule.

    Args:
        schedule: "onecycle" (warm up over the first 25% of steps to the peak ``lr``, then
            anneal to near zero), "cosine" (cosine decay from ``lr`` to zero, after the
            ``warmup`` if any), "plateau" (``ReduceLROnPlateau``: divide the rate by 10 after
            :data:`PLATEAU_PATIENCE` epochs without improvement of the monitored metric; stepped
            at the end of each epoch), None (constant, after the ``warmup`` if any), or a
            callable ``(optimizer, total_steps) -> LRScheduler`` stepped every optimizer step
            (a ``ReduceLROnPlateau`` it returns is stepped at the end of each epoch instead).
        optimizer: The optimizer; its learning rates are the peaks.
        total_steps: Optimizer steps in the whole run.
        warmup: Linear warm-up from ~0 to the peak: a fraction of ``total_steps`` (a float in
            [0, 1)) or a number of steps (an int). For "onecycle" it replaces the 25% default;
            "plateau" and callables take none.
        mode: "min" or "max": the direction in which the monitored metric improves ("plateau").

    Returns:
        The scheduler, or None.
    """
    if callable(schedule) and not isinstance(schedule, str):
        if warmup is not None:
            raise ValueError("warmup= applies to the named schedules; build it into your callable")
        return schedule(optimizer, total_steps)
    name = None if schedule is None else str(schedule).lower().replace("-", "").replace("_", "")
    if name == "plateau":
        if warmup is not None:
            raise ValueError(
                "schedule='plateau' takes no warmup (it changes the rate only at epoch ends); "
                "use 'cosine' or 'onecycle' with warmup="
            )
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode=mode, factor=PLATEAU_FACTOR, patience=PLATEAU_PATIENCE
        )
    warmup_steps = _warmup_steps(warmup, total_steps)
    if warmup_steps >= max(1, total_steps):
        raise ValueError(
            f"warmup={warmup!r} is {warmup_steps} steps, not shorter than the run's {total_steps} "
            "optimizer steps; pass a smaller fraction or number of steps"
        )
    if name is None:
        return None if warmup_steps == 0 else _warmup_then(optimizer, warmup_steps, None, 0)
    # One spare step: OneCycleLR extrapolates (to a negative rate) past its last step, and
    # fit steps the scheduler after the final batch too.
    total_steps = max(1, total_steps) + 1
    if name == "onecycle":
        peaks = [group["lr"] for group in optimizer.param_groups]
        # OneCycleLR divides by zero unless both phases last two steps or more (tiny runs).
        cycle_steps = max(total_steps, 4)
        warmup_share = 0.25 if warmup is None else warmup_steps / cycle_steps
        pct_start = max(warmup_share, 2 / cycle_steps)
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer,
            max_lr=peaks,
            total_steps=cycle_steps,
            pct_start=pct_start,
            anneal_strategy="linear",
            cycle_momentum=False,
            div_factor=10.0,
            final_div_factor=100.0,
        )
    if name == "cosine":
        if warmup_steps == 0:
            return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps)
        return _warmup_then(optimizer, warmup_steps, "cosine", total_steps)
    raise ValueError(
        f"unknown schedule {schedule!r}; use 'onecycle', 'cosine', 'plateau', None, or a "
        "callable (optimizer, total_steps) -> LRScheduler"
    )


def steps_per_epoch_end(
    scheduler: Any,
) -> TypeGuard[torch.optim.lr_scheduler.ReduceLROnPlateau]:
    """True for a scheduler stepped once per epoch on a metric (``ReduceLROnPlateau``)."""
    return isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)


def _warmup_steps(warmup: float | int | None, total_steps: int) -> int:
    """``warmup`` as a number of optimizer steps (a float is a share of ``total_steps``)."""
    if warmup is None:
        return 0
    if isinstance(warmup, float):
        return round(warmup * total_steps)
    return int(warmup)


def _warmup_then(
    optimizer: torch.optim.Optimizer, warmup_steps: int, then: str | None, total_steps: int
) -> torch.optim.lr_scheduler.LRScheduler:
    """A linear warm-up over ``warmup_steps``, then cosine decay to zero (or a constant rate)."""
    decay_steps = max(1, total_steps - warmup_steps)

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / (warmup_steps + 1)
        if then is None:
            return 1.0
        progress = min(1.0, (step - warmup_steps) / decay_steps)
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
