"""``cnnzoo eval`` and ``cnnzoo predict``: run a trained checkpoint on a dataset or on images."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import torch

from .browse import positive_int

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
    p.add_argument(
        "--image-size", type=positive_int, default=None, help="ImageFolder: resize to this"
    )
    p.add_argument("--device", default="auto")
    p.set_defaults(run=_cmd_eval)

    p = sub.add_parser("predict", help="classify image files with a checkpoint")
    p.add_argument("checkpoint", type=Path)
    p.add_argument("images", nargs="+", type=Path)
    p.add_argument("--top", type=positive_int, default=3, help="how many classes to show per image")
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
    return model, (None if raw is None else _data_info(raw, path))


def _data_info(raw: str, path: Path) -> dict[str, Any]:
    """The dataset record ``cnnzoo train`` stored in a checkpoint, checked field by field."""
    try:
        info = json.loads(raw)
    except (json.JSONDecodeError, RecursionError):
        info = None
    problem = None
    if not isinstance(info, dict):
        problem = "it is not a JSON object"
    elif not _strings(info.get("classes")):
        problem = "'classes' is not a list of class names"
    elif not all(_numbers(info.get(key), nonzero=key == "std") for key in ("mean", "std")):
        problem = "'mean' or 'std' is not a list of numbers (std non-zero)"
    elif not (_numbers(info.get("image_size"), nonzero=True) and len(info["image_size"]) == 2):
        problem = "'image_size' is not [height, width]"
    if problem is not None:
        raise ValueError(
            f"{path} has a corrupted {METADATA_KEY} record in its metadata ({problem}); "
            "re-train, or write the checkpoint again with 'cnnzoo train'"
        )
    return info


def _strings(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, str) for v in value)


def _numbers(value: Any, nonzero: bool = False) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(
            isinstance(v, int | float) and not isinstance(v, bool) and (v > 0 or not nonzero)
            for v in value
        )
    )


def _cmd_eval(args: argparse.Namespace) -> None:
    from ..data import load_dataset
    from ..training import evaluate

    model, data_info = _load_checkpoint(args.checkpoint)
    data = load_dataset(args.data, args.split, args.data_root, image_size=args.image_size)
    trained_on = data_info["classes"] if data_info else None
    if trained_on is not None and trained_on != data.classes:
        raise ValueError(
            f"{args.checkpoint} was trained on the classes {trained_on}, but {args.data} has "
            f"{data.classes}: labels would be compared by position and mean other classes. "
            "Evaluate on data with the same classes"
        )
    metrics = evaluate(model, data, device=args.device)
    if len(metrics["per_class_accuracy"]) != len(data.classes):
        raise ValueError(
            f"{args.checkpoint} predicts {len(metrics['per_class_accuracy'])} classes, but "
            f"{args.data} has {len(data.classes)}: evaluate it on data with its classes"
        )
    print_metrics(metrics, data.classes)


def _cmd_predict(args: argparse.Namespace) -> None:
    from ..data import ImageTensorDataset
    from ..training import predict

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

    if not path.exists():
        raise FileNotFoundError(f"no image file at {path}")
    if not path.is_file():
        raise ValueError(f"{path} is not a regular file (a directory, FIFO, device or socket)")
    if channels not in (1, 3):
        raise ValueError(f"predict reads grey or RGB images; this model takes {channels} channels")
    try:
        with Image.open(path) as image:
            tensor = pil_to_tensor(image.convert("L" if channels == 1 else "RGB"))
    except Image.DecompressionBombError as error:
        raise ValueError(
            f"{path} was refused as a possible decompression bomb ({error}); if you trust it, "
            "resize it first"
        ) from None
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise ValueError(f"{path} is not an image file that can be read ({error})") from None
    return resize(tensor, list(data_info["image_size"]), antialias=True)
