"""``fit``'s progress display, as Keras's: a bar during the epoch, then one full line per epoch.

- On a terminal or in a Jupyter notebook (``tqdm.auto`` picks the notebook widget there), a bar
  shows the running loss and accuracy while the epoch runs; it is replaced by the epoch's line.
- When the output is a file or a pipe, a line every :data:`LINE_INTERVAL_SECONDS` within a
  long epoch shows it is alive, and the epoch's line follows at its end.

The epoch's line holds every metric of the epoch (loss, accuracy, val_loss, val_accuracy, lr,
time), printed whole on stdout: never cut to the width of a terminal.

A longer job that calls ``fit`` several times (``compare``: one fit per model) wraps each call in
:func:`stage`: the bar and the lines then start with the stage's label (``[2/5] resnet18``) and
end with what the job says of the whole (elapsed, and an estimate of what is left).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from .._progress import LINE_INTERVAL_SECONDS as _LINE_INTERVAL
from .._progress import shows_bar

__all__ = [
    "LINE_INTERVAL_SECONDS",
    "ProgressBar",
    "Stage",
    "format_duration",
    "format_epoch",
    "stage",
]

# Without a terminal, the longest silence within an epoch (and no more lines than this): the
# same as every other long job's.
LINE_INTERVAL_SECONDS = _LINE_INTERVAL


@dataclass(frozen=True)
class Stage:
    """One ``fit`` call inside a longer job: what its progress display adds.

    Attributes:
        label: Put before each line and the bar's description, e.g. ``[2/5] resnet18``.
        whole: Given the share of this fit done (0 to 1), what to say of the whole job, e.g.
            ``comparison 3m10s, ~12m left``; None for nothing.
    """

    label: str
    whole: Callable[[float], str] | None = None


_STAGE: ContextVar[Stage | None] = ContextVar("cnnzoo_fit_stage", default=None)


@contextmanager
def stage(label: str, whole: Callable[[float], str] | None = None) -> Iterator[Stage]:
    """Within the block, the progress display of every ``fit`` shows ``label`` and ``whole``."""
    current = Stage(label, whole)
    token = _STAGE.set(current)
    try:
        yield current
    finally:
        _STAGE.reset(token)


class ProgressBar:
    """Per-epoch progress: a tqdm bar (terminal, notebook) or timed lines, then the epoch's line.

    Args:
        verbose: 0 silent; 1 a bar on a terminal or in a notebook, else a line every
            ``interval`` seconds within an epoch; then, and with 2 only, a line per epoch.
        epochs: Total epochs, for the "epoch 3/10" label.
        enabled: False on ranks other than 0.
        interval: Seconds between the lines within an epoch when there is no bar (None:
            :data:`LINE_INTERVAL_SECONDS`).
    """

    def __init__(
        self,
        verbose: int,
        epochs: int,
        enabled: bool = True,
        interval: float | None = None,
    ) -> None:
        self.verbose = verbose if enabled else 0
        self.epochs = epochs
        self.interval = LINE_INTERVAL_SECONDS if interval is None else interval
        # The terminal check must not gate Jupyter, whose stderr is no terminal.
        self.use_bar = self.verbose == 1 and shows_bar()
        self.timed_lines = self.verbose == 1 and not self.use_bar
        self.stage = _STAGE.get()
        self._bar: Any = None
        self._epoch = self._steps = self._done = 0
        self._started = self._last_line = 0.0

    def start_epoch(self, epoch: int, steps: int) -> None:
        """Open the bar (or the clock of the timed lines) for ``epoch``."""
        self._epoch, self._steps, self._done = epoch, steps, 0
        self._started = self._last_line = time.monotonic()
        if self.use_bar:
            from tqdm.auto import tqdm

            self._bar = tqdm(
                total=steps,
                desc=f"{self._label()}epoch {epoch + 1}/{self.epochs}",
                leave=False,  # the epoch's full line replaces it
                unit="step",
                dynamic_ncols=True,
            )

    def update(self, steps: int, loss: float, accuracy: float) -> None:
        """Advance by ``steps`` with the running loss and accuracy (called at metric syncs)."""
        self._done += steps
        if self._bar is not None:
            self._bar.update(steps)
            self._bar.set_postfix_str(
                f"loss={loss:.4f}, acc={accuracy:.4f}{self._whole(', ')}", refresh=False
            )
        elif self.timed_lines and self._done < self._steps:
            now = time.monotonic()
            if now - self._last_line >= self.interval:
                self._last_line = now
                print(
                    f"{self._label()}epoch {self._epoch + 1}/{self.epochs}  step "
                    f"{self._done}/{self._steps}  loss={loss:.4f}  accuracy={accuracy:.4f}  "
                    f"{now - self._started:.0f}s{self._whole('  ')}",
                    flush=True,
                )

    def end_epoch(self, epoch: int, logs: dict[str, float]) -> None:
        """Close the bar and print the epoch's line with every metric."""
        self.close()
        if self.verbose:
            self._done = self._steps
            line = self._label() + format_epoch(epoch, self.epochs, logs) + self._whole("  ")
            print(line, flush=True)

    def _label(self) -> str:
        return "" if self.stage is None else f"{self.stage.label}  "

    def _whole(self, separator: str) -> str:
        """What the stage says of the whole job, after ``separator`` (nothing without one)."""
        if self.stage is None or self.stage.whole is None:
            return ""
        within = (self._epoch + self._done / max(self._steps, 1)) / max(self.epochs, 1)
        return separator + self.stage.whole(min(within, 1.0))

    def close(self) -> None:
        """Close a bar left open (at an epoch's end, or by an error)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def format_epoch(epoch: int, epochs: int, logs: dict[str, float]) -> str:
    """The line of one epoch: ``epoch 3/10  loss=0.3100  accuracy=0.8900 ... time=4.2s``."""
    return f"epoch {epoch + 1}/{epochs}  " + "  ".join(_format(k, v) for k, v in logs.items())


def format_duration(seconds: float) -> str:
    """``42s``, ``3m05s`` or ``1h02m``: a duration as a person reads it."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def _format(key: str, value: float) -> str:
    if key == "lr":
        return f"lr={value:.2e}"
    if key == "epoch_seconds":
        return f"time={value:.1f}s"
    return f"{key}={value:.4f}"
