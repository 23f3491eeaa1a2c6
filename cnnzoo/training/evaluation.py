"""``evaluate`` and ``predict``: batched, without gradients, restoring the model's mode."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..devices import resolve_device
from .feed import Batches, make_batches, resolve
from .precision import autocast, resolve_precision

__all__ = ["check_label_range", "evaluate", "infer_num_classes", "model_device", "predict"]

EVAL_BATCH_SIZE = 1024


def evaluate(
    model: nn.Module,
    data: Any,
    *,
    batch_size: int = EVAL_BATCH_SIZE,
    device: str | torch.device | None = None,
    precision: str = "auto",
    num_workers: int | None = None,
) -> dict[str, Any]:
    """Measure a classifier on labelled data.

    Args:
        model: Any classifier returning logits ``(N, num_classes)``.
        data: An ``(images, labels)`` pair of tensors, a ``Dataset`` yielding ``(image,
            label)``, or a ``DataLoader``. In-memory data is normalised as in ``fit``.
        batch_size: Samples per forward pass (ignored for a DataLoader).
        device: Where to run; None keeps the model where it is. The model is moved there.
        precision: "auto" (bf16 autocast on CUDA and on CPUs with native bf16, fp32
            elsewhere), "fp32", "bf16" or "fp16".
        num_workers: DataLoader workers for a plain ``Dataset``.

    Returns:
        ``{"loss": float, "accuracy": float, "per_class_accuracy": Tensor (C,),
        "confusion_matrix": Tensor (C, C)}``: mean cross-entropy, top-1 accuracy, the accuracy on
        each true class (NaN for a class absent from ``data``), and counts with true classes as
        rows and predicted classes as columns.

    Raises:
        ValueError: Empty data, or a label outside ``[0, num_classes)``.
    """
    target = model_device(model) if device is None else resolve_device(device)
    model.to(target)
    source = resolve(data, what="data")
    batches = make_batches(
        source, device=target, batch_size=batch_size, train=False, num_workers=num_workers
    )
    dtype = resolve_precision(precision, target)
    num_classes = infer_num_classes(model, batches, dtype)
    if batches.labels is not None:
        check_label_range(batches.labels, num_classes, "data")
    else:
        batches = make_batches(
            source,
            device=target,
            batch_size=batch_size,
            train=False,
            num_workers=num_workers,
            check_labels=lambda y: check_label_range(y, num_classes, "data"),
        )
    loss_sum, confusion = accumulate(model, batches, num_classes, dtype)
    return summarize(loss_sum, confusion)


def predict(
    model: nn.Module,
    data: Any,
    *,
    batch_size: int = EVAL_BATCH_SIZE,
    device: str | torch.device | None = None,
    precision: str = "auto",
    num_workers: int | None = None,
) -> torch.Tensor:
    """Compute logits for every sample, in order.

    Args:
        model: Any classifier.
        data: A tensor of images ``(N, C, H, W)``, an ``(images, labels)`` pair, a ``Dataset`` or
            a ``DataLoader`` (labels, if any, are ignored).
        batch_size: Samples per forward pass (ignored for a DataLoader).
        device: Where to run; None keeps the model where it is.
        precision: As in :func:`evaluate`.
        num_workers: DataLoader workers for a plain ``Dataset``.

    Returns:
        Float32 logits ``(N, num_classes)`` on the CPU; ``softmax(dim=1)`` gives probabilities.
    """
    target = model_device(model) if device is None else resolve_device(device)
    model.to(target)
    source = resolve(data, what="data", need_labels=False)
    batches = make_batches(
        source, device=target, batch_size=batch_size, train=False, num_workers=num_workers
    )
    dtype = resolve_precision(precision, target)
    outputs = []
    with _eval_mode(model), torch.inference_mode(), autocast(target, dtype):
        for x, _ in batches.epoch(0):
            outputs.append(model(x).float().cpu())
    if not outputs:
        raise ValueError("data is empty: nothing to predict")
    return torch.cat(outputs)


def accumulate(
    model: nn.Module,
    batches: Batches,
    num_classes: int,
    dtype: torch.dtype | None,
    label_smoothing: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed cross-entropy and the confusion matrix over one pass of ``batches``.

    Both stay on the device (no per-batch sync); fit all-reduces them across ranks.
    """
    device = _batches_device(batches, model)
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    confusion = torch.zeros(num_classes * num_classes, dtype=torch.int64, device=device)
    with _eval_mode(model), torch.inference_mode():
        for x, y in batches.epoch(0):
            with autocast(device, dtype):
                logits = model(x)
            logits = logits.float()
            loss = F.cross_entropy(logits, y, reduction="sum", label_smoothing=label_smoothing)
            loss_sum += loss.double()
            confusion += torch.bincount(
                y * num_classes + logits.argmax(1), minlength=num_classes * num_classes
            )
    return loss_sum, confusion.view(num_classes, num_classes)


def summarize(loss_sum: torch.Tensor, confusion: torch.Tensor) -> dict[str, Any]:
    """Turn :func:`accumulate`'s sums into evaluate's dict."""
    confusion = confusion.cpu()
    total = int(confusion.sum())
    if total == 0:
        raise ValueError("data is empty: nothing to evaluate")
    per_class_total = confusion.sum(1).double()
    per_class = confusion.diagonal().double() / per_class_total  # 0/0 -> NaN for absent classes
    return {
        "loss": float(loss_sum) / total,
        "accuracy": float(confusion.diagonal().sum()) / total,
        "per_class_accuracy": per_class,
        "confusion_matrix": confusion,
    }


def infer_num_classes(model: nn.Module, batches: Batches, dtype: torch.dtype | None) -> int:
    """The model's number of classes: the width of its output on a two-image probe.

    The probe also surfaces the model's own error for inputs it cannot take (wrong channels,
    wrong size) before any training starts.
    """
    example = batches.example()
    with _eval_mode(model), torch.no_grad(), autocast(example.device, dtype):
        logits = model(example)
    if logits.dim() != 2:
        raise ValueError(
            f"the model must return logits of shape (N, num_classes); it returned shape "
            f"{tuple(logits.shape)}"
        )
    return int(logits.shape[1])


def check_label_range(labels: torch.Tensor, num_classes: int, what: str) -> None:
    """Raise ``ValueError`` naming the first label outside ``[0, num_classes)``."""
    labels = torch.as_tensor(labels)
    if labels.numel() == 0:
        return
    bad = (labels < 0) | (labels >= num_classes)
    if bool(bad.any()):
        value = int(labels[bad][0])
        raise ValueError(
            f"{what} has label {value}, outside [0, {num_classes}) for a model with "
            f"{num_classes} classes; build the model with num_classes={int(labels.max()) + 1} "
            "or fix the labels"
        )


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter (or buffer), CPU for a model without any."""
    for tensor in model.parameters():
        return tensor.device
    for tensor in model.buffers():
        return tensor.device
    return torch.device("cpu")


def _batches_device(batches: Batches, model: nn.Module) -> torch.device:
    return getattr(batches, "device", None) or model_device(model)


class _eval_mode:
    """Put ``model`` in eval mode, restoring its previous mode (train or eval) on exit."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.modes: list[tuple[nn.Module, bool]] = []

    def __enter__(self) -> nn.Module:
        # Remember every submodule: a model may be half frozen (BN layers kept in eval).
        self.modes = [(module, module.training) for module in self.model.modules()]
        self.model.eval()
        return self.model

    def __exit__(self, *exc: object) -> None:
        for module, training in self.modes:
            module.training = training
