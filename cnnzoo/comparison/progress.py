"""How far a comparison is: elapsed time and an estimate of what is left, for fit's bar.

Each model's share of the work is its training cost: its multiply-accumulates per image
(counted on the meta device before the first model trains) under a fixed number of epochs, or
one equal share each under a time budget (every model trains for the same seconds). The time per
unit of work is measured as the comparison runs (the finished models and the running one's
progress), so the estimate firms up as it goes; models kept from an earlier run cost nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from ..training.progress import format_duration

__all__ = ["WholeClock"]

# A model's work also counts a fixed part (data loading, the optimizer, Python) so the smallest
# nets do not read as free: a tenth of the median model's multiply-accumulates.
_FIXED_SHARE = 0.1


class WholeClock:
    """The elapsed time of a comparison and an estimate of the rest.

    Args:
        costs: Each model's relative training cost, in the order they run.
    """

    def __init__(self, costs: dict[str, float]) -> None:
        ordered = sorted(costs.values())
        fixed = _FIXED_SHARE * ordered[len(ordered) // 2] if ordered else 0.0
        self.costs = {name: cost + fixed for name, cost in costs.items()}
        self.total = sum(self.costs.values())
        self.done = 0.0
        self.started = time.monotonic()

    def kept(self, name: str) -> None:
        """``name`` was finished by an earlier run: none of its work is left."""
        self.total -= self.costs.get(name, 0.0)

    def finished(self, name: str) -> None:
        """``name`` trained and was measured here."""
        self.done += self.costs.get(name, 0.0)

    def describe(self, name: str) -> Callable[[float], str]:
        """What fit's progress shows while ``name`` trains, given the share of its fit done."""

        def whole(share: float) -> str:
            elapsed = time.monotonic() - self.started
            done = self.done + self.costs.get(name, 0.0) * share
            text = f"comparison {format_duration(elapsed)}"
            if done > 0 and self.total > done:
                text += f", ~{format_duration(elapsed / done * (self.total - done))} left"
            return text

        return whole
