"""Image files and PIL images as pixel tensors: the one reader of folders, ``predict`` and the CLI.

Every image becomes a ``uint8`` tensor ``(C, H, W)`` whatever its mode: palette, alpha, CMYK
and bilevel images are converted by Pillow; 16-bit and 32-bit integer greys (``I;16``, ``I``,
as 16-bit PNGs open) and float greys (``F``) are *scaled* to 8 bits, never clipped (Pillow's own
``convert`` clips them to 0 and 255). A folder and ``predict`` read the same file to the same
pixels, so a model answers the same for both.
"""

from __future__ import annotations

import contextlib
import errno
import math
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .._files import kind_of

__all__ = ["image_size_of", "is_image", "read_image", "resize_pixels"]

# Pillow modes holding integer greys wider than 8 bits (16-bit PNGs open as one of these).
_WIDE_GREY_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")
_GREY_MODES = ("1", "L", "LA", "La", "F", *_WIDE_GREY_MODES)
_MODE_FOR_CHANNELS = {1: "L", 3: "RGB", 4: "RGBA"}


def is_image(obj: Any) -> bool:
    """True for a PIL image or a path (``str``/``os.PathLike``): what :func:`read_image` reads."""
    return isinstance(obj, (str, os.PathLike)) or _is_pil(obj)


def read_image(image: Any, channels: int | None = None) -> torch.Tensor:
    """Read an image file or a PIL image as ``uint8`` pixels ``(C, H, W)``.

    Args:
        image: A path, or a ``PIL.Image.Image``.
        channels: 1 (grey), 3 (RGB) or 4 (RGBA); ``None`` keeps grey images grey and makes
            everything else RGB.

    Returns:
        The pixels.

    Raises:
        FileNotFoundError: No file at the path.
        ValueError: A file that is not a readable image (corrupted, truncated, a decompression
            bomb, not a regular file: named), a channel count images cannot have, or integer or
            float values outside what an image holds.
    """
    if channels is not None and channels not in _MODE_FOR_CHANNELS:
        raise ValueError(
            f"images are read as 1 (grey), 3 (RGB) or 4 (RGBA) channels; the model takes "
            f"{channels}. Pass tensors (N, {channels}, H, W) instead"
        )
    if _is_pil(image):
        return _to_pixels(image, channels, "the PIL image")
    with _opened(image) as (opened, path):
        opened.load()
        return _to_pixels(opened, channels, str(path))


def image_size_of(image: str | os.PathLike) -> tuple[int, int]:
    """The ``(H, W)`` of an image file, read from its header without decoding the pixels.

    The same checks as :func:`read_image` that need no decoding run here: a missing file, a
    file that is not regular (a FIFO), not an image, or a decompression bomb. A file whose
    pixel data is truncated or corrupted passes; only decoding finds it.

    Raises:
        FileNotFoundError: No file at the path.
        ValueError: As :func:`read_image`, named.
    """
    with _opened(image) as (opened, _):
        width, height = opened.size
        return int(height), int(width)


@contextlib.contextmanager
def _opened(image: str | os.PathLike) -> Iterator[tuple[Any, Path]]:
    """Open an image file, turning every way it can fail into a message naming the file."""
    path = Path(image)
    if not path.exists():
        raise FileNotFoundError(f"no image file at {path}")
    if not path.is_file():  # a FIFO named x.png would block the read forever
        raise ValueError(
            f"{path} is {kind_of(path)}, not an image file; pass image files (or remove it)"
        )
    from PIL import Image

    try:
        with Image.open(path) as opened:
            yield opened, path
    except Image.DecompressionBombError as error:
        raise ValueError(
            f"{path} was refused as a possible decompression bomb ({error}). If you trust the "
            "file, raise PIL.Image.MAX_IMAGE_PIXELS before loading; otherwise remove it"
        ) from None
    except PermissionError:  # the file may be fine: it is the permissions that refuse it
        raise PermissionError(
            errno.EACCES, "Permission denied (fix the permissions of the image file)", str(path)
        ) from None
    except (OSError, SyntaxError) as error:  # unidentified, truncated, corrupted
        raise ValueError(
            f"{path} is not an image file that can be read ({type(error).__name__}: {error}): "
            "it is corrupted, truncated or not an image; remove or replace it"
        ) from None


