"""``cnnzoo list``, ``cnnzoo info`` and ``cnnzoo summary``: looking at the zoo without training."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

from .errors import CommandError

__all__ = ["add_browse_commands", "add_model_options", "positive_int", "positive_number"]


def positive_int(text: str) -> int:
    """An ``argparse`` type: an integer >= 1 (``--epochs 0`` is refused before anything runs)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {value}")
    return value


def positive_number(what: str = "number", hint: str = "") -> Callable[[str], float]:
    """An ``argparse`` type: a finite number above 0 (``--lr``, ``--time-budget``).

    Args:
        what: The number in words, for the error ("number of seconds").
        hint: Said after a refused value, e.g. what leaving the option out does.
    """

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a {what}, got {text!r}") from None
        if not (math.isfinite(value) and value > 0):
            raise argparse.ArgumentTypeError(f"must be a finite {what} above 0, got {text}{hint}")
        return value

    return parse


def add_model_options(parser: argparse.ArgumentParser) -> None:
    """Add the model-building options shared by ``summary`` and ``train``."""
    parser.add_argument("--num-classes", type=positive_int, default=None, help="number of classes")
    parser.add_argument(
        "--small-input",
        action="store_true",
        help="adapt an ImageNet model's stem to 28x28 / 32x32 images",
    )


def add_browse_commands(sub: argparse._SubParsersAction) -> None:
    """Add ``list``, ``info`` and ``summary`` to the ``cnnzoo`` parser."""
    p = sub.add_parser("list", help="list the registered models")
    p.add_argument("pattern", nargs="?", default="*", help="fnmatch pattern, e.g. 'resnet*'")
    p.add_argument(
        "--weights",
        action="store_true",
        help="list cnnzoo's own shipped weights (get_model(name, weights=TAG)) instead",
    )
    p.set_defaults(run=_cmd_list)

    p = sub.add_parser("info", help="describe one model")
    p.add_argument("name", help="registered model name, e.g. resnet18 (see cnnzoo list)")
    p.set_defaults(run=_cmd_info)

    p = sub.add_parser("summary", help="layer-by-layer table of one model")
    p.add_argument("name", help="registered model name, e.g. lenet5 (see cnnzoo list)")
    p.add_argument(
        "--input-size",
        type=positive_int,
        nargs=3,
        metavar=("C", "H", "W"),
        help="one image's size",
    )
    add_model_options(p)
    p.set_defaults(run=_cmd_summary)


def _cmd_list(args: argparse.Namespace) -> None:
    from ..models import info, list_models

    names = list_models(args.pattern)
    if not names:
        raise CommandError(f"no model matches {args.pattern!r}; try 'cnnzoo list' for all")
    if args.weights:
        _list_weights([w for name in names for w in info(name).weights])
        return
    width = max(len(n) for n in names) + 2
    print(f"{'name':<{width}}{'params':>14}  {'input':<12}family")
    for name in names:
        meta = info(name)
        size = _size(meta.input_size)
        print(f"{name:<{width}}{_count(meta.num_params):>14}  {size:<12}{meta.family}")


def _list_weights(found: list) -> None:
    """One line per shipped set of weights: what it scores, how it was made, its digest."""
    if not found:
        print("no shipped weights match; 'cnnzoo list --weights' lists them all")
        return
    width = max(len("name"), *(len(w.model) for w in found)) + 2  # a gap after the longest
    print(
        f"{'name':<{width}}{'weights':<15}{'test acc':>9}{'epochs':>7}{'train':>9}"
        f"{'params':>10}{'MACs':>12}  sha256        recipe (fit arguments)"
    )
    for w in found:
        recipe = ", ".join(f"{k}={v!r}" for k, v in w.recipe.items())
        print(
            f"{w.model:<{width}}{w.tag:<15}{w.test_accuracy:>9.4f}{w.epochs:>7}"
            f"{w.train_seconds:>8.0f}s{w.num_params:>10,}{w.macs:>12,}  {w.sha256[:12]}  {recipe}"
        )
    print("accuracy on the whole test split; trained on:", found[0].machine)


def _size(size: tuple[int, ...] | None) -> str:
    """``3x224x224``, or ``unknown`` for a model that does not state it."""
    return "x".join(map(str, size)) if size else "unknown"


def _count(number: int | None) -> str:
    """``11,689,512``, or ``unknown`` (a lazy layer not yet built)."""
    return f"{number:,}" if number is not None else "unknown"


def _cmd_info(args: argparse.Namespace) -> None:
    from ..models import info

    meta = info(args.name)
    minimum = _size(meta.min_input_size)
    rows = [
        ("name", meta.name),
        ("description", meta.description),
        ("family", meta.family),
        ("parameters", f"{_count(meta.num_params)} (at {meta.num_classes} classes)"),
        ("input size", _size(meta.input_size) + " (C x H x W)"),
        ("minimum input", minimum + (" (fixed size)" if meta.fixed_input_size else "")),
        ("classes", str(meta.num_classes)),
        ("in_channels", str(meta.in_channels)),
        ("source", meta.source),
        ("paper", meta.paper),
        ("training", _recipe(meta.recipe)),
        ("weights", _weights(meta.weights)),
    ]
    for key, value in rows:
        print(f"{key + ':':<15}{value}")


def _recipe(recipe: object) -> str:
    """What ``fit`` trains the model with by default."""
    from ..training.budget import DEFAULT_BATCH_SIZE, MIN_STEPS, SMALLEST_BATCH_SIZE
    from ..training.recipes import FALLBACK_LR

    lr, source = getattr(recipe, "lr", None), getattr(recipe, "source", "")
    if lr is None:
        return (
            f"no registered recipe: fit's default peak lr {FALLBACK_LR:g} at batch "
            f"{SMALLEST_BATCH_SIZE} (AdamW, one-cycle)"
        )
    text = f"fit's default peak lr {lr:g} (AdamW, one-cycle): {source}"
    short = getattr(recipe, "short_runs", None)
    if short is not None:
        text += (
            f"; a run under {MIN_STEPS} steps at batch {DEFAULT_BATCH_SIZE}: peak lr "
            f"{short.lr:g}, the batch halved towards {short.min_steps} steps (down to "
            f"{short.smallest_batch}): {short.source}"
        )
    return text


def _weights(weights: tuple) -> str:
    """The shipped weights, with their accuracy, or how to get weights without them."""
    if not weights:
        return "none shipped (weights= takes 'imagenet' where torchvision has them, or a file)"
    return "; ".join(
        f"{w.tag!r}: test accuracy {w.test_accuracy:.4f} ({w.epochs} epochs)" for w in weights
    )


def _cmd_summary(args: argparse.Namespace) -> None:
    from ..models import get
    from ..summarize import summary

    options = {"small_input": True} if args.small_input else {}
    in_channels = args.input_size[0] if args.input_size else None
    model = get(args.name, num_classes=args.num_classes, in_channels=in_channels, **options)
    print(summary(model, args.input_size))
