"""``fit``'s progress display, as Keras's: a bar during the epoch, then one full line per epoch.

- On a terminal or in a Jupyter notebook (``tqdm.auto`` picks the notebook widget there), a bar
  shows the running loss and accuracy while the epoch runs; it is replaced by the epoch's line.
- When the output is a file or a pipe, a line every :data:`LINE_INTERVAL_SECONDS` within a
  long epoch shows it is alive, and the epoch's line follows at its end.

The epoch's line holds every metric of the epoch (loss, accuracy, val_loss, val_accuracy, lr,
time), printed whole on stdout: never cut to the width of a terminal.
"""

from __future__ import annotations

import sys
import time
from typing import Any

__all__ = ["LINE_INTERVAL_SECONDS", "ProgressBar", "format_epoch"]

# Without a terminal, the longest silence within an epoch.
LINE_INTERVAL_SECONDS = 30.0


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
        self.use_bar = self.verbose == 1 and (_in_notebook() or _is_terminal())
        self.timed_lines = self.verbose == 1 and not self.use_bar
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
                desc=f"epoch {epoch + 1}/{self.epochs}",
                leave=False,  # the epoch's full line replaces it
                unit="step",
                dynamic_ncols=True,
            )

    def update(self, steps: int, loss: float, accuracy: float) -> None:
        """Advance by ``steps`` with the running loss and accuracy (called at metric syncs)."""
        self._done += steps
        if self._bar is not None:
            self._bar.update(steps)
            self._bar.set_postfix(loss=f"{loss:.4f}", acc=f"{accuracy:.4f}", refresh=False)
        elif self.timed_lines and self._done < self._steps:
            now = time.monotonic()
            if now - self._last_line >= self.interval:
                self._last_line = now
                print(
                    f"epoch {self._epoch + 1}/{self.epochs}  step {self._done}/{self._steps}  "
                    f"loss={loss:.4f}  accuracy={accuracy:.4f}  {now - self._started:.0f}s",
                    flush=True,
                )

    def end_epoch(self, epoch: int, logs: dict[str, float]) -> None:
        """Close the bar and print the epoch's line with every metric."""
        self.close()
        if self.verbose:
            print(format_epoch(epoch, self.epochs, logs), flush=True)

    def close(self) -> None:
        """Close a bar left open (at an epoch's end, or by an error)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def format_epoch(epoch: int, epochs: int, logs: dict[str, float]) -> str:
    """The line of one epoch: ``epoch 3/10  loss=0.3100  accuracy=0.8900 ... time=4.2s``."""
    return f"epoch {epoch + 1}/{epochs}  " + "  ".join(_format(k, v) for k, v in logs.items())


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


def _in_notebook() -> bool:
    """True inside a Jupyter kernel (the check ``tqdm.autonotebook`` makes)."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    try:
        shell = ipython.get_ipython()
    except AttributeError:
        return False
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})
