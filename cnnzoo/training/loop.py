"""``fit``: the training loop.

The loop keeps the device busy: batches come from :mod:`cnnzoo.data` already on the device,
metrics accumulate in device tensors and are read back (one sync) only when the progress display
updates, and validation runs without gradients on the unwrapped model.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..data import Batches, make_augment, make_batches, resolve, split
from ..devices import resolve_device
from . import distributed
from .callbacks import CallbackList, ProgressBar
from .components import (
    OptimizerArg,
    autocast,
    make_optimizer,
    make_scheduler,
    resolve_precision,
)
from .evaluation import accumulate, infer_num_classes, summarize
from .history import History
from .run_options import Best, auto, check_arguments, cpu_copy, install_label_check

__all__ = ["fit"]

DEFAULT_BATCH_SIZE = 128
# Progress and the NaN check read metrics back this many times per epoch (one sync each).
_SYNCS_PER_EPOCH = 50


def fit(
    model: nn.Module,
    train_data: Any,
    val_data: Any = None,
    *,
    epochs: int = 10,
    batch_size: int = DEFAULT_BATCH_SIZE,
    optimizer: OptimizerArg = "adamw",
    lr: float | None = None,
    weight_decay: float | None = None,
    schedule: Any = "onecycle",
    label_smoothing: float = 0.0,
    augment: Any = None,
    device: str | torch.device = "auto",
    precision: str = "auto",
    channels_last: bool | str = "auto",
    compile: bool | str = "auto",
    seed: int = 0,
    callbacks: Iterable[Any] | None = None,
    verbose: int = 1,
    checkpoint: str | os.PathLike | None = None,
    monitor: str = "val_accuracy",
    restore_best: bool = False,
    patience: int | None = None,
    checkpoint_dir: str | os.PathLike | None = None,
    resume: bool = False,
    num_workers: int | None = None,
) -> History:
    """Train a classifier.

    Args:
        model: Any ``nn.Module`` returning logits ``(N, num_classes)``; it is moved to
            ``device`` and stays there.
        train_data: An ``(images, labels)`` pair of tensors, a ``Dataset`` yielding ``(image,
            label)``, or a ``DataLoader``. Tensor pairs, ``TensorDataset``s,
            :func:`cnnzoo.data.load_dataset` results and torchvision's MNIST-family datasets
            are put on the device once and batched by index (the fast path). ``uint8`` images
            are scaled to [0, 1] there, and normalised with the dataset's mean and std when the
            data carries them (``load_dataset`` results, a ``Normalize`` transform); evaluate
            and predict do the same, so pass them data in the same form.
        val_data: Validation data in the same forms, or a float in (0, 1): a seeded, shuffled
            share of ``train_data`` held out.
        epochs: Passes over the training data.
        batch_size: Samples per step (ignored for a ``DataLoader``).
        optimizer: "adamw" (default), "adam", "sgd" (Nesterov, momentum 0.9), a
            ``torch.optim.Optimizer``, or a callable ``params -> optimizer``.
        lr: Peak learning rate; default 1e-2 for adamw/adam, 0.05 for sgd.
        weight_decay: Decay of weights (not biases or norms); default 5e-4 (adamw, sgd), 0 (adam).
        schedule: "onecycle" (default: warm-up over 25% of the steps, then linear decay),
            "cosine", None (constant), or ``callable(optimizer, total_steps) -> LRScheduler``.
        label_smoothing: Cross-entropy label smoothing in [0, 1).
        augment: None; batch augmentations on the device by name ("flip", "crop", or a list
            such as ``["crop", "flip"]``); or a callable taking the normalised batch (and
            optionally a ``torch.Generator``) and returning it augmented.
        device: "auto" (cuda, then mps, then cpu) or any torch device.
        precision: "auto" (bf16 autocast on CUDA, fp32 elsewhere), "fp32", "bf16" or "fp16".
        channels_last: Use the channels-last memory format for the model and its inputs; "auto"
            turns it on for CPU and CUDA (1.4-1.6x faster steps measured on CPU).
        compile: ``torch.compile`` the model; "auto" compiles only on CUDA runs long enough
            (>= 2000 steps) to repay the compile time; on CPU it is off.
        seed: Seeds torch's RNGs (dropout), the data order, the validation split and the
            augmentation. Build the model after ``torch.manual_seed(seed)`` as well for runs that
            repeat exactly.
        callbacks: Objects with any of Keras's hooks (see :mod:`cnnzoo.training.callbacks`).
            Under ``torchrun`` a stop requested at an epoch's end is agreed by all ranks (rank
            0 decides); a stop in the middle of an epoch must be requested on every rank.
        verbose: 0 silent, 1 a progress bar per epoch (a line per epoch when not a terminal),
            2 a line per epoch.
        checkpoint: Path of a ``.safetensors`` file that receives the best weights so far
            (by ``monitor``), written atomically with :func:`cnnzoo.save`.
        monitor: Metric for ``checkpoint``, ``restore_best`` and ``patience``: "val_accuracy"
            (default, higher is better) or any key of ``history.history`` (losses: lower is
            better).
        restore_best: Load the best weights back into the model at the end.
        patience: Stop after this many epochs without improvement of ``monitor``.
        checkpoint_dir: Directory for the full training state, written atomically after every
            epoch so an interrupted run can resume; without ``checkpoint`` it also keeps the best
            weights (by ``monitor``) as ``best.safetensors``.
        resume: Continue from the state in ``checkpoint_dir`` if there is one.
        num_workers: DataLoader workers for datasets that are not held in memory.

    Returns:
        The :class:`History` of the run.

    Raises:
        ValueError: Bad arguments, empty data, labels outside ``[0, num_classes)``, or images
            the model cannot take (raised before the first epoch).
        FloatingPointError: The loss became NaN or infinite (the message names the epoch and
            the step); the best checkpoint is left as it was.

    Example:
        >>> from cnnzoo import fit, evaluate, get_model
        >>> from cnnzoo.data import load_dataset
        >>> model = get_model("lenet5")
        >>> history = fit(model, load_dataset("fashion-mnist"), val_data=0.1, epochs=5)
        >>> evaluate(model, load_dataset("fashion-mnist", "test"))["accuracy"]  # doctest: +SKIP
    """
    check_arguments(epochs, batch_size, label_smoothing, verbose, patience, resume, checkpoint_dir)
    torch.manual_seed(seed)
    target = resolve_device(device)
    dist = distributed.setup(target)
    target = dist.device(target)
    try:
        run = _Run.build(
            model, train_data, val_data, dist=dist, device=target, epochs=epochs,
            batch_size=batch_size, optimizer=optimizer, lr=lr, weight_decay=weight_decay,
            schedule=schedule, label_smoothing=label_smoothing, augment=augment,
            precision=precision, channels_last=channels_last, compile=compile, seed=seed,
            callbacks=callbacks, verbose=verbose, checkpoint=checkpoint, monitor=monitor,
            restore_best=restore_best, patience=patience, checkpoint_dir=checkpoint_dir,
            num_workers=num_workers,
        )  # fmt: skip
        if resume:
            run.resume()
        return run.train()
    finally:
        dist.teardown()


@dataclass
class _Run:
    """One call of ``fit``: everything built from its arguments, and the epoch loop."""

    model: nn.Module
    train_model: nn.Module  # the model as trained: wrapped in DDP and/or compiled
    dist: distributed.Distributed
    device: torch.device
    dtype: torch.dtype | None
    train_batches: Batches
    val_batches: Batches | None
    num_classes: int
    optimizer: torch.optim.Optimizer
    scheduler: Any
    scaler: Any
    label_smoothing: float
    epochs: int
    callbacks: CallbackList
    progress: ProgressBar
    history: History
    best: Best
    checkpoint: str | os.PathLike | None
    restore_best: bool
    patience: int | None
    checkpoint_dir: str | os.PathLike | None
    start_epoch: int = 0

    # -- construction ------------------------------------------------------------------------
    @classmethod
    def build(cls, model: nn.Module, train_data: Any, val_data: Any, **o: Any) -> _Run:
        dist, device = o["dist"], o["device"]
        seed = o["seed"]
        dtype = resolve_precision(o["precision"], device)
        train_source = resolve(train_data, what="train_data")
        if isinstance(val_data, float):
            train_source, val_source = split(train_source, val_data, seed)
        else:
            val_source = None if val_data is None else resolve(val_data, what="val_data")
        if o["monitor"].startswith("val_") and val_source is None:
            needs = [n for n in ("checkpoint", "restore_best", "patience") if o[n]]
            if needs:
                raise ValueError(
                    f"{', '.join(needs)} monitor {o['monitor']!r}, which needs validation data; "
                    "pass val_data (e.g. val_data=0.1) or monitor a training metric "
                    "(monitor='loss')"
                )

        # channels_last measured 1.4-1.6x faster training steps on CPU (lenet5, mini_resnet,
        # cifar_cnn; resnet18 even) and is the fast layout for CUDA convolutions too.
        fast_layout = device.type in ("cpu", "cuda")
        use_channels_last = auto(o["channels_last"], fast_layout, "channels_last")
        model.to(device)
        if use_channels_last:
            model.to(memory_format=torch.channels_last)
        common = {"device": device, "batch_size": o["batch_size"], "seed": seed,
                  "channels_last": use_channels_last, "num_workers": o["num_workers"]}  # fmt: skip
        train_batches = make_batches(
            train_source, train=True, augment=make_augment(o["augment"]), shard=dist.shard,
            **common,
        )  # fmt: skip
        val_batches = (
            None
            if val_source is None
            else make_batches(val_source, train=False, shard=dist.shard, **common)
        )
        if len(train_batches) == 0:
            raise ValueError("train_data is empty: it yields no batches")

        # One probe forward: the model's own error for wrong images, before any training.
        num_classes = infer_num_classes(model, train_batches, dtype)
        for what, batches in (("train_data", train_batches), ("val_data", val_batches)):
            install_label_check(batches, num_classes, what)

        optimizer = make_optimizer(o["optimizer"], model, o["lr"], o["weight_decay"])
        peak_lr = float(optimizer.param_groups[0]["lr"])
        total_steps = o["epochs"] * len(train_batches)
        scheduler = make_scheduler(o["schedule"], optimizer, total_steps)
        scaler = torch.amp.GradScaler(device.type) if dtype == torch.float16 else None

        train_model = dist.wrap(model, device)
        long_enough = device.type == "cuda" and total_steps >= 2000
        if auto(o["compile"], long_enough, "compile"):
            train_model = torch.compile(train_model)

        monitor = o["monitor"]
        history = History(
            {
                "epochs": o["epochs"], "batch_size": o["batch_size"],
                "steps": len(train_batches), "optimizer": type(optimizer).__name__,
                "lr": peak_lr,
                "schedule": o["schedule"] if isinstance(o["schedule"], str | None) else "custom",
                "device": str(device), "precision": str(dtype or "fp32"),
                "channels_last": use_channels_last, "world_size": dist.world_size,
            }
        )  # fmt: skip
        callbacks = CallbackList(o["callbacks"])
        return cls(
            model=model, train_model=train_model, dist=dist, device=device, dtype=dtype,
            train_batches=train_batches, val_batches=val_batches, num_classes=num_classes,
            optimizer=optimizer, scheduler=scheduler, scaler=scaler,
            label_smoothing=o["label_smoothing"], epochs=o["epochs"], callbacks=callbacks,
            progress=ProgressBar(o["verbose"], o["epochs"], enabled=dist.is_main),
            history=history, best=Best(monitor, "acc" in monitor),
            checkpoint=o["checkpoint"], restore_best=o["restore_best"], patience=o["patience"],
            checkpoint_dir=o["checkpoint_dir"],
        )  # fmt: skip

    def resume(self) -> None:
        """Continue from ``checkpoint_dir``'s state, if it holds one."""
        from ..checkpoint import load_training_state

        state = load_training_state(
            self.checkpoint_dir, model=self.model, optimizer=self.optimizer,
            scheduler=self.scheduler, scaler=self.scaler, map_location=self.device,
        )  # fmt: skip
        if state is None:
            return
        self.start_epoch = state.epoch + 1
        self.history.load_state_dict(state.history)
        extra = state.extra or {}
        self.best.value = float(extra.get("best_value", math.nan))
        self.best.epoch = int(extra.get("best_epoch", -1))
        self.best.wait = int(extra.get("wait", 0))
        if self.restore_best and self.checkpoint is None and self._best_file().is_file():
            from ..checkpoint import read_state_dict

            self.best.weights, _ = read_state_dict(self._best_file())

    # -- the loop ----------------------------------------------------------------------------
    def train(self) -> History:
        model, callbacks = self.model, self.callbacks
        callbacks.set_model(model)
        keras_flag = any(hasattr(c, "set_model") for c in callbacks.callbacks)
        if keras_flag or hasattr(model, "stop_training"):
            model.stop_training = False  # a flag left set by an earlier run must not stop this one
        stop = callbacks.call("on_train_begin", {})
        try:
            for epoch in range(self.start_epoch, self.epochs):
                if stop:
                    break
                started = time.perf_counter()
                stop |= callbacks.call("on_epoch_begin", epoch, {})
                logs, stop_in_epoch = self._train_epoch(epoch)
                stop |= stop_in_epoch
                self.dist.sync_buffers(model)
                logs.update(self._validate())
                logs["lr"] = self._current_lr()
                logs["epoch_seconds"] = time.perf_counter() - started
                self.history.append(epoch, logs)
                stop |= self._track_best(epoch, logs)
                self._save_state(epoch)
                self.progress.end_epoch(epoch, logs)
                stop |= callbacks.call("on_epoch_end", epoch, logs)
                stop |= keras_flag and bool(getattr(model, "stop_training", False))
                stop = self.dist.broadcast_flag(stop, self.device)
                if stop and epoch + 1 < self.epochs:
                    self.history.stopped_epoch = epoch
        finally:
            self.progress.close()
        self.history.best_epoch = self.best.epoch if self.best.epoch >= 0 else None
        if self.restore_best:
            self._restore_best()
        callbacks.call("on_train_end", {"history": self.history.history})
        self.dist.barrier()
        return self.history

    def _train_epoch(self, epoch: int) -> tuple[dict[str, float], bool]:
        model, optimizer = self.train_model, self.optimizer
        scheduler, scaler = self.scheduler, self.scaler
        steps = len(self.train_batches)
        sync_every = max(1, steps // _SYNCS_PER_EPOCH)
        want_batch_logs = self.callbacks.wants_batch_logs
        loss_sum = torch.zeros((), dtype=torch.float64, device=self.device)
        correct = torch.zeros((), dtype=torch.int64, device=self.device)
        first_bad = torch.full((), -1, dtype=torch.int64, device=self.device)
        seen = last_synced = 0
        stop = False
        model.train()
        self.progress.start_epoch(epoch, steps)
        for step, (x, y) in enumerate(self.train_batches.epoch(epoch)):
            if want_batch_logs:
                stop |= self.callbacks.call("on_batch_begin", step, {})
            with autocast(self.device, self.dtype):
                logits = model(x)
            loss = F.cross_entropy(logits.float(), y, label_smoothing=self.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
            else:
                loss.backward()
                optimizer.step()
            if scheduler is not None:
                scheduler.step()

            detached = loss.detach()
            loss_sum += detached.double() * len(y)
            correct += (logits.detach().argmax(1) == y).sum()
            first_bad = torch.where((first_bad < 0) & ~torch.isfinite(detached), step, first_bad)
            seen += len(y)
            if want_batch_logs:
                stop |= self.callbacks.call("on_batch_end", step, {"loss": float(detached)})
            if (step + 1) % sync_every == 0 or step + 1 == steps:
                self._check_finite(first_bad, epoch, step)
                self.progress.update(
                    step + 1 - last_synced, float(loss_sum) / seen, float(correct) / seen
                )
                last_synced = step + 1
            if stop or getattr(self.model, "stop_training", False) is True:
                stop = True
                break
        count = torch.tensor(seen, dtype=torch.float64, device=self.device)
        totals = torch.stack([loss_sum, correct.double(), count])
        self.dist.all_reduce_sum(totals)
        loss_total, correct_total, count = totals.tolist()
        return {"loss": loss_total / count, "accuracy": correct_total / count}, stop

    def _check_finite(self, first_bad: torch.Tensor, epoch: int, step: int) -> None:
        flag = (first_bad >= 0).to(torch.int64)
        if self.dist.enabled:
            flag = self.dist.all_reduce_sum(flag.clone())
        if int(flag) == 0:
            return
        bad_step = int(first_bad) if int(first_bad) >= 0 else step
        lr = self._current_lr()
        raise FloatingPointError(
            f"the training loss became NaN or infinite at epoch {epoch + 1} (0-based {epoch}), "
            f"step {bad_step}; training stopped and the best checkpoint was left as it was. "
            f"Lower the learning rate (lr is {lr:.3g} now; try lr={lr / 10:.3g}), check the "
            "inputs for NaN, or use precision='fp32'."
        )

    def _validate(self) -> dict[str, float]:
        if self.val_batches is None:
            return {}
        loss_sum, confusion = accumulate(
            self.model, self.val_batches, self.num_classes, self.dtype, self.label_smoothing
        )
        self.dist.all_reduce_sum(loss_sum)
        self.dist.all_reduce_sum(confusion)
        metrics = summarize(loss_sum, confusion)
        return {"val_loss": metrics["loss"], "val_accuracy": metrics["accuracy"]}

    # -- best model, state, schedule -----------------------------------------------------------
    def _track_best(self, epoch: int, logs: dict[str, float]) -> bool:
        best = self.best
        asked = self.checkpoint is not None or self.restore_best or self.patience is not None
        if not asked and self.checkpoint_dir is None:
            return False
        if best.monitor not in logs:
            if not asked:  # checkpoint_dir alone: keep the best weights only when rankable
                return False
            raise ValueError(
                f"monitor={best.monitor!r} is not a recorded metric; choose one of {sorted(logs)}"
            )
        value = logs[best.monitor]
        if best.improved(value):
            best.value, best.epoch, best.wait = value, epoch, 0
            if self.dist.is_main:
                if self.checkpoint is not None:
                    from ..checkpoint import save

                    save(self.model, self.checkpoint)
                elif self.checkpoint_dir is not None:  # the state directory keeps the best too
                    from ..checkpoint import save

                    save(self.model, self._best_file())
            if self.restore_best and self.checkpoint is None:
                best.weights = cpu_copy(self.model.state_dict())
            return False
        best.wait += 1
        return self.patience is not None and best.wait >= self.patience

    def _restore_best(self) -> None:
        if self.best.epoch < 0:
            return
        if self.checkpoint is not None:
            self.dist.barrier()  # rank 0 wrote it
            from ..checkpoint import load_weights

            load_weights(self.model, self.checkpoint)
        elif self.best.weights is not None:
            self.model.load_state_dict(self.best.weights)

    def _best_file(self) -> Path:
        """Where a run with ``checkpoint_dir`` and no ``checkpoint`` keeps its best weights."""
        return Path(self.checkpoint_dir) / "best.safetensors"

    def _save_state(self, epoch: int) -> None:
        if self.checkpoint_dir is None or not self.dist.is_main:
            return
        from ..checkpoint import save_training_state

        save_training_state(
            self.checkpoint_dir, model=self.model, optimizer=self.optimizer,
            scheduler=self.scheduler, scaler=self.scaler, epoch=epoch,
            history=self.history.state_dict(),
            extra={"best_value": self.best.value, "best_epoch": self.best.epoch,
                   "wait": self.best.wait},
        )  # fmt: skip

    def _current_lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])
