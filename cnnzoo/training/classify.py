"""``classify``: class names and probabilities for images, the way a user asks for them."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .contract import model_data_config
from .evaluation import EVAL_BATCH_SIZE, predict
from .feed.forms import is_image

__all__ = ["classify"]


def classify(
    model: nn.Module,
    images: Any,
    *,
    top_k: int = 5,
    batch_size: int = EVAL_BATCH_SIZE,
    device: str | torch.device | None = None,
) -> list[dict[str, Any]] | list[list[dict[str, Any]]]:
    """The ``top_k`` most likely classes of each image, with their probabilities.

    Args:
        model: A classifier; its data configuration (``model.pretrained_cfg``) gives the class
            names, the input size and the normalisation.
        images: One image (a file path or a PIL image), or anything :func:`predict` takes: a
            list of paths or PIL images, a tensor or NumPy array of images, a ``Dataset``, a
            ``DataLoader``.
        top_k: How many classes per image (at most the number of classes).
        batch_size: Images per forward pass.
        device: Where to run; None keeps the model where it is.

    Returns:
        For each image, a list of ``{"label": name, "score": probability, "index": class}``
        from the most likely down, as Hugging Face's image-classification pipeline returns
        them; ``label`` is the class index as text when the model knows no class names. For a
        single image, just its list.

    Raises:
        ValueError: ``top_k`` < 1, or data :func:`predict` refuses.

    Example:
        >>> cnnzoo.classify(model, "boot.png", top_k=2)  # doctest: +SKIP
        [{'label': 'Ankle boot', 'score': 0.98, 'index': 9}, {'label': 'Sneaker', ...}]
    """
    if not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 1:
        raise ValueError(f"top_k must be an integer >= 1, got {top_k!r}")
    single = is_image(images)
    probabilities = predict(
        model, [images] if single else images, batch_size=batch_size, device=device
    ).softmax(dim=1)
    names = _label_names(model, probabilities.shape[1])
    scores, indices = probabilities.topk(min(top_k, probabilities.shape[1]), dim=1)
    results = [
        [
            {"label": names[i] if names else str(i), "score": score, "index": i}
            for score, i in zip(row_scores, row_indices, strict=True)
        ]
        for row_scores, row_indices in zip(scores.tolist(), indices.tolist(), strict=True)
    ]
    return results[0] if single else results


def _label_names(model: nn.Module, num_classes: int) -> tuple[str, ...] | None:
    """The model's class names, when it has exactly one per output."""
    config = model_data_config(model)
    names = None if config is None else config.label_names
    return names if names is not None and len(names) == num_classes else None
