"""``Run``: one call of ``fit`` as its loop and its callbacks see it."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..augmentation import BatchMix
from .arguments import FitConfig
from .collapse import CollapseWatch
from .distributed import Distributed
from .ema import ExponentialMovingAverage
from .feed import Batches
from .history import History
from .hooks import CallbackList
from .losses import CrossEntropy, LossFn
from .progress import ProgressBar

__all__ = ["Run"]


@dataclass
class Run:
    """One call of :func:`cnnzoo.fit` in progress.

    ``fit`` gives it to every callback that defines ``set_run(run)``, before ``on_train_begin``.
    Callbacks read it; the fields they may change are noted.

    Attributes:
        config: The options of the call.
        model: The model being trained (not wrapped): save, copy or load its weights here.
        train_model: The model as the steps call it: wrapped in DDP and/or compiled.
        optimizer: The optimizer.
        scheduler: The learning-rate scheduler, or None: stepped after every optimizer step, or
            at each epoch's end on the monitored metric for a ``ReduceLROnPlateau``.
        scaler: The gradient scaler of fp16 runs, or None.
        history: The :class:`~cnnzoo.training.History` being recorded (restorable).
        device: Where training runs.
        dtype: The autocast dtype, or None for fp32.
        dist: This process's place in a ``torchrun`` run (``dist.is_main`` on rank 0).
        train_batches: The training data feed.
        val_batches: The validation data feed, or None.
        num_classes: The width of the model's output.
        callbacks: Every callback of the run, in call order.
        progress: The progress display.
        initial_epoch: The first epoch to run (0-based); a callback restoring an interrupted run
            at ``on_train_begin`` moves it on.
        loss_fn: The loss minimised: ``loss_fn(outputs, targets)``; the default is
            :class:`~cnnzoo.training.CrossEntropy` (label smoothing, auxiliary heads).
        ema: The moving average of the weights (``fit(ema=...)``), or None.
        settings: The settings a resumed run must share with this one (see
            :mod:`cnnzoo.training.resume`), recorded in its training state.
        watch: Watches each epoch for a blow-up, a collapse or a stall
            (:mod:`cnnzoo.training.collapse`), or None.
        steps_done: Optimizer steps taken by the run (a resumed run counts those before the
            resume too, as the uninterrupted run would).
        recalibrate_norms: Re-measure the BatchNorm statistics at each epoch's end
            (:mod:`cnnzoo.training.norm_stats`; off with an EMA, which averages them).
        mix: Mixup and/or CutMix of the training batches (``fit(mixup=, cutmix=)``), or None.
        held: What the run holds until it ends, however it ends (the locks of the folders and
            files it writes): callbacks enter their context managers here.
    """

    config: FitConfig
    model: nn.Module
    train_model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler | None
    scaler: torch.amp.GradScaler | None
    history: History
    device: torch.device
    dtype: torch.dtype | None
    dist: Distributed
    train_batches: Batches
    val_batches: Batches | None
    num_classes: int
    callbacks: CallbackList
    progress: ProgressBar
    initial_epoch: int = 0
    loss_fn: LossFn = field(default_factory=CrossEntropy)
    ema: ExponentialMovingAverage | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    watch: CollapseWatch | None = None
    steps_done: int = 0
    recalibrate_norms: bool = False
    mix: BatchMix | None = None
    held: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)

    @property
    def has_validation(self) -> bool:
        """True when the run has validation data (``val_loss``/``val_accuracy`` are recorded)."""
        return self.val_batches is not None

    def current_lr(self) -> float:
        """The learning rate of the optimizer's first parameter group now."""
        return float(self.optimizer.param_groups[0]["lr"])
