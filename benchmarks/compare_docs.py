"""The leaderboard of docs/compare.md: ``cnnzoo.compare`` on a documented Fashion-MNIST subset.

Six models, each with its default ``fit`` recipe, on a seeded subset small enough for two
shared CPU cores: the first ``--train-samples`` images of a seeded shuffle of the 60,000
training images (10% of them held out for validation by ``compare``) and likewise
``--test-samples`` of the 10,000 test images, ``--epochs`` epochs each. The run goes into a fresh
folder (or ``--out``, to continue a killed run), its ``leaderboard.json`` is copied with the
machine's description to ``benchmarks/results/compare-<stamp>.json``, its ``pareto.png`` to
``docs/compare-pareto.png``, and the docs are rendered from it. Regenerating the page is this
one command::

    nice -n 10 python benchmarks/compare_docs.py

A smoke run (not saved): ``python benchmarks/compare_docs.py --train-samples 600
--test-samples 200 --epochs 1 --models lenet5 mini_resnet --no-save``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cnnzoo
from benchmarks import render_docs
from benchmarks._machine import machine_info, write_result
from cnnzoo.data import ImageTensorDataset, load_dataset

MODELS = ["lenet5", "mini_resnet", "mini_inception", "vgg11", "vgg11_bn", "resnet18"]
TRAIN_SAMPLES = 5000
TEST_SAMPLES = 500
EPOCHS = 3
SEED = 0
PICTURE = Path(__file__).resolve().parents[1] / "docs" / "compare-pareto.png"


def subset(data: ImageTensorDataset, count: int, seed: int) -> ImageTensorDataset:
    """``count`` images of a seeded shuffle of ``data`` (all classes, in their proportions)."""
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))[:count]
    return ImageTensorDataset(
        data.images[order], data.labels[order], data.classes, data.mean, data.std
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=MODELS)
    parser.add_argument("--train-samples", type=int, default=TRAIN_SAMPLES)
    parser.add_argument("--test-samples", type=int, default=TEST_SAMPLES)
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, default=None, help="continue the run in this folder")
    parser.add_argument("--no-save", action="store_true", help="do not write results or docs")
    args = parser.parse_args(argv)

    machine = machine_info(args.device)  # the load average before the run
    train = subset(load_dataset("fashion-mnist", "train"), args.train_samples, SEED)
    test = subset(load_dataset("fashion-mnist", "test"), args.test_samples, SEED + 1)
    out = args.out or Path(tempfile.mkdtemp(prefix="cnnzoo-compare-docs-"))
    earlier = out / "leaderboard.json"
    if earlier.is_file():  # continuing a run: its rows were measured under its start's load
        started = json.loads(earlier.read_text())["machine"]
        machine["load_average_at_start"] = started["load_average"]
    name = f"Fashion-MNIST ({args.train_samples:,} training, {args.test_samples:,} test images)"
    board = cnnzoo.compare(
        args.models,
        train,
        test,
        epochs=args.epochs,
        seed=SEED,
        device=args.device,
        out=out,
        data_name=name,
    )
    print(board.to_markdown())
    print(f"comparison folder: {out}")
    if args.no_save:
        return 0
    written = json.loads((out / "leaderboard.json").read_text())
    result = {
        "benchmark": "compare_docs",
        "subset": {
            "dataset": "fashion-mnist",
            "train_samples": args.train_samples,
            "test_samples": args.test_samples,
            "seed": SEED,
        },
        "command": "nice -n 10 python benchmarks/compare_docs.py",
        "machine": machine,
        "versions": {"cnnzoo": cnnzoo.__version__, "torch": torch.__version__},
        "leaderboard": written,
    }
    path = write_result("compare", result)
    print(f"wrote {path}")
    if (out / "pareto.png").is_file():
        shutil.copyfile(out / "pareto.png", PICTURE)
        print(f"wrote {PICTURE}")
    return render_docs.main([])


if __name__ == "__main__":
    sys.exit(main())
