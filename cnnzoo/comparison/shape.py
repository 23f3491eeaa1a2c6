"""``DataShape``: what every model of a comparison must take."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DataShape"]


@dataclass(frozen=True)
class DataShape:
    """What a model must take: ``channels`` x ``height`` x ``width`` images, ``num_classes``."""

    channels: int
    height: int
    width: int
    num_classes: int
