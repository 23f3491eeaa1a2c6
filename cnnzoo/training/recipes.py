"""The peak learning rate ``fit`` trains a model with when the user gives none.

One rate cannot train the whole zoo: the nets with normalisation layers (ResNet, DenseNet,
GoogLeNet, the BatchNorm VGGs and tutorial nets) train fastest at AdamW 2e-2 under the one-cycle
schedule, while AlexNet, the plain VGGs and the tutorial's Inception net diverge or stall there
and need a rate ten times lower, as the tutorials and papers behind them trained them
(Dive into Deep Learning: SGD 0.01 for AlexNet, 0.05 for VGG). So the rate comes from the model:

1. the :class:`~cnnzoo.models.TrainingRecipe` registered with it (every built-in model has one,
   measured by ``benchmarks/zoo_defaults.py``), found by the registry name ``get_model``
   recorded on the model;
2. for any other model, a rule its layers imply: normalisation layers (BatchNorm, GroupNorm,
   LayerNorm, InstanceNorm) take :data:`NORMALISED_LR`, others :data:`UNNORMALISED_LR`.

Named optimizers other than AdamW get their own default rate scaled by the same factor.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from ..checkpoint import model_config
from ..models.registry import TrainingRecipe, lookup
from .optimizers import DEFAULT_LR

__all__ = ["NORMALISED_LR", "UNNORMALISED_LR", "DefaultRate", "default_rate", "model_recipe"]

# The rule for models with no registered recipe (the rates of the zoo's own nets of each kind:
# see the recipes in cnnzoo/models and docs/benchmarks.md).
NORMALISED_LR = 2e-2
UNNORMALISED_LR = 2e-3

_NORM_LAYERS = (
    nn.BatchNorm1d,
    nn.BatchNorm2d,
    nn.BatchNorm3d,
    nn.SyncBatchNorm,
    nn.InstanceNorm1d,
    nn.InstanceNorm2d,
    nn.InstanceNorm3d,
    nn.GroupNorm,
    nn.LayerNorm,
)


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


def has_normalisation(model: nn.Module) -> bool:
    """True when any layer of ``model`` normalises its activations."""
    return any(isinstance(module, _NORM_LAYERS) for module in model.modules())


def default_rate(model: nn.Module, optimizer: str) -> DefaultRate:
    """The peak rate for ``model`` under the named ``optimizer`` ("adamw", "adam" or "sgd").

    Args:
        model: The model about to be trained.
        optimizer: A named optimizer of :data:`~cnnzoo.training.optimizers.DEFAULT_LR`.

    Returns:
        The rate and its source.
    """
    found = model_recipe(model)
    if found is not None:
        name, recipe = found
        adamw_lr, source = recipe.lr, f"{name}'s training recipe ({recipe.source})"
    elif has_normalisation(model):
        adamw_lr = NORMALISED_LR
        source = "fit's rule for a model with normalisation layers and no registered recipe"
    else:
        adamw_lr = UNNORMALISED_LR
        source = "fit's rule for a model without normalisation layers and no registered recipe"
    if optimizer == "adamw":
        return DefaultRate(adamw_lr, source)
    scale = adamw_lr / DEFAULT_LR["adamw"]
    scaled = DEFAULT_LR[optimizer] * scale
    if scale == 1:
        return DefaultRate(scaled, source)
    return DefaultRate(
        scaled, f"{source}, {optimizer}'s default {DEFAULT_LR[optimizer]:g} scaled by {scale:g}"
    )
