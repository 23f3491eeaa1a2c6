"""Image folders read from disk batch by batch, for folders whose decoded images do not fit.

:class:`StreamedImageFolder` holds the file names and labels only; each image is decoded (by
:func:`~cnnzoo.data.images.read_image`, the one reader) and resized when it is read, in
``DataLoader`` workers when ``fit`` trains on it. :func:`decode_chunks` is the one parallel pass
over a folder's files that both placements share: the in-memory path stacks its chunks, the
streamed path measures the statistics on them, and each checks every image once.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import DataLoader, Dataset

from .._advice import for_cli
from .budget import Placement
from .config import STATS_CHUNK
from .images import read_image, resize_pixels

__all__ = [
    "FolderImageError",
    "PixelItems",
    "SizesDifferError",
    "StreamedImageFolder",
    "decode_chunks",
    "read_pixels",
]

# Below this many images the pass decodes in this process: starting workers costs more.
_PARALLEL_FROM = 256


class FolderImageError(ValueError):
    """An image of a folder cannot be read: the message names the file and the fix.

    Raised in a ``DataLoader`` worker, torch re-raises it in the training process with the
    worker's traceback prepended; the message is cut back to the original sentence, so the
    user (and the CLI's one-line error) sees the file and the fix, not a stack trace.
    """

    def __init__(self, message: str) -> None:
        marker = f"{type(self).__name__}: "
        if message.startswith("Caught ") and marker in message:
            message = message.rsplit(marker, 1)[1].strip()
        super().__init__(message)


class SizesDifferError(FolderImageError):
    """The images of a folder differ in size and no size was given: the fix, in both words.

    Its command-line wording is made from its message wherever it is built, so it survives
    the re-raise in the training process of an error raised in a ``DataLoader`` worker.
    """

    FIX = "pass image_size=(H, W) to resize them all"
    CLI_FIX = "pass --image-size N to resize them all (to N x N)"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        for_cli(self, str(self).replace(self.FIX, self.CLI_FIX))


def read_pixels(path: str, size: Sequence[int] | None) -> torch.Tensor:
    """One image of a folder as RGB ``uint8`` ``(3, H, W)``, resized to ``size`` when given.

    Raises:
        FolderImageError: The file is gone, or is not a readable image (named, with the fix).
    """
    try:
        pixels = read_image(path, channels=3)  # not torchvision's loader: it clips 16-bit images
    except FileNotFoundError as error:
        raise FolderImageError(
            f"{error}: the folder changed after it was loaded; load it again"
        ) from None
    except ValueError as error:
        raise FolderImageError(str(error)) from None
    return resize_pixels(pixels, size) if size is not None else pixels


class _Decode(Dataset):
    """The pass's items: ``(pixels, index)``."""

    def __init__(self, paths: Sequence[str], size: Sequence[int] | None) -> None:
        self.paths, self.size = paths, size

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return read_pixels(self.paths[index], self.size), index


class _StackSameSize:
    """Stack a chunk, refusing images of another size than the first (named)."""

    def __init__(self, paths: Sequence[str], folder: str) -> None:
        self.paths, self.folder = paths, folder

    def __call__(self, items: list[tuple[torch.Tensor, int]]) -> tuple[torch.Tensor, int]:
        first = items[0][0].shape
        for pixels, index in items:
            if pixels.shape != first:
                path = self.paths[items[0][1]]
                raise _sizes_differ(self.folder, path, first, self.paths[index], pixels.shape)
        return torch.stack([pixels for pixels, _ in items]), items[0][1]


def decode_chunks(
    paths: Sequence[str],
    size: Sequence[int] | None,
    folder: str,
    *,
    num_workers: int | None = None,
) -> Iterator[torch.Tensor]:
    """Every image of ``paths``, decoded in order, as ``uint8`` chunks of ``STATS_CHUNK``.

    Decoded in ``DataLoader`` workers (one per core, at most 8) for folders of a few hundred
    images or more. Every image is read, so every check of the reader runs on each.

    Args:
        paths: The image files.
        size: Resize each image to this ``(H, W)``; None: all must have one size.
        folder: The folder's name, for messages.
        num_workers: Decoding processes; None: as above.

    Yields:
        ``(n, 3, H, W)`` ``uint8`` tensors, ``n <= STATS_CHUNK``, in ``paths`` order.

    Raises:
        FolderImageError: An unreadable image, or images of different sizes without ``size``.
    """
    if num_workers is None:
        num_workers = min(8, _cores()) if len(paths) >= _PARALLEL_FROM else 0
    loader = DataLoader(
        _Decode(paths, size),
        batch_size=STATS_CHUNK,
        num_workers=num_workers,
        collate_fn=_StackSameSize(paths, folder),
    )
    first = None
    try:
        for chunk, start in loader:
            if first is None:
                first = chunk.shape[1:]
            elif chunk.shape[1:] != first:
                raise _sizes_differ(folder, paths[0], first, paths[start], chunk.shape[1:])
            yield chunk
    finally:
        if num_workers > 0:
            _release_freed_memory()


def _release_freed_memory() -> None:
    """Give the memory the pass freed back to the system.

    Receiving the workers' chunks leaves freed memory in glibc's per-thread arenas, which it
    keeps: measured, each pass over 600 small images left this process 45 MB larger, for good.
    ``malloc_trim`` returns it (glibc only; elsewhere nothing to do).
    """
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):  # musl, or no libc.so.6: nothing kept
        ctypes.CDLL("libc.so.6").malloc_trim(0)


