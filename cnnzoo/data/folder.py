"""ImageFolder trees, loaded into memory or streamed from disk.

The layout is the transfer-learning tutorial's: ``<dir>/train/<class>/<image>`` and
``<dir>/test/<class>/<image>``. A tree of class folders with no split folders,
``<dir>/<class>/<image>``, is one set of images: its ``train`` split, and no ``test`` split
(returning the same images as a "test" split would report accuracy on training images).

Labels keep one meaning across splits: the classes are the ``train/`` folder's, and ``test/``
images are labelled by their folder's *name* among them, so ``train/{cat,dog}`` with
``test/{dog}`` labels the test dogs 1, as in training.

Where the decoded images live (one tensor in memory, or read from disk per batch) is chosen by
:mod:`.budget`; either way every image is decoded once at load, by one parallel pass
(:func:`~.streamed.decode_chunks`), so an unreadable file is named before training starts, and
the ``train`` split's mean and std are measured on the same chunks in the same order, so both
placements get bit-identical statistics.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path

import torch

from .._progress import counted
from .budget import InMemoryChoice, Placement, log, place
from .config import channel_stats
from .images import image_size_of
from .scan import class_folders, scan_images
from .streamed import SizesDifferError, StreamedImageFolder, decode_chunks
from .tensors import ImageTensorDataset

__all__ = ["allocate_images", "load_image_folder", "split_folder"]

_SPLITS = ("train", "test")
Stats = tuple[tuple[float, ...], tuple[float, ...]]
# The train split's statistics per (folder, size, files and their sizes and times), so a test
# split loaded after its train split (or a second load) does not decode the train split again.
_TRAIN_STATS: dict[tuple[str, tuple[int, ...] | None, str], Stats] = {}


def load_image_folder(
    directory: Path,
    split: str,
    *,
    image_size: int | tuple[int, int] | None = None,
    in_memory: InMemoryChoice = "auto",
    memory_budget: int | float | str | None = None,
    device: str | torch.device | None = None,
    verbose: int = 1,
) -> ImageTensorDataset | StreamedImageFolder:
    """Load an ImageFolder split: as ``uint8`` tensors in memory, or streamed from disk.

    Args:
        directory: The tree's root: holds ``train/`` and ``test/``, or class folders directly
            (then it has a ``train`` split only).
        split: "train" or "test".
        image_size: Resize every image to this ``(H, W)`` (or square side); required when the
            images differ in size.
        in_memory: True: one ``uint8`` tensor (:class:`~cnnzoo.data.ImageTensorDataset`);
            False: read from disk as used (:class:`~cnnzoo.data.StreamedImageFolder`);
            "auto": in memory when the decoded images fit the budget (:mod:`.budget`).
        memory_budget: The budget of "auto" in bytes (or "2GB"); None: ``CNNZOO_MEMORY_BUDGET``,
            else half the memory free to the process (and to the CUDA device).
        device: Where ``fit`` will put in-memory images, for the budget; None: CUDA when
            available.
        verbose: 0 silent; 1 shows the decoding of a folder that takes more than a few seconds
            (a bar on a terminal or in a notebook, else a line every few seconds).

    Returns:
        The images (RGB, 3 channels) with the class names of the ``train`` folder, and mean and
        std measured on the ``train`` split (so train and test are normalised alike). Every
        image mode is converted as :func:`cnnzoo.data.images.read_image` does: grey, palette
        and alpha images to RGB, 16-bit greys scaled (not clipped) to 8 bits. ``placement``
        says where the images live and why.

    Raises:
        FileNotFoundError: The split has no folder (see :func:`split_folder`), or no images.
        ValueError: Images of different sizes and no ``image_size``; a ``test`` class that
            ``train`` lacks; an image that cannot be read (corrupted, truncated, not an image,
            a decompression bomb, a FIFO), named; a budget that is not a size.
        MemoryError: ``in_memory=True`` and the images cannot be allocated ("auto" streams).
    """
    if image_size is not None:
        checked_image_size(image_size)  # before any image is read ("28" is not 2x8)
    folder = split_folder(directory, split)
    train_folder = split_folder(directory, "train")
    classes = _class_names(train_folder)
    paths, labels = _list_split(folder, classes)
    size = None if image_size is None else checked_image_size(image_size)
    height, width = size or image_size_of(paths[0])  # the header only: nothing decoded yet
    placement = place(
        in_memory, len(paths) * 3 * height * width, len(paths), budget=memory_budget, device=device
    )
    is_train = folder == train_folder
    images = None
    if placement.in_memory:  # allocated before decoding: a refusal costs no work
        images, placement = allocate_images(len(paths), (height, width), placement, in_memory)
    chunks = counted(
        decode_chunks(paths, size, str(folder)),
        f"decoding the images in {folder}",
        len(paths),
        unit="image",
        verbose=verbose,
        size=len,
    )
    if images is not None:
        images = _stack(chunks, images, paths, folder)
        if is_train:
            mean, std = _remember(train_folder, size, paths, channel_stats(images))
        else:
            mean, std = train_stats(train_folder, classes, size)
        dataset = ImageTensorDataset(images, labels, classes, mean, std)
        dataset.placement = placement
        return dataset
    if is_train:
        mean, std = _remember(train_folder, size, paths, chunk_stats(chunks))
    else:
        for _ in chunks:  # every test image decoded once: unreadable files are named now
            pass
        mean, std = train_stats(train_folder, classes, size)
    return StreamedImageFolder(
        paths, labels, classes, mean, std, (height, width), resize=size is not None,
        placement=placement,
    )  # fmt: skip


def train_stats(train_folder: Path, classes: list[str], size: list[int] | None) -> Stats:
    """The ``train`` split's mean and std, streamed (remembered for the files as they are)."""
    paths, _ = _list_split(train_folder, classes)
    key = _key(train_folder, size, paths)
    if key not in _TRAIN_STATS:
        _TRAIN_STATS[key] = chunk_stats(decode_chunks(paths, size, str(train_folder)))
    return _TRAIN_STATS[key]


