"""fit's ``augment`` argument: crop and flip, the named policies, or the user's callable."""

from __future__ import annotations

from typing import Any

from ..data.augment import AUGMENTATIONS, BatchAugment
from ..data.augment import make_augment as _make_basic
from .policies import ALIASES, POLICIES, Stats, make_policy

__all__ = ["AUGMENT_NAMES", "make_augment"]

AUGMENT_NAMES = tuple(sorted({*AUGMENTATIONS, *POLICIES, *ALIASES}))


def make_augment(augment: Any, stats: Stats | None = None) -> BatchAugment | None:
    """Turn fit's ``augment`` argument into one batch augmentation.

    Args:
        augment: ``None``; a name or several, applied in order (``["crop", "flip",
            "trivialaugment", "erasing"]`` or ``"crop+flip+trivialaugment"``): "crop" and
            "flip" (each image shifted and mirrored at random), "trivialaugment",
            "randaugment", "erasing" (see :mod:`cnnzoo.augmentation.policies`); or a callable
            taking a batch (or a batch and a generator) and returning the augmented batch.
        stats: The run's normalisation ``(mean, std)``, which the photometric policies undo
            and redo; ``None`` when batches are pixels in [0, 1].

    Returns:
        ``augment(batch, generator) -> batch``, or ``None`` for no augmentation.

    Raises:
        ValueError: An unknown name, listing the known ones.
    """
    return _make_basic(
        augment, more=lambda name: make_policy(name, stats), more_names=(*POLICIES, *ALIASES)
    )
