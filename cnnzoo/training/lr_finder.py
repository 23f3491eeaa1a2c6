"""``lr_find``: the learning-rate range test, as fastai's ``lr_find`` and Lightning's ``Tuner`` do.

Leslie Smith's range test ("Cyclical Learning Rates for Training Neural Networks", 2017): train
a copy of the model for a few steps while the learning rate grows exponentially from
``start_lr`` to ``end_lr``, record the loss, smooth it (an exponential moving average with bias
correction, as fastai), and stop once it diverges (more than 4 times the best smoothed loss, the
threshold of fastai and Lightning). A good peak rate lies where the loss falls fastest.

The test trains a deep copy of the model: the model passed in keeps its weights, buffers, mode
and device, and the global random state is restored afterwards.
"""

from __future__ import annotations

import copy
import math
import os
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from .._progress import Counter
from ..devices import resolve_device
from .budget import choose
from .data_start import initialise_from_data
from .evaluation import check_label_range, infer_num_classes
from .feed import make_batches, resolve
from .figures import pyplot, save_figure
from .losses import CrossEntropy, LossFn, as_float, check_loss, training_forward
from .optimizers import OptimizerArg, make_optimizer
from .precision import autocast, resolve_precision
from .recipes import model_recipe

__all__ = ["LRFinderResult", "lr_find"]

# fastai's and Lightning's defaults: smoothing of the loss, and the divergence threshold.
_SMOOTHING = 0.98
_DIVERGENCE = 4.0
# Lightning's suggestion skips the first 10 points (noisy) and the last one (diverging).
_SKIP_BEGIN, _SKIP_END = 10, 1
_MIN_POINTS = 5


@dataclass(frozen=True)
class LRFinderResult:
    """The curve of a learning-rate range test and the rates it suggests.

    Attributes:
        lrs: The learning rate of each step.
        losses: The smoothed (bias-corrected moving average) loss after each step.
        raw_losses: The loss of each step's batch.
        suggestion: The suggested peak rate: the rate where the smoothed loss falls fastest
            (its steepest descent against log(lr), as Lightning's ``suggestion()``), the first
            10 and the last point left out when the curve is long enough.
        min_loss_lr: The rate of the smallest smoothed loss; fastai's older rule of thumb
            takes a tenth of it (``min_loss_lr / 10``) when the curve is too noisy to trust
            ``suggestion``.
        diverged: True when the test stopped early because the loss diverged.
        batch_size: The batch size the curve was measured at (None: a ``DataLoader``'s
            sampler, whose batches cnnzoo does not size); the rate suits that batch size.
    """

    lrs: list[float]
    losses: list[float]
    raw_losses: list[float]
    suggestion: float
    min_loss_lr: float
    diverged: bool
    batch_size: int | None = None

    def plot(self, path: str | os.PathLike, *, title: str | None = None) -> None:
        """Write a PNG of the smoothed loss against the learning rate (log scale), marked.

        Needs matplotlib (``pip install 'cnnzoo[plot]'``), imported only here.

        Args:
            path: File to write, e.g. ``"lr_find.png"``.
            title: Figure title.
        """
        plt = pyplot()
        figure, axis = plt.subplots(figsize=(6, 4))
        axis.plot(self.lrs, self.losses, "-", label="smoothed loss")
        index = self.lrs.index(self.suggestion)
        axis.plot(
            [self.suggestion],
            [self.losses[index]],
            "o",
            color="tab:red",
            label=f"suggestion {self.suggestion:.2e}",
        )
        axis.set_xscale("log")
        axis.set_xlabel("learning rate")
        axis.set_ylabel("loss")
        axis.grid(alpha=0.3, which="both")
        axis.legend()
        if title:
            axis.set_title(title)
        save_figure(figure, path)

    def __repr__(self) -> str:
        return (
            f"LRFinderResult({len(self.lrs)} steps, suggestion={self.suggestion:.3g}, "
            f"min_loss_lr={self.min_loss_lr:.3g}, diverged={self.diverged})"
        )


