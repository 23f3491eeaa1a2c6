"""The peak learning rate ``fit`` trains a model with when the user gives none.

One rate cannot train the whole zoo. Measured on every registered model (the zoo benchmark in
docs/benchmarks.md), AdamW at 2e-2 under the one-cycle schedule suits LeNet-5, while AlexNet,
the plain VGGs, the tutorial's Inception net and network_bn stall or blow up there and their
best rates lie between 3e-4 and 3e-3, as the tutorials and papers behind them trained them
(Dive into Deep Learning: SGD 0.01 for AlexNet, 0.05 for VGG). So the rate comes from the model:

1. the :class:`~cnnzoo.models.TrainingRecipe` registered with it (every built-in model has one),
   found by the registry name ``get_model`` recorded on the model, also after ``cnnzoo.load``;
2. for any other model (a net of the user's own, a torchvision model), :data:`FALLBACK_LR`,
   3e-3, at batch :data:`~cnnzoo.training.budget.SMALLEST_BATCH_SIZE` (32) whatever the budget
   (:func:`cnnzoo.training.budget.choose`): the tutorials' and Keras's batch, and three times
   their constant Adam rate of 1e-3, since the one-cycle schedule spends its first quarter
   warming up and its second half annealing. The budgets benchmark (docs/benchmarks.md) holds
   it against the tutorial loop on a plain net, a BatchNorm net and torchvision's
   MobileNetV3-Small from 500 images to all 60,000: the plain net reached 0.844, 0.853 and 0.895
   on 2,000 images x 4 epochs, 10,000 x 1 and 60,000 x 1, where 0.2.0's 1e-3 at batch 128 (and
   batch 64 where that left too few steps) reached 0.78, 0.79 and 0.86 and the tutorial 0.82,
   0.82 and 0.88. A deep net with no normalisation layers may need less (the zoo's AlexNet
   and VGG-16 do best at 1e-3 and below): ``fit`` warns, with the rate to try, when a run
   learns nothing or blows up.

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
    "DefaultRate",
    "default_rate",
    "model_recipe",
]

FALLBACK_LR = 3e-3


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
        short_run: The batch comes from the recipe's short-run rule
            (:class:`~cnnzoo.models.ShortRunRecipe`): its rate applies.

    Returns:
        The rate and its source.
    """
    found = model_recipe(model)
    if found is not None:
        name, recipe = found
        adamw_lr, source = recipe.lr, f"{name}'s training recipe ({recipe.source})"
        if short_run and recipe.short_runs is not None:
            short = recipe.short_runs
            adamw_lr, source = short.lr, f"{name}'s short-run recipe ({short.source})"
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
