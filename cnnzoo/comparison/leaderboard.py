"""``Row`` and ``Leaderboard``: what a comparison measured, and its tables.

A row holds one model's numbers, or the reason it has none (it does not fit the input, ran out
of memory, its training diverged). The leaderboard sorts them by test accuracy, best first; models
whose training collapsed come after every model that trained, and failed models last. Numbers
are written as measured: the Markdown table rounds them for reading, the CSV and JSON keep them
whole.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import os
import reprlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from .._files import JSON_MAX_BYTES, loads_json, read_json
from ..training.collapse import ALERT_KINDS, is_fit_message

__all__ = ["FIELDS", "STATUSES", "Leaderboard", "Row"]

# "ok": trained and measured; "collapsed": trained, but predicts one class for everything;
# "failed": no numbers (the reason says why).
STATUSES = ("ok", "collapsed", "failed")
_SHOWN = reprlib.Repr()  # (keyword arguments only from Python 3.12)
_SHOWN.maxstring = _SHOWN.maxother = 60
_SHOWN.maxlong, _SHOWN.maxlist, _SHOWN.maxdict, _SHOWN.maxlevel = 30, 6, 6, 2


@dataclass
class Row:
    """One model's line of a leaderboard.

    Attributes:
        model: Registry name.
        status: "ok", "collapsed" (every test image got the same class) or "failed".
        reason: Why a model failed or collapsed; None for "ok".
        options: The build options chosen for the data (``small_input``, ``in_channels``,
            ``num_classes``).
        accuracy: Top-1 accuracy on the test data (or the validation split, when the
            comparison had no test data: see ``Leaderboard.evaluated_on``).
        top5_accuracy: Top-5 accuracy, for more than 5 classes; else None.
        macro_f1: The mean of the per-class F1 scores.
        best_val_accuracy: The best validation accuracy of the run, None without validation.
        best_epoch: The epoch (1-based) of ``best_val_accuracy``, whose weights were kept.
        epochs: Epochs trained.
        params: Parameters of the model built for the data.
        macs: Multiply-accumulates per image, counted by ``torch.utils.flop_counter`` (flops/2).
        train_seconds: Wall time of ``fit``.
        images_per_second: Inference throughput at a large batch (median of the repeats).
        latency_ms: Inference latency of one image (median of the repeats), in milliseconds.
        checkpoint: The saved weights (``cnnzoo.load`` rebuilds the model from it).
        checkpoint_bytes: Size of that file.
        lr: The peak learning rate the model trained at (its recipe's, or the ``lr=`` given).
        alert: What ``fit``'s collapse watch warned about in this run (``kind``, 1-based
            ``epoch``, ``message``; see ``History.alerts``), or None: the row's numbers are
            real, but the run went wrong on the way and the note column says so.
    """

    model: str
    status: str = "ok"
    reason: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    accuracy: float | None = None
    top5_accuracy: float | None = None
    macro_f1: float | None = None
    best_val_accuracy: float | None = None
    best_epoch: int | None = None
    epochs: int | None = None
    params: int | None = None
    macs: int | None = None
    train_seconds: float | None = None
    images_per_second: float | None = None
    latency_ms: float | None = None
    checkpoint: str | None = None
    checkpoint_bytes: int | None = None
    lr: float | None = None
    alert: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        # Rows are also read back from a comparison's folder: every field is checked, so a
        # hand-edited file is refused (and its model trained again), never a crash later.
        if self.status not in STATUSES:
            raise ValueError(f"a row's status is one of {STATUSES}, got {_short(self.status)}")
        if not _is_text(self.model, _NAME_LIMIT) or not self.model:
            raise ValueError(f"a row's model is a name, got {_short(self.model)}")
        for name in _NUMBERS:
            value = getattr(self, name)
            if isinstance(value, float) and math.isnan(value):
                setattr(self, name, None)  # not measured (an F1 with empty classes): JSON's null
                continue
            top = 1.0 if name in _SHARES else math.inf
            if value is not None and not (_is_number(value) and 0 <= _as_float(value) <= top):
                kind = "a share from 0 to 1" if top == 1.0 else "a finite number >= 0"
                raise ValueError(f"a row's {name} is None or {kind}, got {_short(value)}")
        for name in _COUNTS:
            value = getattr(self, name)
            if value is not None and not (
                isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**63
            ):
                raise ValueError(f"a row's {name} is None or a count >= 0, got {_short(value)}")
        for name in ("reason", "checkpoint"):
            value = getattr(self, name)
            if value is not None and not _is_text(value, _TEXT_LIMIT):
                raise ValueError(
                    f"a row's {name} is None or printable text (no escape sequences), got "
                    f"{_short(value)}"
                )
        if not isinstance(self.options, dict) or not all(
            _is_text(k, _NAME_LIMIT)
            and (v is None or isinstance(v, bool | int | float) or _is_text(v, _NAME_LIMIT))
            for k, v in self.options.items()
        ):
            raise ValueError(
                f"a row's options are a dict of plain values, got {_short(self.options)}"
            )
        if self.alert is not None:
            _check_alert(self.alert)

    def to_dict(self) -> dict[str, Any]:
        """The row as plain JSON values (NaN and infinities as None)."""
        return {k: _plain(v) for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Row:
        """Rebuild a row written by :meth:`to_dict`, checked field by field.

        Raises:
            ValueError: ``data`` is not a row (unknown fields, a missing model name, a value of
                the wrong kind or out of range, text with escape sequences, an alert whose
                words are not ``fit``'s).
        """
        if not isinstance(data, dict) or not isinstance(data.get("model"), str):
            raise ValueError(f"not a leaderboard row: {_short(data)}")
        unknown = set(data) - set(FIELDS)
        if unknown:
            raise ValueError(f"not a leaderboard row: unknown fields {_short(sorted(unknown))}")
        return cls(**data)

    def unfinished(self) -> list[str]:
        """The fields a finished row has and this one lacks (none: it is finished).

        A trained ("ok" or "collapsed") row has its accuracy, epochs, training time and
        parameter count; a failed one its reason.
        """
        needed = _MEASURED if self.status != "failed" else ("reason",)
        return [name for name in needed if getattr(self, name) is None]


FIELDS = tuple(f.name for f in dataclasses.fields(Row))
_NUMBERS = (
    "accuracy",
    "top5_accuracy",
    "macro_f1",
    "best_val_accuracy",
    "train_seconds",
    "images_per_second",
    "latency_ms",
    "lr",
)
_COUNTS = ("best_epoch", "epochs", "params", "macs", "checkpoint_bytes")
_SHARES = ("accuracy", "top5_accuracy", "macro_f1", "best_val_accuracy")
# What every trained row has (the progress line and the tables show them).
_MEASURED = ("accuracy", "epochs", "train_seconds", "params")
_NAME_LIMIT, _TEXT_LIMIT = 200, 4000


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _as_float(value: int | float) -> float:
    """``value`` as a float; a 400-digit integer (or an infinity) as ``inf``, out of range."""
    try:
        return float(value)
    except OverflowError:
        return math.inf


def _is_text(value: Any, limit: int) -> bool:
    """Printable text of at most ``limit`` characters: no escape sequences reach a terminal."""
    return isinstance(value, str) and len(value) <= limit and value.isprintable()


def _short(value: Any) -> str:
    """``value`` for a message, cut short (a file may hold megabytes)."""
    return _SHOWN.repr(value)


def _check_alert(alert: Any) -> None:
    """An alert is ``{"kind", "epoch", "message"}`` as the runner writes it, fit's words."""
    if (
        not isinstance(alert, dict)
        or set(alert) != {"kind", "epoch", "message"}
        or alert["kind"] not in ALERT_KINDS
        or isinstance(alert["epoch"], bool)
        or not isinstance(alert["epoch"], int)
        or not 1 <= alert["epoch"] < 2**63
        or not is_fit_message(alert["message"], alert["kind"], alert["epoch"] - 1)
    ):
        raise ValueError(
            "a row's alert is None or {kind: one of "
            f"{ALERT_KINDS}, epoch: >= 1, message: fit's}}, got {_short(alert)}"
        )


def _plain(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


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
            "settings": _plain(self.settings),
            "evaluated_on": self.evaluated_on,
            "machine": _plain(self.machine),
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
        if any(not _is_text(v, _TEXT_LIMIT) for v in board.left_out.values()):
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
        raise ValueError(f"its {name} is {_short(value)}, not an object")
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
