"""ImageFolder trees loaded into memory.

The layout is the transfer-learning tutorial's: ``<dir>/train/<class>/<image>`` and
``<dir>/test/<class>/<image>``. A tree of class folders with no split folders,
``<dir>/<class>/<image>``, is one set of images: its ``train`` split, and no ``test`` split
(returning the same images as a "test" split would report accuracy on training images).

Labels keep one meaning across splits: the classes are the ``train/`` folder's, and ``test/``
images are labelled by their folder's *name* among them, so ``train/{cat,dog}`` with
``test/{dog}`` labels the test dogs 1, as in training.
"""

from __future__ import annotations

from pathlib import Path

import torch

from .config import channel_stats
from .images import read_image, resize_pixels
from .tensors import ImageTensorDataset

__all__ = ["load_image_folder", "split_folder"]

_SPLITS = ("train", "test")


def load_image_folder(
    directory: Path, split: str, *, image_size: int | tuple[int, int] | None = None
) -> ImageTensorDataset:
    """Load an ImageFolder split as ``uint8`` tensors.

    Args:
        directory: The tree's root: holds ``train/`` and ``test/``, or class folders directly
            (then it has a ``train`` split only).
        split: "train" or "test".
        image_size: Resize every image to this ``(H, W)`` (or square side); required when the
            images differ in size.

    Returns:
        The images (RGB, 3 channels) with the class names of the ``train`` folder, and mean and
        std measured on the ``train`` split (so train and test are normalised alike). Every
        image mode is converted as :func:`cnnzoo.data.images.read_image` does: grey, palette
        and alpha images to RGB, 16-bit greys scaled (not clipped) to 8 bits.

    Raises:
        FileNotFoundError: The split has no folder (see :func:`split_folder`), or no images.
        ValueError: Images of different sizes and no ``image_size``; a ``test`` class that
            ``train`` lacks; an image that cannot be read (corrupted, truncated, not an image,
            a decompression bomb), named.
    """
    if image_size is not None:
        checked_image_size(image_size)  # before any image is read ("28" is not 2x8)
    folder = split_folder(directory, split)
    train_folder = split_folder(directory, "train")
    classes = _class_names(train_folder)
    images, labels = _read_split(folder, image_size, classes)
    if folder != train_folder:
        train_images, _ = _read_split(train_folder, image_size, classes)
    else:
        train_images = images
    mean, std = channel_stats(train_images)
    return ImageTensorDataset(images, labels, classes, mean, std)


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
    from torchvision.datasets.folder import find_classes

    try:
        classes, _ = find_classes(str(folder))
    except FileNotFoundError:
        raise FileNotFoundError(
            f"no class folders under {folder}: an ImageFolder tree holds one subfolder per class "
            f"(e.g. {folder}/cat/001.jpg)"
        ) from None
    return classes


def _read_split(
    folder: Path, image_size: int | tuple[int, int] | None, classes: list[str]
) -> tuple[torch.Tensor, torch.Tensor]:
    """The images under ``folder`` and their labels, as indices into ``classes`` by name."""
    from torchvision.datasets import ImageFolder

    try:
        folder_dataset = ImageFolder(str(folder))  # scans the tree only: read_image reads
    except FileNotFoundError as error:
        raise FileNotFoundError(
            f"no images found under {folder}: an ImageFolder tree holds one subfolder per class "
            f"(e.g. {folder}/cat/001.jpg). {error}"
        ) from None
    unknown = sorted(set(folder_dataset.classes) - set(classes))
    if unknown:
        raise ValueError(
            f"{folder} has class folder(s) {', '.join(map(repr, unknown))} that the train split "
            f"lacks: a model trained on {classes} has no label for them (and labels matched by "
            "position would change meaning between splits). Remove those folders, or add them "
            "to train/ as well"
        )
    tensors = []
    target = None if image_size is None else checked_image_size(image_size)
    for path, _ in folder_dataset.samples:
        image = read_image(path, channels=3)  # not the folder's loader: it clips 16-bit images
        tensors.append(resize_pixels(image, target) if target is not None else image)
    sizes = {tuple(t.shape[1:]) for t in tensors}
    if len(sizes) > 1:
        raise ValueError(
            f"the images under {folder} have {len(sizes)} different sizes (e.g. "
            f"{sorted(sizes)[:3]}); pass image_size=(H, W) to resize them all"
        )
    index = {name: i for i, name in enumerate(classes)}
    by_name = [index[folder_dataset.classes[t]] for t in folder_dataset.targets]
    return torch.stack(tensors), torch.tensor(by_name, dtype=torch.long)


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
            f"got {size!r}" + (f"; pass image_size={int(size)}" if str(size).isdigit() else "")
        )
    return list(pair)
