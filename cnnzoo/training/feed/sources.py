"""Turn what users pass to fit/evaluate/predict into one of two data sources.

* :class:`InMemory`: the whole set as tensors: an ``(x, y)`` pair of tensors or NumPy arrays,
  PIL images and image files (read once), a ``TensorDataset``, an
  :class:`~cnnzoo.data.ImageTensorDataset`, torchvision's MNIST-family datasets with simple
  transforms, or a ``Subset`` of any of them. These take the fast path: moved to the device once,
  batches drawn by index.
* :class:`Streamed`: any other ``Dataset`` (read through a ``DataLoader`` that cnnzoo builds)
  or a ``DataLoader`` (used as given). A :class:`~cnnzoo.data.StreamedImageFolder` (or a
  ``Subset`` of one) is read as its ``uint8`` pixels and normalised on the device, exactly as
  the same folder in memory is.

Each source carries :class:`~.pixels.DataFacts`: whether its values are pixels or normalised
already, the statistics it knows, its class names.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Subset, TensorDataset

from ..._advice import for_cli
from ...data import ImageTensorDataset, Normalized, StreamedImageFolder
from .forms import ImageReading, ItemCollate, array_to_images, is_image, read_images
from .pixels import DataFacts

__all__ = ["InMemory", "Source", "Streamed", "as_class_indices", "resolve", "split", "streamed"]


@dataclass
class InMemory:
    """A data set held as tensors.

    Attributes:
        images: ``(N, C, H, W)``: pixels (``uint8``, ``uint16`` or floats in [0, 1]), or
            normalised floats when ``facts.normalized``.
        labels: ``(N,)`` integer class indices, or ``None`` (predict).
        facts: What the data says about its values.
        origin: For a share held out by :func:`split`, each row's index in the data the user
            passed (so messages name the sample the user knows); ``None`` when rows are that.
    """

    images: torch.Tensor
    labels: torch.Tensor | None
    facts: DataFacts = field(default_factory=DataFacts)
    origin: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.images)

    def subset(self, indices: torch.Tensor) -> InMemory:
        """The rows at ``indices`` (a copy), remembering where each came from."""
        labels = None if self.labels is None else self.labels[indices]
        origin = indices if self.origin is None else self.origin[indices]
        return InMemory(self.images[indices], labels, self.facts, origin)


@dataclass
class Streamed:
    """A ``Dataset`` read through a ``DataLoader``, or the user's ``DataLoader``.

    Attributes:
        data: The dataset or loader.
        facts: What the data says about its values.
        collate: The ``collate_fn`` for a dataset cnnzoo batches itself (reads PIL images,
            files and arrays); ``None`` for the default.
    """

    data: Dataset | DataLoader
    facts: DataFacts = field(default_factory=DataFacts)
    collate: Callable[[list[Any]], Any] | None = None

    def __len__(self) -> int:
        dataset = self.data.dataset if isinstance(self.data, DataLoader) else self.data
        return len(dataset)  # type: ignore[arg-type]


Source = InMemory | Streamed


def resolve(
    data: Any,
    *,
    what: str = "data",
    need_labels: bool = True,
    reading: ImageReading | None = None,
) -> Source:
    """Classify ``data`` into a source, checking what can be checked without iterating it.

    Args:
        data: An ``(images, labels)`` pair (images a tensor, a NumPy array, or a list of PIL
            images or image files), images alone (only when labels are not needed: a tensor, an
            array, one PIL image or file, or a list of them), a ``Dataset`` yielding ``(image,
            label)``, a ``DataLoader``, or any of these wrapped in
            :class:`~cnnzoo.data.Normalized`.
        what: The argument's name, for error messages ("train_data").
        need_labels: Whether labels are required (fit, evaluate) or not (predict).
        reading: How to read images that are not tensors (the model's channels and size).

    Returns:
        An :class:`InMemory` or a :class:`Streamed`.

    Raises:
        TypeError: Not one of the accepted kinds.
        ValueError: Empty data, mismatched lengths, non-integer labels, unreadable images.
        FileNotFoundError: An image file that does not exist.
    """
    source = _resolve(data, what, need_labels, reading or ImageReading())
    if isinstance(source, InMemory):
        _check_in_memory(source, what, need_labels)
    elif isinstance(source.data, DataLoader):
        if _safe_len(source.data.dataset) == 0:
            raise ValueError(f"{what} is empty: its DataLoader's dataset has no samples")
    elif _safe_len(source.data) == 0:
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
    if isinstance(source, Streamed) and isinstance(source.data, DataLoader):
        raise ValueError(
            "val_data=<fraction> cannot split a DataLoader; pass its dataset instead, or pass "
            "val_data explicitly"
        )
    total = len(source)
    num_val = round(total * fraction)
    if num_val < 1 or num_val >= total:
        keep = "a fraction that keeps at least one sample on each side"
        leaves = f"{fraction} leaves {num_val} of {total} samples for validation"
        raise for_cli(ValueError(f"val_data={leaves}; use {keep}"), f"--val {leaves}; give {keep}")
    order = torch.randperm(total, generator=torch.Generator().manual_seed(seed))
    val_idx, train_idx = order[:num_val], order[num_val:]
    if isinstance(source, InMemory):
        return source.subset(train_idx), source.subset(val_idx)
    data = source.data
    assert not isinstance(data, DataLoader), "refused above"
    return (
        dataclasses.replace(source, data=Subset(data, train_idx.tolist())),
        dataclasses.replace(source, data=Subset(data, val_idx.tolist())),
    )


# -- recognising the kinds --------------------------------------------------------------------
def _resolve(data: Any, what: str, need_labels: bool, reading: ImageReading) -> Source:
    if isinstance(data, Normalized):
        source = _resolve(data.data, what, need_labels, reading)
        source.facts = dataclasses.replace(
            source.facts, normalized=True, mean=data.mean, std=data.std
        )
        return source
    if _is_images(data):
        if need_labels and isinstance(data, (str, os.PathLike)):
            raise TypeError(
                f"{what} is the path {str(data)!r}, one image without a label; pass an (images, "
                "labels) pair, or load a dataset by name or folder with "
                f"cnnzoo.data.load_dataset({str(data)!r})"
            )
        if need_labels:
            raise TypeError(f"{what} holds images without labels; pass an (images, labels) pair")
        return InMemory(_images(data, what, reading), None)
    if isinstance(data, (tuple, list)):
        if len(data) == 2 and _is_images(data[0]) and _is_labels(data[1]):
            return InMemory(_images(data[0], what, reading), _labels(data[1]))
        raise TypeError(
            f"{what} as a tuple must be an (images, labels) pair (images a tensor, a NumPy array "
            f"or a list of PIL images or image files); got a {type(data).__name__} of "
            f"{len(data)} items"
        )
    if isinstance(data, (Dataset, DataLoader)):
        return _in_memory_view(data, what) or streamed(data, reading)
    raise TypeError(
        f"{what} must be an (images, labels) pair of tensors, a torch Dataset yielding "
        f"(image, label), or a DataLoader (or, for images alone: a tensor, a NumPy array, PIL "
        f"images or image files); got {type(data).__name__}"
    )


def streamed(data: Dataset | DataLoader, reading: ImageReading | None = None) -> Streamed:
    """A ``Dataset`` or ``DataLoader`` as a :class:`Streamed` source, with what its items say.

    A dataset gets a ``collate_fn`` that reads PIL images, files and arrays (``reading``); a
    user's ``DataLoader`` keeps its own.
    """
    if isinstance(data, DataLoader):
        return Streamed(data, _facts(data.dataset))
    pixels = _folder_pixels(data)
    if pixels is not None:  # uint8 items: the default collate stacks them, the rule scales them
        folder = _inner(data)
        facts = DataFacts(mean=folder.mean, std=folder.std, label_names=tuple(folder.classes))
        return Streamed(pixels, facts)
    return Streamed(data, _facts(data), ItemCollate(reading or ImageReading()))


def _inner(dataset: Any) -> Any:
    while isinstance(dataset, Subset):
        dataset = dataset.dataset
    return dataset


def _folder_pixels(dataset: Any) -> Dataset | None:
    """A streamed folder (or a Subset of one) as its ``uint8`` pixel items, else None."""
    if isinstance(dataset, StreamedImageFolder):
        return dataset.pixel_items()
    if isinstance(dataset, Subset):
        inner = _folder_pixels(dataset.dataset)
        return None if inner is None else Subset(inner, dataset.indices)
    return None


def _is_images(obj: Any) -> bool:
    """Images without labels: a tensor, an array, one PIL image or file, or a list of them."""
    if isinstance(obj, (torch.Tensor, np.ndarray)) or is_image(obj):
        return True
    return isinstance(obj, (tuple, list)) and len(obj) > 0 and all(is_image(i) for i in obj)


def _is_labels(obj: Any) -> bool:
    if isinstance(obj, (torch.Tensor, np.ndarray)):
        return True
    return isinstance(obj, (tuple, list)) and not any(is_image(i) for i in obj)


def _images(obj: Any, what: str, reading: ImageReading) -> torch.Tensor:
    if isinstance(obj, torch.Tensor):
        return _as_nchw(obj, what)
    if isinstance(obj, np.ndarray):
        return array_to_images(obj, reading.channels, what)
    items = [obj] if is_image(obj) else list(obj)
    return read_images(items, reading, what)


def _labels(obj: Any) -> torch.Tensor:
    if isinstance(obj, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(obj))
    return torch.as_tensor(obj)


def _in_memory_view(dataset: Dataset | DataLoader, what: str) -> InMemory | None:
    if isinstance(dataset, DataLoader):
        return None
    if isinstance(dataset, ImageTensorDataset):
        facts = DataFacts(
            mean=dataset.mean, std=dataset.std, label_names=tuple(dataset.classes) or None
        )
        return InMemory(dataset.images, dataset.labels, facts)
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


def _facts(dataset: Any) -> DataFacts:
    """What a dataset's items say about their values: normalised already, and class names."""
    while isinstance(dataset, Subset):
        dataset = dataset.dataset
    names = _label_names(dataset)
    if isinstance(dataset, ImageTensorDataset | StreamedImageFolder):  # normalised float items
        return DataFacts(True, dataset.mean, dataset.std, names)
    normalize = _normalize_step(getattr(dataset, "transform", None))
    if normalize is not None:
        return DataFacts(True, *normalize, names)
    return DataFacts(label_names=names)


def _label_names(dataset: Any) -> tuple[str, ...] | None:
    classes = getattr(dataset, "classes", None)
    if isinstance(classes, (list, tuple)) and classes and all(isinstance(c, str) for c in classes):
        return tuple(classes)
    return None


def _normalize_step(transform: Any) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    """The statistics of a torchvision ``Normalize`` (v1 or v2) in ``transform``, if any."""
    from torchvision import transforms
    from torchvision.transforms import v2

    found = None
    for step in _steps(transform):
        if isinstance(step, (transforms.Normalize, v2.Normalize)):
            found = _floats(step.mean), _floats(step.std)
    return found


def _steps(transform: Any) -> list[Any]:
    inner = getattr(transform, "transforms", None)
    if isinstance(inner, (list, tuple)):
        return [step for t in inner for step in _steps(t)]
    return [] if transform is None else [transform]


def _floats(values: Any) -> tuple[float, ...]:
    if isinstance(values, torch.Tensor):
        values = values.flatten().tolist()
    elif not isinstance(values, (list, tuple)):
        values = [values]
    return tuple(float(v) for v in values)  # 0.3 stays 0.3, not float32's 0.30000001


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
    mean, std = normalisation  # the items' statistics: what the uint8 pixels are to get
    facts = DataFacts(mean=mean, std=std, label_names=_label_names(dataset))
    return InMemory(images.unsqueeze(1), torch.as_tensor(dataset.targets), facts)


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
            mean, std = _floats(step.mean), _floats(step.std)
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
    if source.images.dtype == torch.uint16 and not source.facts.normalized:
        brightest = int(source.images.to(torch.int32).amax())  # no uint16 amax
        if brightest <= 255:  # 8-bit values in a 16-bit array: read as 0-65535, all but black
            raise ValueError(
                f"{what}: the images are uint16 (read as 0-65535) but their largest value is "
                f"{brightest}: 8-bit pixels stored as 16-bit, which would all look black. Pass "
                "them as images.to(torch.uint8) (or numpy's .astype('uint8')); true 16-bit "
                "images use the range up to 65535"
            )
        # Few torch ops take uint16 (not even indexing on every device): scale it once, here.
        source.images = source.images.float().div(65535)
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
