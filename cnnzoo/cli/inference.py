"""``cnnzoo eval`` and ``cnnzoo predict``: run a trained checkpoint on a dataset or on images.

Both take any cnnzoo checkpoint: a ``.safetensors`` file written by ``cnnzoo.save`` (``cnnzoo
train``'s ``model.safetensors`` and ``best.safetensors`` included) or a ``save_pretrained``
folder. The model's data configuration, recorded in it, says how to read the images.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any, cast

import torch

from .._files import loads_json
from .browse import positive_int
from .errors import CommandError
from .options import add_in_memory_option, in_memory_choice, report_placement

__all__ = [
    "DATA_HELP",
    "DATA_ROOT_HELP",
    "DEVICE_HELP",
    "METADATA_KEY",
    "add_inference_commands",
    "load_checkpoint",
    "print_metrics",
]

DATA_HELP = "fashion-mnist, mnist, cifar10, or an ImageFolder directory (train/ and test/)"
DATA_ROOT_HELP = "directory to look for (or download) data"
DEVICE_HELP = "auto (cuda, mps, cpu), or a torch device"
CHECKPOINT_HELP = "a .safetensors file (model or best) or a save_pretrained folder"
# The safetensors metadata key under which `cnnzoo train` records the dataset it trained on
# (earlier versions also stored the class names, mean, std and image size there).
METADATA_KEY = "cnnzoo_data"


def add_inference_commands(sub: argparse._SubParsersAction) -> None:
    """Add ``eval`` and ``predict`` to the ``cnnzoo`` parser."""
    p = sub.add_parser(
        "eval", aliases=["evaluate"], help="evaluate a checkpoint on a dataset's test split"
    )
    p.add_argument("checkpoint", type=Path, help=CHECKPOINT_HELP)
    p.add_argument("--data", required=True, help=DATA_HELP)
    p.add_argument("--data-root", default=None, help=DATA_ROOT_HELP)
    p.add_argument(
        "--split", default="test", choices=["train", "test"], help="the split to evaluate on"
    )
    p.add_argument(
        "--image-size",
        type=positive_int,
        default=None,
        help="resize the images to this side, as predict resizes a file",
    )
    add_in_memory_option(p)
    p.add_argument("--device", default="auto", help=DEVICE_HELP)
    p.set_defaults(run=_cmd_eval)

    p = sub.add_parser("predict", help="classify image files with a checkpoint")
    p.add_argument("checkpoint", type=Path, help=CHECKPOINT_HELP)
    p.add_argument(
        "images", nargs="+", type=Path, help="image files (PNG, JPEG, ...), resized as in training"
    )
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

    _, metadata = read_state_dict(path)
    raw = metadata.get(METADATA_KEY)
    if raw is None:
        return
    info = _data_info(raw, path)  # checked even when not needed: a corrupted record is named
    config = getattr(model, "pretrained_cfg", None)
    if config is None or config.mean is not None:
        return
    if not {"mean", "std", "classes", "image_size"} <= set(info):
        return
    names = tuple(info["classes"])
    channels = config.channels or len(info["mean"])
    model.pretrained_cfg = config.replace(
        input_size=(channels, *info["image_size"]),
        mean=info["mean"],
        std=info["std"],
        label_names=names if len(names) == config.num_classes else None,
    )


def _data_info(raw: str, path: Path) -> dict[str, Any]:
    """The dataset record ``cnnzoo train`` stored in a checkpoint, checked field by field.

    Current versions record the dataset and the test accuracy; earlier ones also the class
    names, mean, std and image size. Whatever is there must be well formed.
    """
    try:
        info = loads_json(raw)  # bounded depth and numbers, as every JSON read back
    except ValueError:
        info = None
    problem = None
    if not isinstance(info, dict):
        problem = "it is not a JSON object"
    elif "classes" in info and not _strings(info["classes"]):
        problem = "'classes' is not a list of class names"
    elif not all(
        _numbers(info[key], nonzero=key == "std") for key in ("mean", "std") if key in info
    ):
        problem = "'mean' or 'std' is not a list of numbers (std non-zero)"
    elif "image_size" in info and not (
        _numbers(info["image_size"], nonzero=True) and len(info["image_size"]) == 2
    ):
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

    model = load_checkpoint(args.checkpoint)
    data = load_dataset(
        args.data,
        args.split,
        args.data_root,
        image_size=args.image_size,
        in_memory=in_memory_choice(args),
    )
    report_placement(data, args.split)
    data = as_the_checkpoint_reads(model, data, args.checkpoint, args.data, args.split)
    metrics = evaluate(model, data, device=args.device)
    if len(metrics["per_class_accuracy"]) != len(data.classes):
        raise ValueError(
            f"{args.checkpoint} predicts {len(metrics['per_class_accuracy'])} classes, but "
            f"{args.data} has {len(data.classes)}: evaluate it on data with its classes"
        )
    print_metrics(metrics, data.classes)


def as_the_checkpoint_reads(
    model: torch.nn.Module, data: Any, checkpoint: Path, source: str, split: str
) -> Any:
    """Labelled data as a checkpoint reads it: grey for a grey model, its classes matched.

    Raises:
        ValueError: The data's classes are not the checkpoint's, even matched by name.
    """
    data = grey_for_a_grey_model(model, data, checkpoint, source, split)
    names = getattr(getattr(model, "pretrained_cfg", None), "label_names", None)
    trained_on = list(names) if names else None
    if trained_on is None or trained_on == data.classes:
        return data
    data = _classes_matched_by_name(data, trained_on, checkpoint, source, split)
    if trained_on != data.classes:
        raise ValueError(
            f"{checkpoint} was trained on the classes {trained_on}, but {source} has "
            f"{data.classes}: not the same classes, even compared by name without case or "
            "punctuation. Evaluate on data with its classes"
        )
    return data


def _folder_form(name: str) -> str:
    """A class name as a folder may spell it: "T-shirt/top" cannot be a folder's name."""
    return re.sub(r"[\W_]+", "", name.casefold())


