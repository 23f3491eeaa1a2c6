"""The batch size ``fit`` trains with when none is given: enough optimizer steps for the budget.

A run's budget is its training images times its epochs. At batch 128, 4 epochs of 60,000 images
are 1,872 optimizer steps, but one epoch of 2,000 images is 15: too few for any rate to train a
network from scratch, and a quarter of them go to the one-cycle warm-up. The ten-line tutorial
loop (Adam 1e-3, batch 32, as Keras's ``fit`` defaults to) takes 62 steps there and won by 15 to
30 points (the budgets benchmark in docs/benchmarks.md). So ``fit`` keeps batch 128, fast per
image, while the run has at least :data:`MIN_STEPS` optimizer steps at it, and otherwise halves
the batch until it has them or reaches :data:`SMALLEST_BATCH_SIZE` (the tutorials' 32).

:data:`MIN_STEPS` is 80 because the models' training recipes were measured, and hold, at 84
steps of batch 128 (the zoo benchmark; its three 224-pixel nets train on fewer images, and
now at batch 32): a run at least that long stays where the recipes were measured.

A model with no registered recipe (a net of the user's own) has no such measurement to stay
near: it trains at :data:`SMALLEST_BATCH_SIZE` whatever the budget, with its own rate
(:mod:`cnnzoo.training.recipes`). At batch 128 it lost to the tutorial loop on medium and
large budgets too (a plain two-convolution net on all 60,000 Fashion-MNIST images for one
epoch: 0.86 against 0.88); at 32 it wins there (0.895), at a cost in speed per image.

The choice depends on the run's images and epochs only, never on timing, so a seed repeats
it; a resumed run keeps the batch size it was started with (adding epochs does not change it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..models.registry import ShortRunRecipe

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "MIN_STEPS",
    "SMALLEST_BATCH_SIZE",
    "BatchChoice",
    "choose",
    "run_steps",
]

DEFAULT_BATCH_SIZE = 128
SMALLEST_BATCH_SIZE = 32
MIN_STEPS = 80


@dataclass(frozen=True)
class BatchChoice:
    """The batch size of a run and why (recorded in ``History.params``).

    Attributes:
        size: Samples per batch.
        source: Where it comes from, in words.
        short_run: The model's short-run recipe chose it, and its rate goes with it.
    """

    size: int
    source: str
    short_run: bool = False


def run_steps(samples: int, batch_size: int, epochs: int, accumulate: int = 1) -> int:
    """Optimizer steps of a run: ``fit`` drops a last partial batch of an epoch (but never all)."""
    batches = max(1, samples // batch_size) if samples > batch_size else 1
    return epochs * -(-batches // accumulate)


def choose(
    samples: int | None,
    epochs: int,
    accumulate: int = 1,
    has_recipe: bool = True,
    short_runs: ShortRunRecipe | None = None,
) -> BatchChoice:
    """The batch size for ``samples`` training images (on this process) over ``epochs``.

    Args:
        samples: Training samples per process, or None when not known up front.
        epochs: The run's epochs.
        accumulate: Batches per optimizer step.
        has_recipe: The model has a registered training recipe (see the module docstring).
        short_runs: The recipe's own rule for runs too short for batch 128, if it has one.

    Returns:
        :data:`DEFAULT_BATCH_SIZE` when it leaves at least :data:`MIN_STEPS` optimizer steps
        (or the data size is unknown), else the largest halving of it that leaves
        ``short_runs.min_steps`` (:data:`MIN_STEPS` without one), and at least
        ``short_runs.smallest_batch`` (:data:`SMALLEST_BATCH_SIZE`); for a model with no
        recipe, :data:`SMALLEST_BATCH_SIZE`.
    """
    if not has_recipe:
        return BatchChoice(
            SMALLEST_BATCH_SIZE,
            f"fit's batch for a model with no registered recipe (the tutorials' and Keras's "
            f"{SMALLEST_BATCH_SIZE}, at any budget)",
        )
    if samples is None:
        return BatchChoice(DEFAULT_BATCH_SIZE, "fit's default (the data's size is not known)")
    size = DEFAULT_BATCH_SIZE
    steps = run_steps(samples, size, epochs, accumulate)
    if steps >= MIN_STEPS:
        return BatchChoice(size, f"fit's default ({steps} optimizer steps)")
    wanted, smallest = MIN_STEPS, SMALLEST_BATCH_SIZE
    if short_runs is not None:
        wanted, smallest = short_runs.min_steps, short_runs.smallest_batch  # 128 at most
    while size > smallest and run_steps(samples, size, epochs, accumulate) < wanted:
        size //= 2
    whose = "the model's short-run recipe" if short_runs is not None else "fit's choice"
    return BatchChoice(
        size,
        f"{whose} for a small budget: {samples} images x {epochs} epoch(s) give {steps} steps "
        f"at batch {DEFAULT_BATCH_SIZE} and {run_steps(samples, size, epochs, accumulate)} at "
        f"{size} (it wants {wanted})",
        short_run=short_runs is not None,
    )
