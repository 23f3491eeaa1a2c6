"""A seeded sample of data as the model's inputs, for tools that run the model elsewhere.

The exporter calibrates and checks an exported model outside PyTorch, so it needs the very
tensors ``predict`` would feed: the same reading of files and PIL images, the same size check,
the same normalisation rule, whatever form the data has.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Subset

from .evaluation import _eval_batches, _source_and_rule
from .feed import InMemory

__all__ = ["sample_inputs"]


def sample_inputs(
    model: nn.Module, data: Any, limit: int, *, seed: int = 0, batch_size: int = 256
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Up to ``limit`` samples of ``data``, drawn at random (seeded), as ``model``'s inputs.

    Args:
        model: The model whose data configuration says how the data becomes its input.
        data: Anything :func:`cnnzoo.predict` takes, labelled or not.
        limit: How many samples at most (a ``DataLoader`` gives its first ones, in its order).
        seed: Seed of the draw.
        batch_size: Samples per batch while reading.

    Returns:
        ``(inputs, labels)``: float32 model inputs ``(n, C, H, W)`` on the CPU, normalised as
        ``predict`` normalises them, and their labels (``None`` for data without labels).
    """
    source, rule = _source_and_rule(model, data, need_labels=False)
    # A DataLoader cannot be subsampled: it gives its first ``limit`` samples, in its order.
    order = torch.randperm(len(source), generator=torch.Generator().manual_seed(seed))[:limit]
    if isinstance(source, InMemory):
        source = source.subset(order)
    elif not isinstance(source.data, DataLoader):
        source = dataclasses.replace(source, data=Subset(source.data, order.tolist()))
    batches = _eval_batches(model, source, rule, torch.device("cpu"), batch_size, 0)
    inputs: list[torch.Tensor] = []
    labels: list[torch.Tensor] = []
    count = 0
    for x, y in batches.epoch(0):
        inputs.append(x.float())
        if y is not None:
            labels.append(y)
        count += len(x)
        if count >= limit:
            break
    images = torch.cat(inputs)[:limit]
    targets = torch.cat(labels)[:limit] if labels and len(labels) == len(inputs) else None
    return images, targets
