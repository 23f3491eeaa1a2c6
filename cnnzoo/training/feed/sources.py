"""Turn what users pass to fit/evaluate/predict into one of three data sources.

* :class:`InMemory`: the whole set as tensors (an ``(x, y)`` pair, a ``TensorDataset``, an
  :class:`~cnnzoo.data.ImageTensorDataset`, torchvision's MNIST-family datasets with simple
  transforms, or a ``Subset`` of any of them). These take the fast path: moved to the device once,
  batches drawn by index.
* any other ``Dataset``: read through a ``DataLoader`` that cnnzoo builds.
* a ``DataLoader``: used as given.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, Subset, TensorDataset

from ...data import ImageTensorDataset

__all__ = ["InMemory", "Source", "as_class_indices", "resolve", "split"]


@dataclass
class InMemory:
    """A data set held as tensors.

    Attributes:
        images: ``(N, C, H, W)``, ``uint8`` (scaled by 1/255, then normalised per batch) or
            float (used as is unless ``mean``/``std`` are given).
        labels: ``(N,)`` integer class indices, or ``None`` (predict).
        mean: Per-channel mean to subtract, in [0, 1] units; ``None`` for none.
        std: Per-channel standard deviation to divide by; ``None`` for none.
        origin: For a share held out by :func:`split`, each row's index in the data the user
            passed (so messages name the sample the user knows); ``None`` when rows are that.
    """

    images: torch.Tensor
    labels: torch.Tensor | None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    origin: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.images)

    def subset(self, indices: torch.Tensor) -> InMemory:
        """The rows at ``indices`` (a copy), remembering where each came from."""
        labels = None if self.labels is None else self.labels[indices]
        origin = indices if self.origin is None else self.origin[indices]
        return InMemory(self.images[indices], labels, self.mean, self.std, origin)


Source = InMemory | Dataset | DataLoader


def resolve(data: Any, *, what: str = "data", need_labels: bool = True) -> Source:
    """Classify ``data`` into a source, checking what can be checked without iterating it.

    Args:
        data: An ``(x, y)`` pair of tensors, a tensor ``x`` (only when labels are not needed),
            a ``Dataset`` yielding ``(image, label)``, or a ``DataLoader``.
        what: The argument's name, for error messages ("train_data").
        need_labels: Whether labels are required (fit, evaluate) or not (predict).

    Returns:
        An :class:`InMemory`, a ``Dataset`` or a ``DataLoader``.

    Raises:
        TypeError: Not one of the accepted kinds.
        ValueError: Empty data, mismatched lengths, non-integer labels.
    """
    source = _resolve(data, what, need_labels)
    if isinstance(source, InMemory):
        _check_in_memory(source, what, need_labels)
    elif isinstance(source, DataLoader):
        if _safe_len(source.dataset) == 0:
            raise ValueError(f"{what} is empty: its DataLoader's dataset has no samples")
    elif _safe_len(source) == 0:
        raise ValueError(f"{what} is empty: the dataset has no samples")
    return source


def split(source: Source, fraction: float, seed: int) -> tuple[Source, Source]:
    """Split off a seeded, shuffled fraction for validation (not the tail: data is often sorted).

    Args:
        source: The resolved training data.
        fraction: Share of samples for validation, in (0, 1).
        seed: Seed of the shuffle.

    Returns:
        ``(train, validation)``.

    Raises:
        ValueError: ``fraction`` out of range, too little data, or a ``DataLoader`` (which
            cannot be split: pass the dataset instead).
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"val_data as a fraction must be in (0, 1), got {fraction}")
    if isinstance(source, DataLoader):
        raise ValueError(
            "val_data=<fraction> cannot split a DataLoader; pass its dataset instead, or pass "
            "val_data explicitly"
        )
    total = len(source)
    num_val = round(total * fraction)
    if num_val < 1 or num_val >= total:
        raise ValueError(
            f"val_data={fraction} leaves {num_val} of {total} samples for validation; use a "
            "fraction that keeps at least one sample on each side"
        )
    order = torch.randperm(total, generator=torch.Generator().manual_seed(seed))
    val_idx, train_idx = order[:num_val], order[num_val:]
    if isinstance(source, InMemory):
        return source.subset(train_idx), source.subset(val_idx)
    return Subset(source, train_idx.tolist()), Subset(source, val_idx.tolist())


# -- recognising the in-memory kinds ---------------------------------------------------------
def _resolve(data: Any, what: str, need_labels: bool) -> Source:
    if isinstance(data, torch.Tensor):
        if need_labels:
            raise TypeError(f"{what} is a single tensor; pass an (images, labels) pair")
        return InMemory(_as_nchw(data, what), None)
    if isinstance(data, (tuple, list)):
        if len(data) == 2 and all(isinstance(t, torch.Tensor) for t in data):
            return InMemory(_as_nchw(data[0], what), data[1])
        raise TypeError(
            f"{what} as a tuple must be an (images, labels) pair of tensors; got a "
            f"{type(data).__name__} of {len(data)} items"
        )
    if isinstance(data, DataLoader):
        return data
    if isinstance(data, Dataset):
        return _in_memory_view(data, what) or data
    raise TypeError(
        f"{what} must be an (images, labels) pair of tensors, a torch Dataset yielding "
        f"(image, label), or a DataLoader; got {type(data).__name__}"
    )


