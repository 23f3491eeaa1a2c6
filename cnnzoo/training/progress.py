"""``fit``'s progress display: a tqdm bar per epoch on a terminal, else a line per epoch."""

from __future__ import annotations

import sys

__all__ = ["ProgressBar"]


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
