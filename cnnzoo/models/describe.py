"""``info``: what the registry knows of a model, with the weights cnnzoo ships for it."""

from __future__ import annotations

import dataclasses

from ..weights import shipped
from .registry import ModelInfo
from .registry import info as _registry_info

__all__ = ["info"]


def info(name: str) -> ModelInfo:
    """Describe a registered model at its default configuration, and list its shipped weights.

    The model is built on the ``meta`` device, so this is fast even for VGG-19 and allocates no
    weights. ``ModelInfo.weights`` lists cnnzoo's own weights for it (:mod:`cnnzoo.weights`).

    Args:
        name: Registry name (case-insensitive).

    Returns:
        A ``ModelInfo``.
    """
    described = _registry_info(name)
    return dataclasses.replace(described, weights=tuple(shipped(described.name)))
