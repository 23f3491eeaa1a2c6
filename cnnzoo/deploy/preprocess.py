"""``cnnzoo.transforms``: a model's preprocessing as a torchvision ``transforms.v2`` pipeline.

The steps are the ones ``predict`` and ``classify`` apply, in the same code: an image file or a
PIL image is read to ``uint8`` pixels with the model's channels (cnnzoo's reader: 16-bit and
palette images included), resized as the model's data configuration says, scaled to [0, 1]
(``x / 255``) and normalised with its mean and std. So ``transforms(model)(image)`` is bit for
bit the tensor ``predict`` feeds the model for that image.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..data.images import is_image, read_image, resize_pixels
from .contract import complete_config

__all__ = ["transforms"]


class ReadPixels(nn.Module):
    """An image file, a PIL image or a ``uint8`` tensor ``(C, H, W)`` as ``uint8`` pixels.

    Args:
        channels: The model's input channels (grey images become RGB for a colour model).
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = channels

    def forward(self, image: Any) -> torch.Tensor:
        """The pixels ``(C, H, W)``."""
        if isinstance(image, torch.Tensor):
            if image.dtype != torch.uint8 or image.dim() != 3:
                raise ValueError(
                    "transforms take uint8 pixels (C, H, W) as tensors, got "
                    f"{image.dtype} {tuple(image.shape)}; for float images in [0, 1] use "
                    "(image * 255).round().to(torch.uint8)"
                )
            if image.shape[0] != self.channels:
                raise ValueError(
                    f"the image has {image.shape[0]} channel(s), the model takes {self.channels}"
                )
            return image
        if not is_image(image):
            raise TypeError(
                f"transforms take an image file path, a PIL image or a uint8 tensor, got "
                f"{type(image).__name__}"
            )
        return read_image(image, self.channels)

    def extra_repr(self) -> str:
        return f"channels={self.channels}"


class ResizeToModel(nn.Module):
    """Resize pixels to the model's input size, as ``predict`` resizes image files."""

    def __init__(self, size: tuple[int, int], interpolation: str, crop_pct: float | None) -> None:
        super().__init__()
        self.size, self.interpolation, self.crop_pct = size, interpolation, crop_pct

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """The resized pixels (unchanged when they have the size already)."""
        return resize_pixels(pixels, self.size, self.interpolation, self.crop_pct)

    def extra_repr(self) -> str:
        return f"size={self.size}, interpolation={self.interpolation}, crop_pct={self.crop_pct}"


class ScalePixels(nn.Module):
    """``uint8`` pixels to floats in [0, 1] as ``x / 255``.

    cnnzoo's own arithmetic: torchvision's ``ToDtype(scale=True)`` multiplies by ``1 / 255``,
    which differs in the last bit for some pixel values.
    """

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """The scaled pixels."""
        return pixels.to(torch.float32).div(255)


def transforms(model: nn.Module, train: bool = False) -> Any:
    """The model's preprocessing as a ``torchvision.transforms.v2.Compose``.

    Args:
        model: A model with a data configuration (``model.pretrained_cfg`` with input size,
            mean and std: ``fit`` records it, checkpoints carry it).
        train: Add the augmentations ``fit`` offers (``augment=["random_crop", "hflip"]``):
            a random shift of up to an eighth of the side, zero-padded (the mean colour after
            normalisation), and a left-right flip.

    Returns:
        A callable taking an image file path, a PIL image or a ``uint8`` tensor ``(C, H, W)``
        and giving the float32 tensor ``(C, H, W)`` the model takes.

    Raises:
        ExportError: The model has no complete data configuration (a ``ValueError``).

    Example:
        >>> preprocess = cnnzoo.transforms(model)  # doctest: +SKIP
        >>> model.eval()(preprocess("boot.png")[None])  # doctest: +SKIP
    """
    from torchvision.transforms import v2

    config = complete_config(model, "build its transforms from")
    assert config.input_size is not None and config.mean is not None and config.std is not None
    channels, height, width = config.input_size
    steps: list[Any] = [
        ReadPixels(channels),
        ResizeToModel((height, width), config.interpolation, config.crop_pct),
        ScalePixels(),
        v2.Normalize(list(config.mean), list(config.std)),
    ]
    if train:
        steps += [
            v2.RandomCrop((height, width), padding=max(1, height // 8)),
            v2.RandomHorizontalFlip(),
        ]
    return v2.Compose(steps)
