"""``cnnzoo train``: train a model on a dataset and write checkpoints, pictures and metrics.

Every checkpoint ``train`` writes (``model.safetensors``, ``best.safetensors``, the resumable
``state/``) holds the weights, the model configuration and the model's data configuration: the
class names, normalisation and image size ``fit`` trained with. A later ``eval`` or ``predict``
needs nothing else. The pictures: the learning curves, the test confusion matrix and a grid of
misclassified test images.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import torch

from ..augmentation import AUGMENT_NAMES
from ..training.alert_words import cli_wording
from ..training.arguments import DEFAULT_EPOCHS
from ..training.budget import DEFAULT_BATCH_SIZE, MIN_STEPS, SMALLEST_BATCH_SIZE
from .browse import add_model_options, positive_int, positive_number
from .errors import CommandError
from .inference import DATA_HELP, DATA_ROOT_HELP, DEVICE_HELP, METADATA_KEY, print_metrics
from .options import add_in_memory_option, in_memory_choice, report_placement

__all__ = ["add_training_commands"]

LOG_FILE = "log.csv"
# cnnzoo.training.precision.PRECISIONS, written out: the CLI imports training only to train.
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
# fit's default batch size, as --batch-size of train and compare says it.
BATCH_SIZE_HELP = (
    f"samples per step (default: {DEFAULT_BATCH_SIZE} while that leaves at least {MIN_STEPS} "
    f"optimizer steps, else smaller, down to {SMALLEST_BATCH_SIZE}; {SMALLEST_BATCH_SIZE} for a "
    "model with no training recipe)"
)
WEIGHTS_HELP = "start from these weights: 'imagenet' (torchvision's) or a .safetensors / .pth file"


LOSSES = ("cross-entropy", "label-smoothing")
# --loss label-smoothing without --label-smoothing: the smoothing of Szegedy et al. (2016).
DEFAULT_SMOOTHING = 0.1
DEFAULT_EMA = 0.999


def add_training_commands(sub: argparse._SubParsersAction) -> None:
    """Add ``train`` to the ``cnnzoo`` parser."""
    p = sub.add_parser("train", help="train a model and write checkpoint, curves and metrics")
    p.add_argument("name", help="registered model name, e.g. mini_resnet")
    p.add_argument("--data", required=True, help=DATA_HELP)
    p.add_argument("--data-root", default=None, help=DATA_ROOT_HELP)
    p.add_argument("--out", required=True, type=Path, help="output directory")
    p.add_argument("--weights", default=None, help=WEIGHTS_HELP)
    p.add_argument(
        "--epochs", type=positive_int, default=DEFAULT_EPOCHS, help="passes over the training data"
    )
    p.add_argument(
        "--batch-size",
        type=positive_int,
        default=None,
        help=BATCH_SIZE_HELP,
    )
    p.add_argument("--accumulate", type=positive_int, default=1, help="batches per optimizer step")
    p.add_argument(
        "--lr",
        type=positive_number(hint=" (leave --lr out for the model's recipe)"),
        default=None,
        help="peak learning rate (None: the model's training recipe; see cnnzoo info NAME)",
    )
    p.add_argument(
        "--optimizer", default="adamw", choices=["adamw", "adam", "sgd"], help="optimizer"
    )
    p.add_argument(
        "--schedule",
        default="onecycle",
        choices=["onecycle", "cosine", "plateau", "none"],
        help="learning-rate schedule",
    )
    p.add_argument(
        "--warmup",
        type=_warmup,
        default=None,
        help="linear warm-up: a fraction of the steps (0.05) or a number of steps (500)",
    )
    p.add_argument("--loss", default="cross-entropy", choices=LOSSES, help="training loss")
    p.add_argument(
        "--label-smoothing",
        type=float,
        default=None,
        help=f"label smoothing in [0, 1); None: 0, or {DEFAULT_SMOOTHING} with --loss "
        "label-smoothing",
    )
    p.add_argument("--grad-clip", type=float, default=None, help="clip gradients to this L2 norm")
    p.add_argument(
        "--ema",
        type=float,
        nargs="?",
        const=DEFAULT_EMA,
        default=None,
        metavar="DECAY",
        help=f"validate and keep a moving average of the weights (--ema alone: {DEFAULT_EMA})",
    )
    p.add_argument(
        "--augment",
        nargs="*",
        default=None,
        choices=AUGMENT_NAMES,
        metavar="NAME",
        help=f"batch augmentations, in order: {', '.join(AUGMENT_NAMES)}",
    )
    p.add_argument("--mixup", type=float, default=0.0, metavar="ALPHA", help="mixup's alpha")
    p.add_argument("--cutmix", type=float, default=0.0, metavar="ALPHA", help="CutMix's alpha")
    p.add_argument(
        "--drop-path-rate",
        type=float,
        default=0.0,
        metavar="RATE",
        help="stochastic depth: drop rate of the deepest residual block",
    )
    p.add_argument("--val", type=_share, default=0.1, help="share of train held out (0 for none)")
    p.add_argument("--patience", type=positive_int, default=None, help="early-stopping patience")
    p.add_argument(
        "--image-size",
        type=positive_int,
        default=None,
        help="resize the images to this side, as predict resizes a file",
    )
    add_in_memory_option(p)
    p.add_argument("--device", default="auto", help=DEVICE_HELP)
    p.add_argument("--precision", default="auto", choices=PRECISIONS, help="autocast precision")
    p.add_argument("--workers", type=int, default=None, help="DataLoader workers (None: auto)")
    p.add_argument(
        "--seed", type=int, default=0, help="seed of the model's initialisation and the run"
    )
    p.add_argument("--log-dir", type=Path, default=None, help="write TensorBoard events here")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run in --out")
    add_model_options(p)
    p.set_defaults(run=_cmd_train)


def _share(text: str) -> float:
    """An ``argparse`` type: a share in [0, 1) (``--val``)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number in [0, 1), got {text!r}") from None
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {value}")
    return value


