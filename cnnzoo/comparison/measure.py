"""What a trained model costs: MACs per image, inference throughput and latency, step cost.

MACs are counted by torch's own ``torch.utils.flop_counter.FlopCounterMode`` on one image (its
FLOPs count a multiply-add as two, so MACs are half of them): convolutions and matrix products,
not the elementwise work of activations, norms and pooling, which is how papers count them.
Timings are medians of repeated runs after a warm-up, synchronised on accelerators, under the
precision the model was trained with.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from ..training import StopTraining
from ..training.precision import autocast
from .shape import DataShape

__all__ = ["StepTimer", "count_macs", "inference_speed", "median_seconds"]

# Inference throughput is measured at this batch (fewer on the CPU, where one batch of the
# largest nets takes seconds).
LARGE_BATCH = {"cuda": 512, "cpu": 64}
# Each timing repeats up to this many times, but stops after this many seconds (at least 3
# runs), after one warm-up run: the leaderboard's measuring must cost little beside training.
REPEATS = 10
MAX_SECONDS = 1.0


def count_macs(model: nn.Module, shape: DataShape) -> int:
    """Multiply-accumulates of one forward pass of one image, in eval mode.

    Args:
        model: The model (on any device, meta included).
        shape: The images' channels and size.

    Returns:
        ``FlopCounterMode``'s total FLOPs divided by 2.
    """
    device, dtype = _where(model)
    x = torch.zeros(1, shape.channels, shape.height, shape.width, device=device, dtype=dtype)
    was_training = model.training
    model.eval()
    counter = FlopCounterMode(display=False)
    try:
        with torch.no_grad(), counter:
            model(x)
    finally:
        model.train(was_training)
    return int(counter.get_total_flops()) // 2


def median_seconds(
    work: Callable[[], Any], device: torch.device, *, repeats: int = REPEATS, warmup: int = 1
) -> float:
    """The median wall time of ``work()`` over up to ``repeats`` runs (at least 3).

    Runs stop early once :data:`MAX_SECONDS` have passed, so the largest models on a CPU are
    timed in seconds, not minutes.
    """
    for _ in range(warmup):
        work()
    _sync(device)
    times: list[float] = []
    spent = 0.0
    while len(times) < repeats and (len(times) < 3 or spent < MAX_SECONDS):
        started = time.perf_counter()
        work()
        _sync(device)
        times.append(time.perf_counter() - started)
        spent += times[-1]
    return statistics.median(times)


def inference_speed(
    model: nn.Module, shape: DataShape, dtype: torch.dtype | None
) -> tuple[float, float]:
    """Images per second at a large batch, and the latency of one image in milliseconds.

    Args:
        model: The trained model, on its device.
        shape: The images' channels and size.
        dtype: The autocast dtype it was trained with (None for fp32).

    Returns:
        ``(images_per_second, latency_ms)``, both from median times.
    """
    device, weights = _where(model)
    batch = LARGE_BATCH.get(device.type, LARGE_BATCH["cpu"])
    size = (shape.channels, shape.height, shape.width)
    large = torch.randn(batch, *size, device=device).to(weights)
    one = torch.randn(1, *size, device=device).to(weights)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode(), autocast(device, dtype):
            large_seconds = median_seconds(lambda: model(large), device)
            one_seconds = median_seconds(lambda: model(one), device, repeats=3 * REPEATS)
    finally:
        model.train(was_training)
    return batch / large_seconds, one_seconds * 1000


class StepTimer:
    """A ``fit`` callback timing training steps, then stopping the run.

    ``fit`` reads the loss back after every step for a callback with ``on_batch_end``, so the
    time between two calls is one whole step, device work included.

    Args:
        warmup: Steps run before timing starts (allocations, autotuning, a compile).
        steps: Steps timed.
    """

    def __init__(self, warmup: int = 3, steps: int = 10) -> None:
        self.warmup, self.steps = warmup, steps
        self.times: list[float] = []
        self._count = 0
        self._last: float | None = None

    def on_batch_end(self, step: int, logs: dict[str, float]) -> None:
        """Record the time since the last step; stop once enough steps are timed."""
        now = time.perf_counter()
        self._count += 1
        if self._last is not None and self._count > self.warmup:
            self.times.append(now - self._last)
        self._last = now
        if len(self.times) >= self.steps:
            raise StopTraining

    @property
    def seconds_per_step(self) -> float:
        """The median step time.

        Raises:
            ValueError: No step was timed (an epoch shorter than the warm-up).
        """
        if not self.times:
            raise ValueError("no training step was timed: the data has too few batches")
        return statistics.median(self.times)


def _where(model: nn.Module) -> tuple[torch.device, torch.dtype]:
    for tensor in model.parameters():
        return tensor.device, (tensor.dtype if tensor.is_floating_point() else torch.float32)
    return torch.device("cpu"), torch.float32


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()
