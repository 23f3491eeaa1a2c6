"""The check after writing: the artifact, loaded back, against the eager model."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

__all__ = ["accuracy", "compare", "run_batched"]


def run_batched(
    run: Callable[[np.ndarray], np.ndarray], inputs: np.ndarray, batch_size: int = 64
) -> np.ndarray:
    """``run`` over ``inputs`` in batches, the logits concatenated."""
    return np.concatenate(
        [run(inputs[i : i + batch_size]) for i in range(0, len(inputs), batch_size)]
    )


def compare(reference: np.ndarray, got: np.ndarray) -> dict[str, float | int]:
    """How far the artifact's logits are from the eager model's on the same images.

    Returns:
        ``max_abs_diff`` (of the logits), ``logit_scale`` (the largest eager logit, in absolute
        value, that the difference compares with), ``top1_agreement`` (share of images whose
        most likely class is the same) and ``samples``.
    """
    return {
        "max_abs_diff": float(np.abs(reference - got).max()),
        "logit_scale": float(np.abs(reference).max()),
        "top1_agreement": float((reference.argmax(1) == got.argmax(1)).mean()),
        "samples": len(reference),
    }


def accuracy(logits: np.ndarray, labels: torch.Tensor) -> float:
    """Top-1 accuracy of ``logits`` against integer ``labels``."""
    return float((logits.argmax(1) == labels.numpy()).mean())
