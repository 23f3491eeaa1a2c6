"""``evaluate`` and ``predict``: batched, without gradients, restoring the model's mode."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .._advice import for_cli, resize_flag
from ..devices import resolve_device
from .contract import check_classifier, image_reading, inference_rule, model_data_config
from .feed import Batches, InMemory, ModelInput, Source, make_batches, resolve
from .losses import LossFn
from .precision import autocast, resolve_precision

__all__ = [
    "check_label_range",
    "class_scores",
    "evaluate",
    "infer_num_classes",
    "input_dtype",
    "model_device",
    "predict",
]

EVAL_BATCH_SIZE = 1024


def evaluate(
    model: nn.Module,
    data: Any,
    *,
    batch_size: int = EVAL_BATCH_SIZE,
    device: str | torch.device | None = None,
    precision: str = "auto",
    num_workers: int | None = None,
    top_k: int | Sequence[int] | None = None,
) -> dict[str, Any]:
    """Measure a classifier on labelled data.

    Args:
        model: Any classifier returning logits ``(N, num_classes)``.
        data: An ``(images, labels)`` pair (images a tensor, a NumPy array, or a list of PIL
            images or image files), a ``Dataset`` yielding ``(image, label)``, or a
            ``DataLoader``. Every form goes through the same rule: pixels are scaled to [0, 1]
            and normalised with the model's mean and std (``model.pretrained_cfg``, recorded by
            ``fit``); see the training guide.
        batch_size: Samples per forward pass (ignored for a DataLoader).
        device: Where to run; None keeps the model where it is. The model is moved there.
        precision: "auto" (bf16 autocast on CUDA and on CPUs with native bf16, fp32
            elsewhere), "fp32", "bf16" or "fp16".
        num_workers: DataLoader workers for a plain ``Dataset``.
        top_k: The ``k`` (an int or several) whose top-k accuracy to report, each in
            ``[1, num_classes]``; None reports top-5 for models with more than 5 classes.

    Returns:
        A dict:

        - ``loss``: mean cross-entropy; ``accuracy``: top-1 accuracy;
        - ``top{k}_accuracy`` for each ``k`` of ``top_k`` (e.g. ``top5_accuracy``): the share of
          samples whose label is among the ``k`` highest logits;
        - ``per_class_accuracy``: Tensor (C,), the accuracy on each true class (NaN for a class
          absent from ``data``);
        - ``confusion_matrix``: Tensor (C, C), counts with true classes as rows and predicted
          classes as columns;
        - ``precision``, ``recall``, ``f1``: Tensors (C,), and ``macro_precision``,
          ``macro_recall``, ``macro_f1``: their means, all from the confusion matrix (see
          :func:`class_scores` for classes that never occur).

    Raises:
        ValueError: Empty data, a label outside ``[0, num_classes)``, or a ``k`` outside
            ``[1, num_classes]``.
    """
    check_classifier(model, "evaluate")
    target = model_device(model) if device is None else resolve_device(device)
    model.to(target)
    source, rule = _source_and_rule(model, data, need_labels=True)
    batches = _eval_batches(model, source, rule, target, batch_size, num_workers)
    dtype = resolve_precision(precision, target)
    num_classes = infer_num_classes(model, batches, dtype)
    if batches.labels is not None:
        check_label_range(batches.labels, num_classes, "data")
    else:  # labels known only batch by batch: checked as each arrives
        batches = _eval_batches(
            model,
            source,
            rule,
            target,
            batch_size,
            num_workers,
            check_labels=lambda y: check_label_range(y, num_classes, "data"),
        )
    ks = _top_k(top_k, num_classes)
    loss_sum, confusion, hits = accumulate(model, batches, num_classes, dtype, top_k=ks)
    return summarize(loss_sum, confusion, hits, ks)


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
        data: Images: a tensor ``(N, C, H, W)``, a NumPy array (``(N, H, W, C)``,
            ``(N, C, H, W)`` or one image), a PIL image or an image file path, or a list of
            them; an ``(images, labels)`` pair, a ``Dataset`` or a ``DataLoader`` (labels, if
            any, are ignored). PIL images and files are converted to the model's channels and
            resized to its input size; every form is scaled and normalised by the same rule as
            in :func:`evaluate`.
        batch_size: Samples per forward pass (ignored for a DataLoader).
        device: Where to run; None keeps the model where it is.
        precision: As in :func:`evaluate`.
        num_workers: DataLoader workers for a plain ``Dataset``.

    Returns:
        Float32 logits ``(N, num_classes)`` on the CPU; ``softmax(dim=1)`` gives probabilities.
    """
    check_classifier(model, "predict", features_ok=True)
    target = model_device(model) if device is None else resolve_device(device)
    model.to(target)
    source, rule = _source_and_rule(model, data, need_labels=False)
    batches = _eval_batches(model, source, rule, target, batch_size, num_workers)
    dtype = resolve_precision(precision, target)
    outputs = []
    with _eval_mode(model), torch.inference_mode(), autocast(target, dtype):
        for x, _ in batches.epoch(0):
            outputs.append(model(x).float().cpu())
    if not outputs:
        raise ValueError("data is empty: nothing to predict")
    return torch.cat(outputs)


