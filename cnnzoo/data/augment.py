"""Batch augmentations that run on the device, on whole batches at once.

Each augmentation takes a normalised float batch ``(N, C, H, W)`` and a ``torch.Generator`` on
the batch's device, and returns a batch of the same shape: no per-sample
Python, so augmenting costs a few tensor operations per step. Randomness comes only from the
generator, which ``cnnzoo.fit`` seeds from ``(seed, epoch)`` so a resumed run replays it exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

__all__ = ["AUGMENTATIONS", "BatchAugment", "hflip", "make_augment", "random_crop"]

BatchAugment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


def hflip(batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Flip each image left-right with probability 1/2."""
    flip = torch.rand(len(batch), device=batch.device, generator=generator) < 0.5
    return torch.where(flip.view(-1, 1, 1, 1), batch.flip(-1), batch)


def random_crop(
    batch: torch.Tensor, generator: torch.Generator, padding: int | None = None
) -> torch.Tensor:
    """Zero-pad each image by ``padding`` pixels and crop it back at a random offset.

    On normalised images zero is the mean colour, so the padding is neutral grey.

    Args:
        batch: Images ``(N, C, H, W)``.
        generator: Source of the offsets.
        padding: Pixels added on each side; default ``max(1, H // 8)`` (4 for 32x32, 3 for 28x28).

    Returns:
        The shifted images, same shape.
    """
    n, _, height, width = batch.shape
    pad = max(1, height // 8) if padding is None else padding
    padded = F.pad(batch, (pad, pad, pad, pad))
    offsets = torch.randint(0, 2 * pad + 1, (2, n), device=batch.device, generator=generator)
    rows = offsets[0].view(n, 1) + torch.arange(height, device=batch.device)
    cols = offsets[1].view(n, 1) + torch.arange(width, device=batch.device)
    # gather each image's window with two index_selects expressed as advanced indexing
    index_n = torch.arange(n, device=batch.device).view(n, 1, 1)
    windows = padded.permute(0, 2, 3, 1)[index_n, rows.view(n, height, 1), cols.view(n, 1, width)]
    return windows.permute(0, 3, 1, 2).contiguous(memory_format=_memory_format(batch))


def _memory_format(batch: torch.Tensor) -> torch.memory_format:
    if batch.is_contiguous(memory_format=torch.channels_last) and not batch.is_contiguous():
        return torch.channels_last
    return torch.contiguous_format


AUGMENTATIONS: dict[str, BatchAugment] = {
    "flip": hflip,
    "hflip": hflip,
    "crop": random_crop,
    "random_crop": random_crop,
}


def make_augment(
    augment: str | Sequence[str] | Callable[..., torch.Tensor] | None,
    more: Callable[[str], BatchAugment | None] | None = None,
    more_names: Sequence[str] = (),
) -> BatchAugment | None:
    """Turn fit's ``augment`` argument into one batch augmentation.

    Args:
        augment: ``None``; a name ("flip", "crop") or several (``["crop", "flip"]`` or
            ``"crop+flip"``), applied in order; or a callable taking a batch (or a batch and a
            generator) and returning the augmented batch.
        more: Looks up the names this module does not know (``cnnzoo.augmentation`` passes
            its policies), returning ``None`` for an unknown one.
        more_names: The names ``more`` knows, for the error message.

    Returns:
        ``augment(batch, generator) -> batch``, or ``None`` for no augmentation.

    Raises:
        ValueError: An unknown name, listing the known ones.
    """
    if augment is None:
        return None
    if callable(augment):
        return _wrap_callable(augment)
    if not isinstance(augment, (str, Sequence)) or not all(isinstance(n, str) for n in augment):
        raise ValueError(
            f"augment must be None, a name, a list of names or a callable, got {augment!r}"
        )
    names = augment.split("+") if isinstance(augment, str) else list(augment)
    steps = []
    for name in names:
        key = name.strip().lower()
        step = AUGMENTATIONS.get(key) or (more(key) if more is not None else None)
        if step is None:
            known = sorted({*AUGMENTATIONS, *more_names})
            raise ValueError(
                f"unknown augmentation {name!r}; choose from {known}, a list of them, or pass "
                "a callable that takes a batch and returns it augmented"
            )
        steps.append(step)

    def composed(batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        for step in steps:
            batch = step(batch, generator)
        return batch

    return composed


def _wrap_callable(function: Callable[..., torch.Tensor]) -> BatchAugment:
    import inspect

    try:
        takes_generator = len(inspect.signature(function).parameters) >= 2
    except (TypeError, ValueError):  # builtins and some C callables have no signature
        takes_generator = False
    if takes_generator:
        return function
    return lambda batch, generator: function(batch)
