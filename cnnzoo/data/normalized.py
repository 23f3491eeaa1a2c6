"""``Normalized``: how a user says "these images are already normalised".

cnnzoo reads images as pixels (``uint8`` 0-255, or floats in [0, 1]) and normalises them itself
with the model's mean and std. Data that was normalised beforehand is wrapped in
:class:`Normalized`, so it is neither normalised a second time nor mistaken for pixels.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .config import DataConfig

__all__ = ["Normalized"]


class Normalized:
    """Mark data for ``fit``, ``evaluate`` or ``predict`` as normalised already.

    Args:
        data: Any form those functions take (tensors, an ``(images, labels)`` pair, a
            ``Dataset``, a ``DataLoader``) whose images are ``(pixels - mean) / std``.
        mean: The per-channel mean they were normalised with, in [0, 1] pixel units.
        std: The per-channel standard deviation they were normalised with.

    With ``mean`` and ``std``, ``fit`` records them in the model's data configuration (so
    ``predict`` can later normalise image files the same way), and ``evaluate``/``predict``
    convert the data when the model expects another normalisation. Without them the values are
    handed to the model as they are.

    Raises:
        ValueError: Only one of ``mean`` and ``std``, or invalid values.

    Example:
        >>> x = (images.float() / 255 - 0.286) / 0.353  # doctest: +SKIP
        >>> cnnzoo.predict(model, Normalized(x, mean=(0.286,), std=(0.353,)))  # doctest: +SKIP
    """

    def __init__(
        self,
        data: Any,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
    ) -> None:
        if isinstance(data, Normalized):
            raise ValueError("the data is wrapped in Normalized twice")
        checked = DataConfig(  # validates: both or neither, std > 0
            mean=_as_tuple(mean),
            std=_as_tuple(std),
        )
        self.data = data
        self.mean = checked.mean
        self.std = checked.std

    def __repr__(self) -> str:
        stats = "" if self.mean is None else f", mean={self.mean}, std={self.std}"
        return f"Normalized({type(self.data).__name__}{stats})"


def _as_tuple(values: Sequence[float] | None) -> tuple[float, ...] | None:
    """A sequence as the tuple ``DataConfig`` holds; anything else as it is, for it to refuse."""
    if isinstance(values, Sequence) and not isinstance(values, str):
        return tuple(values)
    return values