def _eval_batches(
    model: nn.Module,
    source: Source,
    rule: ModelInput,
    device: torch.device,
    batch_size: int,
    num_workers: int | None,
    check_labels: Any = None,
) -> Batches:
    """The batches evaluate and predict read: in order, no augmentation, the model's dtype."""
    return make_batches(
        source,
        device=device,
        batch_size=batch_size,
        train=False,
        num_workers=num_workers,
        rule=rule,
        input_dtype=input_dtype(model),
        check_labels=check_labels,
    )


def _source_and_rule(model: nn.Module, data: Any, need_labels: bool) -> tuple[Source, ModelInput]:
    """Read ``data`` the way ``model`` expects, and the rule that makes its inputs."""
    config = model_data_config(model)
    source = resolve(
        data, what="data", need_labels=need_labels, reading=image_reading(model, config)
    )
    _check_size(config, source)
    return source, inference_rule(config, source.facts, "data")


def _check_size(config: Any, source: Source) -> None:
    """Refuse tensors of another size than the model's: files and PIL images would be resized.

    The same images must give the same answer in every form; image files and PIL images are
    resized to ``input_size``, tensors are taken as they are, so tensors of another size would
    answer differently. Which size is right is the user's call: the message gives both fixes.
    """
    size = None if config is None else config.image_size
    if size is None or not isinstance(source, InMemory) or source.images.dim() != 4:
        return
    if source.images.shape[1] != config.channels:
        return  # other channels (or channels-last images): the model's own check names them
    seen = tuple(int(v) for v in source.images.shape[-2:])
    if seen != size:
        channels = config.channels
        hint = ""
        if seen[1] in (1, 3, 4) and seen[0] > 4:  # (H, W, C) read as H images of W x C
            hint = (
                f"; the shape {tuple(source.images.shape)} also looks like channels-last images "
                "(H, W, C): permute them to (C, H, W) with x.permute(2, 0, 1) (a batch: "
                "x.permute(0, 3, 1, 2))"
            )
        error = ValueError(
            f"data: the images are {seen[0]}x{seen[1]} but the model's data configuration says "
            f"{size[0]}x{size[1]} (model.pretrained_cfg.input_size), the size image files and "
            "PIL images are resized to, so the same images in another form would give other "
            f"answers. Resize them to {size[0]}x{size[1]} exactly as a file is resized: "
            f"cnnzoo.data.resize_pixels(x, {size}) on the uint8 pixels (load_dataset(..., "
            f"image_size={size}) for a named dataset); or, for a model that takes any size "
            "and is meant for this one, set model.pretrained_cfg = "
            f"model.pretrained_cfg.replace(input_size=({channels}, {seen[0]}, {seen[1]})){hint}"
        )
        raise for_cli(
            error,
            f"--data: the images are {seen[0]}x{seen[1]} but the model was trained on "
            f"{size[0]}x{size[1]} images; {resize_flag(size)}",
        )


