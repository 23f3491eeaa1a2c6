"""A model's data-dependent start, before the first step of ``fit`` (and of ``lr_find``).

See :mod:`cnnzoo.models.data_init` for the models that ask for one, and why.
"""

from __future__ import annotations

from torch import nn

from .feed import Batches

__all__ = ["initialise_from_data"]

# Images of the first batch a model's data-dependent initialisation is measured on.
_DATA_INIT_IMAGES = 64


def initialise_from_data(model: nn.Module, batches: Batches) -> str | None:
    """Let a model that asks for it rescale its layers on the first training batch.

    Models that define ``wants_data_init() -> bool`` and ``init_from_data(images) -> bool``
    (the small-input VGGs without BatchNorm) do it once, while their weights are still the ones
    they were built with; a resumed run loads its own weights afterwards. The first batch is
    read only for a model that still wants it. Returns what was done, for the History.
    """
    wants, init = (getattr(model, name, None) for name in ("wants_data_init", "init_from_data"))
    if not callable(wants) or not callable(init) or not wants():
        return None
    epoch = batches.epoch(0)
    try:
        images, _ = next(epoch)
    finally:
        close = getattr(epoch, "close", None)
        if close is not None:
            close()
    if not init(images[:_DATA_INIT_IMAGES]):
        return None
    return (
        "every trainable layer made orthonormal, then rescaled to unit output variance on the "
        "first training batch (LSUV, Mishkin & Matas 2016)"
    )
