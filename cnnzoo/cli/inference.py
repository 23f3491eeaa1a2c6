"""``cnnzoo eval`` and ``cnnzoo predict``: run a trained checkpoint on a dataset or on images."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import torch

__all__ = ["DATA_HELP", "METADATA_KEY", "add_inference_commands", "print_metrics"]

DATA_HELP = "fashion-mnist, mnist, cifar10, or an ImageFolder directory (train/ and test/)"
# The safetensors metadata key under which `cnnzoo train` records the dataset it trained on.
METADATA_KEY = "cnnzoo_data"


def add_inference_commands(sub: argparse._SubParsersAction) -> None:
    """Add ``eval`` and ``predict`` to the ``cnnzoo`` parser."""
    p = sub.add_parser("eval", help="evaluate a checkpoint on a dataset's test split")
    p.add_argument("checkpoint", type=Path)
    p.add_argument("--data", required=True, help=DATA_HELP)
    p.add_argument("--data-root", default=None)
    p.add_argument("--split", default="test", choices=["train", "test"])
    p.add_argument("--image-size", type=int, default=None, help="ImageFolder: resize to this")
    p.add_argument("--device", default="auto")
    p.set_defaults(run=_cmd_eval)

    p = sub.add_parser("predict", help="classify image files with a checkpoint")
    p.add_argument("checkpoint", type=Path)
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


def _load_checkpoint(path: Path) -> tuple[torch.nn.Module, dict[str, Any] | None]:
    from ..checkpoint import read_state_dict
    from ..models import load

    model = load(path)
    _, metadata = read_state_dict(path)
    raw = metadata.get(METADATA_KEY)
    return model, (json.loads(raw) if raw else None)


def _cmd_eval(args: argparse.Namespace) -> None:
    from ..data import load_dataset
    from ..training import evaluate

    model, _ = _load_checkpoint(args.checkpoint)
    data = load_dataset(args.data, args.split, args.data_root, image_size=args.image_size)
    metrics = evaluate(model, data, device=args.device)
    print_metrics(metrics, data.classes)


def _cmd_predict(args: argparse.Namespace) -> None:
    from ..data import ImageTensorDataset
    from ..training import predict

    if args.top < 1:
        raise ValueError(f"--top must be >= 1, got {args.top}")
    model, data_info = _load_checkpoint(args.checkpoint)
    if data_info is None:
        raise ValueError(
            f"{args.checkpoint} has no dataset information (class names, normalisation); "
            "predict needs a checkpoint written by 'cnnzoo train'"
        )
    images = torch.stack([_read_image(p, model.in_channels, data_info) for p in args.images])
    dataset = ImageTensorDataset(
        images,
        torch.zeros(len(images), dtype=torch.long),
        data_info["classes"],
        data_info["mean"],
        data_info["std"],
    )
    probabilities = predict(model, dataset).softmax(dim=1)
    top = min(args.top, probabilities.shape[1])
    for path, row in zip(args.images, probabilities, strict=True):
        values, indices = row.topk(top)
        ranked = ", ".join(
            f"{data_info['classes'][i]} {v:.3f}"
            for v, i in zip(values.tolist(), indices.tolist(), strict=True)
        )
        print(f"{path}: {ranked}")


def _read_image(path: Path, channels: int, data_info: dict[str, Any]) -> torch.Tensor:
    """Read an image file as ``uint8 (C, H, W)`` at the model's training size and channels."""
    from PIL import Image, UnidentifiedImageError
    from torchvision.transforms.v2.functional import pil_to_tensor, resize

    if not path.is_file():
        raise FileNotFoundError(f"no image file at {path}")
    if channels not in (1, 3):
        raise ValueError(f"predict reads grey or RGB images; this model takes {channels} channels")
    try:
        with Image.open(path) as image:
            tensor = pil_to_tensor(image.convert("L" if channels == 1 else "RGB"))
    except (UnidentifiedImageError, OSError) as error:
        raise ValueError(f"{path} is not an image file that can be read ({error})") from None
    return resize(tensor, list(data_info["image_size"]), antialias=True)
