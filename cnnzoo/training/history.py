"""``History``: what ``fit`` returns, in the shape Keras users know."""

from __future__ import annotations

import math
import os
from typing import Any

from .figures import pyplot, save_figure
from .monitor import Monitor

__all__ = ["History"]


class History:
    """The per-epoch record of a training run.

    Attributes:
        history: Metric name -> one value per epoch: ``loss``, ``accuracy``, ``val_loss`` and
            ``val_accuracy`` (with validation data), ``lr`` (learning rate at the epoch's end) and
            ``epoch_seconds`` (wall time of the epoch, validation included).
        epoch: The epoch numbers recorded, 0-based.
        params: The run's settings (epochs, batch size, optimizer, device, ...).
        stopped_epoch: The epoch training stopped at early (early stopping, a callback), or None.
        best_epoch: The epoch of the best monitored value, as found by the run's
            :class:`~cnnzoo.training.ModelCheckpoint` or
            :class:`~cnnzoo.training.EarlyStopping` (fit's ``checkpoint``, ``restore_best``,
            ``patience`` and ``checkpoint_dir`` build them), else None.
        alerts: What went wrong without a NaN, at most one per run: dicts with the ``epoch``
            (0-based), the ``kind`` ("blow-up", "collapse" or "stall"), the ``message`` that was
            warned, and the figures behind it (see :mod:`cnnzoo.training.collapse`).
    """

    def __init__(self, params: dict[str, Any] | None = None) -> None:
        self.history: dict[str, list[float]] = {}
        self.epoch: list[int] = []
        self.params: dict[str, Any] = dict(params or {})
        self.stopped_epoch: int | None = None
        self.best_epoch: int | None = None
        self.alerts: list[dict[str, Any]] = []

    def append(self, epoch: int, logs: dict[str, float]) -> None:
        """Record one epoch's metrics."""
        self.epoch.append(epoch)
        for key, value in logs.items():
            self.history.setdefault(key, []).append(float(value))

    def state_dict(self) -> dict[str, list[float]]:
        """Plain data for checkpoints: the ``history`` dict plus the ``epoch`` list."""
        return {"epoch": [float(e) for e in self.epoch], **self.history}

    def load_state_dict(self, state: dict[str, list[float]]) -> None:
        """Restore what :meth:`state_dict` returned."""
        state = dict(state)
        self.epoch = [int(e) for e in state.pop("epoch", [])]
        self.history = {key: [float(v) for v in values] for key, values in state.items()}
        if not self.epoch and self.history:
            self.epoch = list(range(len(next(iter(self.history.values())))))

    def plot(self, path: str | os.PathLike, *, title: str | None = None) -> None:
        """Write a PNG of the loss, accuracy (training and validation) and learning-rate curves.

        Needs matplotlib (``pip install cnnzoo[plot]``), imported only here.

        Args:
            path: File to write, e.g. ``"curves.png"``.
            title: Figure title.

        Raises:
            ImportError: matplotlib is not installed (the message says how to install it).
            ValueError: Nothing recorded yet.
        """
        if not self.epoch:
            raise ValueError("History is empty: nothing to plot (fit has not run an epoch)")
        plt = pyplot()
        from matplotlib.ticker import MaxNLocator

        epochs = [e + 1 for e in self.epoch]
        panels = ["loss", "accuracy"] + (["lr"] if self.history.get("lr") else [])
        figure, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4))
        for axis, metric in zip(axes, panels, strict=True):
            lines: tuple[tuple[str, str, str], ...] = (
                (metric, "o-", "train"),
                (f"val_{metric}", "s-", "val"),
            )
            if metric == "lr":  # the rate at each epoch's end, as fit records it
                lines = (("lr", "o-", "learning rate"),)
            for key, style, label in lines:
                values = self.history.get(key)
                if values:
                    axis.plot(epochs, values, style, label=label)
            axis.set_xlabel("epoch")
            axis.set_ylabel("learning rate" if metric == "lr" else metric)
            axis.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole
            axis.grid(alpha=0.3)
            axis.legend()
        if title:
            figure.suptitle(title)
        save_figure(figure, path)

    def __repr__(self) -> str:
        last = ", ".join(
            f"{key}={values[-1]:.4g}" for key, values in self.history.items() if values
        )
        return f"History({len(self.epoch)} epochs{': ' + last if last else ''})"

    def __len__(self) -> int:
        return len(self.epoch)

    def best(self, monitor: str = "val_accuracy", mode: str = "auto") -> float:
        """The best recorded value of ``monitor``.

        Args:
            monitor: A key of ``history``.
            mode: "min", "max", or "auto" (max for accuracies, min for losses; other metrics
                need "min" or "max"), as in :class:`~cnnzoo.training.Monitor`.

        Raises:
            KeyError: No value of ``monitor`` was recorded (NaN values do not count).
            ValueError: ``mode="auto"`` for a metric whose direction is not known.
        """
        value = Monitor(monitor, mode).best(self.history.get(monitor, []))
        if math.isnan(value):  # nothing but NaN, or nothing at all
            raise KeyError(f"no values recorded for {monitor!r}; have {sorted(self.history)}")
        return value