def _in_memory_view(dataset: Dataset, what: str) -> InMemory | None:
    if isinstance(dataset, ImageTensorDataset):
        return InMemory(dataset.images, dataset.labels, dataset.mean, dataset.std)
    if isinstance(dataset, TensorDataset) and len(dataset.tensors) in (1, 2):
        labels = dataset.tensors[1] if len(dataset.tensors) == 2 else None
        return InMemory(_as_nchw(dataset.tensors[0], what), labels)
    if isinstance(dataset, Subset):
        inner = _in_memory_view(dataset.dataset, what)
        if inner is not None:
            view = inner.subset(torch.as_tensor(list(dataset.indices), dtype=torch.long))
            view.origin = None  # the user indexes the Subset itself
            return view
        return None
    return _torchvision_mnist_view(dataset)


def _torchvision_mnist_view(dataset: Dataset) -> InMemory | None:
    """Read torchvision's MNIST family, which holds ``uint8`` tensors already.

    Only when the transform is one cnnzoo applies itself on the device (ToTensor, Normalize, an
    identity Resize); anything else goes through a DataLoader.
    """
    try:
        from torchvision.datasets import MNIST
    except ImportError:  # pragma: no cover - torchvision is a dependency
        return None
    if not isinstance(dataset, MNIST) or getattr(dataset, "target_transform", None) is not None:
        return None
    images = dataset.data
    normalisation = _simple_transform(dataset.transform, tuple(images.shape[-2:]))
    if normalisation is None:
        return None
    mean, std = normalisation
    return InMemory(images.unsqueeze(1), torch.as_tensor(dataset.targets), mean, std)


def _simple_transform(
    transform: Any, size: tuple[int, int]
) -> tuple[tuple[float, ...] | None, tuple[float, ...] | None] | None:
    """``(mean, std)`` when ``transform`` is ToTensor [+ Normalize] [+ identity Resize]."""
    from torchvision import transforms

    steps = transform.transforms if isinstance(transform, transforms.Compose) else [transform]
    mean = std = None
    for step in steps:
        if step is None or isinstance(step, transforms.ToTensor):
            continue
        if isinstance(step, transforms.Normalize):
            mean = tuple(float(m) for m in torch.as_tensor(step.mean).flatten())
            std = tuple(float(s) for s in torch.as_tensor(step.std).flatten())
            continue
        if isinstance(step, transforms.Resize) and _resize_is_identity(step.size, size):
            continue
        return None
    return mean, std


def _resize_is_identity(target: Any, size: tuple[int, int]) -> bool:
    if isinstance(target, int):
        return size[0] == size[1] == target
    target = tuple(target)
    return target == size or (len(target) == 1 and size[0] == size[1] == target[0])


# -- checks ----------------------------------------------------------------------------------
def _as_nchw(images: torch.Tensor, what: str) -> torch.Tensor:
    if images.dim() == 3:  # (N, H, W) grey images, as torchvision's MNIST stores them
        return images.unsqueeze(1)
    if images.dim() != 4:
        raise ValueError(
            f"{what}: images must be a tensor (N, C, H, W) (or (N, H, W) for grey images); got "
            f"shape {tuple(images.shape)}"
        )
    return images


def _check_in_memory(source: InMemory, what: str, need_labels: bool) -> None:
    if len(source.images) == 0:
        raise ValueError(f"{what} is empty: it has no images")
    if source.images.dtype == torch.bool or source.images.is_complex():
        raise ValueError(
            f"{what}: images must be uint8 or floating point, got {source.images.dtype}"
        )
    if source.labels is None:
        if need_labels:
            raise ValueError(f"{what} has no labels; pass an (images, labels) pair")
        return
    labels = torch.as_tensor(source.labels)
    if labels.dim() != 1 or len(labels) != len(source.images):
        raise ValueError(
            f"{what}: labels must be a 1-D tensor with one class index per image; got labels of "
            f"shape {tuple(labels.shape)} for {len(source.images)} images"
        )
    source.labels = as_class_indices(labels, what)


def as_class_indices(labels: Any, what: str) -> torch.Tensor:
    """Labels as ``int64`` class indices; float labels are accepted when they are whole numbers.

    A custom ``Dataset`` often yields labels as floats (``1.0``): the intent is clear, so they
    are converted. A fractional or non-finite label, or a boolean one, has no class index.

    Raises:
        ValueError: The labels are not class indices (the message names the first bad one).
    """
    labels = torch.as_tensor(labels)
    if labels.dtype == torch.bool or labels.is_complex():
        raise ValueError(
            f"{what}: labels must be integer class indices, got dtype {labels.dtype}; convert "
            "them with labels.long()"
        )
    if labels.is_floating_point():
        whole = torch.isfinite(labels) & (labels == labels.round())
        if not bool(whole.all()):
            bad = labels[~whole][0].item()
            raise ValueError(
                f"{what}: labels must be class indices, got the float label {bad!r}, which is "
                "not a whole number; pass the class index of each sample (one-hot or soft "
                "labels: labels.argmax(1))"
            )
    return labels.long()


def _safe_len(dataset: Any) -> int | None:
    try:
        return len(dataset)
    except TypeError:  # an IterableDataset without __len__
        return None
