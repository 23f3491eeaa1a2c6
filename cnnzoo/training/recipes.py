"""The peak learning rate ``fit`` trains a model with when the user gives none.

One rate cannot train the whole zoo. Measured on every registered model (the zoo benchmark in
docs/benchmarks.md), AdamW at 2e-2 under the one-cycle schedule suits LeNet-5, while AlexNet,
the plain VGGs, the tutorial's Inception net and network_bn stall or blow up there and their
best rates lie between 3e-4 and 3e-3, as the tutorials and papers behind them trained them
(Dive into Deep Learning: SGD 0.01 for AlexNet, 0.05 for VGG). So the rate comes from the model:

1. the :class:`~cnnzoo.models.TrainingRecipe` registered with it (every built-in model has one),
   found by the registry name ``get_model`` recorded on the model, also after ``cnnzoo.load``;
2. for any other model, :data:`FALLBACK_LR`, 1e-3: on the zoo benchmark's grids it reached
   79% to 100% of the best rate's accuracy on every reference net with and without
   normalisation layers (LeNet-5 aside, which learns at no rate in those 21 steps) and was never
   warned about; 2e-2 ended at chance for AlexNet, VGG-11 and mini_inception and below 85% of
   the best for five more;
3. for any other model on a short run (fewer than :data:`~cnnzoo.training.budget.MIN_STEPS`
   optimizer steps at the batch size it trains with: one that even fit's smaller batch leaves
   short),
   :data:`SHORT_RUN_FALLBACK_LR`, 3e-3: in a few dozen steps 1e-3 moves the weights too little
   (the budgets benchmark: a user's plain two-convolution net on 500 images for 5 epochs
   reached 0.67 at 1e-3, 0.73 at 3e-3, against the tutorial loop's 0.73).

Named optimizers other than AdamW get their own default rate scaled by the same factor.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from ..checkpoint import model_config
from ..models.registry import TrainingRecipe, lookup
from .optimizers import DEFAULT_LR

__all__ = [
    "FALLBACK_LR",
    "SHORT_RUN_FALLBACK_LR",
    "DefaultRate",
    "default_rate",
    "model_recipe",
]

FALLBACK_LR = 1e-3
SHORT_RUN_FALLBACK_LR = 3e-3


@dataclass(frozen=True)
class DefaultRate:
    """The rate ``fit`` chose and why (recorded in ``History.params``).

    Attributes:
        lr: The peak learning rate (``None``: the rate of an optimizer the user built).
        source: Where it comes from, in words, for the History and the CLI.
    """

    lr: float | None
    source: str


def model_recipe(model: nn.Module) -> tuple[str, TrainingRecipe] | None:
    """The registry name and recipe of a model built by ``get_model`` (or loaded), else None."""
    config = model_config(model)  # also through compile, DataParallel and DDP wrappers
    name = None if config is None else config["name"]
    if not isinstance(name, str):
        return None
    try:
        key, entry = lookup(name)
    except ValueError:  # a checkpoint of a model this process has not registered
        return None
    return None if entry.recipe is None else (key, entry.recipe)


def default_rate(model: nn.Module, optimizer: str, short_run: bool = False) -> DefaultRate:
    """The peak rate for ``model`` under the named ``optimizer`` ("adamw", "adam" or "sgd").

    Args:
        model: The model about to be trained.
        optimizer: A named optimizer of :data:`~cnnzoo.training.optimizers.DEFAULT_LR`.
        short_run: The run is short (see :func:`cnnzoo.training.budget.is_short`): a model
            with no recipe gets :data:`SHORT_RUN_FALLBACK_LR`.

    Returns:
        The rate and its source.
    """
    found = model_recipe(model)
    if found is not None:
        name, recipe = found
        adamw_lr, source = recipe.lr, f"{name}'s training recipe ({recipe.source})"
    elif short_run:
        adamw_lr = SHORT_RUN_FALLBACK_LR
        source = "fit's rate for a model with no registered recipe, on a short run"
    else:
        adamw_lr = FALLBACK_LR
        source = "fit's rate for a model with no registered recipe"
    if optimizer == "adamw":
        return DefaultRate(adamw_lr, source)
    scale = adamw_lr / DEFAULT_LR["adamw"]
    scaled = float(f"{DEFAULT_LR[optimizer] * scale:.6g}")  # 0.0025, not 0.0025000000000000005
    if scale == 1:
        return DefaultRate(scaled, source)
    return DefaultRate(
        scaled, f"{source}, {optimizer}'s default {DEFAULT_LR[optimizer]:g} scaled by {scale:g}"
    )
