"""The one rule that turns pixels into the model's input, for every form of data.

* ``uint8`` images are pixels 0-255 and become ``x / 255``; ``uint16`` images are pixels
  0-65535 and become ``x / 65535``; float images are pixels in [0, 1] already. Any other
  integer type is refused: its range is unknown.
* The pixels are then normalised with the model's mean and std: ``(x - mean) / std``.
* Data that says it is normalised already (a torchvision ``Normalize`` transform, the items of
  :class:`~cnnzoo.data.ImageTensorDataset`, :class:`~cnnzoo.data.Normalized`) is handed over
  as it is, or converted when the model expects another mean and std.
* Float "pixels" outside [-0.25, 1.25] contradict the rule (already normalised, or 0-255 stored
  as floats) and are refused with the fix, so data is never normalised twice or not at all
  without the user saying so.

The arithmetic is torchvision's ``ToTensor`` then ``Normalize`` (``x.float().div(255)``, then
``sub(mean).div(std)``) on every path, so the same images give bit-identical inputs whether
they arrive as ``uint8`` tensors, float tensors, a ``Dataset``, a ``DataLoader`` or files.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

__all__ = ["PIXEL_SLACK", "DataFacts", "ModelInput", "Stats"]

# How far outside [0, 1] float pixels may stray (interpolation overshoot) before they are taken
# for something else: normalised data reaches -0.4 (MNIST) to -2.1 (ImageNet), 0-255 data 255.
PIXEL_SLACK = 0.25

Stats = tuple[tuple[float, ...], tuple[float, ...]]


@dataclass(frozen=True)
class DataFacts:
    """What data says about its values; ``fit`` records it, the rule converts with it.

    Attributes:
        normalized: The values are model inputs already, not pixels.
        mean: ``normalized``: the mean they were normalised with; otherwise the mean the data
            suggests for its pixels (``load_dataset``'s statistics). ``None`` when unknown.
        std: The matching standard deviation.
        label_names: The class names the data knows, in label order.
    """

    normalized: bool = False
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    label_names: tuple[str, ...] | None = None

    @property
    def stats(self) -> Stats | None:
        """``(mean, std)``, or ``None`` when unknown."""
        return None if self.mean is None or self.std is None else (self.mean, self.std)


class ModelInput:
    """Turns one source's batches into the model's input (see the module docstring).

    Args:
        facts: What the data says about its values.
        target: The ``(mean, std)`` the model normalises pixels with, or ``None`` for none.
        what: The data's name in error messages ("train_data").
    """

    def __init__(self, facts: DataFacts, target: Stats | None, what: str) -> None:
        self.facts, self.what = facts, what
        self.target = None if target is None or _is_identity(target) else target
        # Normalised data whose statistics differ from the model's goes back to pixels first.
        stats = facts.stats
        self.denormalize = (
            stats if facts.normalized and stats is not None and not _same(stats, target) else None
        )
        self._constants: dict[torch.device, dict[str, torch.Tensor]] = {}

    @property
    def passes_through(self) -> bool:
        """True when normalised data goes to the model untouched."""
        return self.facts.normalized and self.denormalize is None

    def check(self, x: torch.Tensor) -> None:
        """Refuse values the rule cannot read (``x`` on any device; floats cost one min/max).

        Raises:
            ValueError: A dtype that is not pixels, statistics for another channel count, or
                float pixels far outside [0, 1].
        """
        what, dtype = self.what, x.dtype
        if dtype == torch.bool or dtype.is_complex:
            raise ValueError(f"{what}: images must be uint8, uint16 or floating point, got {dtype}")
        if not dtype.is_floating_point:
            if self.facts.normalized:
                raise ValueError(
                    f"{what} is declared normalised but holds {dtype} values; normalised images "
                    "are floats (pass the integer pixels without Normalized)"
                )
            if dtype not in (torch.uint8, torch.uint16):
                raise ValueError(
                    f"{what}: integer images of dtype {dtype} have no known range; cnnzoo takes "
                    "uint8 (0-255) or uint16 (0-65535) pixels, or floats in [0, 1]. Convert "
                    "them, e.g. images.to(torch.uint8) for 0-255 values"
                )
        if x.dim() >= 2:
            self._check_channels(x.shape[1])
        if dtype.is_floating_point and not self.facts.normalized and x.numel():
            low, high = (float(v) for v in x.aminmax())
            if low < -PIXEL_SLACK or high > 1 + PIXEL_SLACK:
                raise ValueError(_not_pixels(what, low, high))

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """The model's input for batch ``x`` (already on its device)."""
        if self.facts.normalized:
            if self.denormalize is None:
                return x
            constants = self._on(x.device)
            x = x.mul(constants["data_std"]).add(constants["data_mean"])  # back to pixels
        elif x.dtype == torch.uint8:
            x = x.float().div(255)
        elif x.dtype == torch.uint16:
            x = x.float().div(65535)
        if self.target is None:
            return x
        constants = self._on(x.device)
        return x.sub(constants["mean"]).div(constants["std"])

    def _on(self, device: torch.device) -> dict[str, torch.Tensor]:
        if device not in self._constants:
            named = {}
            if self.target is not None:
                named["mean"], named["std"] = self.target
            if self.denormalize is not None:
                named["data_mean"], named["data_std"] = self.denormalize
            self._constants[device] = {
                key: torch.tensor(values, dtype=torch.float32).view(1, -1, 1, 1).to(device)
                for key, values in named.items()
            }
        return self._constants[device]

    def _check_channels(self, channels: int) -> None:
        for name, stats in (("the model's", self.target), ("the data's", self.denormalize)):
            if stats is not None and len(stats[0]) not in (1, channels):
                raise ValueError(
                    f"{self.what}: the images have {channels} channel(s) but {name} mean and std "
                    f"have {len(stats[0])} values ({stats[0]}); give one value per channel"
                )


def _is_identity(stats: Stats) -> bool:
    mean, std = stats
    return all(m == 0.0 for m in mean) and all(s == 1.0 for s in std)


def _same(a: Stats, b: Stats | None) -> bool:
    """Equal statistics (a single value standing for every channel), to float precision."""
    if b is None:
        return _is_identity(a)
    for x, y in zip(a, b, strict=True):
        n = max(len(x), len(y))
        if len(x) not in (1, n) or len(y) not in (1, n):
            return False
        xs, ys = x * (n // len(x)), y * (n // len(y))
        pairs = zip(xs, ys, strict=True)
        if not all(math.isclose(p, q, rel_tol=1e-6, abs_tol=1e-9) for p, q in pairs):
            return False
    return True


def _not_pixels(what: str, low: float, high: float) -> str:
    head = (
        f"{what} holds float images with values from {low:.3g} to {high:.3g}, but cnnzoo reads "
        "float images as pixels in [0, 1] (and uint8 images as 0-255) and normalises them itself "
        "with the model's mean and std. "
    )
    declare = (
        "cnnzoo.data.Normalized(data, mean=..., std=...) (the mean and std they were normalised "
        "with) so they are not normalised twice"
    )
    if low < -PIXEL_SLACK:
        return head + f"They look normalised already: pass the pixels, or say so with {declare}."
    if high > 2:
        return head + (
            "They look like 0-255 pixels stored as floats: pass images.to(torch.uint8), or "
            "images / 255."
        )
    return head + f"Scale them to [0, 1], or if they are model inputs, say so with {declare}."
