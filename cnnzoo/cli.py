"""The ``cnnzoo`` command: list, inspect, train, evaluate and run the zoo's models.

Every expected failure (unknown model, missing data, bad checkpoint) prints one line starting with
``cnnzoo: error:`` and exits with status 2; tracebacks are for bugs only.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

__all__ = ["main"]

EXIT_USAGE = 2


class _CommandError(Exception):
    """An expected failure, reported as one line."""


def _cmd_list(args: argparse.Namespace) -> None:
    from .models import info, list_models

    names = list_models(args.pattern)
    if not names:
        raise _CommandError(f"no model matches {args.pattern!r}; try 'cnnzoo list' for all")
    width = max(len(n) for n in names) + 2
    print(f"{'name':<{width}}{'params':>14}  {'input':<12}family")
    for name in names:
        meta = info(name)
        size = "x".join(map(str, meta.input_size))
        print(f"{name:<{width}}{meta.num_params:>14,}  {size:<12}{meta.family}")


def _cmd_info(args: argparse.Namespace) -> None:
    from .models import info

    meta = info(args.name)
    minimum = "x".join(map(str, meta.min_input_size))
    rows = [
        ("name", meta.name),
        ("description", meta.description),
        ("family", meta.family),
        ("parameters", f"{meta.num_params:,} (at {meta.num_classes} classes)"),
        ("input size", "x".join(map(str, meta.input_size)) + " (C x H x W)"),
        ("minimum input", minimum + (" (fixed size)" if meta.fixed_input_size else "")),
        ("classes", str(meta.num_classes)),
        ("in_channels", str(meta.in_channels)),
        ("source", meta.source),
        ("paper", meta.paper),
    ]
    for key, value in rows:
        print(f"{key + ':':<15}{value}")


def _cmd_summary(args: argparse.Namespace) -> None:
    from .models import get
    from .summarize import summary

    options = {"small_input": True} if args.small_input else {}
    in_channels = args.input_size[0] if args.input_size else None
    model = get(args.name, num_classes=args.num_classes, in_channels=in_channels, **options)
    print(summary(model, args.input_size))


def _add_model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--num-classes", type=int, default=None, help="number of classes")
    parser.add_argument(
        "--small-input",
        action="store_true",
        help="adapt an ImageNet model's stem to 28x28 / 32x32 images",
    )


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser (exposed for the docs and the tests)."""
    parser = argparse.ArgumentParser(
        prog="cnnzoo", description="The classic CNNs in PyTorch: list, inspect, train, evaluate."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("list", help="list the registered models")
    p.add_argument("pattern", nargs="?", default="*", help="fnmatch pattern, e.g. 'resnet*'")
    p.set_defaults(run=_cmd_list)

    p = sub.add_parser("info", help="describe one model")
    p.add_argument("name")
    p.set_defaults(run=_cmd_info)

    p = sub.add_parser("summary", help="layer-by-layer table of one model")
    p.add_argument("name")
    p.add_argument(
        "--input-size", type=int, nargs=3, metavar=("C", "H", "W"), help="one image's size"
    )
    _add_model_options(p)
    p.set_defaults(run=_cmd_summary)

    from ._cli_train import add_training_commands

    add_training_commands(sub, _add_model_options)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``cnnzoo`` command.

    Args:
        argv: Arguments without the program name; defaults to ``sys.argv[1:]``.

    Returns:
        The exit status: 0 on success, 2 on an expected error.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.run(args)
    except (_CommandError, ValueError, OSError, RuntimeError, FloatingPointError) as error:
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        print(f"cnnzoo: error: {message}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("cnnzoo: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
