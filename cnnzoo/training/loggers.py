"""Loggers: callbacks that write every epoch's metrics as training goes (Keras's ``CSVLogger``).

- :class:`CSVLogger`: one row per epoch in a CSV file;
- :class:`TensorBoardLogger`: TensorBoard event files (``pip install 'cnnzoo[tensorboard]'``).

Both write on rank 0 only under ``torchrun``, after every epoch (a killed run keeps what it
wrote), and continue the same files when a run resumes from ``checkpoint_dir``: the rows or
events of epochs the resumed run repeats are replaced, not duplicated.
"""

from __future__ import annotations

import contextlib
import csv
import importlib.util
import os
from pathlib import Path
from typing import Any

from .._files import kind_of
from ..checkpoint import exclusive_lock
from ..checkpoint._io import atomic_write
from .outputs import check_writable
from .run import Run

__all__ = ["CSVLogger", "TensorBoardLogger"]

# A row an epoch of a few hundred bytes: a million epochs. A larger file is not a run's log.
_MAX_LOG_BYTES = 256 * 1024 * 1024


class _Logger:
    """Keeps the run (``set_run``) and knows whether this process writes."""

    _run: Run | None = None

    def set_run(self, run: Run) -> None:
        """Keep ``run`` (``fit`` calls this before ``on_train_begin``)."""
        self._run = run

    def _writes(self) -> bool:
        return self._run is None or self._run.dist.is_main

    def _initial_epoch(self) -> int:
        """The first epoch of this call: past 0 when the run resumed (read at the first write)."""
        return 0 if self._run is None else self._run.initial_epoch


class CSVLogger(_Logger):
    """Write one CSV row per epoch: ``epoch`` (0-based, as Keras) then every metric of the logs.

    The file is locked while training runs: a second logger on it, in this process or another,
    is refused with a message naming the writer, rather than interleaving its rows. An existing
    file that is not a CSV log (its header does not start with ``epoch``) is never overwritten.

    Args:
        filename: The CSV file (its directory is created).
        separator: The field separator.
        append: Add to an existing file instead of starting it afresh. A run resumed from
            ``checkpoint_dir`` always appends, dropping the rows of the epochs it runs again.

    Example:
        >>> from cnnzoo.training import CSVLogger
        >>> logger = CSVLogger("runs/exp1/log.csv")
        >>> # cnnzoo.fit(model, data, callbacks=[logger])
    """

    def __init__(
        self, filename: str | os.PathLike, separator: str = ",", append: bool = False
    ) -> None:
        self.filename = Path(filename)
        self.separator = separator
        self.append = append
        self._fields: list[str] | None = None

    _held: contextlib.ExitStack | None = None

    def on_train_begin(self, logs: dict[str, Any]) -> None:
        """Check and lock the file; it is started on the first epoch (the header from its metrics).

        Raises:
            ValueError: ``filename`` is a directory, or an existing file that is not a CSV log.
            PermissionError: Its folder cannot be written.
            FolderInUseError: Another logger is writing the file (the message names it).
        """
        self._fields = None
        if not self._writes():
            return
        check_writable(self.filename.parent, "the CSV log")
        if self.filename.is_symlink():
            raise ValueError(
                f"CSVLogger: {str(self.filename)!r} is a symbolic link, and a log is never "
                "written through one; give the path of a .csv file"
            )
        if self.filename.exists() and not self.filename.is_file():
            raise ValueError(
                f"CSVLogger: {str(self.filename)!r} is {kind_of(self.filename)}, not a file; give "
                "the path of a .csv file"
            )
        lock = exclusive_lock(self.filename, "a CSV log", folder=False)
        if self._run is not None:
            self._run.held.enter_context(lock)  # dropped however the run ends
        else:  # used outside fit: released by on_train_end
            self._held = contextlib.ExitStack()
            self._held.enter_context(lock)
        self._refuse_foreign_file()

    def on_train_end(self, logs: dict[str, Any]) -> None:
        """Release the file (for a logger used outside ``fit``)."""
        if self._held is not None:
            self._held.close()
            self._held = None

    def _refuse_foreign_file(self) -> None:
        """Never overwrite a file that is not a log: its first column must be ``epoch``."""
        if not self.filename.is_file() or self.filename.stat().st_size == 0:
            return
        try:
            with self.filename.open(newline="", encoding="utf-8") as file:
                first = file.readline(4096)
        except (OSError, UnicodeDecodeError):
            first = ""
        if first.split(self.separator, 1)[0].strip() != "epoch":
            raise ValueError(
                f"CSVLogger: {str(self.filename)!r} exists and is not a CSV log of a run (its "
                "first line does not start with the 'epoch' column), so it is not overwritten; "
                "log to another file, or move that one away"
            )

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        """Append the epoch's row (and the header, to a new file)."""
        if not self._writes():
            return
        row = {"epoch": epoch, **logs}
        if self._fields is None:
            self._fields = self._open(list(row))
        unknown = [key for key in row if key not in self._fields]
        if unknown:
            raise ValueError(
                f"{self.filename} has the columns {self._fields}; this epoch adds {unknown}. "
                "Write to a new file (or drop append=True)"
            )
        # O_NOFOLLOW: a link planted at the name since the start is refused, never followed.
        flags = os.O_WRONLY | os.O_APPEND | getattr(os, "O_NOFOLLOW", 0)
        with open(os.open(self.filename, flags), "a", newline="", encoding="utf-8") as file:
            csv.DictWriter(file, self._fields, delimiter=self.separator).writerow(row)

    def _open(self, fields: list[str]) -> list[str]:
        """Prepare the file for the first row; return the columns to write."""
        self.filename.parent.mkdir(parents=True, exist_ok=True)
        resumed = self._initial_epoch() > 0
        if (self.append or resumed) and self.filename.is_file():
            size = self.filename.stat().st_size
            if size > _MAX_LOG_BYTES:  # read back whole: bounded as every file read back
                raise ValueError(
                    f"CSVLogger: {str(self.filename)!r} is {size:,} bytes long, more than a log "
                    f"of a run holds ({_MAX_LOG_BYTES:,}), so it is not read back; log to "
                    "another file, or move that one away"
                )
            with self.filename.open(newline="", encoding="utf-8") as file:
                reader = csv.DictReader(file, delimiter=self.separator)
                try:
                    kept = [r for r in reader if not resumed or _epoch(r) < self._initial_epoch()]
                except (ValueError, TypeError, csv.Error, UnicodeDecodeError):
                    raise ValueError(
                        f"CSVLogger: {str(self.filename)!r} has a row whose epoch is not a "
                        "number, so the rows of the epochs this resumed run repeats cannot be "
                        "told apart; fix or move the file"
                    ) from None
                header = reader.fieldnames
            if header:
                if resumed:  # rows of epochs run again are replaced
                    self._write(list(header), kept)
                return list(header)
        self._write(fields, [])
        return fields

    def _write(self, fields: list[str], rows: list[dict[str, str]]) -> None:
        # Replaced whole (never half-written by a kill), through a temporary file.
        with atomic_write(self.filename, "w", newline="") as file:
            writer = csv.DictWriter(file, fields, delimiter=self.separator)
            writer.writeheader()
            writer.writerows(rows)


