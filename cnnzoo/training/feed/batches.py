"""Batches on the device, one epoch at a time, in an order fixed by ``(seed, epoch)``.

:class:`DeviceBatches` is the fast path: the whole set lives on the device, each step gathers a
batch by index and normalises (and augments) it with a few tensor operations. :class:`LoaderBatches`
reads any other ``Dataset`` (or the user's ``DataLoader``) with workers and pinned memory. Both
turn values into model inputs with the same :class:`~.pixels.ModelInput`, so a form of data
never changes the answer.

Both shuffle with a permutation derived only from ``seed`` and the epoch number, so a run resumed
at epoch ``k`` sees the same batches as the uninterrupted run; under ``torch.distributed`` each
rank takes its own equal-sized share of every epoch.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator, Sized
from dataclasses import dataclass
from typing import TypedDict, cast

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from ...data import BatchAugment
from .pixels import ModelInput
from .sources import InMemory, Source, Streamed, as_class_indices, streamed

__all__ = ["Batches", "DeviceBatches", "LoaderBatches", "Shard", "epoch_order", "make_batches"]

Batch = tuple[torch.Tensor, torch.Tensor | None]


@dataclass(frozen=True)
class Shard:
    """This process's share of the data under ``torch.distributed`` (rank 0 of 1 otherwise)."""

    rank: int = 0
    world_size: int = 1


def epoch_order(
    num_samples: int, seed: int, epoch: int, *, shuffle: bool, shard: Shard, pad: bool
) -> torch.Tensor:
    """The sample indices this rank visits in ``epoch``.

    Args:
        num_samples: Size of the data set.
        seed: Run seed.
        epoch: Epoch number (0-based); each epoch gets its own permutation.
        shuffle: Permute (training) or keep the order (evaluation).
        shard: This rank's share.
        pad: Repeat a few samples so every rank gets the same count (training under DDP must
            take the same number of steps on every rank); without it ranks split the set exactly.

    Returns:
        A CPU ``int64`` tensor of indices.
    """
    if shuffle:
        generator = torch.Generator().manual_seed(_mix(seed, epoch))
        order = torch.randperm(num_samples, generator=generator)
    else:
        order = torch.arange(num_samples)
    if shard.world_size == 1:
        return order
    if pad:
        total = math.ceil(num_samples / shard.world_size) * shard.world_size
        order = torch.cat([order, order[: total - num_samples]])
    return order[shard.rank :: shard.world_size]


def _mix(seed: int, epoch: int) -> int:
    """One 63-bit seed per (seed, epoch), different for every pair in practice."""
    return (seed * 0x9E3779B97F4A7C15 + epoch * 0xBF58476D1CE4E5B9 + 1) % (2**63)


class Batches:
    """One epoch of ``(x, y)`` batches on the device at a time (the interface fit reads).

    Inputs come out as floating point of ``input_dtype`` (float32 unless the model is
    another float type): uint8, float16 or float64 images alike.
    """

    num_samples: int
    labels: torch.Tensor | None
    input_dtype: torch.dtype = torch.float32

    def __len__(self) -> int:  # batches per epoch on this rank
        raise NotImplementedError

    def epoch(self, epoch: int) -> Iterator[Batch]:
        """Yield the batches of ``epoch``, inputs normalised and augmented, on the device."""
        raise NotImplementedError

    def example(self) -> torch.Tensor:
        """Two inputs (or one), prepared like a training batch, to probe the model with."""
        raise NotImplementedError


