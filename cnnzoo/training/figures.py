"""Pictures of a trained classifier: the confusion matrix, and the images it gets wrong.

The tutorials look at their results rather than read them: a confusion matrix, and a
``torchvision.utils.make_grid`` of test images shown with ``imshow``. These write both as PNG
files. matplotlib (the ``plot`` extra) is imported only when a picture is drawn.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

__all__ = ["plot_confusion_matrix", "plot_misclassified", "pyplot", "save_figure"]


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the file-only Agg backend.

    Raises:
        ImportError: matplotlib is not installed (the message says how to install it).
    """
    try:
        import matplotlib

        matplotlib.use("Agg", force=False)  # no display needed to write a file
        import matplotlib.pyplot as plt
    except ImportError as error:
        raise ImportError("plots need matplotlib: pip install 'cnnzoo[plot]'") from error
    return plt


def save_figure(figure: Any, path: str | os.PathLike) -> None:
    """Lay ``figure`` out, write it to ``path`` (PNG at 100 dpi) and free it.

    Written as every file cnnzoo writes: to a temporary file that then replaces ``path``, so
    a killed run leaves the old picture or the new one, never half of one, and a symbolic link
    planted at ``path`` is replaced, never followed (``savefig(path)`` would overwrite the
    file it points to). The format is the name's (``.png``, ``.pdf``, ``.svg``), PNG without one.
    """
    from ..checkpoint._io import atomic_write

    kind = Path(path).suffix.lstrip(".").lower() or "png"
    try:
        figure.tight_layout()
        with atomic_write(path, "wb") as file:
            figure.savefig(file, dpi=100, format=kind)
    finally:
        pyplot().close(figure)


def plot_confusion_matrix(
    matrix: torch.Tensor,
    class_names: Sequence[str],
    path: str | os.PathLike,
    *,
    title: str | None = None,
) -> None:
    """Write a confusion matrix as a PNG: true classes as rows, predictions as columns.

    Cells are shaded by the share of their true class (so rare classes show as clearly as
    common ones) and, up to 30 classes, labelled with their counts.

    Args:
        matrix: ``(C, C)`` counts, as ``evaluate(...)["confusion_matrix"]`` gives.
        class_names: One name per class.
        path: The PNG file to write.
        title: Figure title (default: the accuracy).

    Raises:
        ValueError: A matrix that is not square, or names that do not match it.
        ImportError: matplotlib is not installed.
    """
    counts = torch.as_tensor(matrix).double().cpu()
    classes = counts.shape[0]
    if counts.dim() != 2 or counts.shape[1] != classes or len(class_names) != classes:
        raise ValueError(
            f"a confusion matrix needs a (C, C) matrix and C class names; got "
            f"{tuple(counts.shape)} and {len(class_names)} names"
        )
    shares = counts / counts.sum(1, keepdim=True).clamp_min(1)
    plt = pyplot()
    side = min(4 + 0.55 * classes, 24)
    figure, axis = plt.subplots(figsize=(side + 1.5, side))
    image = axis.imshow(shares.numpy(), cmap="Blues", vmin=0, vmax=1)
    figure.colorbar(image, ax=axis, fraction=0.046, pad=0.04, label="share of the true class")
    axis.set_xticks(range(classes), class_names, rotation=45, ha="right")
    axis.set_yticks(range(classes), class_names)
    axis.set_xlabel("predicted class")
    axis.set_ylabel("true class")
    if classes <= 30:
        for row in range(classes):
            for column in range(classes):
                count = int(counts[row, column])
                if count:
                    dark = shares[row, column] > 0.6
                    color = "white" if dark else "black"
                    axis.text(column, row, str(count), ha="center", va="center", color=color)
    accuracy = float(counts.diagonal().sum() / counts.sum().clamp_min(1))
    axis.set_title(title or f"confusion matrix, accuracy {accuracy:.4f}")
    save_figure(figure, path)


def plot_misclassified(
    images: torch.Tensor,
    predicted: torch.Tensor,
    true: torch.Tensor,
    class_names: Sequence[str],
    path: str | os.PathLike,
    *,
    limit: int = 32,
    columns: int = 8,
    title: str | None = None,
) -> int:
    """Write a grid of the images a model got wrong, each with its predicted and true class.

    The grid is ``torchvision.utils.make_grid`` of the first ``limit`` mistakes in data order,
    shown with ``imshow`` as the tutorials do; the prediction (red) and the truth are written
    above each image.

    Args:
        images: ``(N, C, H, W)`` pixels (``uint8``, or floats in [0, 1]) of all the images.
        predicted: ``(N,)`` predicted classes.
        true: ``(N,)`` true classes.
        class_names: The class names (indices are shown when empty).
        path: The PNG file to write.
        limit: The most images to show.
        columns: Images per row.
        title: Figure title.

    Returns:
        The number of images shown (0 when there is no mistake: nothing is written then).

    Raises:
        ImportError: matplotlib is not installed.
    """
    from torchvision.utils import make_grid

    wrong = (torch.as_tensor(predicted).cpu() != torch.as_tensor(true).cpu()).nonzero().flatten()
    shown = wrong[:limit]
    if len(shown) == 0:
        return 0
    pixels = images[shown].cpu()
    pixels = pixels.float() / 255 if pixels.dtype == torch.uint8 else pixels.float().clamp(0, 1)
    height, width = pixels.shape[-2:]
    columns = min(columns, len(shown))
    pad = max(2, math.ceil(0.45 * max(height, width)))  # room for two lines of text above
    grid = make_grid(pixels, nrow=columns, padding=pad, pad_value=1.0)
    rows = math.ceil(len(shown) / columns)

    plt = pyplot()
    cell = 1.6  # inches per image
    figure, axis = plt.subplots(figsize=(columns * cell, rows * cell + 0.6))
    axis.imshow(grid.permute(1, 2, 0).numpy(), interpolation="nearest")
    axis.axis("off")

    def name(index: int) -> str:
        return class_names[index] if index < len(class_names) else str(index)

    for slot, index in enumerate(shown.tolist()):
        left = pad + (slot % columns) * (width + pad) + width / 2
        top = pad + (slot // columns) * (height + pad)
        guess, truth = name(int(predicted[index])), name(int(true[index]))
        lines = ((0.45, f"pred: {guess}", "red"), (0.05, f"true: {truth}", "black"))
        for lift, text, color in lines:
            axis.text(left, top - pad * lift, text, color=color, size=7, ha="center", va="bottom")
    axis.set_title(title or f"misclassified: {len(shown)} of {len(wrong)} shown")
    save_figure(figure, path)
    return len(shown)
