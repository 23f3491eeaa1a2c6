"""Fashion-MNIST at a model's input size: what the reproduction table and the shipped weights share.

A net with a fixed input size (``cifar_cnn`` at 32x32, ``alexnet_original`` at 227, the
``network_bn`` nets at 224) is trained on the 28x28 images resized the way ``predict`` and
``cnnzoo.transforms(model)`` resize an image file for it, so weights trained here give their
stated accuracy on a user's own 28x28 files. A net that takes any size from a minimum larger
than 28 gets the images padded with black (the background colour) instead, pixels unchanged.
The normalisation statistics are measured again on the adapted training images.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cnnzoo.data import ImageTensorDataset, channel_stats
from cnnzoo.data.images import resize_pixels

__all__ = ["adapt", "adapted_splits", "input_side"]


def input_side(model: nn.Module) -> int:
    """The image side ``model`` is trained at: its fixed size, else 28 or its smallest side."""
    if model.fixed_input_size:
        return int(model.input_size[-1])
    return max(28, *model.min_input_size)


def adapt(images: torch.Tensor, model: nn.Module) -> torch.Tensor:
    """``uint8`` images ``(N, C, H, W)`` at ``model``'s side: resized as predict does, or padded."""
    side = input_side(model)
    if images.shape[-1] == side:
        return images
    if not model.fixed_input_size:
        before = (side - images.shape[-1]) // 2
        after = side - images.shape[-1] - before
        return F.pad(images, (before, after, before, after))
    config = model.pretrained_cfg
    return resize_pixels(images, (side, side), config.interpolation, config.crop_pct)


def adapted_splits(
    train: ImageTensorDataset, test: ImageTensorDataset, model: nn.Module
) -> tuple[ImageTensorDataset, ImageTensorDataset]:
    """Train and test at ``model``'s side, normalised with the adapted training statistics."""
    train_images = adapt(train.images, model)
    if train_images is train.images:
        return train, test
    mean, std = channel_stats(train_images)
    return (
        ImageTensorDataset(train_images, train.labels, train.classes, mean, std),
        ImageTensorDataset(adapt(test.images, model), test.labels, test.classes, mean, std),
    )
