"""The data of a comparison: read once, split once, put on the device once, for every model.

``fit`` moves in-memory data to the device itself; given tensors that already live there it
moves nothing, so every model of a comparison trains on the same device copy. The validation
share is held out here, once, with a seeded shuffle (not the tail), so every model sees the same
split. Data that cannot live in memory (a plain ``Dataset``, a ``DataLoader``) is passed to each
``fit`` as it is: it is read again for every model.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sized
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, Subset

from ..data import ImageTensorDataset, StreamedImageFolder, load_dataset
from .shape import DataShape

__all__ = ["Prepared", "count_samples", "prepare"]


@dataclass
class Prepared:
    """The comparison's data, ready for ``fit`` and ``evaluate``.

    Attributes:
        train: Training data (on the device when it is in memory).
        val: The held-out validation data, or None.
        test: Test data, or None (then the models are scored on ``val``).
        shape: Channels, size and classes every model must take.
        description: What the data is, as plain JSON: its name, sizes and a fingerprint of
            its contents (a resumed comparison must see the same data).
        classes: Class names, when the data has them.
    """

    train: Any
    val: Any
    test: Any
    shape: DataShape
    description: dict[str, Any] = field(default_factory=dict)
    classes: list[str] | None = None

    @property
    def scored(self) -> Any:
        """The data the leaderboard scores on: the test data, else the validation split."""
        return self.test if self.test is not None else self.val


def prepare(
    train_data: Any,
    test_data: Any,
    val_data: Any,
    *,
    seed: int,
    device: torch.device,
    num_classes: int | None = None,
    name: str | None = None,
    verbose: int = 1,
) -> Prepared:
    """Read, split and place the data of a comparison.

    Args:
        train_data: A dataset name or an image folder (``cnnzoo.data.load_dataset``; its test
            split is used when ``test_data`` is None and it has one), an
            ``ImageTensorDataset``, an ``(images, labels)`` pair of tensors, or any other
            ``Dataset`` that ``fit`` takes.
        test_data: The same forms, or None.
        val_data: A share in (0, 1) of ``train_data`` to hold out, data in the same forms, or
            None for no validation.
        seed: Seed of the split.
        device: Where in-memory data is put.
        num_classes: The number of classes, for data that does not say (a plain ``Dataset``
            without ``classes``).
        name: What to call the data in the tables (default: the dataset name or folder).
        verbose: Show the decoding of an image folder that takes more than a few seconds
            (0: nothing).

    Returns:
        The :class:`Prepared` data.

    Raises:
        ValueError: Unusable data, a bad split share, or no data to score the models on.
    """
    if isinstance(train_data, str | os.PathLike):
        name = name or str(train_data)
        if test_data is None:
            test_data = _test_split(train_data, verbose)
        train_data = load_dataset(train_data, "train", verbose=verbose)
    elif isinstance(test_data, str | os.PathLike):
        test_data = load_dataset(test_data, "test", verbose=verbose)
    if isinstance(val_data, str | os.PathLike):
        raise ValueError("val_data is a share of the training data (0.1) or data, not a name")
    if isinstance(train_data, DataLoader):
        raise ValueError(
            "compare needs train_data it can split and reuse: pass the DataLoader's dataset"
        )

    train = _on_device(train_data, device)
    if isinstance(val_data, float):
        train, val = _split(train, val_data, seed)
    elif val_data is None:
        val = None
    else:
        val = _on_device(val_data, device)
    test = None if test_data is None else _on_device(test_data, device)
    if test is None and val is None:
        raise ValueError(
            "compare has no data to score the models on: pass test_data, or hold out "
            "validation data (val_data=0.1)"
        )
    others = [(d, what) for d, what in ((val, "validation"), (test, "test")) if d is not None]
    shape = _shape(train, others, num_classes)
    description = {
        "name": None if name is None else str(name),
        "image_shape": [shape.channels, shape.height, shape.width],
        "num_classes": shape.num_classes,
        "train_samples": count_samples(train),
        "val_samples": None if val is None else count_samples(val),
        "test_samples": None if test is None else count_samples(test),
        "fingerprint": _fingerprint([train, val, test]),
    }
    return Prepared(train, val, test, shape, description, _classes(train))


def _test_split(name: str | os.PathLike, verbose: int) -> Any:
    """The test split of a named dataset or folder; None for a folder without one."""
    try:
        return load_dataset(name, "test", verbose=verbose)
    except FileNotFoundError:
        if os.path.isdir(name):  # a tree of class folders: one set of images, no test split
            return None
        raise


def _on_device(data: Any, device: torch.device) -> Any:
    """In-memory data moved to ``device`` (no copy when it is there); anything else as is."""
    if isinstance(data, ImageTensorDataset):
        return ImageTensorDataset(
            data.images.to(device), data.labels.to(device), data.classes, data.mean, data.std
        )
    if isinstance(data, tuple | list) and len(data) == 2:
        images, labels = data
        if isinstance(images, torch.Tensor) and isinstance(labels, torch.Tensor):
            return images.to(device), labels.to(device)
    if isinstance(data, tuple | list | Dataset):
        return data  # fit reads it (arrays, PIL images, files, streamed datasets)
    raise TypeError(
        "compare takes a dataset name or folder, an ImageTensorDataset, an (images, labels) pair "
        f"or a Dataset; got {type(data).__name__}"
    )


def _split(data: Any, fraction: float, seed: int) -> tuple[Any, Any]:
    """Hold out a seeded, shuffled ``fraction`` of ``data`` (the rule ``fit`` applies too)."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"val_data as a share must be in (0, 1), got {fraction}")
    total = count_samples(data)
    num_val = round(total * fraction)
    if num_val < 1 or num_val >= total:
        raise ValueError(
            f"val_data={fraction} leaves {num_val} of {total} samples for validation; use a "
            "share that keeps at least one sample on each side"
        )
    order = torch.randperm(total, generator=torch.Generator().manual_seed(seed))
    val_idx, train_idx = order[:num_val], order[num_val:]
    return _take(data, train_idx), _take(data, val_idx)


