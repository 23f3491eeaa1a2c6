"""Callbacks: plain objects with any of Keras's hook names, and the progress display.

A callback needs no base class. ``fit`` calls whichever of these methods it has::

    on_train_begin(logs)          on_train_end(logs)
    on_epoch_begin(epoch, logs)   on_epoch_end(epoch, logs)
    on_batch_begin(batch, logs)   on_batch_end(batch, logs)

``logs`` at ``on_epoch_end`` holds that epoch's metrics (loss, accuracy, val_loss,
val_accuracy, lr, epoch_seconds); at ``on_batch_end`` it holds the batch's ``loss`` (asking for
per-batch logs costs one device sync per batch, so define ``on_batch_end`` only when needed).

To stop training, raise :class:`StopTraining` from any hook, or set ``model.stop_training =
True`` as in Keras (``fit`` calls ``set_model(model)`` on callbacks that define it).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any

__all__ = ["CallbackList", "ProgressBar", "StopTraining"]

HOOKS = (
    "on_train_begin",
    "on_train_end",
    "on_epoch_begin",
    "on_epoch_end",
    "on_batch_begin",
    "on_batch_end",
)


class StopTraining(Exception):
    """Raise from a callback to end training cleanly after the current step."""


class CallbackList:
    """Dispatches each hook to the callbacks that define it."""

    def __init__(self, callbacks: Iterable[Any] | None) -> None:
        self.callbacks = list(callbacks or [])
        for callback in self.callbacks:
            if not any(callable(getattr(callback, hook, None)) for hook in HOOKS):
                raise TypeError(
                    f"callback {callback!r} has none of the hook methods {', '.join(HOOKS)}"
                )
        self.wants_batch_logs = any(hasattr(c, "on_batch_end") for c in self.callbacks)

    def set_model(self, model: Any) -> None:
        """Give Keras-style callbacks the model (they may set ``model.stop_training``)."""
        for callback in self.callbacks:
            if callable(getattr(callback, "set_model", None)):
                callback.set_model(model)

    def call(self, hook: str, *args: Any) -> bool:
        """Run ``hook`` on every callback; True when one raised :class:`StopTraining`."""
        stop = False
        for callback in self.callbacks:
            method = getattr(callback, hook, None)
            if method is None:
                continue
            try:
                method(*args)
            except StopTraining:
                stop = True
        return stop


class ProgressBar:
    """Per-epoch progress: a tqdm bar on a terminal, one line per epoch otherwise.

    Args:
        verbose: 0 silent; 1 a bar on a terminal, a line per epoch when the output is a file or
            pipe; 2 a line per epoch always.
        epochs: Total epochs, for the "epoch 3/10" label.
        enabled: False on ranks other than 0.
    """

    def __init__(self, verbose: int, epochs: int, enabled: bool = True) -> None:
        self.verbose = verbose if enabled else 0
        self.epochs = epochs
        self.use_bar = self.verbose == 1 and _is_terminal()
        self._bar = None

    def start_epoch(self, epoch: int, steps: int) -> None:
        """Open the bar for ``epoch``."""
        if self.use_bar:
            from tqdm.auto import tqdm

            self._bar = tqdm(
                total=steps, desc=f"epoch {epoch + 1}/{self.epochs}", leave=True, unit="step"
            )

    def update(self, steps: int, loss: float, accuracy: float) -> None:
        """Advance the bar by ``steps`` and show the running loss and accuracy."""
        if self._bar is not None:
            self._bar.update(steps)
            self._bar.set_postfix(loss=f"{loss:.4f}", acc=f"{accuracy:.4f}", refresh=False)

    def end_epoch(self, epoch: int, logs: dict[str, float]) -> None:
        """Close the bar (with the validation metrics) or print the epoch's line."""
        summary = "  ".join(_format(key, value) for key, value in logs.items())
        if self._bar is not None:
            self._bar.set_postfix_str(summary, refresh=True)
            self._bar.close()
            self._bar = None
        elif self.verbose:
            print(f"epoch {epoch + 1}/{self.epochs}  {summary}", flush=True)

    def close(self) -> None:
        """Close a bar left open by an error."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def _format(key: str, value: float) -> str:
    if key == "lr":
        return f"lr={value:.2e}"
    if key == "epoch_seconds":
        return f"time={value:.1f}s"
    return f"{key}={value:.4f}"


def _is_terminal() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False