def _epoch(row: dict[str, str]) -> int:
    return int(row["epoch"])


class TensorBoardLogger(_Logger):
    """Write every epoch's metrics as TensorBoard scalars (``torch.utils.tensorboard``).

    Each metric of the epoch logs (``loss``, ``accuracy``, ``val_loss``, ``val_accuracy``,
    ``lr``, ``epoch_seconds``) is a scalar of that name, at step ``epoch`` (0-based). View with
    ``tensorboard --logdir <log_dir>``.

    Args:
        log_dir: The directory of the event files (created).

    Raises:
        ImportError: tensorboard is not installed (``pip install 'cnnzoo[tensorboard]'``).
    """

    def __init__(self, log_dir: str | os.PathLike) -> None:
        if importlib.util.find_spec("tensorboard") is None:
            raise ImportError(
                "TensorBoardLogger needs tensorboard: pip install 'cnnzoo[tensorboard]'"
            )
        self.log_dir = Path(log_dir)
        self._writer: Any = None

    def on_train_begin(self, logs: dict[str, Any]) -> None:
        """Refuse a ``log_dir`` that cannot be written before the first epoch, not after it.

        Raises:
            ValueError: A file stands where the folder (or one on its way) should be.
            PermissionError: The folder cannot be written.
        """
        if self._writes():
            check_writable(self.log_dir, "TensorBoardLogger's log_dir")

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        """Add the epoch's scalars and flush them to disk."""
        if not self._writes():
            return
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter  # tensorboard loads only here

            # A resumed run drops the events of the epochs it runs again.
            start = self._initial_epoch()
            self._writer = SummaryWriter(os.fspath(self.log_dir), purge_step=start or None)
        for key, value in logs.items():
            self._writer.add_scalar(key, value, global_step=epoch)
        self._writer.flush()

    def on_train_end(self, logs: dict[str, Any]) -> None:
        """Close the event file."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
