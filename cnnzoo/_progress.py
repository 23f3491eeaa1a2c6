"""Progress of a counted job (images decoded, steps taken): a bar, or a timed line in a log.

- On a terminal or in a Jupyter notebook (``tqdm.auto`` picks the notebook widget there), a tqdm
  bar, shown only once the job has run :data:`BAR_DELAY_SECONDS`: quick work stays quiet.
- When the output is a file or a pipe, a line every :data:`LINE_INTERVAL_SECONDS` at most (the
  first after that long), and a closing line when there were any: a log shows the job is alive
  without a line per step.

``verbose=0`` shows nothing. ``fit``'s per-epoch display (:mod:`cnnzoo.training.progress`) makes
the same choice of bar or lines with :func:`shows_bar`.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

__all__ = ["BAR_DELAY_SECONDS", "LINE_INTERVAL_SECONDS", "Counter", "counted", "shows_bar"]

# Without a terminal, the longest silence of a long job (and no more lines than this).
LINE_INTERVAL_SECONDS = 10.0
# A bar appears only for work that has run this long.
BAR_DELAY_SECONDS = 2.0

T = TypeVar("T")


def shows_bar() -> bool:
    """True where a live bar can be drawn: a terminal on stderr, or a Jupyter kernel."""
    return _in_notebook() or _is_terminal()


class Counter:
    """A job of ``total`` units shown as a bar or as timed lines (see the module).

    Args:
        what: What the job does, first on each line: ``decoding images in data/train``.
        total: Units of the whole job.
        unit: The unit's name: ``image``, ``step``.
        verbose: 0 shows nothing; 1 a bar or timed lines.
        interval: Seconds between the timed lines (None: :data:`LINE_INTERVAL_SECONDS`).
    """

    def __init__(
        self,
        what: str,
        total: int,
        *,
        unit: str = "step",
        verbose: int = 1,
        interval: float | None = None,
    ) -> None:
        self.what, self.total, self.unit = what, total, unit
        self.interval = LINE_INTERVAL_SECONDS if interval is None else interval
        self.done = 0
        self.started = self._last_line = time.monotonic()
        self._lines = 0
        self._bar: Any = None
        self.timed_lines = False
        if verbose:
            if shows_bar():
                from tqdm.auto import tqdm

                self._bar = tqdm(
                    total=total, desc=what, unit=unit, delay=BAR_DELAY_SECONDS, leave=False
                )
            else:
                self.timed_lines = True

    def update(self, units: int = 1, note: str = "") -> None:
        """Count ``units`` more done; ``note`` (e.g. the loss) goes at the end of the line."""
        self.done += units
        if self._bar is not None:
            self._bar.update(units)
            if note:
                self._bar.set_postfix_str(note, refresh=False)
        elif self.timed_lines:
            now = time.monotonic()
            if now - self._last_line >= self.interval and self.done < self.total:
                self._last_line = now
                self._lines += 1
                extra = f"  {note}" if note else ""
                print(
                    f"{self.what}: {self.done:,}/{self.total:,} {self.unit}s  "
                    f"{now - self.started:.0f}s{extra}",
                    flush=True,
                )

    def close(self) -> None:
        """End the display: the bar goes; a log that had lines gets the closing one."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        elif self._lines:
            seconds = time.monotonic() - self.started
            print(f"{self.what}: {self.done:,} {self.unit}s in {seconds:.0f}s", flush=True)
            self._lines = 0

    def __enter__(self) -> Counter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def counted(
    items: Iterable[T],
    what: str,
    total: int,
    *,
    unit: str = "step",
    verbose: int = 1,
    size: Callable[[T], int] = lambda item: 1,
) -> Iterator[T]:
    """``items`` as they come, counted on a :class:`Counter` (``size(item)`` units each)."""
    with Counter(what, total, unit=unit, verbose=verbose) as counter:
        for item in items:
            counter.update(size(item))
            yield item


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