def accumulate(
    model: nn.Module,
    batches: Batches,
    num_classes: int,
    dtype: torch.dtype | None,
    label_smoothing: float = 0.0,
    *,
    loss_fn: LossFn | None = None,
    top_k: Sequence[int] = (),
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Summed loss, the confusion matrix and top-k hits over one pass of ``batches``.

    All stay on the device (no per-batch sync); fit all-reduces them across ranks.

    Args:
        model: The classifier (run in eval mode, its mode restored after).
        batches: The data.
        num_classes: The width of the logits.
        dtype: The autocast dtype, or None.
        label_smoothing: Of the default cross-entropy.
        loss_fn: A mean loss ``loss_fn(logits, labels)`` to sum instead of cross-entropy.
        top_k: The ``k`` of the top-k counts, each in ``[1, num_classes]``.

    Returns:
        ``(loss_sum, confusion (C, C), top_k_hits (len(top_k),))``.
    """
    device = _batches_device(batches, model)
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    confusion = torch.zeros(num_classes * num_classes, dtype=torch.int64, device=device)
    hits = torch.zeros(len(top_k), dtype=torch.int64, device=device)
    ranks = torch.tensor([k - 1 for k in top_k], dtype=torch.int64, device=device)
    widest = max(top_k, default=0)
    with _eval_mode(model), torch.inference_mode():
        for x, y in batches.epoch(0):
            assert y is not None, "evaluation batches carry labels (resolved with need_labels)"
            with autocast(device, dtype):
                logits = model(x)
            logits = logits.float()
            if loss_fn is None:
                loss = F.cross_entropy(logits, y, reduction="sum", label_smoothing=label_smoothing)
            else:
                loss = loss_fn(logits, y) * len(y)
            loss_sum += loss.double()
            confusion += torch.bincount(
                y * num_classes + logits.argmax(1), minlength=num_classes * num_classes
            )
            if widest:
                # found[i, j]: sample i's label is among its j+1 highest logits.
                found = (logits.topk(widest, dim=1).indices == y[:, None]).cumsum(1)
                hits += found.index_select(1, ranks).sum(0)
    return loss_sum, confusion.view(num_classes, num_classes), hits


def summarize(
    loss_sum: torch.Tensor,
    confusion: torch.Tensor,
    top_k_hits: torch.Tensor | None = None,
    top_k: Sequence[int] = (),
) -> dict[str, Any]:
    """Turn :func:`accumulate`'s sums into evaluate's dict (see :func:`evaluate`)."""
    confusion = confusion.cpu()
    total = int(confusion.sum())
    if total == 0:
        raise ValueError("data is empty: nothing to evaluate")
    per_class_total = confusion.sum(1).double()
    per_class = confusion.diagonal().double() / per_class_total  # 0/0 -> NaN for absent classes
    metrics: dict[str, Any] = {
        "loss": float(loss_sum) / total,
        "accuracy": float(confusion.diagonal().sum()) / total,
        "per_class_accuracy": per_class,
        "confusion_matrix": confusion,
    }
    if top_k_hits is not None:
        for k, hit in zip(top_k, top_k_hits.cpu().tolist(), strict=True):
            metrics[f"top{k}_accuracy"] = hit / total
    metrics.update(class_scores(confusion))
    return metrics


def class_scores(confusion: torch.Tensor) -> dict[str, Any]:
    """Per-class precision, recall and F1 and their macro averages, from the confusion matrix.

    As scikit-learn's ``precision_recall_fscore_support(..., zero_division=0)``: a class that
    occurs (among the labels or the predictions) scores 0 where its denominator is 0 (never
    predicted: precision; never present: recall), and F1 is ``2 TP / (2 TP + FP + FN)``. A class
    absent from both scores NaN and is left out of the macro averages, which are the plain means
    over the classes that occur.

    Args:
        confusion: Counts ``(C, C)``, true classes as rows, predicted classes as columns.

    Returns:
        ``precision``, ``recall``, ``f1``: float64 tensors ``(C,)``; ``macro_precision``,
        ``macro_recall``, ``macro_f1``: floats.
    """
    confusion = confusion.double()
    true_positives = confusion.diagonal()
    predicted = confusion.sum(0)
    actual = confusion.sum(1)
    occurs = (predicted + actual) > 0
    nan = torch.full_like(true_positives, float("nan"))

    def score(numerator: torch.Tensor, denominator: torch.Tensor) -> torch.Tensor:
        ratio = numerator / denominator.clamp(min=1)  # 0 where the denominator is 0
        return torch.where(occurs, ratio, nan)

    scores = {
        "precision": score(true_positives, predicted),
        "recall": score(true_positives, actual),
        "f1": score(2 * true_positives, predicted + actual),
    }
    macro = {f"macro_{name}": float(value[occurs].mean()) for name, value in scores.items()}
    return {**scores, **macro}


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
        if value < 0:
            fix = (
                "class indices start at 0, so fix the labels (map them to 0..num_classes-1; "
                "drop the samples a -1 marks as unlabelled)"
            )
        else:
            fix = f"build the model with num_classes={int(labels.max()) + 1} or fix the labels"
        problem = (
            f"{what} has label {value}, outside [0, {num_classes}) for a model with "
            f"{num_classes} classes"
        )
        error = ValueError(f"{problem}; {fix}")
        if value >= 0:  # at the shell the model's width is a flag
            error = for_cli(
                error, f"{problem}; pass --num-classes {int(labels.max()) + 1} or fix the labels"
            )
        raise error


def input_dtype(model: nn.Module) -> torch.dtype:
    """The floating dtype of the model's weights (float32 for most): images convert to it."""
    for tensor in model.parameters():
        if tensor.is_floating_point():
            return tensor.dtype
    return torch.float32


def _top_k(top_k: int | Sequence[int] | None, num_classes: int) -> tuple[int, ...]:
    """The ``k`` to report: as asked (checked), or top-5 when there are more than 5 classes."""
    if top_k is None:
        return (5,) if num_classes > 5 else ()
    ks = tuple(top_k) if isinstance(top_k, list | tuple) else (top_k,)
    for k in ks:
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"top_k must hold integers >= 1, got {top_k!r}")
        if k > num_classes:
            raise ValueError(
                f"top_k={k} is more than the model's {num_classes} classes (top-{num_classes} "
                f"accuracy is already 1); ask for k <= {num_classes}"
            )
    return tuple(sorted(set(ks)))


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter (or buffer), CPU for a model without any."""
    for tensor in model.parameters():
        return tensor.device
    for buffer in model.buffers():
        return buffer.device
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