RESIZE_CHUNK = 2000  # images resized at a time in a batch: the float copies stay small


def resize_pixels(
    pixels: torch.Tensor,
    size: Sequence[int],
    interpolation: str = "bilinear",
    crop_pct: float | None = None,
) -> torch.Tensor:
    """Bring ``(..., C, H, W)`` pixels to ``size`` ``(H, W)``; images of that size are kept as is.

    A batch of more than :data:`RESIZE_CHUNK` images is resized a chunk at a time, so the
    float copies the resize makes stay small whatever the dataset's size.

    Args:
        pixels: The image(s), ``uint8`` or float.
        size: The target ``(H, W)``.
        interpolation: "bilinear", "bicubic", "nearest" or "nearest-exact" (antialiased when
            shrinking).
        crop_pct: Resize to ``size / crop_pct`` first, then centre-crop ``size`` (ImageNet's
            256-then-224 evaluation); ``None`` resizes straight to ``size``.

    Returns:
        The resized pixels, same dtype.
    """
    from torchvision.transforms.v2 import InterpolationMode
    from torchvision.transforms.v2 import functional as F

    height, width = int(size[0]), int(size[1])
    if tuple(pixels.shape[-2:]) == (height, width):
        return pixels
    if pixels.dim() == 4 and len(pixels) > RESIZE_CHUNK:  # a whole dataset: bounded float work
        out = pixels.new_empty((len(pixels), pixels.shape[1], height, width))
        for start in range(0, len(pixels), RESIZE_CHUNK):
            part = pixels[start : start + RESIZE_CHUNK]
            out[start : start + RESIZE_CHUNK] = resize_pixels(part, size, interpolation, crop_pct)
        return out
    mode = InterpolationMode(interpolation)
    if crop_pct is None:
        return F.resize(pixels, [height, width], interpolation=mode, antialias=True)
    # timm's floor(size / crop_pct); the epsilon keeps 224 / (224 / 232) at 232, not 231.
    scaled = [math.floor(height / crop_pct + 1e-6), math.floor(width / crop_pct + 1e-6)]
    if height == width:  # the shorter side, keeping the aspect ratio (torchvision's and timm's)
        scaled = scaled[:1]
    resized = F.resize(pixels, scaled, interpolation=mode, antialias=True)
    return F.center_crop(resized, [height, width])


# -- modes ----------------------------------------------------------------------------------------
def _is_pil(obj: Any) -> bool:
    module = type(obj).__module__
    if not module.startswith("PIL."):
        return False
    from PIL import Image

    return isinstance(obj, Image.Image)


def _to_pixels(image: Any, channels: int | None, name: str) -> torch.Tensor:
    from PIL import Image

    if image.mode in _WIDE_GREY_MODES or image.mode == "F":
        image = Image.fromarray(_eight_bit_grey(np.asarray(image), image.mode, name))  # mode L
    if channels is None:
        channels = 1 if image.mode in _GREY_MODES else 3
    mode = _MODE_FOR_CHANNELS[channels]
    if image.mode != mode:
        image = image.convert(mode)
    array = np.asarray(image, dtype=np.uint8)
    if array.ndim == 2:
        array = array[:, :, None]
    return torch.from_numpy(array.copy()).permute(2, 0, 1).contiguous()


def _eight_bit_grey(array: np.ndarray, mode: str, name: str) -> np.ndarray:
    """Scale 16-bit integer or [0, 1] float greys to 0-255, rounding to the nearest level."""
    if mode == "F":
        low, high = float(array.min()), float(array.max())
        if low < 0.0 or high > 1.0:
            raise ValueError(
                f"{name} is a float image (mode F) with values from {low:.4g} to {high:.4g}; "
                "cnnzoo reads float images as brightness in [0, 1]. Rescale it first"
            )
        return np.rint(array.astype(np.float64) * 255).astype(np.uint8)
    wide = array.astype(np.int64)
    low, high = int(wide.min()), int(wide.max())
    if low < 0 or high > 65535:
        raise ValueError(
            f"{name} is a 32-bit integer image (mode {mode}) with values from {low} to {high}; "
            "cnnzoo reads integer images of up to 16 bits (0-65535). Rescale it first"
        )
    return ((wide * 255 + 32767) // 65535).astype(np.uint8)  # round(v * 255 / 65535)
