"""The leaderboard's picture: accuracy against what it costs, the Pareto front marked.

Two panels share the accuracy axis: training seconds and parameters, both on log scales (the
zoo spans 15 thousand to 140 million parameters). On each, the models no other model beats on
both axes (higher accuracy at a lower cost) are joined by a line: the choices worth making.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from ..training.figures import pyplot, save_figure

__all__ = ["pareto_front", "plot_leaderboard"]

_PANELS = (("train_seconds", "training time (s)"), ("params", "parameters"))


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats: lower cost and higher accuracy.

    Args:
        points: ``(cost, accuracy)`` pairs.

    Returns:
        The indices of the non-dominated points, by increasing cost.
    """
    front = []
    for i, (cost, accuracy) in enumerate(points):
        dominated = any(
            c <= cost and a >= accuracy and (c < cost or a > accuracy)
            for j, (c, a) in enumerate(points)
            if j != i
        )
        if not dominated:
            front.append(i)
    return sorted(front, key=lambda i: (points[i][0], -points[i][1]))


def plot_leaderboard(board: Any, path: str | os.PathLike, *, title: str | None = None) -> None:
    """Write ``board`` (a :class:`~.leaderboard.Leaderboard`) as a PNG (see its ``plot``).

    Raises:
        ImportError: matplotlib is not installed.
        ValueError: No row has an accuracy to draw.
    """
    rows = [r for r in board.ranked if r.accuracy is not None]
    if not rows:
        raise ValueError("no model trained, so the leaderboard has no accuracy to plot")
    collapsed = [r for r in board.rows if r.status == "collapsed" and r.accuracy is not None]
    plt = pyplot()
    figure, axes = plt.subplots(1, 2, figsize=(12, 5), sharey=True)
    for axis, (key, label) in zip(axes, _PANELS, strict=True):
        # Collapsed models trained but learned nothing: shown, never on the front.
        grey = [r for r in collapsed if getattr(r, key) is not None and getattr(r, key) > 0]
        if grey:
            axis.scatter(
                [getattr(r, key) for r in grey],
                [r.accuracy for r in grey],
                color="grey",
                marker="x",
                zorder=2,
                label="collapsed",
            )
            for row in grey:
                axis.annotate(
                    row.model,
                    (getattr(row, key), row.accuracy),
                    textcoords="offset points",
                    xytext=(4, -10),
                    fontsize=8,
                    color="grey",
                )
        drawn = [r for r in rows if getattr(r, key) is not None and getattr(r, key) > 0]
        points = [(float(getattr(r, key)), float(r.accuracy)) for r in drawn]
        front = pareto_front(points)
        axis.scatter([p[0] for p in points], [p[1] for p in points], color="tab:blue", zorder=2)
        axis.plot(
            [points[i][0] for i in front],
            [points[i][1] for i in front],
            color="tab:red",
            marker="o",
            zorder=3,
            label="Pareto front",
        )
        for row, (x, y) in zip(drawn, points, strict=True):
            axis.annotate(row.model, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
        axis.set_xscale("log")
        axis.margins(x=0.15, y=0.1)  # room for the names of the points at the edges
        axis.set_xlabel(label)
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(loc="best")
    scored = "test" if board.evaluated_on == "test" else "validation"
    axes[0].set_ylabel(f"{scored} accuracy")
    figure.suptitle(title or _default_title(board))
    save_figure(figure, path)


def _default_title(board: Any) -> str:
    settings = board.settings
    data = settings.get("data", {}).get("name") or "the data"
    budget = settings.get("budget", {})
    if budget.get("time_budget") is not None:
        spent = f"{budget['time_budget']:g} s per model"
    else:
        spent = f"{budget.get('epochs')} epoch(s) per model"
    return f"cnnzoo compare on {data}: {spent}"