def lr_find(
    model: nn.Module,
    data: Any,
    *,
    start_lr: float = 1e-7,
    end_lr: float = 10.0,
    num_steps: int = 100,
    batch_size: int | None = None,
    optimizer: OptimizerArg = "adamw",
    weight_decay: float | None = None,
    loss_fn: LossFn | None = None,
    label_smoothing: float = 0.0,
    device: str | torch.device = "auto",
    precision: str = "auto",
    seed: int = 0,
    num_workers: int | None = None,
    verbose: int = 1,
) -> LRFinderResult:
    """Run the learning-rate range test on a copy of ``model`` and suggest a peak rate.

    Args:
        model: The classifier; it is copied, and left exactly as it was (weights, buffers, mode,
            device).
        data: Training data, in any form :func:`cnnzoo.fit` takes.
        start_lr: The first learning rate.
        end_lr: The last learning rate, reached at step ``num_steps`` unless the loss diverges.
        num_steps: Steps of the test (batches; the data is cycled if it is shorter).
        batch_size: Samples per step (ignored for a ``DataLoader``). The rate found holds for
            the batch size it was found at: None (the default) is the one ``fit`` trains the
            model with on a budget of at least 80 steps at batch 128: 128 for a model with a
            registered recipe, 32 for one without (which ``fit`` trains at 32 whatever the
            budget). Pass the batch size you will train with where it differs.
        optimizer: As in :func:`cnnzoo.fit` (a name or a callable ``params -> optimizer``;
            not a built optimizer, which holds the original model's parameters).
        weight_decay: As in :func:`cnnzoo.fit`.
        loss_fn: As in :func:`cnnzoo.fit`; the default is cross-entropy (auxiliary heads
            included).
        label_smoothing: Of the default loss.
        device: "auto" or any torch device.
        precision: As in :func:`cnnzoo.fit`.
        seed: Seeds the data order and dropout (the global random state is restored after).
        num_workers: DataLoader workers for datasets not held in memory.
        verbose: 0 silent; 1 a bar of the steps on a terminal or in a notebook (once the test
            has run two seconds), else a line every few seconds with the rate and the loss.

    Returns:
        The :class:`LRFinderResult`: the curve, ``suggestion`` and ``plot(path)``.

    Raises:
        ValueError: Bad arguments, empty data, labels outside the model's classes, or a loss
            that diverged within the first few steps (lower ``start_lr``).

    Example:
        >>> import cnnzoo
        >>> from cnnzoo.data import load_dataset
        >>> model = cnnzoo.get_model("lenet5")
        >>> result = cnnzoo.lr_find(model, load_dataset("fashion-mnist"))  # doctest: +SKIP
        >>> result.plot("lr_find.png")  # doctest: +SKIP
        >>> cnnzoo.fit(model, load_dataset("fashion-mnist"), lr=result.suggestion)  # doctest: +SKIP
    """
    _check_arguments(start_lr, end_lr, num_steps, optimizer)
    if loss_fn is None:
        loss_fn = CrossEntropy(label_smoothing)
    elif label_smoothing:
        raise ValueError("label_smoothing applies to the default loss only; smooth in loss_fn")
    if batch_size is None:
        batch_size = choose(None, 1, has_recipe=model_recipe(model) is not None).size
    target = resolve_device(device)
    dtype = resolve_precision(precision, target)
    batches = make_batches(
        resolve(data, what="data"),
        train=True,
        device=target,
        batch_size=batch_size,
        seed=seed,
        num_workers=num_workers,
    )
    if len(batches) == 0:
        raise ValueError("data is empty: it yields no batches")

    devices = [target.index or 0] if target.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):  # the caller's random state comes back
        torch.manual_seed(seed)
        trial = copy.deepcopy(model).to(target)
        num_classes = infer_num_classes(trial, batches, dtype)
        initialise_from_data(trial, batches)  # the start fit would give it
        if batches.labels is not None:
            check_label_range(batches.labels, num_classes, "data")
        if isinstance(loss_fn, nn.Module):
            loss_fn = copy.deepcopy(loss_fn).to(target)
        built = make_optimizer(optimizer, trial, start_lr, weight_decay)
        with Counter("lr_find", num_steps, verbose=verbose) as counter:
            lrs, raw, diverged = _range_test(
                trial, batches, built, loss_fn, target, dtype, start_lr, end_lr, num_steps, counter
            )
    own = data.batch_size if isinstance(data, DataLoader) else batch_size
    return replace(_result(lrs, raw, diverged), batch_size=own)


