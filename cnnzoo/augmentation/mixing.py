"""Mixup and CutMix on device batches, from torchvision's ``transforms.v2``.

Mixup (Zhang et al., 2018, "mixup: Beyond Empirical Risk Minimization") blends each image with
another of the batch; CutMix (Yun et al., 2019, "CutMix: Regularization Strategy to Train Strong
Classifiers with Localizable Features") pastes a box of it. Either way the target becomes a
mixture of two classes, ``(N, num_classes)`` probabilities, which ``fit``'s cross-entropy takes
as they are; the accuracy ``fit`` reports is still measured against the images' own labels.
With both asked for, each batch gets one of the two at random (timm's and torchvision's
recipe). The mixing weight is drawn from ``Beta(alpha, alpha)``, one per batch, as in both
papers.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

__all__ = ["BatchMix", "check_alpha"]

Mixer = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def check_alpha(name: str, value: object) -> None:
    """Refuse a mixing strength that is not a number >= 0 (0 turns the option off).

    Raises:
        ValueError: naming the option and the values it takes.
    """
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not number or not (0 <= value < math.inf):  # type: ignore[operator]
        raise ValueError(
            f"{name} must be a number >= 0 (the alpha of its Beta distribution; 0 turns it off, "
            f"0.2 for mixup and 1.0 for cutmix are the papers' values), got {value!r}"
        )


class BatchMix:
    """Mixup and/or CutMix for a run: ``for_epoch(epoch)`` gives that epoch's mixer.

    Args:
        mixup: Mixup's alpha (0: off).
        cutmix: CutMix's alpha (0: off).
        num_classes: Width of the targets.
        seed: The run's seed; with the epoch it seeds the draws, so a resumed run replays them.

    Raises:
        ValueError: Both alphas are 0, or either is not a number >= 0.
    """

    def __init__(self, mixup: float, cutmix: float, num_classes: int, seed: int) -> None:
        from torchvision.transforms import v2

        check_alpha("mixup", mixup)
        check_alpha("cutmix", cutmix)
        if mixup == 0 and cutmix == 0:
            raise ValueError("BatchMix needs mixup > 0 or cutmix > 0")
        chosen = [
            transform(alpha=float(alpha), num_classes=num_classes)
            for transform, alpha in ((v2.MixUp, mixup), (v2.CutMix, cutmix))
            if alpha > 0
        ]
        self.transform = chosen[0] if len(chosen) == 1 else v2.RandomChoice(chosen)
        self.seed = seed

    def for_epoch(self, epoch: int) -> Mixer:
        """The mixer of ``epoch``: ``(images, labels) -> (mixed images, soft targets)``."""
        generator = torch.Generator().manual_seed((self.seed * 1_000_003 + epoch) % 2**63)

        def mix(images: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            # torchvision draws from torch's global generator: fork it, seeded from ours.
            seed = int(torch.randint(2**62, (), generator=generator))
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                mixed, targets = self.transform(images, labels)
            return mixed, targets

        return mix

    def __repr__(self) -> str:
        return f"BatchMix({self.transform})"
