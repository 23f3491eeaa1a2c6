"""Callbacks: Keras's hooks and its ``ModelCheckpoint``, ``EarlyStopping``, ``BackupAndRestore``.

A callback needs no base class. ``fit`` calls whichever of these methods it has::

    set_run(run)                  (before training: the Run, see below)
    on_train_begin(logs)          on_train_end(logs)
    on_epoch_begin(epoch, logs)   on_epoch_end(epoch, logs)
    on_batch_begin(batch, logs)   on_batch_end(batch, logs)

``logs`` at ``on_epoch_end`` holds that epoch's metrics (loss, accuracy, val_loss,
val_accuracy, lr, epoch_seconds); at ``on_batch_end`` it holds the batch's ``loss`` (asking for
per-batch logs costs one device sync per batch, so define ``on_batch_end`` only when needed).

A callback that needs the trainer defines ``set_run(run)``: ``run`` is the
:class:`~cnnzoo.training.Run` of the call (model, optimizer, scheduler, history, device, the
``torchrun`` rank, ...). Keras-style ``set_model(model)`` is called too.

To stop training, raise :class:`StopTraining` from any hook, or set ``model.stop_training =
True`` as in Keras (for callbacks that define ``set_model``).

A callback with ``state_dict()`` and ``load_state_dict(state)`` has its state kept by
:class:`BackupAndRestore`, so a resumed run carries on exactly; fit runs a ``BackupAndRestore``
after every such callback, wherever it stands in the list.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from ..checkpoint import (
    exclusive_lock,
    load_training_state,
    peek_training_state,
    save,
    save_training_state,
)
from .hooks import StopTraining, has_state
from .monitor import Monitor
from .optimizers import steps_per_epoch_end
from .outputs import check_outputs, check_writable, refuse_overwrite
from .resume import check_resumable, continue_schedule
from .run import Run

__all__ = [
    "BackupAndRestore",
    "EarlyStopping",
    "ModelCheckpoint",
    "StopTraining",
    "in_call_order",
]


class _UsesRun:
    """Keeps the :class:`~cnnzoo.training.Run` that ``fit`` gives through ``set_run``."""

    _run: Run | None = None

    def set_run(self, run: Run) -> None:
        """Keep ``run`` (``fit`` calls this before ``on_train_begin``)."""
        self._run = run

    @property
    def run(self) -> Run:
        """The run in progress."""
        if self._run is None:
            raise RuntimeError(
                f"{type(self).__name__} is used outside fit: fit calls set_run(run) before "
                "training starts"
            )
        return self._run


class ModelCheckpoint(_UsesRun):
    """Save the model with :func:`cnnzoo.save` when ``monitor`` improves (Keras's callback).

    The file is written atomically (complete or not at all) and, under ``torchrun``, by rank 0
    only. The best value survives across ``fit`` calls with the same callback, as in Keras, so
    a later call overwrites the file only with a better model.

    Args:
        filepath: Where to write the ``.safetensors`` file. It may hold Keras-style fields
            filled at each save, ``{epoch}`` (1-based) and the epoch's metrics, e.g.
            ``"ck-{epoch:02d}-{val_loss:.3f}.safetensors"``.
        monitor: The metric that ranks epochs.
        mode: "min", "max", or "auto" (see :class:`~cnnzoo.training.Monitor`).
        save_best_only: Save only when ``monitor`` improves; False saves after every epoch.

    Attributes:
        best: The best value of ``monitor`` so far (NaN before the first).
        best_epoch: The epoch of ``best`` (0-based), -1 before the first.
    """

    def __init__(
        self,
        filepath: str | os.PathLike,
        monitor: str = "val_accuracy",
        mode: str = "auto",
        save_best_only: bool = True,
    ) -> None:
        self.filepath = filepath
        self.monitor = Monitor(monitor, mode)
        self.save_best_only = save_best_only
        self.best = float("nan")
        self.best_epoch = -1

    def on_train_begin(self, logs: dict[str, Any]) -> None:
        """Refuse a validation metric without validation data, or a path that cannot be written.

        Both before the first epoch rather than at the first save.
        """
        if self.save_best_only:
            _check_available(self.monitor, self.run, type(self).__name__)
        check_outputs(self.filepath, None, resume=False)

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        """Save the model if ``monitor`` improved (or always, without ``save_best_only``)."""
        run = self.run
        if self.save_best_only:
            value = self.monitor.read(logs)
            if not self.monitor.improved(value, self.best):
                return
            self.best, self.best_epoch = value, epoch
        if run.dist.is_main:
            save(run.model, _fill(self.filepath, epoch, logs))

    def on_train_end(self, logs: dict[str, Any]) -> None:
        """Record the best epoch in the run's history."""
        if self.save_best_only and self.best_epoch >= 0:
            self.run.history.best_epoch = self.best_epoch

    def state_dict(self) -> dict[str, Any]:
        """The best value and epoch so far (for :class:`BackupAndRestore`)."""
        return {"best": self.best, "best_epoch": self.best_epoch}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
        self.best, self.best_epoch = float(state["best"]), int(state["best_epoch"])


class EarlyStopping(_UsesRun):
    """Stop when ``monitor`` has stopped improving; optionally restore the best weights (Keras's).

    Args:
        monitor: The metric that ranks epochs.
        patience: Epochs without improvement to allow before stopping (0: stop at the first);
            None never stops, for a run that only tracks (and restores) the best weights.
        mode: "min", "max", or "auto" (see :class:`~cnnzoo.training.Monitor`).
        min_delta: The smallest change that counts as an improvement.
        restore_best_weights: Load the best epoch's weights back into the model when training
            ends (they are kept as a CPU copy meanwhile).

    Attributes:
        best: The best value so far (NaN before the first).
        best_epoch: The epoch of ``best`` (0-based), -1 before the first.
        wait: Epochs since the last improvement.
        stopped_epoch: The epoch at which it stopped training, or None.
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        patience: int | None = 0,
        mode: str = "auto",
        min_delta: float = 0.0,
        restore_best_weights: bool = False,
    ) -> None:
        if patience is not None and (not isinstance(patience, int) or patience < 0):
            raise ValueError(f"patience must be None or an integer >= 0, got {patience!r}")
        if not min_delta >= 0:
            raise ValueError(f"min_delta must be >= 0, got {min_delta!r}")
        self.monitor = Monitor(monitor, mode)
        self.patience = patience
        self.min_delta = float(min_delta)
        self.restore_best_weights = restore_best_weights
        self._reset()

    def _reset(self) -> None:
        self.best = float("nan")
        self.best_epoch = -1
        self.wait = 0
        self.stopped_epoch: int | None = None
        self.best_weights: dict[str, torch.Tensor] | None = None

    def on_train_begin(self, logs: dict[str, Any]) -> None:
        """Start afresh, as Keras does (a BackupAndRestore restores the state after this)."""
        _check_available(self.monitor, self.run, type(self).__name__)
        self._reset()

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        """Track the best epoch; stop training once ``patience`` epochs brought nothing better."""
        value = self.monitor.read(logs)
        if self.monitor.improved(value, self.best, self.min_delta):
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if self.restore_best_weights:
                self.best_weights = _cpu_copy(self.run.model.state_dict())
            return
        self.wait += 1
        if self.patience is not None and self.wait >= self.patience:
            self.stopped_epoch = epoch
            raise StopTraining

    def on_train_end(self, logs: dict[str, Any]) -> None:
        """Restore the best weights if asked; record the best epoch in the run's history."""
        run = self.run
        if self.restore_best_weights and self.best_weights is not None:
            run.model.load_state_dict(self.best_weights)
        if self.best_epoch >= 0:
            run.history.best_epoch = self.best_epoch

    def state_dict(self) -> dict[str, Any]:
        """Best value and epoch, wait, and the best weights when kept."""
        return {
            "best": self.best,
            "best_epoch": self.best_epoch,
            "wait": self.wait,
            "best_weights": self.best_weights,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
        self.best, self.best_epoch = float(state["best"]), int(state["best_epoch"])
        self.wait = int(state["wait"])
        self.best_weights = state.get("best_weights")


class BackupAndRestore(_UsesRun):
    """Keep the complete training state in a directory so an interrupted run can resume (Keras's).

    After every epoch (rank 0 under ``torchrun``) it writes, atomically, with
    :func:`cnnzoo.checkpoint.save_training_state`: the model, optimizer, scheduler, gradient
    scaler, RNG states, history, the run's settings and the state of every other callback with
    ``state_dict``. At the start of training it restores them when the directory holds a state,
    and the run goes on from the next epoch, ending as the uninterrupted run would have.

    A resumed run must have the saved run's settings (learning rate, batch size, seed, data,
    ...; see :mod:`cnnzoo.training.resume`): a difference is refused with a message listing
    each. ``epochs`` may change: the schedule is then the one of a run of the new length, taken
    up at the step where the state stopped.

    Args:
        backup_dir: The state directory (created when first written).
        resume: Restore from ``backup_dir`` at the start. False starts afresh, and refuses a
            directory that already holds another run's state rather than overwrite it.
    """

    def __init__(self, backup_dir: str | os.PathLike, resume: bool = True) -> None:
        self.backup_dir = Path(backup_dir)
        self.resume = resume

    def on_train_begin(self, logs: dict[str, Any]) -> None:
        """Restore the state in ``backup_dir``, if there is one and ``resume`` is on.

        Raises:
            ValueError: A state is there and ``resume`` is off; the state was saved with other
                settings, or more epochs than this run has; the state is incomplete or
                corrupted.
            FolderInUseError: Another run is writing ``backup_dir`` (the message names its
                process); it stays locked until this run ends.
        """
        check_writable(self.backup_dir, "the training state")
        run = self.run
        if run.dist.is_main:  # the one writer; held until the run ends, however it ends
            run.held.enter_context(
                exclusive_lock(self.backup_dir, "the training state of a fit run", folder=True)
            )
        found = peek_training_state(self.backup_dir)  # checks before anything is changed
        if found is None:
            return
        if not self.resume:
            raise refuse_overwrite(self.backup_dir, found.epoch)
        check_resumable(found, run.settings, self.backup_dir)
        scheduler = run.scheduler
        fresh = None if scheduler is None else scheduler.state_dict()
        fresh_lrs = [group["lr"] for group in run.optimizer.param_groups]
        state = load_training_state(
            self.backup_dir,
            model=run.model,
            optimizer=run.optimizer,
            scheduler=run.scheduler,
            scaler=run.scaler,
            map_location=run.device,
        )
        if state is None:
            return
        _check_same_inputs(state.data_config, run.model, self.backup_dir)
        saved_epochs = state.settings.get("epochs", run.config.epochs)
        stretches = scheduler is not None and not steps_per_epoch_end(scheduler)  # not plateau
        if stretches and fresh is not None and saved_epochs != run.config.epochs:
            steps = getattr(scheduler, "last_epoch", (state.epoch + 1) * len(run.train_batches))
            continue_schedule(scheduler, fresh, fresh_lrs, run.optimizer, steps)
        run.initial_epoch = state.epoch + 1
        try:
            run.history.load_state_dict(state.history)
        except (TypeError, ValueError, OverflowError, AttributeError) as error:
            problem = f"its history is not one fit writes ({type(error).__name__})"
            raise _corrupted(self.backup_dir, problem) from None
        run.history.params["data_init"] = None  # the weights are the state's, not a new start
        _restore_watch(run, (state.extra or {}).get("watch"), state.epoch + 1, self.backup_dir)
        saved = (state.extra or {}).get("callbacks", {})
        for key, callback in run.callbacks.stateful().items():
            if key in saved:  # a callback new to the resumed run starts afresh
                _restore_callback(callback, key, saved[key], self.backup_dir)

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        """Write the state after ``epoch`` (rank 0 only)."""
        run = self.run
        if not run.dist.is_main:
            return
        states = {key: callback.state_dict() for key, callback in run.callbacks.stateful().items()}
        extra: dict[str, Any] = {"callbacks": states}
        if run.watch is not None:  # its alerts, and where it started, outlive a kill
            extra["watch"] = run.watch.state_dict(run.history.alerts, run.steps_done)
        save_training_state(
            self.backup_dir,
            model=run.model,
            optimizer=run.optimizer,
            scheduler=run.scheduler,
            scaler=run.scaler,
            epoch=epoch,
            history=run.history.state_dict(),
            extra=extra,
            settings=run.settings,
        )


def in_call_order(callbacks: Iterable[Any]) -> list[Any]:
    """The callbacks in the order ``fit`` calls them.

    As given, but with each :class:`BackupAndRestore` right after the last callback that has
    state, so that its backup holds their state after the epoch and its restore comes after
    their ``on_train_begin`` reset.
    """
    callbacks = list(callbacks)
    backups = [c for c in callbacks if isinstance(c, BackupAndRestore)]
    others = [c for c in callbacks if not isinstance(c, BackupAndRestore)]
    after = max((i + 1 for i, c in enumerate(others) if has_state(c)), default=0)
    return [*others[:after], *backups, *others[after:]]


# -- helpers -------------------------------------------------------------------------------------
def _check_available(monitor: Monitor, run: Run, who: str) -> None:
    """Refuse a ``val_`` metric without validation data before the first epoch, not after."""
    if monitor.name.startswith("val_") and not run.has_validation:
        raise ValueError(
            f"{who} monitors {monitor.name!r}, which needs validation data; pass val_data "
            "(e.g. val_data=0.1) or monitor a training metric (monitor='loss')"
        )


def _check_same_inputs(saved: dict[str, Any] | None, model: Any, backup_dir: Path) -> None:
    """Refuse to resume weights trained on inputs normalised otherwise than this run's."""
    current = getattr(model, "pretrained_cfg", None)
    if not saved or current is None:
        return  # a state from before data configurations were recorded
    then = [list(saved.get(k) or []) for k in ("mean", "std")]
    now = [list(current.get(k) or []) for k in ("mean", "std")]
    if then != now:
        raise ValueError(
            f"the training state in {str(backup_dir)!r} was trained on inputs normalised with "
            f"mean {then[0]} and std {then[1]}, but this run normalises with mean {now[0]} and "
            f"std {now[1]}; resume with the same data and model, or start over (delete "
            f"{str(backup_dir)!r} or use another checkpoint directory)"
        )


def _restore_watch(run: Run, state: Any, epochs_done: int, backup_dir: Path) -> None:
    """Give the collapse watch, the History and the step count what the saved run had seen.

    A resumed run then warns as the uninterrupted one would: at most once, against the loss it
    started at, with the alert of the epochs before the kill still in ``History.alerts``. A
    state from before the watch was saved leaves them fresh.
    """
    if run.watch is None or state is None:
        return
    try:
        alerts, steps_done = run.watch.load_state_dict(state, epochs_done)
    except ValueError as error:
        problem = f"the saved state of the collapse watch is not one fit writes ({error})"
        raise _corrupted(backup_dir, problem) from None
    run.history.alerts = alerts
    run.steps_done = steps_done


def _restore_callback(callback: Any, key: str, state: Any, backup_dir: Path) -> None:
    """Give a callback its saved state; a state it cannot take is the file's fault, named."""
    try:
        callback.load_state_dict(state)
    except (TypeError, ValueError, KeyError, AttributeError) as error:
        problem = (
            f"the saved state of the {key} callback does not fit it "
            f"({type(error).__name__}: {error})"
        )
        raise _corrupted(backup_dir, problem) from None


def _corrupted(backup_dir: Path, problem: str) -> ValueError:
    """The error for a training state in ``backup_dir`` that ``problem`` shows fit did not write."""
    return ValueError(
        f"the training state in {str(backup_dir)!r} is corrupted: {problem}. To start over, "
        f"delete {str(backup_dir)!r} or use another checkpoint directory"
    )


def _fill(filepath: str | os.PathLike, epoch: int, logs: dict[str, float]) -> str:
    """Keras's filepath fields: ``{epoch}`` (1-based) and the epoch's metrics."""
    path = os.fspath(filepath)
    if "{" not in path:
        return path
    try:
        return path.format(epoch=epoch + 1, **logs)
    except (KeyError, IndexError, ValueError) as error:
        raise ValueError(
            f"cannot fill the checkpoint path {path!r} ({error!r}): its fields may be {{epoch}} "
            f"and the metrics {sorted(logs)}"
        ) from None


def _cpu_copy(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A detached CPU copy of a state dict (the in-memory best weights)."""
    return {key: value.detach().to("cpu", copy=True) for key, value in state.items()}