class StreamedImageFolder(Dataset):
    """An ImageFolder split read from disk as it is used: memory does not grow with the folder.

    What :func:`cnnzoo.data.load_dataset` returns for a folder streamed from disk; it stands
    where an :class:`~cnnzoo.data.ImageTensorDataset` would, with the same class names, labels,
    statistics and items, and ``fit``, ``evaluate`` and ``predict`` give the same answers for
    both. Indexing yields ``(image, label)`` with ``image`` a normalised float tensor
    ``(3, H, W)``, so the object also drops into a ``DataLoader``; ``fit`` instead reads the
    ``uint8`` pixels (:meth:`pixels`) in ``DataLoader`` workers and normalises whole batches on
    the device, as it does for tensors in memory.

    Attributes:
        samples: The image files, in label order then file name order (torchvision's).
        labels: ``int64`` tensor ``(N,)``.
        classes: Class names, index order (the ``train`` folder's).
        mean: Per-channel mean of the ``train`` split, in [0, 1] units.
        std: Per-channel standard deviation of the ``train`` split.
        image_size: ``(H, W)`` of every image as read.
        placement: Why the images are streamed (see :mod:`cnnzoo.data.budget`).
    """

    channels = 3

    def __init__(
        self,
        samples: Sequence[str],
        labels: torch.Tensor,
        classes: Sequence[str],
        mean: Sequence[float],
        std: Sequence[float],
        image_size: Sequence[int],
        *,
        resize: bool,
        placement: Placement | None = None,
    ) -> None:
        if len(samples) != len(labels):
            raise ValueError(f"{len(samples)} files but {len(labels)} labels")
        self.samples = [os.fspath(p) for p in samples]
        self.labels = labels.long()
        self.classes = list(classes)
        self.mean = tuple(float(m) for m in mean)
        self.std = tuple(float(s) for s in std)
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.placement = placement
        self._resize = resize

    def __len__(self) -> int:
        return len(self.samples)

    def pixels(self, index: int) -> torch.Tensor:
        """Image ``index`` as ``uint8`` ``(3, H, W)`` pixels, decoded and resized now.

        Raises:
            FolderImageError: The file is unreadable now, or no longer has the folder's size.
        """
        path = self.samples[index]
        pixels = read_pixels(path, self.image_size if self._resize else None)
        if tuple(pixels.shape[1:]) != self.image_size:
            height, width = self.image_size
            raise FolderImageError(
                f"{path} is {pixels.shape[1]}x{pixels.shape[2]}, but the folder's images are "
                f"{height}x{width}: the folder changed after it was loaded; load it again (with "
                "image_size=(H, W) to resize every image)"
            )
        return pixels

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        mean = torch.tensor(self.mean).view(-1, 1, 1)
        std = torch.tensor(self.std).view(-1, 1, 1)
        image = (self.pixels(index).float() / 255 - mean) / std
        return image, int(self.labels[index])

    def pixel_items(self) -> PixelItems:
        """The same images as ``(uint8 pixels, label)`` items: what ``fit`` batches."""
        return PixelItems(self)

    def __repr__(self) -> str:
        height, width = self.image_size
        where = f"; {self.placement}" if self.placement is not None else ""
        return (
            f"{type(self).__name__}({len(self)} images 3x{height}x{width}, "
            f"{len(self.classes)} classes{where})"
        )


class PixelItems(Dataset):
    """A :class:`StreamedImageFolder`'s items as ``uint8`` pixels: ``(pixels, label)``.

    Attributes:
        folder: The folder.
        targets: Its labels (so a trainer can check their range before reading any image).
    """

    def __init__(self, folder: StreamedImageFolder) -> None:
        self.folder = folder
        self.targets = folder.labels

    def __len__(self) -> int:
        return len(self.folder)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.folder.pixels(index), int(self.targets[index])


def _sizes_differ(
    folder: str, first: str, first_shape: Sequence[int], other: str, other_shape: Sequence[int]
) -> FolderImageError:
    return SizesDifferError(
        f"the images under {folder} have different sizes ({first} is "
        f"{first_shape[-2]}x{first_shape[-1]}, {other} {other_shape[-2]}x{other_shape[-1]}); "
        f"{SizesDifferError.FIX}"
    )


def _cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1