def _check_arguments(start_lr: float, end_lr: float, num_steps: int, optimizer: Any) -> None:
    if not 0 < start_lr < end_lr:
        raise ValueError(
            f"lr_find needs 0 < start_lr < end_lr, got start_lr={start_lr!r}, end_lr={end_lr!r}"
        )
    if isinstance(num_steps, bool) or not isinstance(num_steps, int) or num_steps < _MIN_POINTS:
        raise ValueError(f"num_steps must be an integer >= {_MIN_POINTS}, got {num_steps!r}")
    if isinstance(optimizer, torch.optim.Optimizer):
        raise ValueError(
            "lr_find trains a copy of the model, so it cannot use an optimizer built on the "
            "model's parameters; pass a name ('adamw') or a callable params -> optimizer"
        )


def _range_test(
    model: nn.Module,
    batches: Any,
    optimizer: torch.optim.Optimizer,
    loss_fn: LossFn,
    device: torch.device,
    dtype: torch.dtype | None,
    start_lr: float,
    end_lr: float,
    num_steps: int,
    counter: Counter,
) -> tuple[list[float], list[float], bool]:
    """Train with the exponential ramp; the rates and raw losses, and whether it diverged."""
    forward = training_forward(model)
    scaler = torch.amp.GradScaler(device.type) if dtype == torch.float16 else None
    ratio = end_lr / start_lr
    lrs: list[float] = []
    raw: list[float] = []
    average, best = 0.0, math.inf
    forward.train()
    epoch = 0
    while len(lrs) < num_steps:
        for x, y in batches.epoch(epoch):
            step = len(lrs)
            lr = start_lr * ratio ** (step / (num_steps - 1))
            for group in optimizer.param_groups:
                group["lr"] = lr
            with autocast(device, dtype):
                outputs = forward(x)
            loss = check_loss(loss_fn(as_float(outputs), y))
            optimizer.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
            else:
                loss.backward()
                optimizer.step()
            value = float(loss.detach())  # a sync per step: the test must see the loss to stop
            lrs.append(lr)
            raw.append(value)
            if not math.isfinite(value):
                return lrs, raw, True
            average = _SMOOTHING * average + (1 - _SMOOTHING) * value
            smoothed = average / (1 - _SMOOTHING ** (step + 1))
            best = min(best, smoothed)
            counter.update(1, f"lr={lr:.2e}  loss={smoothed:.4f}")
            if smoothed > _DIVERGENCE * best:
                return lrs, raw, True
            if len(lrs) == num_steps:
                break
        epoch += 1
    return lrs, raw, False


def _result(lrs: list[float], raw: list[float], diverged: bool) -> LRFinderResult:
    """Smooth the curve and pick the suggestions."""
    losses: list[float] = []
    average = 0.0
    for step, value in enumerate(raw):
        if not math.isfinite(value):
            break
        average = _SMOOTHING * average + (1 - _SMOOTHING) * value
        losses.append(average / (1 - _SMOOTHING ** (step + 1)))
    lrs, raw = lrs[: len(losses)], raw[: len(losses)]
    if len(losses) < _MIN_POINTS:
        raise ValueError(
            f"the loss diverged after {len(losses)} steps of lr_find, too soon to suggest a "
            f"rate (last rate {lrs[-1] if lrs else float('nan'):.3g}); lower start_lr"
        )
    # Leave out the noisy start and the diverging end when there are enough points.
    begin, end = (_SKIP_BEGIN, len(losses) - _SKIP_END)
    if end - begin < _MIN_POINTS:
        begin, end = 0, len(losses)
    window = torch.tensor(losses[begin:end], dtype=torch.float64)
    # The lrs are evenly spaced in log(lr): the gradient per step is the slope in log(lr).
    slope = torch.gradient(window)[0]
    steepest = begin + int(slope.argmin())
    lowest = min(range(len(losses)), key=losses.__getitem__)
    return LRFinderResult(
        lrs=lrs,
        losses=losses,
        raw_losses=raw,
        suggestion=lrs[steepest],
        min_loss_lr=lrs[lowest],
        diverged=diverged,
    )
