"""``Row``: one model's line of a leaderboard, checked field by field.

Rows are also read back from a comparison's folder (``rows/<model>.json``, ``leaderboard.json``),
so every field is checked for its kind and its range, text for printable characters and an
alert for ``fit``'s own words: a hand-edited file is refused, never a crash later.
"""

from __future__ import annotations

import dataclasses
import math
import reprlib
from dataclasses import dataclass, field
from typing import Any

from ..training.collapse import ALERT_KINDS, is_fit_message

__all__ = ["FIELDS", "STATUSES", "TEXT_LIMIT", "Row", "is_text", "plain", "short"]

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
            raise ValueError(f"a row's status is one of {STATUSES}, got {short(self.status)}")
        if not is_text(self.model, NAME_LIMIT) or not self.model:
            raise ValueError(f"a row's model is a name, got {short(self.model)}")
        for name in _NUMBERS:
            value = getattr(self, name)
            if isinstance(value, float) and math.isnan(value):
                setattr(self, name, None)  # not measured (an F1 with empty classes): JSON's null
                continue
            top = 1.0 if name in _SHARES else math.inf
            if value is not None and not (_is_number(value) and 0 <= _as_float(value) <= top):
                kind = "a share from 0 to 1" if top == 1.0 else "a finite number >= 0"
                raise ValueError(f"a row's {name} is None or {kind}, got {short(value)}")
        for name in _COUNTS:
            value = getattr(self, name)
            if value is not None and not (
                isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**63
            ):
                raise ValueError(f"a row's {name} is None or a count >= 0, got {short(value)}")
        for name in ("reason", "checkpoint"):
            value = getattr(self, name)
            if value is not None and not is_text(value, TEXT_LIMIT):
                raise ValueError(
                    f"a row's {name} is None or printable text (no escape sequences), got "
                    f"{short(value)}"
                )
        if not isinstance(self.options, dict) or not all(
            is_text(k, NAME_LIMIT)
            and (v is None or isinstance(v, bool | int | float) or is_text(v, NAME_LIMIT))
            for k, v in self.options.items()
        ):
            raise ValueError(
                f"a row's options are a dict of plain values, got {short(self.options)}"
            )
        if self.alert is not None:
            _check_alert(self.alert)

    def to_dict(self) -> dict[str, Any]:
        """The row as plain JSON values (NaN and infinities as None)."""
        return {k: plain(v) for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Row:
        """Rebuild a row written by :meth:`to_dict`, checked field by field.

        Raises:
            ValueError: ``data`` is not a row (unknown fields, a missing model name, a value of
                the wrong kind or out of range, text with escape sequences, an alert whose
                words are not ``fit``'s).
        """
        if not isinstance(data, dict) or not isinstance(data.get("model"), str):
            raise ValueError(f"not a leaderboard row: {short(data)}")
        unknown = set(data) - set(FIELDS)
        if unknown:
            raise ValueError(f"not a leaderboard row: unknown fields {short(sorted(unknown))}")
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
NAME_LIMIT, TEXT_LIMIT = 200, 4000


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _as_float(value: int | float) -> float:
    """``value`` as a float; a 400-digit integer (or an infinity) as ``inf``, out of range."""
    try:
        return float(value)
    except OverflowError:
        return math.inf


def is_text(value: Any, limit: int) -> bool:
    """Printable text of at most ``limit`` characters: no escape sequences reach a terminal."""
    return isinstance(value, str) and len(value) <= limit and value.isprintable()


def short(value: Any) -> str:
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
            f"{ALERT_KINDS}, epoch: >= 1, message: fit's}}, got {short(alert)}"
        )


def plain(value: Any) -> Any:
    """``value`` as JSON writes it: NaN and infinities as None, dicts value by value."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value