def chunk_stats(chunks: Iterable[torch.Tensor]) -> Stats:
    """:func:`~cnnzoo.data.channel_stats` over chunks: the same sums in the same order.

    ``channel_stats`` sums ``STATS_CHUNK`` images at a time in float64; fed those same chunks,
    this gives bit-identical statistics without holding the images.
    """
    total = squares = torch.zeros(0, dtype=torch.float64)
    count = 0
    for chunk in chunks:
        if count == 0:
            total = torch.zeros(chunk.shape[1], dtype=torch.float64)
            squares = torch.zeros_like(total)
        x = chunk.double().div_(255.0)  # in place: one float64 copy of the chunk, same values
        total += x.sum(dim=(0, 2, 3))
        squares += x.square_().sum(dim=(0, 2, 3))
        count += chunk.numel() // chunk.shape[1]
    if count == 0:
        raise ValueError("no images to measure the statistics of")
    mean = total / count
    variance = (squares - count * mean.square()) / max(count - 1, 1)
    std = variance.clamp_min(0).sqrt().clamp_min(1e-6)
    return tuple(mean.tolist()), tuple(std.tolist())


def _remember(folder: Path, size: list[int] | None, paths: list[str], stats: Stats) -> Stats:
    _TRAIN_STATS[_key(folder, size, paths)] = stats
    return stats


def _key(
    folder: Path, size: list[int] | None, paths: list[str]
) -> tuple[str, tuple[int, ...] | None, str]:
    """The folder as its files are now: any file added, removed or rewritten changes it."""
    digest = hashlib.sha256()
    for path in paths:
        stat = os.stat(path)
        digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return str(Path(folder).resolve()), None if size is None else tuple(size), digest.hexdigest()


def allocate_images(
    count: int, shape: tuple[int, int], placement: Placement, in_memory: InMemoryChoice
) -> tuple[torch.Tensor | None, Placement]:
    """The ``uint8`` tensor of ``count`` RGB images, or None and a streaming placement.

    The budget may still be too generous (another process took the memory meanwhile, or a
    limit the budget cannot see): when the allocation fails, an "auto" folder is streamed from
    disk instead, which never holds the whole folder, and the placement says why.

    Raises:
        MemoryError: ``in_memory=True`` and the images cannot be allocated (the message says
            how many bytes, and to stream them).
    """
    needed = count * 3 * shape[0] * shape[1]
    try:
        return torch.empty((count, 3, *shape), dtype=torch.uint8), placement
    except (RuntimeError, MemoryError) as error:  # torch's allocator raises RuntimeError
        if "alloc" not in str(error).lower() and not isinstance(error, MemoryError):
            raise
        if in_memory is True:
            raise MemoryError(
                f"in_memory=True: the {count} decoded images need {needed:,} bytes, which "
                "could not be allocated; pass in_memory='auto' or False (--in-memory no) to "
                "stream them from disk"
            ) from None
    reason = (
        f"streamed from disk: {count} images need {needed:,} bytes decoded, which could not be "
        f"allocated in memory (though within the budget: {placement.reason})"
    )
    log.warning("image folder %s", reason)
    return None, Placement(False, reason)


