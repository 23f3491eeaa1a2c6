"""``Monitor``: a metric by name and the direction in which it gets better.

One rule for every place that ranks epochs (``ModelCheckpoint``, ``EarlyStopping``, ``fit``'s
``monitor=`` and ``History.best``): ``mode="auto"`` knows only the metrics whose direction is
certain, losses (lower is better) and accuracies (higher is better), with or without the
``val_`` prefix. Any other name needs ``mode="min"`` or ``mode="max"``: guessing from the name
("contains acc") would silently rank a metric such as ``"inaccuracy"`` or ``"error_rate"`` the
wrong way round.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

__all__ = ["HIGHER_IS_BETTER", "LOWER_IS_BETTER", "Monitor"]

# The metric names mode="auto" resolves, without the "val_" prefix.
LOWER_IS_BETTER = frozenset({"loss"})
HIGHER_IS_BETTER = frozenset({"accuracy", "acc"})
_MODES = ("auto", "min", "max")


@dataclass(frozen=True)
class Monitor:
    """A metric of ``history.history`` / the epoch logs, and whether lower or higher is better.

    Args:
        name: The metric, e.g. ``"val_loss"``.
        mode: ``"min"``, ``"max"``, or ``"auto"``: min for losses, max for accuracies (``loss``,
            ``accuracy``, ``acc``, with or without ``val_``); any other name raises.

    Raises:
        ValueError: An unknown ``mode``, or ``mode="auto"`` for a metric whose direction is not
            known (the message asks for ``mode="min"`` or ``mode="max"``).

    Example:
        >>> Monitor("val_loss").mode
        'min'
        >>> Monitor("f1", mode="max").improved(0.8, best=0.7)
        True
    """

    name: str
    mode: str = "auto"

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"monitor must be a metric name such as 'val_loss', got {self.name!r}")
        if self.mode not in _MODES:
            raise ValueError(f"mode must be one of {_MODES}, got {self.mode!r}")
        if self.mode == "auto":
            object.__setattr__(self, "mode", _direction(self.name))

    @property
    def higher_is_better(self) -> bool:
        """True for ``mode="max"``."""
        return self.mode == "max"

    def improved(self, value: float, best: float, min_delta: float = 0.0) -> bool:
        """True when ``value`` beats ``best`` by more than ``min_delta``.

        NaN never improves; anything that is not NaN improves on a NaN ``best`` (nothing yet).
        """
        if math.isnan(value):
            return False
        if math.isnan(best):
            return True
        if self.higher_is_better:
            return value - min_delta > best
        return value + min_delta < best

    def best(self, values: Iterable[float]) -> float:
        """The best of ``values`` (NaN values ignored); NaN when there is none."""
        finite = [v for v in values if not math.isnan(v)]
        if not finite:
            return math.nan
        return max(finite) if self.higher_is_better else min(finite)

    def read(self, logs: Mapping[str, float]) -> float:
        """The monitored value in an epoch's ``logs``.

        Raises:
            ValueError: The metric is not in ``logs`` (the message lists those that are).
        """
        if self.name not in logs:
            raise ValueError(
                f"monitor={self.name!r} is not a recorded metric; choose one of {sorted(logs)}"
            )
        return float(logs[self.name])


def _direction(name: str) -> str:
    base = name.removeprefix("val_")
    if base in LOWER_IS_BETTER:
        return "min"
    if base in HIGHER_IS_BETTER:
        return "max"
    known = sorted(LOWER_IS_BETTER | HIGHER_IS_BETTER)
    names = [*known, *(f"val_{k}" for k in known)]
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.75)
    typo = f" (a typo of {close[0]!r}?)" if close else ""
    raise ValueError(
        f"mode='auto' cannot tell whether {name!r}{typo} is better lower or higher (it knows "
        f"only {', '.join(known)}, with or without 'val_'); pass mode='min' or mode='max'"
    )
