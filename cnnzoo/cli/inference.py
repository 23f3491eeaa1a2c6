"""``cnnzoo eval`` and ``cnnzoo predict``: run a trained checkpoint on a dataset or on images.

Both take any cnnzoo checkpoint: a ``.safetensors`` file written by ``cnnzoo.save`` (``cnnzoo
train``'s ``model.safetensors`` and ``best.safetensors`` included) or a ``save_pretrained``
folder. The model's data configuration, recorded in it, says how to read the images.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import torch

__all__ = [
    "DATA_HELP",
    "METADATA_KEY",
    "add_inference_commands",
    "load_checkpoint",
    "print_metrics",
]

DATA_HELP = "fashion-mnist, mnist, cifar10, or an ImageFolder directory (train/ and test/)"
CHECKPOINT_HELP = "a .safetensors file (model or best) or a save_pretrained folder"
# The safetensors metadata key under which `cnnzoo train` records the dataset it trained on
# (earlier versions also stored the class names, mean, std and image size there).
METADATA_KEY = "cnnzoo_data"


def add_inference_commands(sub: argparse._SubParsersAction) -> None:
    """Add ``eval`` and ``predict`` to the ``cnnzoo`` parser."""
    p = sub.add_parser("eval", help="evaluate a checkpoint on a dataset's test split")
    p.add_argument("checkpoint", type=Path, help=CHECKPOINT_HELP)
    p.add_argument("--data", required=True, help=DATA_HELP)
    p.add_argument("--data-root", default=None)
    p.add_argument("--split", default="test", choices=["train", "test"])
    p.add_argument("--image-size", type=int, default=None, help="ImageFolder: resize to this")
    p.add_argument("--device", default="auto")
    p.set_defaults(run=_cmd_eval)

    p = sub.add_parser("predict", help="classify image files with a checkpoint")
    p.add_argument("checkpoint", type=Path, help=CHECKPOINT_HELP)
    p.add_argument("images", nargs="+", type=Path)
    p.add_argument("--top", type=int, default=3, help="how many classes to show per image")
    p.set_defaults(run=_cmd_predict)


def print_metrics(metrics: dict[str, Any], classes: list[str]) -> None:
    """Print test accuracy and loss, then the accuracy of each class."""
    print(f"test accuracy: {metrics['accuracy']:.4f}   test loss: {metrics['loss']:.4f}")
    top_k = [(k, v) for k, v in metrics.items() if k.startswith("top") and k.endswith("_accuracy")]
    for key, value in top_k:
        print(f"top-{key[3:-9]} accuracy: {value:.4f}")
    if "macro_f1" in metrics:
        print(
            f"macro precision: {metrics['macro_precision']:.4f}   macro recall: "
            f"{metrics['macro_recall']:.4f}   macro F1: {metrics['macro_f1']:.4f}"
        )
    width = max(len(c) for c in classes) + 2
    print("per-class accuracy:")
    for name, accuracy in zip(classes, metrics["per_class_accuracy"].tolist(), strict=True):
        print(f"  {name:<{width}}{accuracy:.4f}")


def load_checkpoint(path: Path) -> torch.nn.Module:
    """The model in a cnnzoo checkpoint file or ``save_pretrained`` folder, with its data config.

    A file written by an earlier ``cnnzoo train`` (class names and normalisation in its
    ``cnnzoo_data`` metadata) gets its data configuration from there.
    """
    from ..hub import from_pretrained
    from ..models import load

    if path.is_dir():
        return from_pretrained(path)
    model = load(path)
    _fill_from_earlier_train(model, path)
    return model


def _fill_from_earlier_train(model: torch.nn.Module, path: Path) -> None:
    from ..checkpoint import read_state_dict

    config = getattr(model, "pretrained_cfg", None)
    if config is None or config.mean is not None:
        return
    _, metadata = read_state_dict(path)
    try:
        info = json.loads(metadata.get(METADATA_KEY, "{}"))
    except json.JSONDecodeError:
        return
    if not isinstance(info, dict) or not {"mean", "std", "classes", "image_size"} <= set(info):
        return
    names = tuple(info["classes"])
    channels = config.channels or len(info["mean"])
    model.pretrained_cfg = config.replace(
        input_size=(channels, *info["image_size"]),
        mean=info["mean"],
        std=info["std"],
        label_names=names if len(names) == config.num_classes else None,
    )


def _cmd_eval(args: argparse.Namespace) -> None:
    from ..data import load_dataset
    from ..training import evaluate

    model = load_checkpoint(args.checkpoint)
    data = load_dataset(args.data, args.split, args.data_root, image_size=args.image_size)
    metrics = evaluate(model, data, device=args.device)
    print_metrics(metrics, data.classes)


def _cmd_predict(args: argparse.Namespace) -> None:
    from ..training import classify

    if args.top < 1:
        raise ValueError(f"--top must be >= 1, got {args.top}")
    model = load_checkpoint(args.checkpoint)
    for path in args.images:  # every file checked before the model reads any
        if not path.is_file():
            raise FileNotFoundError(f"no image file at {path}")
    ranked = classify(model, [str(p) for p in args.images], top_k=args.top)
    for path, classes in zip(args.images, ranked, strict=True):
        shown = ", ".join(f"{c['label']} {c['score']:.3f}" for c in classes)
        print(f"{path}: {shown}")
