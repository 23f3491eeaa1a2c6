"""``ImageTensorDataset``: a labelled image set held in memory as one ``uint8`` tensor.

It is what :func:`cnnzoo.data.load_dataset` returns for named datasets and ImageFolder trees
alike, so it lives apart from both loaders.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch.utils.data import Dataset

__all__ = ["ImageTensorDataset", "as_grey"]


class ImageTensorDataset(Dataset):
    """A labelled image dataset held in memory as one ``uint8`` tensor.

    Indexing yields ``(image, label)`` with ``image`` a float tensor ``(C, H, W)`` normalised
    with ``mean`` and ``std`` (what ``ToTensor`` then ``Normalize`` would give), so the object
    drops into a ``DataLoader``. ``cnnzoo.fit`` instead reads ``images`` and ``labels`` directly
    and normalises whole batches on the device.

    Attributes:
        images: ``uint8`` tensor ``(N, C, H, W)``.
        labels: ``int64`` tensor ``(N,)``.
        classes: Class names, index order.
        mean: Per-channel mean used for normalisation, in [0, 1] units.
        std: Per-channel standard deviation used for normalisation, in [0, 1] units.
        placement: For an image folder, where its images live and why
            (:class:`~cnnzoo.data.budget.Placement`); None otherwise.
    """

    placement: Any = None

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        classes: Sequence[str],
        mean: Sequence[float],
        std: Sequence[float],
    ) -> None:
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise ValueError(
                f"images must be a uint8 tensor (N, C, H, W), got {images.dtype} "
                f"{tuple(images.shape)}"
            )
        if labels.dim() != 1 or len(labels) != len(images):
            raise ValueError(
                f"labels must be a 1-D tensor with one label per image; got shape "
                f"{tuple(labels.shape)} for {len(images)} images"
            )
        channels = images.shape[1]
        if len(mean) != channels or len(std) != channels:
            raise ValueError(f"mean and std need one value per channel ({channels})")
        self.images = images
        self.labels = labels.long()
        self.classes = list(classes)
        self.mean = tuple(float(m) for m in mean)
        self.std = tuple(float(s) for s in std)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        mean = torch.tensor(self.mean).view(-1, 1, 1)
        std = torch.tensor(self.std).view(-1, 1, 1)
        image = (self.images[index].float() / 255 - mean) / std
        return image, int(self.labels[index])

    def __repr__(self) -> str:
        c, h, w = self.images.shape[1:]
        where = "" if self.placement is None else f"; {self.placement}"
        return (
            f"{type(self).__name__}({len(self)} images {c}x{h}x{w}, "
            f"{len(self.classes)} classes{where})"
        )

    @property
    def channels(self) -> int:
        """Channels per image."""
        return int(self.images.shape[1])


def as_grey(data: ImageTensorDataset) -> ImageTensorDataset:
    """The same RGB images as one grey channel, as PIL's ``convert("L")`` makes them.

    PIL's ITU-R 601-2 luma in its own integer arithmetic, so a folder read as RGB and turned
    grey here gives the pixels ``cnnzoo.predict`` reads from the same files for a grey model
    (a grey PNG, read as RGB, comes back unchanged). ``mean`` and ``std`` are measured anew.

    Args:
        data: Images with 3 channels.

    Returns:
        A dataset of the same images, labels and classes with 1 channel.

    Raises:
        ValueError: ``data`` has no 3 channels.
    """
    if data.channels != 3:
        raise ValueError(f"only RGB images can be made grey; these have {data.channels} channels")
    red, green, blue = data.images.to(torch.int32).unbind(1)
    luma = (red * 19595 + green * 38470 + blue * 7471 + 0x8000) >> 16
    images = luma.to(torch.uint8).unsqueeze(1)
    pixels = images.to(torch.float64) / 255
    grey = ImageTensorDataset(
        images, data.labels, data.classes, [pixels.mean().item()], [pixels.std().item() or 1.0]
    )
    grey.placement = data.placement
    return grey
