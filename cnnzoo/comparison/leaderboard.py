"""``Leaderboard``: what a comparison measured, and its tables (``Row``: :mod:`.row`).

A row holds one model's numbers, or the reason it has none (it does not fit the input, ran out
of memory, its training diverged). The leaderboard sorts them by test accuracy, best first; models
whose training collapsed come after every model that trained, and failed models last. Numbers
are written as measured: the Markdown table rounds them for reading, the CSV and JSON keep them
whole.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Iterable, Iterator
from typing import Any

from .._files import JSON_MAX_BYTES, loads_json, read_json
from .row import FIELDS, STATUSES, TEXT_LIMIT, Row, is_text, plain, short

__all__ = ["FIELDS", "STATUSES", "Leaderboard", "Row"]


def _rank_key(row: Row) -> tuple[Any, ...]:
    group = STATUSES.index(row.status)
    accuracy = row.accuracy if row.accuracy is not None else -1.0
    seconds = row.train_seconds if row.train_seconds is not None else math.inf
    return (group, -accuracy, seconds, row.model)


class Leaderboard:
    """The rows of a comparison, best first, with the settings they were measured under.

    Attributes:
        rows: One :class:`Row` per model, sorted: trained models by accuracy (ties: the
            faster to train first), then collapsed ones, then failures.
        settings: The comparison's settings (data, split, seed, budget, device, precision).
        evaluated_on: "test", or "validation" when the comparison had no test data (the
            validation split then both picked each model's epoch and scored it).
        left_out: Models the selection left out ("auto" or ``max_params``), with the reason.
        machine: Where it ran (processor, threads, device, load average), as plain JSON.
    """

    def __init__(
        self,
        rows: Iterable[Row],
        settings: dict[str, Any] | None = None,
        *,
        evaluated_on: str = "test",
        left_out: dict[str, str] | None = None,
        machine: dict[str, Any] | None = None,
    ) -> None:
        if evaluated_on not in ("test", "validation"):
            raise ValueError(f"evaluated_on is 'test' or 'validation', got {evaluated_on!r}")
        self.rows = sorted(rows, key=_rank_key)
        self.settings = dict(settings or {})
        self.evaluated_on = evaluated_on
        self.left_out = dict(left_out or {})
        self.machine = dict(machine or {})

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, model: str) -> Row:
        for row in self.rows:
            if row.model == model:
                return row
        raise KeyError(f"no row for {model!r}; the leaderboard has {[r.model for r in self]}")

    def __iter__(self) -> Iterator[Row]:
        return iter(self.rows)

    def __repr__(self) -> str:
        return f"Leaderboard({len(self.rows)} models)\n{self.to_markdown()}"

    @property
    def ranked(self) -> list[Row]:
        """The rows that trained ("ok"), best first."""
        return [row for row in self.rows if row.status == "ok"]

    # -- tables ---------------------------------------------------------------------------------
    def to_markdown(self) -> str:
        """A Markdown table of every row, best first (numbers rounded for reading)."""
        scored = "test" if self.evaluated_on == "test" else "val"
        header = [
            "#",
            "model",
            f"{scored} top-1",
            f"{scored} top-5",
            "macro F1",
            "best val (epoch)",
            "params",
            "MACs/image",
            "train s",
            "images/s",
            "latency ms",
            "checkpoint MB",
            "note",
        ]
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        rank = 0
        for row in self.rows:
            rank += row.status == "ok"
            cells = [
                str(rank) if row.status == "ok" else "–",
                f"`{row.model}`" + ("*" if row.options.get("small_input") else ""),
                _fixed(row.accuracy, 4),
                _fixed(row.top5_accuracy, 4),
                _fixed(row.macro_f1, 4),
                _best(row),
                _count(row.params),
                _count(row.macs),
                _fixed(row.train_seconds, 1),
                _count(row.images_per_second),
                _fixed(row.latency_ms, 2),
                _fixed(None if row.checkpoint_bytes is None else row.checkpoint_bytes / 1e6, 2),
                _note(row),
            ]
            lines.append("| " + " | ".join(cells) + " |")
        if any(row.options.get("small_input") for row in self.rows):
            lines.append("")
            lines.append("\\* built with `small_input=True` (3×3 stride-1 stem, for small images)")
        return "\n".join(lines) + "\n"

    def to_csv(self, path: str | os.PathLike | None = None) -> str:
        """The rows as CSV, one column per :class:`Row` field (options as JSON).

        Args:
            path: Also write the text there (atomically), when given.

        Returns:
            The CSV text.
        """
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=FIELDS, lineterminator="\n")
        writer.writeheader()
        for row in self.rows:
            values = row.to_dict()
            values["options"] = json.dumps(values["options"], sort_keys=True)
            if values["alert"] is not None:
                values["alert"] = json.dumps(values["alert"], sort_keys=True)
            writer.writerow({k: "" if v is None else v for k, v in values.items()})
        text = buffer.getvalue()
        if path is not None:
            _write_text(path, text)
        return text

    def to_dict(self) -> dict[str, Any]:
        """Settings, what was scored, and the rows, as plain JSON values."""
        return {
            "settings": plain(self.settings),
            "evaluated_on": self.evaluated_on,
            "machine": plain(self.machine),
            "left_out": dict(self.left_out),
            "rows": [row.to_dict() for row in self.rows],
        }

    def to_json(self, path: str | os.PathLike | None = None) -> str:
        """The leaderboard as JSON (:meth:`to_dict`); :meth:`from_json` reads it back.

        Args:
            path: Also write the text there (atomically), when given.

        Returns:
            The JSON text.
        """
        text = json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n"
        if path is not None:
            _write_text(path, text)
        return text

    @classmethod
    def from_json(cls, text_or_path: str | os.PathLike) -> Leaderboard:
        """Read a leaderboard written by :meth:`to_json` (its text, or the file's path).

        Raises:
            ValueError: The text is not a leaderboard.
        """
        text = os.fspath(text_or_path)
        try:
            if text.lstrip().startswith("{"):
                if len(text) > JSON_MAX_BYTES:
                    raise ValueError(f"the text is {len(text):,} characters long")
                data = loads_json(text)
            else:  # a path: read bounded, as every JSON file cnnzoo reads back
                data = read_json(text, "a cnnzoo leaderboard")
            if not isinstance(data, dict) or not isinstance(data.get("rows"), list):
                raise ValueError("it is not an object with a list of rows")
            rows = [Row.from_dict(row) for row in data["rows"]]
            board = cls(
                rows,
                _object(data.get("settings"), "settings"),
                evaluated_on=data.get("evaluated_on", "test"),
                left_out=_object(data.get("left_out"), "left_out"),
                machine=_object(data.get("machine"), "machine"),
            )
        except (ValueError, TypeError) as error:
            raise ValueError(f"not a cnnzoo leaderboard: {error}") from None
        if any(not is_text(v, TEXT_LIMIT) for v in board.left_out.values()):
            raise ValueError("not a cnnzoo leaderboard: left_out holds a reason that is not text")
        return board

    def plot(self, path: str | os.PathLike, *, title: str | None = None) -> None:
        """Write a PNG: accuracy against training time and against parameters, Pareto front marked.

        Needs matplotlib (``pip install 'cnnzoo[plot]'``).

        Args:
            path: The PNG file to write.
            title: The figure's title (default: the data and the budget).

        Raises:
            ImportError: matplotlib is not installed.
            ValueError: No model trained, so there is nothing to draw.
        """
        from .plot import plot_leaderboard

        plot_leaderboard(self, path, title=title)


def _object(value: Any, name: str) -> dict[str, Any] | None:
    if value is not None and not isinstance(value, dict):
        raise ValueError(f"its {name} is {short(value)}, not an object")
    return value


def _fixed(value: float | None, digits: int) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _count(value: float | None) -> str:
    """1,234 below a million; 1.23M, 4.56G above."""
    if value is None:
        return "–"
    for scale, suffix in ((1e9, "G"), (1e6, "M")):
        if value >= scale:
            return f"{value / scale:.2f}{suffix}"
    return f"{value:,.0f}"


def _best(row: Row) -> str:
    if row.best_val_accuracy is None:
        return "–"
    epoch = f" ({row.best_epoch})" if row.best_epoch is not None else ""
    return f"{row.best_val_accuracy:.4f}{epoch}"


def _note(row: Row) -> str:
    warned = ""
    if row.alert is not None:
        warned = f"fit warned: {row.alert.get('kind')} at epoch {row.alert.get('epoch')}"
    if row.status == "ok":
        return warned
    reason = (row.reason or "").replace("|", "\\|").replace("\n", " ")
    return f"{row.status}: {reason}" + (f" ({warned})" if warned else "")


def _write_text(path: str | os.PathLike, text: str) -> None:
    from ..checkpoint._io import atomic_write

    with atomic_write(path, "w") as f:
        f.write(text)
