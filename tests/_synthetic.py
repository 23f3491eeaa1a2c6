"""Synthetic data and tiny networks shared by the training tests.

The task is linearly separable by construction, so a test that trains on it asserts what the
engine does, not how a chaotic optimisation happens to go on one CPU.
"""

from __future__ import annotations

import torch
from torch import nn

RECIPE_LR = 7e-3  # the recipe_model fixture's rate: no default has it, so finding it proves use


def stripes(n: int = 240, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Three classes: a bright band of rows whose position is the class, on noise.

    Returns float images ``(n, 1, 8, 8)`` with pixels in [0, 1] (as cnnzoo reads float images)
    and int64 labels ``0, 1, 2, 0, ...``.
    """
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 3
    images = torch.rand(n, 1, 8, 8, generator=generator) * 0.4
    for k in range(3):
        images[labels == k, :, 2 * k : 2 * k + 3, :] += 0.6
    return images, labels


def tiny_net(num_classes: int = 3, batch_norm: bool = True, dropout: float = 0.1) -> nn.Module:
    """A four-filter CNN seeded to the same initial weights on every call.

    Without dropout its steps depend on the batches only; without BatchNorm, not on the batch
    statistics either (an ``nn.Identity`` keeps the layer numbering the same).
    """
    torch.manual_seed(0)
    layers = [
        nn.Conv2d(1, 4, 3, padding=1),
        nn.BatchNorm2d(4) if batch_norm else nn.Identity(),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(2),
        nn.Flatten(),
    ]
    if dropout:
        layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers, nn.Linear(16, num_classes))


def stripes_oracle() -> nn.Module:
    """A linear model that classifies :func:`stripes` exactly: the mean of each class's band."""
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 3))
    with torch.no_grad():
        model[1].weight.zero_()
        for k in range(3):
            band = torch.zeros(8, 8)
            band[2 * k : 2 * k + 3, :] = 1.0
            model[1].weight[k] = 4.0 * band.flatten() / band.sum()
        model[1].bias.zero_()
    return model