def _take(data: Any, indices: torch.Tensor) -> Any:
    if isinstance(data, ImageTensorDataset):
        where = indices.to(data.images.device)
        return ImageTensorDataset(
            data.images[where], data.labels[where], data.classes, data.mean, data.std
        )
    if isinstance(data, tuple | list) and isinstance(data[0], torch.Tensor):
        where = indices.to(data[0].device)
        return data[0][where], data[1][where.to(data[1].device)]
    if isinstance(data, tuple | list):
        return [data[0][i] for i in indices.tolist()], [data[1][i] for i in indices.tolist()]
    return Subset(data, indices.tolist())


def count_samples(data: Any) -> int:
    """How many samples ``data`` holds: the labels of an ``(images, labels)`` pair, not 2."""
    return len(data[1]) if isinstance(data, tuple | list) else len(data)


def _images_and_labels(data: Any) -> tuple[Any, Any]:
    if isinstance(data, ImageTensorDataset):
        return data.images, data.labels
    if isinstance(data, tuple | list):
        return data[0], data[1]
    image, _ = data[0]
    return torch.as_tensor(image)[None], None


def _shape(train: Any, others: list[tuple[Any, str]], num_classes: int | None) -> DataShape:
    images, labels = _images_and_labels(train)
    if not isinstance(images, torch.Tensor) or images.dim() not in (3, 4):
        raise ValueError(
            "compare needs images as tensors (N, C, H, W) to choose each model's input; load "
            "files or PIL images with cnnzoo.data.load_dataset(folder) first"
        )
    if images.dim() == 3:  # (N, H, W) grey images
        images = images.unsqueeze(1)
    channels, height, width = (int(s) for s in images.shape[1:])
    for part, what in others:
        _check_like_train(part, what, (channels, height, width))
    if num_classes is None:
        classes = _classes(train)
        if classes:
            num_classes = len(classes)
        elif labels is not None:
            found = [labels] + [_images_and_labels(o)[1] for o, _ in others]
            num_classes = 1 + max(int(torch.as_tensor(y).max()) for y in found if y is not None)
        else:
            raise ValueError("compare cannot tell the number of classes: pass num_classes=")
    return DataShape(channels, height, width, int(num_classes))


def _check_like_train(part: Any, what: str, shape: tuple[int, int, int]) -> None:
    """Refuse, before any model trains, images no model built for the training images takes.

    Every model is built for the training images' channels and size: test (or validation)
    images of another shape would fail each model only after it trained.
    """
    images, _ = _images_and_labels(part)
    if not isinstance(images, torch.Tensor) or images.dim() not in (3, 4):
        return  # a Dataset read by fit: its first sample was not an image tensor
    found = tuple(int(s) for s in (images.unsqueeze(1) if images.dim() == 3 else images).shape[1:])
    if found != shape:
        raise ValueError(
            f"the {what} images are {'x'.join(map(str, found))} (channels x height x width) but "
            f"the training images {'x'.join(map(str, shape))}: every model is built for the "
            f"training images and could not take them. Give {what} images of the same shape "
            "(cnnzoo.data.load_dataset(folder, image_size=...) resizes a folder)"
        )


def _classes(data: Any) -> list[str] | None:
    while isinstance(data, Subset):
        data = data.dataset
    classes = getattr(data, "classes", None)
    return list(classes) if classes else None


def _streamed_files(part: Any) -> bytes | None:
    """What identifies a streamed folder (or a Subset of one) on disk, else None."""
    indices: list[int] | None = None
    while isinstance(part, Subset):
        picked = [int(i) for i in part.indices]
        indices = picked if indices is None else [picked[i] for i in indices]
        part = part.dataset
    if not isinstance(part, StreamedImageFolder):
        return None
    entries = []
    for path in part.samples:
        try:
            info = os.stat(path)
            entries.append(f"{path}\0{info.st_size}\0{info.st_mtime_ns}")
        except OSError:
            entries.append(f"{path}\0missing")
    described = [entries, part.labels.tolist(), part.mean, part.std, part.image_size, indices]
    return repr(described).encode()


def _fingerprint(parts: list[Any]) -> str:
    """A digest of the images and labels.

    For a folder streamed from disk: of its files (path, size, modification time), labels,
    statistics and the indices taken from it, so a file changed between two runs of one
    comparison is noticed without decoding every image again. For other data not in memory:
    of its type and size only.
    """
    digest = hashlib.blake2b(digest_size=16)
    for part in parts:
        if part is None:
            digest.update(b"none")
            continue
        streamed = _streamed_files(part)
        if streamed is not None:
            digest.update(streamed)
            continue
        images, labels = _images_and_labels(part)
        if isinstance(part, Dataset) and not isinstance(part, ImageTensorDataset):
            size = len(part) if isinstance(part, Sized) else "unsized"
            digest.update(f"{type(part).__name__}:{size}".encode())
            continue
        for tensor in (images, labels):
            if isinstance(tensor, torch.Tensor):
                flat = tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8)
                digest.update(str((tuple(tensor.shape), str(tensor.dtype))).encode())
                digest.update(flat.numpy().tobytes())
            else:
                digest.update(repr(type(tensor)).encode())
    return digest.hexdigest()
