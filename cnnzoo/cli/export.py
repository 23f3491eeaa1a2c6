"""``cnnzoo export``: a checkpoint as an ONNX, TorchScript or ``torch.export`` artifact.

The artifact carries the model's data contract, is checked against the eager model before it
is written, and can be int8 (ONNX Runtime's static quantization, calibrated on a dataset).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .browse import positive_int
from .errors import CommandError
from .inference import (
    CHECKPOINT_HELP,
    DATA_HELP,
    as_the_checkpoint_reads,
    grey_for_a_grey_model,
    load_checkpoint,
)

__all__ = ["add_export_command"]

EXAMPLES = """\
examples:
  cnnzoo export runs/lenet5/model.safetensors --out lenet5.onnx --bake-normalization
  cnnzoo export runs/mini_resnet/model.safetensors --out mini_resnet-int8.onnx --int8 \\
      --calibration fashion-mnist --test fashion-mnist
  cnnzoo export runs/lenet5/model.safetensors --format exported-program --out lenet5.pt2"""


def add_export_command(sub: argparse._SubParsersAction) -> None:
    """Add ``export`` to the ``cnnzoo`` parser."""
    from ..deploy.formats import FORMATS

    p = sub.add_parser(
        "export",
        help="write a checkpoint as ONNX, TorchScript or torch.export, checked, optionally int8",
        epilog=EXAMPLES,
    )
    p.add_argument("checkpoint", type=Path, help=CHECKPOINT_HELP)
    p.add_argument("--format", choices=FORMATS, default="onnx", help="the artifact's format")
    p.add_argument("--out", type=Path, required=True, metavar="FILE", help="the file to write")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    p.add_argument(
        "--bake-normalization",
        action="store_true",
        help="put the scaling and normalisation in the graph: the artifact takes uint8 pixels",
    )
    p.add_argument(
        "--int8", action="store_true", help="quantize to int8 (ONNX Runtime, --format onnx)"
    )
    p.add_argument(
        "--calibration",
        default=None,
        metavar="DATA",
        help=f"--int8: the calibration images' train split: {DATA_HELP}",
    )
    p.add_argument(
        "--test",
        default=None,
        metavar="DATA",
        help="--int8: measure the accuracy on this test split (default: a held-out share of "
        "--calibration)",
    )
    p.add_argument(
        "--calibration-images",
        type=positive_int,
        default=256,
        metavar="N",
        help="--int8: images calibrated on",
    )
    p.add_argument("--data-root", default=None, help="where to look for the data")
    p.add_argument(
        "--tolerance",
        type=float,
        default=1e-4,
        help="largest logit difference to the eager model, relative to the largest logit",
    )
    p.add_argument(
        "--max-accuracy-drop",
        type=float,
        metavar="SHARE",
        default=0.01,
        help="--int8: the most accuracy int8 may lose (0.01: one point)",
    )
    p.set_defaults(run=_cmd_export)


def _cmd_export(args: argparse.Namespace) -> None:
    from ..deploy import MissingExtraError, export
    from ..deploy.api import check_destination
    from ..deploy.formats import check_format

    try:
        check_format(args.format)  # the cheap refusals first: before the checkpoint is read
        check_destination(args.out, args.overwrite)
        if args.int8 and args.calibration is None:
            raise CommandError("--int8 needs calibration images: add --calibration DATA")
        for option, value in (("--calibration", args.calibration), ("--test", args.test)):
            if value is not None and not args.int8:
                raise CommandError(f"{option} is for --int8 only: add --int8, or leave it out")
        model = load_checkpoint(args.checkpoint)
        calibration = _data(model, args.calibration, "train", args) if args.int8 else None
        test = _data(model, args.test, "test", args) if args.int8 and args.test else None
        report = export(
            model,
            args.out,
            args.format,
            bake_normalization=args.bake_normalization,
            int8=args.int8,
            calibration=calibration,
            test=test,
            calibration_images=args.calibration_images,
            tolerance=args.tolerance,
            max_accuracy_drop=args.max_accuracy_drop,
            overwrite=args.overwrite,
        )
    except MissingExtraError as error:
        raise CommandError(str(error)) from None
    print(report)


def _data(model: Any, name: str, split: str, args: argparse.Namespace) -> Any:
    """A dataset split at the model's input size, resized as ``predict`` resizes a file."""
    from ..data import load_dataset

    size = getattr(getattr(model, "pretrained_cfg", None), "image_size", None)
    data = load_dataset(name, split, args.data_root, image_size=size)
    if split == "test":  # scored: its labels must mean the checkpoint's classes
        return as_the_checkpoint_reads(model, data, args.checkpoint, name, split)
    return grey_for_a_grey_model(model, data, args.checkpoint, name, split)