class DeviceBatches(Batches):
    """Batches drawn by index from tensors that live on the device (no DataLoader)."""

    def __init__(
        self,
        data: InMemory,
        *,
        device: torch.device,
        batch_size: int,
        shuffle: bool,
        seed: int = 0,
        augment: BatchAugment | None = None,
        shard: Shard = Shard(),
        drop_last: bool = False,
        channels_last: bool = False,
        rule: ModelInput | None = None,
        what: str = "data",
        input_dtype: torch.dtype = torch.float32,
    ) -> None:
        self.device = device
        self.input_dtype = input_dtype
        self.rule = rule or _data_own_rule(data)
        self.images = data.images.to(device, non_blocking=True)
        # Once, on the whole set, on the device: NaN/Inf first (the range check cannot see them).
        check_finite(self.images, what, data.origin)
        self.rule.check(self.images)
        self.labels = None if data.labels is None else data.labels.to(device, non_blocking=True)
        self.num_samples = len(data.images)
        self.batch_size = batch_size
        self.shuffle, self.seed, self.augment, self.shard = shuffle, seed, augment, shard
        self.channels_last = channels_last
        per_rank = len(epoch_order(self.num_samples, 0, 0, shuffle=False, shard=shard, pad=shuffle))
        self._drop_last = drop_last and per_rank > batch_size
        self._per_rank = per_rank

    def __len__(self) -> int:
        if self._drop_last:
            return self._per_rank // self.batch_size
        return math.ceil(self._per_rank / self.batch_size)

    def epoch(self, epoch: int) -> Iterator[Batch]:
        """Yield the batches of ``epoch``, gathered by index, normalised and augmented."""
        order = epoch_order(
            self.num_samples,
            self.seed,
            epoch,
            shuffle=self.shuffle,
            shard=self.shard,
            pad=self.shuffle,
        ).to(self.device)
        generator = _augment_generator(self.augment, self.device, self.seed, epoch)
        for step in range(len(self)):
            index = order[step * self.batch_size : (step + 1) * self.batch_size]
            x = self._prepare(self.images[index], generator)
            yield x, (None if self.labels is None else self.labels[index])

    def example(self) -> torch.Tensor:
        """The first two inputs, prepared like a batch."""
        return self._prepare(self.images[:2], None)

    def _prepare(self, raw: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        x = self.rule(raw)
        if x.dtype != self.input_dtype:  # float16/float64 pixels: the model's own dtype
            x = x.to(self.input_dtype)
        if self.augment is not None and generator is not None:
            x = self.augment(x, generator)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x


class LoaderBatches(Batches):
    """Batches read through a ``DataLoader`` (the user's, or one built for a ``Dataset``)."""

    def __init__(
        self,
        data: Dataset | DataLoader | Streamed,
        *,
        device: torch.device,
        batch_size: int,
        shuffle: bool,
        seed: int = 0,
        augment: BatchAugment | None = None,
        shard: Shard = Shard(),
        drop_last: bool = False,
        channels_last: bool = False,
        num_workers: int | None = None,
        check_labels: Callable[[torch.Tensor], None] | None = None,
        rule: ModelInput | None = None,
        what: str = "data",
        input_dtype: torch.dtype = torch.float32,
    ) -> None:
        self.device, self.seed, self.augment = device, seed, augment
        self.what, self.input_dtype = what, input_dtype
        self.channels_last = channels_last
        self.check_labels = check_labels
        source = data if isinstance(data, Streamed) else streamed(data)
        self.rule = rule or _data_own_rule(source)
        self.collate = source.collate
        data = source.data
        self.labels = _known_labels(data)
        if isinstance(data, DataLoader):
            self.loader = data
        else:
            workers = default_num_workers() if num_workers is None else num_workers
            # a map-style Dataset has a length (torch's Dataset type declares no __len__)
            sampler = EpochSampler(len(cast(Sized, data)), seed, shuffle=shuffle, shard=shard)
            self.loader = DataLoader(
                data,
                batch_size=batch_size,
                sampler=sampler,
                num_workers=workers,
                pin_memory=device.type == "cuda",
                persistent_workers=workers > 0,
                drop_last=drop_last and len(sampler) > batch_size,
                collate_fn=self.collate,  # None: the DataLoader's default_collate
            )
        self.num_samples = len(cast(Sized, self.loader.dataset))

    def __len__(self) -> int:
        return len(self.loader)

    def epoch(self, epoch: int) -> Iterator[Batch]:
        """Yield the DataLoader's batches of ``epoch`` on the device, augmented."""
        set_epoch = getattr(getattr(self.loader, "sampler", None), "set_epoch", None)
        if callable(set_epoch):  # ours, or the user's DistributedSampler
            set_epoch(epoch)
        generator = _augment_generator(self.augment, self.device, self.seed, epoch)
        for batch in self.loader:
            x, y = _unpack(batch)
            if y is not None:
                y = as_class_indices(y, self.what)  # a Dataset's float labels (1.0) convert
                if self.check_labels is not None:
                    self.check_labels(y)
            self.rule.check(x)  # on the CPU batch: no device sync
            x = self.rule(x.to(self.device, non_blocking=True))
            if x.dtype != self.input_dtype:
                x = x.to(self.input_dtype)
            if self.augment is not None and generator is not None:
                x = self.augment(x, generator)
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            y = None if y is None else torch.as_tensor(y).to(self.device, non_blocking=True)
            yield x, y

    def example(self) -> torch.Tensor:
        """The first input (or two), from the dataset, prepared like a batch."""
        dataset = self.loader.dataset
        try:
            x, _ = _unpack(dataset[0])
            x = self.collate([(x,)])[0] if self.collate is not None else torch.as_tensor(x)[None]
        except (TypeError, NotImplementedError, IndexError):  # iterable datasets
            x, _ = _unpack(next(iter(self.loader)))
            x = x[:2]
        self.rule.check(x)
        return self.rule(x.to(self.device)).to(self.input_dtype)


class EpochSampler(Sampler[int]):
    """Indices in the order :func:`epoch_order` gives; call ``set_epoch`` before each epoch."""

    def __init__(self, num_samples: int, seed: int, *, shuffle: bool, shard: Shard) -> None:
        self.num_samples, self.seed, self.shuffle, self.shard = num_samples, seed, shuffle, shard
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose order ``__iter__`` yields."""
        self.epoch = epoch

    def _order(self) -> torch.Tensor:
        return epoch_order(
            self.num_samples,
            self.seed,
            self.epoch,
            shuffle=self.shuffle,
            shard=self.shard,
            pad=self.shuffle,
        )

    def __iter__(self) -> Iterator[int]:
        return iter(self._order().tolist())

    def __len__(self) -> int:
        return len(self._order()) if self.shard.world_size > 1 else self.num_samples


class _Options(TypedDict):
    """The options both kinds of :class:`Batches` take, passed on by :func:`make_batches`."""

    device: torch.device
    batch_size: int
    shuffle: bool
    seed: int
    augment: BatchAugment | None
    shard: Shard
    drop_last: bool
    channels_last: bool
    rule: ModelInput | None
    what: str
    input_dtype: torch.dtype


def make_batches(
    source: Source,
    *,
    device: torch.device,
    batch_size: int,
    train: bool,
    seed: int = 0,
    augment: BatchAugment | None = None,
    shard: Shard = Shard(),
    channels_last: bool = False,
    num_workers: int | None = None,
    check_labels: Callable[[torch.Tensor], None] | None = None,
    rule: ModelInput | None = None,
    what: str = "data",
    input_dtype: torch.dtype = torch.float32,
) -> Batches:
    """Pick the fastest way to serve ``source``: in-memory on the device, or a DataLoader.

    Args:
        source: From :func:`cnnzoo.training.feed.resolve`.
        device: Where the batches go.
        batch_size: Samples per batch (ignored for a user's DataLoader).
        train: Shuffle, pad shards to equal size, drop a last partial batch and augment.
        seed: Seed of the shuffle and the augmentation.
        augment: Batch augmentation (training only).
        shard: This rank's share under ``torch.distributed``.
        channels_last: Hand the model ``channels_last`` inputs.
        num_workers: DataLoader workers for a plain ``Dataset`` (default: see
            :func:`default_num_workers`).
        check_labels: Called on each CPU label batch of the DataLoader path (label range check).
        rule: How values become model inputs (the model's normalisation); default: the data's
            own statistics, if it has any.
        what: The argument's name, for error messages ("val_data").
        input_dtype: The floating dtype the model takes; images of any other dtype convert.

    Returns:
        A :class:`Batches`.

    Raises:
        ValueError: In-memory images hold NaN or Inf (checked once, on the device; the message
            names the first bad sample).
    """
    options: _Options = {
        "device": device,
        "batch_size": batch_size,
        "shuffle": train,
        "seed": seed,
        "augment": augment if train else None,
        "shard": shard,
        "drop_last": train,
        "channels_last": channels_last,
        "rule": rule,
        "what": what,
        "input_dtype": input_dtype,
    }
    if isinstance(source, InMemory):
        return DeviceBatches(source, **options)
    return LoaderBatches(source, num_workers=num_workers, check_labels=check_labels, **options)


def default_num_workers() -> int:
    """DataLoader workers for a plain Dataset: one core stays with the training loop, at most 8."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(0, min(8, (cores or 1) - 1))


# -- helpers ---------------------------------------------------------------------------------
def _data_own_rule(source: Source) -> ModelInput:
    """The rule without a model: normalise with the data's own statistics, if it has any."""
    return ModelInput(source.facts, source.facts.stats, "data")


def check_finite(images: torch.Tensor, what: str, origin: torch.Tensor | None = None) -> None:
    """Refuse floating-point images holding NaN or Inf, naming the first bad sample.

    One reduction on the device where the images live (a sum is non-finite as soon as one
    value is); the per-sample search runs only when it is.

    Args:
        images: ``(N, ...)`` images.
        what: The argument's name, for the message.
        origin: Each row's index in the data the user passed, when the rows are a share of it.

    Raises:
        ValueError: A value is NaN or infinite.
    """
    if not images.is_floating_point() or bool(torch.isfinite(images.sum(dtype=torch.float32))):
        return
    bad_rows = (~torch.isfinite(images.flatten(1))).any(1).nonzero().flatten()
    if len(bad_rows) == 0:  # the sum overflowed, yet every value is finite
        return
    first = int(bad_rows[0]) if origin is None else int(origin[bad_rows].min())
    where = "" if origin is None else " (its index in the data given to fit)"
    raise ValueError(
        f"{what} holds NaN or Inf in sample {first}{where}, and in {len(bad_rows)} sample(s) in "
        "all: training on them gives NaN weights, evaluating on them a meaningless accuracy. "
        "Fix those samples, or drop them: keep = torch.isfinite(images).flatten(1).all(1); "
        "images, labels = images[keep], labels[keep]"
    )


def _augment_generator(
    augment: BatchAugment | None, device: torch.device, seed: int, epoch: int
) -> torch.Generator | None:
    if augment is None:
        return None
    return torch.Generator(device=device).manual_seed(_mix(seed + 7919, epoch))


def _unpack(batch: object) -> tuple[torch.Tensor, torch.Tensor | None]:
    if isinstance(batch, (tuple, list)) and len(batch) >= 2:
        return batch[0], batch[1]
    if isinstance(batch, (tuple, list)) and len(batch) == 1:
        return batch[0], None
    if isinstance(batch, torch.Tensor):
        return batch, None
    raise TypeError(
        "each sample or batch must be (image, label) or an image tensor; got "
        f"{type(batch).__name__}"
    )


def _known_labels(data: Dataset | DataLoader) -> torch.Tensor | None:
    """All labels when the dataset exposes them (``targets``), for checks before training."""
    dataset = data.dataset if isinstance(data, DataLoader) else data
    targets = getattr(dataset, "targets", None)
    if targets is None or getattr(dataset, "target_transform", None) is not None:
        return None
    try:
        return torch.as_tensor(targets).long()
    except (TypeError, ValueError, RuntimeError):
        return None
