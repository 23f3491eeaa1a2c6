"""Models with a data contract, and data for them, shared by the deployment tests."""

from __future__ import annotations

import torch
from torch import nn

import cnnzoo

MEAN, STD = (0.286,), (0.353,)


def lenet(**options) -> nn.Module:
    """LeNet-5 as ``fit`` leaves it: its data contract (size, mean, std, class names) recorded."""
    torch.manual_seed(0)
    model = cnnzoo.get_model("lenet5", **options).eval()
    names = tuple(f"class {i}" for i in range(10))
    channels = options.get("in_channels", 1)
    model.pretrained_cfg = model.pretrained_cfg.replace(
        mean=MEAN * channels, std=STD * channels, label_names=names
    )
    return model


def pixels(n: int, size: tuple[int, ...] = (1, 28, 28), seed: int = 0) -> torch.Tensor:
    """``n`` random ``uint8`` images."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, *size), dtype=torch.uint8, generator=generator)


def own_labels(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """The labels the float32 model gives ``images``: its accuracy on them is 1 by construction."""
    return cnnzoo.predict(model, images).argmax(1)
