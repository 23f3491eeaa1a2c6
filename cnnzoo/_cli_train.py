"""The training half of the ``cnnzoo`` command: ``train``, ``eval`` and ``predict``.

``train`` writes everything a later ``eval`` or ``predict`` needs into one safetensors file: the
weights, the model configuration and, in the metadata, the dataset's class names, normalisation
and image size, so a checkpoint is self-describing.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

__all__ = ["add_training_commands"]

DATA_HELP = "fashion-mnist, mnist, cifar10, or an ImageFolder directory (train/ and test/)"
_METADATA_KEY = "cnnzoo_data"


def add_training_commands(
    sub: argparse._SubParsersAction, add_model_options: Callable[[argparse.ArgumentParser], None]
) -> None:
    """Add ``train``, ``eval`` and ``predict`` to the ``cnnzoo`` parser."""
    p = sub.add_parser("train", help="train a model and write checkpoint, curves and metrics")
    p.add_argument("name", help="registered model name, e.g. mini_resnet")
    p.add_argument("--data", required=True, help=DATA_HELP)
    p.add_argument("--data-root", default=None, help="directory to look for (or download) data")
    p.add_argument("--out", required=True, type=Path, help="output directory")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=None, help="peak learning rate")
    p.add_argument("--optimizer", default="adamw", choices=["adamw", "adam", "sgd"])
    p.add_argument("--schedule", default="onecycle", choices=["onecycle", "cosine", "none"])
    p.add_argument("--label-smoothing", type=float, default=0.0)
    p.add_argument("--augment", nargs="*", default=None, help="batch augmentations: flip crop")
    p.add_argument("--val", type=float, default=0.1, help="share of train held out (0 for none)")
    p.add_argument("--patience", type=int, default=None, help="early-stopping patience")
    p.add_argument("--image-size", type=int, default=None, help="ImageFolder: resize to this")
    p.add_argument("--device", default="auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true", help="continue an interrupted run in --out")
    add_model_options(p)
    p.set_defaults(run=_cmd_train)

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


def _print_metrics(metrics: dict[str, Any], classes: list[str]) -> None:
    print(f"test accuracy: {metrics['accuracy']:.4f}   test loss: {metrics['loss']:.4f}")
    width = max(len(c) for c in classes) + 2
    print("per-class accuracy:")
    for name, accuracy in zip(classes, metrics["per_class_accuracy"].tolist(), strict=True):
        print(f"  {name:<{width}}{accuracy:.4f}")


def _cmd_train(args: argparse.Namespace) -> None:
    from . import checkpoint, training
    from .checkpoint._io import write_json_atomic
    from .data import load_dataset
    from .models import get

    if not 0 <= args.val < 1:
        raise ValueError(f"--val must be in [0, 1), got {args.val}")
    train = load_dataset(args.data, "train", args.data_root, image_size=args.image_size)
    test = load_dataset(args.data, "test", args.data_root, image_size=args.image_size)
    channels, height, width = train.images.shape[1:]
    options = {"small_input": True} if args.small_input else {}
    num_classes = args.num_classes or len(train.classes)
    model = get(args.name, num_classes=num_classes, in_channels=channels, **options)

    args.out.mkdir(parents=True, exist_ok=True)
    history = training.fit(
        model,
        train,
        args.val or None,
        epochs=args.epochs,
        batch_size=args.batch_size,
        optimizer=args.optimizer,
        lr=args.lr,
        schedule=None if args.schedule == "none" else args.schedule,
        label_smoothing=args.label_smoothing,
        augment=args.augment or None,
        device=args.device,
        seed=args.seed,
        patience=args.patience,
        checkpoint=args.out / "best.safetensors" if args.val else None,
        monitor="val_accuracy" if args.val else "loss",
        restore_best=bool(args.val),
        checkpoint_dir=args.out / "state",
        resume=args.resume,
    )
    metrics = training.evaluate(model, test, device=args.device)
    data_info = {
        "dataset": str(args.data),
        "classes": train.classes,
        "mean": list(train.mean),
        "std": list(train.std),
        "image_size": [height, width],
        "test_accuracy": metrics["accuracy"],
    }
    model_path = checkpoint.save(
        model, args.out / "model.safetensors", metadata={_METADATA_KEY: json.dumps(data_info)}
    )
    write_json_atomic(args.out / "history.json", history.history)
    write_json_atomic(args.out / "metrics.json", _jsonable(metrics))
    try:
        history.plot(args.out / "curves.png", title=f"{args.name} on {args.data}")
        curves = f", curves {args.out / 'curves.png'}"
    except ImportError as error:
        curves = f" (no curves: {error})"
    _print_metrics(metrics, train.classes)
    print(f"wrote checkpoint {model_path}{curves}")


def _jsonable(metrics: dict[str, Any]) -> dict[str, Any]:
    return {k: v.tolist() if isinstance(v, torch.Tensor) else v for k, v in metrics.items()}


def _load_checkpoint(path: Path) -> tuple[torch.nn.Module, dict[str, Any] | None]:
    from .checkpoint import read_state_dict
    from .models import load

    model = load(path)
    _, metadata = read_state_dict(path)
    raw = metadata.get(_METADATA_KEY)
    return model, (json.loads(raw) if raw else None)


def _cmd_eval(args: argparse.Namespace) -> None:
    from .data import load_dataset
    from .training import evaluate

    model, _ = _load_checkpoint(args.checkpoint)
    data = load_dataset(args.data, args.split, args.data_root, image_size=args.image_size)
    metrics = evaluate(model, data, device=args.device)
    _print_metrics(metrics, data.classes)


def _cmd_predict(args: argparse.Namespace) -> None:
    from .data import ImageTensorDataset
    from .training import predict

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
