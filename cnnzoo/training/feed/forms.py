"""Images that are not tensors yet: NumPy arrays, PIL images and image files, as ``(N, C, H, W)``.

What the model expects decides how they are read (:class:`ImageReading`): its channel count
picks the channel axis of an array and the mode a PIL image is converted to; its input size is
what image files of another size are resized to. Values are never changed here: ``uint8``
stays ``uint8`` and floats stay floats, for :mod:`.pixels` to scale and normalise like any
other batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ...data.images import is_image, read_image, resize_pixels

__all__ = ["ImageReading", "ItemCollate", "array_to_images", "is_image", "read_images"]


@dataclass(frozen=True)
class ImageReading:
    """How to turn images that are not tensors into the model's input layout.

    Attributes:
        channels: The model's input channels (``None``: unknown; grey stays grey, colour is RGB).
        size: The model's input ``(H, W)``; image files and PIL images of another size are
            resized to it (``None``: never resized, so they must all have one size).
        interpolation: Resize method (see :class:`cnnzoo.data.DataConfig`).
        crop_pct: ImageNet-style resize-then-centre-crop share, or ``None``.
    """

    channels: int | None = None
    size: tuple[int, int] | None = None
    interpolation: str = "bilinear"
    crop_pct: float | None = None

    def image(self, item: Any) -> torch.Tensor:
        """One PIL image or image file as ``uint8 (C, H, W)`` at the model's size."""
        pixels = read_image(item, self.channels)
        if self.size is None:
            return pixels
        return resize_pixels(pixels, self.size, self.interpolation, self.crop_pct)


def read_images(items: Sequence[Any], reading: ImageReading, what: str) -> torch.Tensor:
    """PIL images or image files as one ``uint8`` batch ``(N, C, H, W)``."""
    images = [reading.image(item) for item in items]
    sizes = sorted({tuple(image.shape) for image in images})
    if len(sizes) > 1:
        raise ValueError(
            f"{what}: the images have {len(sizes)} different shapes ({sizes[:3]}) and the model "
            "has no input size to resize them to; resize them to one size first, or give the "
            "model a data configuration (model.pretrained_cfg with input_size)"
        )
    return torch.stack(images)


def array_to_images(array: np.ndarray, channels: int | None, what: str) -> torch.Tensor:
    """A NumPy array of images as a tensor ``(N, C, H, W)``, values untouched.

    Accepted: a batch ``(N, H, W, C)`` or ``(N, C, H, W)``, one image ``(H, W, C)``,
    ``(C, H, W)`` or ``(H, W)``, or grey images ``(N, H, W)``. The channel axis is the one as
    long as the model's channel count; without one, a last axis of 1, 3 or 4 is the channels
    (images from PIL, OpenCV and matplotlib are ``HWC``).
    """
    if array.dtype == np.bool_ or np.iscomplexobj(array) or array.dtype.kind not in "uif":
        raise ValueError(f"{what}: a NumPy array of {array.dtype} is not images")
    layout = _layout(array.shape, channels)
    if layout is None:
        raise ValueError(
            f"{what}: a NumPy array of shape {array.shape} is not images; give a batch (N, H, W, "
            "C) or (N, C, H, W), one image (H, W, C), (C, H, W) or (H, W), or grey images "
            "(N, H, W)"
        )
    tensor = torch.from_numpy(np.ascontiguousarray(array))
    order = {
        "HW": lambda t: t[None, None],
        "NHW": lambda t: t[:, None],
        "HWC": lambda t: t.permute(2, 0, 1)[None],
        "CHW": lambda t: t[None],
        "NHWC": lambda t: t.permute(0, 3, 1, 2),
        "NCHW": lambda t: t,
    }[layout]
    return order(tensor).contiguous()


def _layout(shape: tuple[int, ...], channels: int | None) -> str | None:
    if len(shape) == 2:
        return "HW"
    colour = (3, 4) if channels is None else (channels,)
    if len(shape) == 3:
        if shape[2] in colour and (channels != 1 or shape[2] == 1):
            return "HWC"
        if channels is not None and channels > 1 and shape[0] == channels:
            return "CHW"
        return "NHW"
    if len(shape) == 4:
        if channels is not None:
            if shape[1] == channels:
                return "NCHW"
            return "NHWC" if shape[3] == channels else "NCHW"  # NCHW: the model names the problem
        return "NHWC" if shape[3] in (1, 3, 4) and shape[1] not in (1, 3, 4) else "NCHW"
    return None


class ItemCollate:
    """``collate_fn`` for a ``Dataset`` whose images are PIL images, files or NumPy arrays.

    Tensors pass untouched; a batch mixing ``uint8`` and float images is brought to floats in
    [0, 1] (``uint8 / 255``, as :mod:`.pixels` would), so it can be stacked.
    """

    def __init__(self, reading: ImageReading) -> None:
        self.reading = reading

    def image(self, item: Any) -> torch.Tensor:
        """One sample's image as a ``(C, H, W)`` tensor."""
        if isinstance(item, torch.Tensor):
            return item
        if isinstance(item, np.ndarray):
            return array_to_images(item, self.reading.channels, "a dataset item")[0]
        if is_image(item):
            return self.reading.image(item)
        raise TypeError(
            "each sample's image must be a tensor, a NumPy array, a PIL image or an image file "
            f"path; got {type(item).__name__}"
        )

    def __call__(self, samples: list[Any]) -> Any:
        """Stack the samples' images; collate the rest (labels) as ``default_collate`` does."""
        from torch.utils.data import default_collate

        firsts = [s[0] if isinstance(s, (tuple, list)) else s for s in samples]
        images = [self.image(item) for item in firsts]
        if len({image.dtype for image in images}) > 1:
            images = [_unit_float(image) for image in images]
        batch = torch.stack(images)
        if not isinstance(samples[0], (tuple, list)):
            return batch
        rest = [list(s[1:]) for s in samples]
        return [batch, *default_collate(rest)] if rest[0] else [batch]


def _unit_float(image: torch.Tensor) -> torch.Tensor:
    if image.dtype == torch.uint8:
        return image.float().div(255)
    if image.dtype == torch.uint16:
        return image.float().div(65535)
    return image
