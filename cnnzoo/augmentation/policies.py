"""Augmentation policies by name, from torchvision's ``transforms.v2``, on device batches.

TrivialAugment (Müller and Hutter, 2021, "TrivialAugment: Tuning-free Yet State-of-the-Art
Data Augmentation": ``TrivialAugmentWide``), RandAugment (Cubuk et al., 2020: two operations of
magnitude 9) and random erasing (Zhong et al., 2020, "Random Erasing Data Augmentation":
probability 0.5, erased to the mean colour) run on the batches ``fit`` has already put on the
device. Each image draws its own operation and magnitude, as in the papers (a transform applied
to a whole batch would give every image the same one), at the cost of a Python loop over the
batch (measured in the augmentation benchmark).

The photometric operations of TrivialAugment and RandAugment expect pixels in [0, 1]: batches
arrive normalised, so they are mapped back to pixels with the run's mean and std, transformed
and normalised again. Random erasing works on the normalised batch, where 0 is the mean colour.

torchvision draws its random parameters from torch's global generator; here that generator is
forked and seeded from the generator ``fit`` passes (seeded from the run's seed and the epoch),
so a seeded run repeats exactly and the global state is left as it was.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

__all__ = ["POLICIES", "Stats", "make_policy"]

Stats = tuple[Sequence[float], Sequence[float]]


def _trivialaugment() -> Callable[[torch.Tensor], torch.Tensor]:
    from torchvision.transforms import v2

    return v2.TrivialAugmentWide()


def _randaugment() -> Callable[[torch.Tensor], torch.Tensor]:
    from torchvision.transforms import v2

    return v2.RandAugment(num_ops=2, magnitude=9)


def _erasing() -> Callable[[torch.Tensor], torch.Tensor]:
    from torchvision.transforms import v2

    return v2.RandomErasing(p=0.5, value=0)


# name -> (transform factory, works on pixels in [0, 1] rather than on the normalised batch)
POLICIES: dict[str, tuple[Callable[[], Callable[[torch.Tensor], torch.Tensor]], bool]] = {
    "trivialaugment": (_trivialaugment, True),
    "randaugment": (_randaugment, True),
    "erasing": (_erasing, False),
}
ALIASES = {"trivialaugmentwide": "trivialaugment", "random_erasing": "erasing"}


class _Policy:
    """One named policy as a batch augmentation ``(batch, generator) -> batch``."""

    def __init__(self, name: str, stats: Stats | None) -> None:
        factory, on_pixels = POLICIES[name]
        self.name = name
        self.transform = factory()
        self.on_pixels = on_pixels
        self.stats = stats
        self._source: torch.Generator | None = None
        self._generator = torch.Generator()

    def __call__(self, batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if generator is not self._source:
            # A new epoch's generator: continue from its seed, read on the host (no sync).
            self._source = generator
            self._generator.manual_seed(generator.initial_seed())
        seed = int(torch.randint(2**62, (), generator=self._generator))
        x = self._to_pixels(batch) if self.on_pixels else batch
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            out = torch.stack([self.transform(image) for image in x])
        return self._from_pixels(out) if self.on_pixels else out

    def _scale(self, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
        if self.stats is None:
            return None
        mean, std = (torch.as_tensor(s, dtype=batch.dtype, device=batch.device) for s in self.stats)
        return mean.view(1, -1, 1, 1), std.view(1, -1, 1, 1)

    def _to_pixels(self, batch: torch.Tensor) -> torch.Tensor:
        scale = self._scale(batch)
        pixels = batch if scale is None else batch * scale[1] + scale[0]
        return pixels.clamp(0.0, 1.0)  # rounding can step a hair outside [0, 1]

    def _from_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        scale = self._scale(pixels)
        return pixels if scale is None else (pixels - scale[0]) / scale[1]

    def __repr__(self) -> str:
        return f"{self.name}"


def make_policy(
    name: str, stats: Stats | None
) -> Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None:
    """The policy called ``name`` as a batch augmentation, or ``None`` for an unknown name.

    Args:
        name: "trivialaugment", "randaugment" or "erasing" (any case).
        stats: The run's normalisation ``(mean, std)``, one value per channel, or ``None`` when
            the batches are pixels in [0, 1].
    """
    key = ALIASES.get(name.lower(), name.lower())
    return _Policy(key, stats) if key in POLICIES else None
