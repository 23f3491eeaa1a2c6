"""ImageFolder trees loaded into memory.

The layout is the transfer-learning tutorial's: ``<dir>/<split>/<class>/<image>``, or
``<dir>/<class>/<image>`` when there is no split folder.
"""

from __future__ import annotations

from pathlib import Path

import torch

from .config import channel_stats
from .images import read_image, resize_pixels
from .tensors import ImageTensorDataset

__all__ = ["load_image_folder"]


def load_image_folder(
    directory: Path, split: str, *, image_size: int | tuple[int, int] | None = None
) -> ImageTensorDataset:
    """Load an ImageFolder split as ``uint8`` tensors.

    Args:
        directory: The tree's root: holds ``train/`` and ``test/``, or class folders directly.
        split: "train" or "test"; ignored when ``directory`` has no such subfolder.
        image_size: Resize every image to this ``(H, W)`` (or square side); required when the
            images differ in size.

    Returns:
        The images (RGB, 3 channels) with class names from the folder names, and mean and std
        measured on the ``train`` split (so train and test are normalised alike). Every image
        mode is converted as :func:`cnnzoo.data.images.read_image` does: grey, palette and
        alpha images to RGB, 16-bit greys scaled (not clipped) to 8 bits.

    Raises:
        FileNotFoundError: No images under the split's folder.
        ValueError: Images of different sizes and no ``image_size``.
    """
    images, labels, classes = _read_split(_split_dir(directory, split), image_size)
    if split != "train" and (directory / "train").is_dir():
        train_images, _, _ = _read_split(directory / "train", image_size)
    else:
        train_images = images
    mean, std = channel_stats(train_images)
    return ImageTensorDataset(images, labels, classes, mean, std)


def _split_dir(directory: Path, split: str) -> Path:
    return directory / split if (directory / split).is_dir() else directory


def _read_split(
    folder: Path, image_size: int | tuple[int, int] | None
) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    from torchvision.datasets import ImageFolder

    try:
        folder_dataset = ImageFolder(str(folder))
    except FileNotFoundError as error:
        raise FileNotFoundError(
            f"no images found under {folder}: an ImageFolder tree holds one subfolder per class "
            f"(e.g. {folder}/cat/001.jpg). {error}"
        ) from None
    tensors = []
    for path, _ in folder_dataset.samples:
        image = read_image(path, channels=3)  # not the folder's loader: it clips 16-bit images
        tensors.append(resize_pixels(image, _pair(image_size)) if image_size is not None else image)
    sizes = {tuple(t.shape[1:]) for t in tensors}
    if len(sizes) > 1:
        raise ValueError(
            f"the images under {folder} have {len(sizes)} different sizes (e.g. "
            f"{sorted(sizes)[:3]}); pass image_size=(H, W) to resize them all"
        )
    labels = torch.tensor(folder_dataset.targets, dtype=torch.long)
    return torch.stack(tensors), labels, list(folder_dataset.classes)


def _pair(size: int | tuple[int, int]) -> list[int]:
    return [size, size] if isinstance(size, int) else list(size)