def _warmup(text: str) -> float | int:
    """``--warmup``: a fraction ("0.05") or a number of steps ("500")."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is neither a fraction (0.05) nor a number of steps (500)"
        ) from None


def _label_smoothing(args: argparse.Namespace) -> float:
    """The smoothing that --loss and --label-smoothing ask for together."""
    if args.loss == "label-smoothing":
        if args.label_smoothing == 0:
            raise ValueError("--loss label-smoothing needs --label-smoothing > 0 (or leave it out)")
        return DEFAULT_SMOOTHING if args.label_smoothing is None else args.label_smoothing
    return args.label_smoothing or 0.0


def _loggers(args: argparse.Namespace) -> list[Any]:
    """A CSV row per epoch in --out (always), TensorBoard events in --log-dir (when asked)."""
    from ..training import CSVLogger, TensorBoardLogger

    loggers: list[Any] = [CSVLogger(args.out / LOG_FILE)]
    if args.log_dir is not None:
        try:
            loggers.append(TensorBoardLogger(args.log_dir))
        except ImportError as error:
            raise CommandError(f"--log-dir: {error}") from None
    return loggers


def _cmd_train(args: argparse.Namespace) -> None:
    from .. import checkpoint, training
    from ..checkpoint._io import write_json_atomic
    from ..data import load_dataset
    from ..devices import resolve_device
    from ..models import get
    from ..models.registry import lookup
    from ..training.arguments import FitConfig
    from ..training.outputs import check_writable

    fit_options = {
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "optimizer": args.optimizer,
        "lr": args.lr,
        "schedule": None if args.schedule == "none" else args.schedule,
        "label_smoothing": _label_smoothing(args),
        "augment": args.augment or None,
        "mixup": args.mixup,
        "cutmix": args.cutmix,
        "drop_path_rate": args.drop_path_rate,
        "precision": args.precision,
        "num_workers": args.workers,
        "grad_clip": args.grad_clip,
        "accumulate": args.accumulate,
        "ema": args.ema,
        "warmup": args.warmup,
        "seed": args.seed,
        "patience": args.patience,
        "checkpoint": args.out / "best.safetensors" if args.val else None,
        "monitor": "val_accuracy" if args.val else "loss",
        "restore_best": bool(args.val),
        "checkpoint_dir": args.out / "state",
        "resume": args.resume,
    }
    # Everything that can be refused is refused before the data is read: the options, the
    # output folder (writable? another run's state in it?), the device, the data's layout.
    if args.out.exists() and not args.out.is_dir():
        raise ValueError(f"--out {args.out} is a file; pass a directory for the run's outputs")
    check_writable(args.out, "--out")
    if args.log_dir is not None:
        check_writable(args.log_dir, "--log-dir")
    FitConfig(**fit_options)
    lookup(args.name)  # an unknown model, with the closest names
    resolve_device(args.device)
    _check_splits(args.data)
    reading = {"image_size": args.image_size, "in_memory": in_memory_choice(args)}
    train = load_dataset(args.data, "train", args.data_root, **reading)
    report_placement(train, "train")
    test = load_dataset(args.data, "test", args.data_root, **reading)
    report_placement(test, "test")
    channels = train.channels
    options = {"small_input": True} if args.small_input else {}
    if args.weights is not None:
        options["weights"] = args.weights
    num_classes = args.num_classes or len(train.classes)
    # Seeded before the model is built, so its initialisation repeats too (--seed).
    torch.manual_seed(args.seed)
    model = get(args.name, num_classes=num_classes, in_channels=channels, **options)

    args.out.mkdir(parents=True, exist_ok=True)
    callbacks = _loggers(args)
    history = training.fit(
        model, train, args.val or None, device=args.device, callbacks=callbacks, **fit_options
    )
    metrics = training.evaluate(model, test, device=args.device, precision=args.precision)
    data_info = {"dataset": str(args.data), "test_accuracy": metrics["accuracy"]}
    model_path = checkpoint.save(
        model, args.out / "model.safetensors", metadata={METADATA_KEY: json.dumps(data_info)}
    )
    write_json_atomic(args.out / "history.json", history.history)
    report = {
        **_jsonable(metrics),
        "lr": history.params["lr"],
        "lr_source": history.params["lr_source"],
        "batch_size": history.params["batch_size"],
        "batch_size_source": history.params["batch_size_source"],
    }
    report["alerts"] = history.alerts  # a blow-up, collapse or stall fit saw (none: [])
    write_json_atomic(args.out / "metrics.json", report)
    predicted = training.predict(model, test, device=args.device).argmax(1)
    pictures = _pictures(args, history, metrics, test, predicted)
    print_metrics(metrics, train.classes)
    for alert in history.alerts:  # warned during training too; repeated where it is read last
        print(f"cnnzoo: warning: {cli_wording(alert['message'])}")
    print(f"wrote checkpoint {model_path}{pictures}")


def _pictures(
    args: argparse.Namespace,
    history: Any,
    metrics: dict[str, Any],
    test: Any,
    predicted: torch.Tensor,
) -> str:
    """Write the curves, the confusion matrix and the mistakes; say what was written."""
    from ..training.figures import plot_confusion_matrix, plot_misclassified

    run = f"{args.name} on {args.data}"
    try:
        history.plot(args.out / "curves.png", title=run)
        written = ["curves.png"]
        plot_confusion_matrix(
            metrics["confusion_matrix"],
            test.classes,
            args.out / "confusion_matrix.png",
            title=f"{run}: test confusion matrix (accuracy {metrics['accuracy']:.4f})",
        )
        written.append("confusion_matrix.png")
        mistakes = (predicted != test.labels).nonzero().flatten()
        first = mistakes[:32]  # only these are read: a streamed test split stays on disk
        images = _pixels(test, first)
        shown = plot_misclassified(
            images,
            predicted[first],
            test.labels[first],
            test.classes,
            args.out / "misclassified.png",
            title=f"{run}: misclassified test images (the first 32 of {len(mistakes)})",
        )
        if shown:
            written.append("misclassified.png")
    except ImportError as error:
        return f" (no pictures: {error})"
    return f", pictures {', '.join(written)} in {args.out}"


def _pixels(data: Any, indices: torch.Tensor) -> torch.Tensor:
    """The ``uint8`` pixels of some images of a dataset in memory or streamed from disk."""
    if hasattr(data, "images"):
        return data.images[indices]
    if len(indices) == 0:
        return torch.zeros((0, data.channels, *data.image_size), dtype=torch.uint8)
    return torch.stack([data.pixels(int(i)) for i in indices])


def _check_splits(data: str) -> None:
    """An ImageFolder needs train/ and test/ folders: checked before any image is read."""
    from ..data.folder import split_folder

    if Path(data).is_dir():
        for split in ("train", "test"):
            split_folder(Path(data), split)


def _jsonable(metrics: dict[str, Any]) -> dict[str, Any]:
    return {k: v.tolist() if isinstance(v, torch.Tensor) else v for k, v in metrics.items()}