def _stack(
    chunks: Iterable[torch.Tensor], images: torch.Tensor, paths: list[str], folder: Path
) -> torch.Tensor:
    """The chunks copied into ``images``, allocated once (no second copy)."""
    shape = tuple(images.shape[2:])
    start = 0
    for chunk in chunks:
        if tuple(chunk.shape[2:]) != shape:
            raise SizesDifferError(
                f"the images under {folder} have different sizes ({paths[0]} is "
                f"{shape[0]}x{shape[1]}, {paths[start]} {chunk.shape[2]}x{chunk.shape[3]}); "
                f"{SizesDifferError.FIX}"
            )
        images[start : start + len(chunk)] = chunk
        start += len(chunk)
    return images


def split_folder(directory: Path, split: str) -> Path:
    """The folder that holds ``split`` of an ImageFolder tree, checked before reading any image.

    Args:
        directory: The tree's root.
        split: "train" or "test".

    Returns:
        ``directory / split``, or ``directory`` itself for the ``train`` split of a tree of
        class folders without split folders.

    Raises:
        FileNotFoundError: The tree has split folders but not this one, or has none and
            ``split`` is "test"; the message says how to lay the tree out.
    """
    directory = Path(directory)
    layout = (
        f"An ImageFolder tree holds {directory / 'train'}/<class>/<image> and "
        f"{directory / 'test'}/<class>/<image>"
    )
    present = [name for name in _SPLITS if (directory / name).is_dir()]
    if split in present:
        return directory / split
    if present:
        raise FileNotFoundError(
            f"{directory} has {present[0]}/ but no {split}/ folder, so it has no {split} split. "
            f"{layout}; add {split}/ with one folder of images per class"
        )
    if split == "train":
        return directory  # class folders directly: one set of images, for training
    raise FileNotFoundError(
        f"{directory} has class folders but no train/ and test/ folders, so it has no test "
        "split: its images are the training images, and accuracy measured on them says "
        f"nothing. {layout}, or train on it and hold out a share for validation "
        "(fit(..., val_data=0.2); cnnzoo train --val 0.2)"
    )


def _class_names(folder: Path) -> list[str]:
    return class_folders(folder)


def _list_split(folder: Path, classes: list[str]) -> tuple[list[str], torch.Tensor]:
    """The image files under ``folder`` and their labels, as indices into ``classes`` by name."""
    scan = scan_images(folder)  # each folder once; what it skips is logged
    unknown = sorted(set(scan.classes) - set(classes))
    if unknown:
        raise ValueError(
            f"{folder} has class folder(s) {', '.join(map(repr, unknown))} that the train split "
            f"lacks: a model trained on {classes} has no label for them (and labels matched by "
            "position would change meaning between splits). Remove those folders, or add them "
            "to train/ as well"
        )
    index = {name: i for i, name in enumerate(classes)}
    by_name = [index[scan.classes[t]] for t in scan.targets]
    return scan.paths, torch.tensor(by_name, dtype=torch.long)


def checked_image_size(size: int | tuple[int, int]) -> list[int]:
    """``image_size`` as ``[H, W]``, checked: a side or a pair of integers in [1, 8192].

    Raises:
        ValueError: Anything else (``"28"`` would otherwise resize to 2x8).
    """
    pair = [size, size] if isinstance(size, int) else size
    if (
        isinstance(pair, (str, bytes))
        or not isinstance(pair, list | tuple)
        or len(pair) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 8192 for v in pair)
    ):
        raise ValueError(
            f"image_size must be an integer side or an (H, W) pair of integers in [1, 8192], "
            f"got {size!r}" + (f"; pass image_size={size}" if str(size).isdigit() else "")
        )
    return list(pair)
