"""A comparison's folder: its settings, one finished row per model, checkpoints and tables.

Layout of ``out``::

    compare.json            the settings the comparison runs under (written first)
    rows/<model>.json       one finished model's row (written after its checkpoint)
    models/<model>.safetensors
    leaderboard.md .csv .json               (rewritten after every model)
    pareto.png                              (drawn at the end)
    .cnnzoo.lock            held while a comparison writes (one writer per folder)

Every file is written atomically, so a comparison killed at any moment leaves only complete
files. Run again into the same folder with the same settings, it takes the finished rows as they
are and trains the rest; with other settings it is refused, with the differences listed and the
fix, since rows measured under two settings would not be comparable. More (or fewer) models may
be asked for: a model is a row, not a setting.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

from .._files import read_json
from ..checkpoint import exclusive_lock
from ..checkpoint._io import inspect_safetensors, write_json_atomic
from ..checkpoint._lock import LOCK_NAME
from ..checkpoint._weights import read_config
from ..training.outputs import check_writable
from .leaderboard import Leaderboard, Row

__all__ = ["SETTINGS_FILE", "Store", "check_out"]

SETTINGS_FILE = "compare.json"
ROWS, MODELS = "rows", "models"
_MAX_ROW_BYTES = 1024 * 1024  # a row is a kilobyte or two
TABLES = ("leaderboard.md", "leaderboard.csv", "leaderboard.json", "pareto.png")


class Store:
    """The folder of one comparison.

    Args:
        out: The folder (created when missing).
        settings: The comparison's settings, as plain JSON.

    Raises:
        ValueError: ``out`` is a file; holds files of something else; or holds a comparison
            with other settings (the message lists them and how to go on).
        PermissionError: ``out`` cannot be written.
    """

    def __init__(self, out: str | os.PathLike, settings: dict[str, Any]) -> None:
        self.out = Path(out)
        self.settings = settings
        saved = check_out(self.out)
        if saved is not None and saved != settings:
            raise ValueError(_refusal(self.out, saved, settings))
        write_json_atomic(self.out / SETTINGS_FILE, settings)

    @staticmethod
    def lock(out: str | os.PathLike) -> contextlib.AbstractContextManager[None]:
        """One comparison at a time writes ``out``: a second is refused, naming the first.

        Two runs into one folder would each train every model and overwrite the other's
        rows. The lock is the one ``fit`` takes on a ``checkpoint_dir`` (the system drops it
        when the process ends, even with ``kill -9``, so a dead run never blocks the next).
        """
        return exclusive_lock(out, "a comparison", folder=True)

    def checkpoint(self, model: str) -> Path:
        """Where ``model``'s weights go."""
        return self.out / MODELS / f"{model}.safetensors"

    def finished(self, model: str) -> Row | None:
        """The row of ``model`` from an earlier run, when it finished (and its file is there).

        Everything is checked before the row is taken: the file (bounded, as every JSON file
        read back), each value (kind, range, printable text, fit's own alert words), and, for a
        trained model, that its checkpoint is this folder's ``models/<model>.safetensors``, a
        complete safetensors file of that model, of the size recorded. Anything else is not a
        finished row: the model is trained again, never a crash.
        """
        path = self.out / ROWS / f"{model}.json"
        if not path.is_file():
            return None
        try:
            row = Row.from_dict(read_json(path, "a comparison's row", max_bytes=_MAX_ROW_BYTES))
        except (ValueError, TypeError, OSError):
            return None  # unreadable or not a row: the model is trained again
        if row.model != model or row.unfinished():
            return None  # another model's row under this name, or one cut short: trained again
        if row.status != "failed" and not self._own_checkpoint(row):
            return None  # its checkpoint is gone, elsewhere, truncated or another's
        return row

    def _own_checkpoint(self, row: Row) -> bool:
        """Whether ``row``'s checkpoint is this folder's file for its model, complete."""
        expected = self.checkpoint(row.model)
        recorded = row.checkpoint
        try:
            if recorded is None or not os.path.samefile(recorded, expected):
                return False  # a path outside models/ is never read
            if not expected.is_file() or expected.stat().st_size != row.checkpoint_bytes:
                return False
            _, metadata = inspect_safetensors(expected)  # header and sizes: not the tensors
            config = read_config(expected, metadata)
        except (OSError, ValueError):
            return False
        return config.get("name") == row.model

    def record(self, row: Row) -> None:
        """Keep ``row`` (after its checkpoint is written)."""
        write_json_atomic(self.out / ROWS / f"{row.model}.json", row.to_dict())

    def write_tables(self, board: Leaderboard, *, picture: bool = True) -> list[str]:
        """Write the leaderboard's Markdown, CSV and JSON, and its picture; the names written.

        Args:
            board: The leaderboard so far.
            picture: Draw ``pareto.png`` too (the comparison draws it once, at the end: the
                tables after every model keep a killed run's results).
        """
        board.to_json(self.out / "leaderboard.json")
        board.to_csv(self.out / "leaderboard.csv")
        from ..checkpoint._io import atomic_write

        with atomic_write(self.out / "leaderboard.md", "w") as f:
            f.write(board.to_markdown())
        written = ["leaderboard.md", "leaderboard.csv", "leaderboard.json"]
        if picture and board.ranked:
            try:
                board.plot(self.out / "pareto.png")
                written.append("pareto.png")
            except ImportError:
                pass  # the plot extra is not installed: the tables say it all
        return written


def check_out(out: str | os.PathLike) -> dict[str, Any] | None:
    """Check ``out`` before any data is read; the settings of the comparison it holds, if any.

    Raises:
        ValueError: ``out`` is a file, holds files but no comparison, or unreadable settings.
        PermissionError: ``out`` cannot be written.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"out={str(out)!r} is a file; pass a folder for the comparison")
    check_writable(out, "the comparison")
    path = out / SETTINGS_FILE
    if not path.is_file():
        # A folder with files but no settings is not a comparison: never write over it.
        if out.is_dir() and any(p.name != LOCK_NAME for p in out.iterdir()):
            raise ValueError(
                f"out={str(out)!r} holds files but no comparison ({SETTINGS_FILE}); "
                "choose an empty or new folder"
            )
        return None
    try:
        saved = read_json(path, "a comparison's settings")
    except (OSError, ValueError) as error:
        raise ValueError(
            f"{error}; delete {str(out)!r} or choose another out to start a new comparison"
        ) from None
    if not isinstance(saved, dict):
        raise ValueError(f"{str(path)!r} is not a cnnzoo comparison's settings")
    return saved


def _refusal(out: Path, saved: dict[str, Any], settings: dict[str, Any]) -> str:
    saved, settings = _flatten(saved), _flatten(settings)
    differences = [
        f"  - {key}: {_show(saved.get(key))} when started, {_show(settings.get(key))} now"
        for key in sorted(set(saved) | set(settings))
        if saved.get(key) != settings.get(key)
    ]
    return (
        f"{str(out)!r} holds a comparison run with other settings:\n"
        + "\n".join(differences)
        + "\nRows measured under different settings are not comparable. Run again with the "
        f"settings it was started with to continue it, or delete {str(out)!r} or choose "
        "another out (cnnzoo compare: another --out) to start a new comparison."
    )


def _flatten(settings: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"data": {"name": x}}`` -> ``{"data.name": x}``: a difference names its own setting."""
    flat: dict[str, Any] = {}
    for key, value in settings.items():
        if isinstance(value, dict) and value:
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _show(value: Any) -> str:
    return json.dumps(value, sort_keys=True)