def _classes_matched_by_name(
    data: Any, trained_on: list[str], checkpoint: Path, source: str, split: str
) -> Any:
    """The data with its labels renumbered to the checkpoint's classes, matched by name.

    A folder's classes come in alphabetical order, and a name with a slash (Fashion-MNIST's
    "T-shirt/top") is written as "T-shirt_top" or "tshirt-top": names are compared without
    case or punctuation. Data whose classes do not match one to one is returned as it is.
    """
    from ..data import ImageTensorDataset

    wanted = {_folder_form(name): index for index, name in enumerate(trained_on)}
    given = [_folder_form(name) for name in data.classes]
    if len(wanted) != len(trained_on) or sorted(given) != sorted(wanted):
        return data
    if not isinstance(data, ImageTensorDataset):
        raise CommandError(
            f"{source} names the classes of {checkpoint} in another order or spelling, and its "
            "images are streamed from disk: pass --in-memory yes to hold them in memory, where "
            "their labels are matched to the checkpoint's by name"
        )
    order = torch.tensor([wanted[name] for name in given])
    print(f"{split} classes of {source} matched to {checkpoint}'s by name")
    return ImageTensorDataset(
        data.images, order[data.labels], trained_on, list(data.mean), list(data.std)
    )


def grey_for_a_grey_model(
    model: torch.nn.Module, data: Any, checkpoint: Path, source: str, split: str
) -> Any:
    """A folder's images (read as RGB) made grey for a model of grey images, as predict reads.

    A Fashion-MNIST checkpoint scored on a folder of its kind of pictures (or calibrated on
    one for int8): the files may be grey or colour, the folder reads them as RGB, the model
    takes one channel.
    """
    from ..data import ImageTensorDataset, as_grey

    channels = getattr(getattr(model, "pretrained_cfg", None), "channels", None)
    if channels != 1 or getattr(data, "channels", None) != 3:
        return data
    if not isinstance(data, ImageTensorDataset):
        raise CommandError(
            f"{checkpoint} takes grey images, and the images of {source} are streamed from "
            "disk as RGB: pass --in-memory yes to hold them in memory, where they are made grey"
        )
    print(f"{split} images of {source} made grey: {checkpoint} takes 1 channel")
    return as_grey(data)


def _cmd_predict(args: argparse.Namespace) -> None:
    from ..training import classify

    model = load_checkpoint(args.checkpoint)
    for path in args.images:  # every file checked before the model reads any
        if not path.is_file():
            raise FileNotFoundError(f"no image file at {path}")
    # a list of images gets one ranking per image
    ranked = cast(
        list[list[dict[str, Any]]],
        classify(model, [str(p) for p in args.images], top_k=args.top),
    )
    for path, classes in zip(args.images, ranked, strict=True):
        shown = ", ".join(f"{c['label']} {c['score']:.3f}" for c in classes)
        print(f"{path}: {shown}")
