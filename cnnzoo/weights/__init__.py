"""Weights that ship inside the package: cnnzoo's own, trained on Fashion-MNIST, no download.

Each shipped file is a ``cnnzoo.save`` safetensors file (its model configuration and data
contract, class names, mean and std, recorded inside) listed in ``index.json`` beside it with
what it was trained and measured with: the test accuracy, the recipe (the ``fit`` arguments),
epochs, wall time and machine, parameters, MACs and the file's sha256.
``benchmarks/train_weights.py`` trains them from a seed and writes both. A file is checked
against its sha256 before anything reads it, so a damaged install is named, never loaded.

``cnnzoo.get_model(name, weights="fashion-mnist")`` loads them; ``cnnzoo.models.info(name)``
and ``cnnzoo list --weights`` list them.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["FOLDER", "INDEX", "ShippedWeights", "find", "shipped", "verified_path"]

FOLDER = Path(__file__).resolve().parent
INDEX = FOLDER / "index.json"


@dataclass(frozen=True)
class ShippedWeights:
    """One shipped set of weights and how it was made.

    Attributes:
        model: Registry name of the model.
        tag: The name ``weights=`` takes ("fashion-mnist").
        file: The safetensors file, inside the package.
        sha256: The file's digest.
        dataset: What it was trained and tested on.
        test_accuracy: Accuracy on the dataset's whole test split.
        recipe: The ``fit`` arguments it was trained with (seed included).
        epochs: Passes over the training data.
        train_seconds: Wall time of the training, on ``machine``.
        machine: What it was trained on.
        num_params: Parameters.
        macs: Multiply-accumulates per image.
    """

    model: str
    tag: str
    file: Path
    sha256: str
    dataset: str
    test_accuracy: float
    recipe: dict[str, Any]
    epochs: int
    train_seconds: float
    machine: str
    num_params: int
    macs: int


def _entries() -> list[dict[str, Any]]:
    if not INDEX.is_file():
        return []
    entries = json.loads(INDEX.read_text(encoding="utf-8"))
    return entries if isinstance(entries, list) else []


def shipped(model: str | None = None) -> list[ShippedWeights]:
    """The shipped weights, of one model (registry name, any case) or of all."""
    found = []
    for entry in _entries():
        if model is not None and entry["model"] != model.lower():
            continue
        found.append(ShippedWeights(**{**entry, "file": FOLDER / entry["file"]}))
    return found


def find(model: str, tag: str) -> ShippedWeights | None:
    """The shipped weights ``tag`` of ``model``, or ``None``."""
    return next((w for w in shipped(model) if w.tag == tag.lower()), None)


def verified_path(weights: ShippedWeights) -> Path:
    """The file of ``weights`` after checking its sha256.

    Raises:
        ValueError: The file is missing or its bytes are not the ones shipped (the install is
            damaged: reinstall cnnzoo).
    """
    path = weights.file
    if not path.is_file():
        raise ValueError(
            f"cnnzoo's {weights.model} {weights.tag} weights are missing from the installed "
            f"package ({str(path)!r}); reinstall cnnzoo"
        )
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != weights.sha256:
        raise ValueError(
            f"cnnzoo's {weights.model} {weights.tag} weights ({str(path)!r}) do not match "
            f"their published sha256 ({weights.sha256[:12]}..., the file gives "
            f"{digest[:12]}...): the installed package is damaged; reinstall cnnzoo"
        )
    return path
