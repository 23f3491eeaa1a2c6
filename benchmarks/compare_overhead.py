"""What ``cnnzoo.compare`` costs beyond the training it runs.

Both sides train the same models on the same Fashion-MNIST subset, in one invocation, in
alternation, ``--rounds`` times (the side that goes first alternates too), so a slow spell on a
shared machine hits both:

* one by one: the loop a user writes: the data loaded once, then for each model
  ``get_model``, ``fit(model, train, val_data=0.1, epochs=..., restore_best=True)``,
  ``evaluate`` on the test images and ``cnnzoo.save``;
* compare: ``cnnzoo.compare(models, train, test, epochs=..., out=...)``, which on top of that
  probes every model on the meta device, reloads each checkpoint to score it, counts its MACs,
  times its inference (a large batch and batch 1) and writes the tables and the picture.

The headline is the median of the per-round ratios compare / one by one, with their range.

Usage::

    nice -n 10 python benchmarks/compare_overhead.py               # 3 rounds, saved
    python benchmarks/compare_overhead.py --rounds 1 --no-save     # a quick look
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cnnzoo
from benchmarks._machine import machine_info, spread, write_result
from benchmarks.compare_docs import subset
from cnnzoo.data import load_dataset

MODELS = ["lenet5", "mini_resnet"]


def one_by_one(models, train, test, epochs: int, folder: Path) -> float:
    started = time.perf_counter()
    for name in models:
        torch.manual_seed(0)
        model = cnnzoo.get_model(name, num_classes=10, in_channels=1)
        cnnzoo.fit(model, train, val_data=0.1, epochs=epochs, restore_best=True, verbose=0)
        cnnzoo.evaluate(model, test)
        cnnzoo.save(model, folder / f"{name}.safetensors")
        del model
    return time.perf_counter() - started


def with_compare(models, train, test, epochs: int, folder: Path) -> tuple[float, float]:
    started = time.perf_counter()
    board = cnnzoo.compare(models, train, test, epochs=epochs, out=folder, verbose=0)
    seconds = time.perf_counter() - started
    return seconds, sum(row.train_seconds or 0.0 for row in board)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=MODELS)
    parser.add_argument("--train-samples", type=int, default=20000)
    parser.add_argument("--test-samples", type=int, default=500)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-save", action="store_true")
    args = parser.parse_args(argv)

    machine = machine_info("cpu")
    train = subset(load_dataset("fashion-mnist", "train"), args.train_samples, 0)
    test = subset(load_dataset("fashion-mnist", "test"), args.test_samples, 1)
    rounds = []
    for number in range(args.rounds):
        order = ("one_by_one", "compare") if number % 2 == 0 else ("compare", "one_by_one")
        result: dict[str, float] = {}
        for side in order:
            folder = Path(tempfile.mkdtemp(prefix="cnnzoo-overhead-"))
            try:
                if side == "one_by_one":
                    result["one_by_one_seconds"] = one_by_one(
                        args.models, train, test, args.epochs, folder
                    )
                else:
                    total, training = with_compare(args.models, train, test, args.epochs, folder)
                    result["compare_seconds"], result["compare_fit_seconds"] = total, training
            finally:
                shutil.rmtree(folder, ignore_errors=True)
        result["ratio"] = result["compare_seconds"] / result["one_by_one_seconds"]
        result["order"] = list(order)
        rounds.append(result)
        print(
            f"round {number + 1}: compare {result['compare_seconds']:.1f} s "
            f"(fit {result['compare_fit_seconds']:.1f} s), one by one "
            f"{result['one_by_one_seconds']:.1f} s, ratio {result['ratio']:.2f}"
        )
    summary = {
        "ratio": spread([r["ratio"] for r in rounds]),
        "compare_seconds": spread([r["compare_seconds"] for r in rounds]),
        "one_by_one_seconds": spread([r["one_by_one_seconds"] for r in rounds]),
        "beyond_fit_seconds": spread(
            [r["compare_seconds"] - r["compare_fit_seconds"] for r in rounds]
        ),
    }
    print(
        f"compare / one by one: {summary['ratio']['median']:.2f} "
        f"[{summary['ratio']['min']:.2f}-{summary['ratio']['max']:.2f}]"
    )
    if args.no_save:
        return 0
    output = {
        "benchmark": "compare_overhead",
        "models": args.models,
        "subset": {"train_samples": args.train_samples, "test_samples": args.test_samples},
        "epochs": args.epochs,
        "machine": machine,
        "load_average_at_end": list(os.getloadavg()),
        "versions": {"cnnzoo": cnnzoo.__version__, "torch": torch.__version__},
        "rounds": rounds,
        "summary": summary,
    }
    print(f"wrote {write_result('compare_overhead', output)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
