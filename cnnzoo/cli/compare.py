"""``cnnzoo compare``: train several models the same way on one dataset and rank them.

It writes ``leaderboard.md``, ``.csv``, ``.json``, ``pareto.png`` and each model's checkpoint
into ``--out``, with a line per model as it finishes. Run again into the same ``--out``, it keeps
the finished models and trains the rest; with other settings it is refused, with the fix.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..training.arguments import DEFAULT_EPOCHS
from .browse import positive_int, positive_number
from .inference import DATA_HELP, DATA_ROOT_HELP, DEVICE_HELP
from .options import add_in_memory_option, in_memory_choice, report_placement
from .train import BATCH_SIZE_HELP, PRECISIONS, _share

__all__ = ["add_compare_command"]


def add_compare_command(sub: argparse._SubParsersAction) -> None:
    """Add ``compare`` to the ``cnnzoo`` parser."""
    p = sub.add_parser(
        "compare", help="train several models alike on one dataset: a leaderboard with a picture"
    )
    p.add_argument(
        "models",
        nargs="+",
        help="model names and patterns ('resnet1*'), or 'auto': every model that takes the data",
    )
    p.add_argument("--data", required=True, help=DATA_HELP)
    p.add_argument("--data-root", default=None, help=DATA_ROOT_HELP)
    p.add_argument(
        "--image-size", type=positive_int, default=None, help="resize the images to this side"
    )
    add_in_memory_option(p)
    p.add_argument("--out", required=True, type=Path, help="output directory")
    budget = p.add_mutually_exclusive_group()
    budget.add_argument(
        "--epochs",
        type=positive_int,
        default=None,
        help=f"epochs per model (default: fit's, {DEFAULT_EPOCHS})",
    )
    budget.add_argument(
        "--time-budget",
        type=positive_number("number of seconds"),
        default=None,
        metavar="SECONDS",
        help="instead of --epochs: seconds of training per model (epochs planned per model "
        "from its measured step cost)",
    )
    p.add_argument("--val", type=_share, default=0.1, help="share of train held out (0 for none)")
    p.add_argument("--seed", type=int, default=0, help="seed of the split, the models and the runs")
    p.add_argument(
        "--batch-size",
        type=positive_int,
        default=None,
        help=BATCH_SIZE_HELP,
    )
    p.add_argument("--max-params", type=positive_int, default=None, help="leave out larger models")
    p.add_argument("--device", default="auto", help=DEVICE_HELP)
    p.add_argument("--precision", default="auto", choices=PRECISIONS, help="autocast precision")
    p.set_defaults(run=_cmd_compare)


def _cmd_compare(args: argparse.Namespace) -> None:
    from ..comparison import compare
    from ..comparison.store import TABLES
    from ..data import load_dataset
    from .train import _check_splits

    if args.out.exists() and not args.out.is_dir():
        raise ValueError(f"--out {args.out} is a file; pass a directory for the comparison")
    _check_splits(args.data)
    reading = {"image_size": args.image_size, "in_memory": in_memory_choice(args)}
    train = load_dataset(args.data, "train", args.data_root, **reading)
    report_placement(train, "train")
    test = load_dataset(args.data, "test", args.data_root, **reading)
    report_placement(test, "test")
    options = {} if args.batch_size is None else {"batch_size": args.batch_size}
    board = compare(
        args.models,
        train,
        test,
        val_data=args.val or None,
        epochs=args.epochs,
        time_budget=args.time_budget,
        seed=args.seed,
        device=args.device,
        out=args.out,
        max_params=args.max_params,
        precision=args.precision,
        data_name=str(args.data),
        **options,
    )
    print()
    print(board.to_markdown(), end="")
    written = [name for name in TABLES if (args.out / name).is_file()]
    if "pareto.png" not in written and board.ranked:
        written.append("no pareto.png: plots need matplotlib, pip install 'cnnzoo[plot]'")
    print(f"\nwrote {', '.join(written)} and the checkpoints in {args.out / 'models'}")
