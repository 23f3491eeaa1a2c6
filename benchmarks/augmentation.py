"""What each augmentation and regularisation option of ``fit`` gives and costs on small data.

The task: mini_resnet (the advanced-CNN tutorial's residual net) trained on 2,000 Fashion-MNIST
training images (a seeded random subset, the same for every run) for 10 epochs with fit's
defaults, then tested on the 10,000 test images; ``--train-images 3000 --epochs 4`` gives the
zoo benchmark's budget (3,000 images, fit's default 4 epochs) instead. Each option is one
change to that run: today's crop and flip, TrivialAugment, RandAugment, random erasing, mixup,
CutMix and stochastic depth.

Every round (one per seed: the model's start, the data order and the augmentation's draws)
trains every option once, the order rotating from round to round, so a slow spell on the
shared machine hits all of them; an option's time is its training wall time over the plain
run's in the same round (median and range of those ratios), its accuracy the median of the
rounds' test accuracies and their range.

Usage::

    python benchmarks/augmentation.py                     # the full run (3 rounds)
    python benchmarks/augmentation.py --train-images 3000 --epochs 4   # the zoo benchmark's budget
    python benchmarks/augmentation.py --rounds 1 --epochs 1 --no-save   # a smoke run
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cnnzoo
from benchmarks._machine import machine_info, spread, write_result
from cnnzoo.data import load_dataset

MODEL = "mini_resnet"
# (label, fit options); the first is the reference every ratio is taken against.
OPTIONS: list[tuple[str, dict[str, Any]]] = [
    ("none", {}),
    ("crop+flip", {"augment": ["crop", "flip"]}),
    ("trivialaugment", {"augment": "trivialaugment"}),
    ("randaugment", {"augment": "randaugment"}),
    ("erasing", {"augment": "erasing"}),
    ("mixup 0.2", {"mixup": 0.2}),
    ("cutmix 1.0", {"cutmix": 1.0}),
    ("drop_path_rate 0.1", {"drop_path_rate": 0.1}),
]


def _subset(images: torch.Tensor, labels: torch.Tensor, count: int) -> tuple[Any, Any]:
    pick = torch.randperm(len(images), generator=torch.Generator().manual_seed(0))[:count]
    return images[pick], labels[pick]


def _one_run(train: Any, test: Any, options: dict[str, Any], seed: int, epochs: int) -> Any:
    torch.manual_seed(seed)
    model = cnnzoo.get_model(MODEL)
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the collapse watch on a tiny set is not the point
        cnnzoo.fit(model, train, epochs=epochs, seed=seed, verbose=0, **options)
    seconds = time.perf_counter() - started
    accuracy = cnnzoo.evaluate(model, test)["accuracy"]
    return float(accuracy), seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--train-images", type=int, default=2000)
    parser.add_argument("--no-save", action="store_true")
    args = parser.parse_args(argv)

    full = load_dataset("fashion-mnist")
    train = _subset(full.images, full.labels, args.train_images)
    test = load_dataset("fashion-mnist", "test")
    # Untimed warm-up: the first run of a process pays for lazy initialisation and imports.
    for _, options in OPTIONS:
        _one_run(_subset(*train, 256), test, options, 0, 1)
    runs: dict[str, list[dict[str, float]]] = {label: [] for label, _ in OPTIONS}
    for round_ in range(args.rounds):
        shift = round_ % len(OPTIONS)
        for label, options in OPTIONS[shift:] + OPTIONS[:shift]:
            accuracy, seconds = _one_run(train, test, options, round_, args.epochs)
            runs[label].append({"seed": round_, "accuracy": accuracy, "seconds": seconds})
            print(f"round {round_} {label:20s} accuracy {accuracy:.4f}  {seconds:6.1f} s")

    reference = runs[OPTIONS[0][0]]
    reference_accuracy = statistics.median(r["accuracy"] for r in reference)
    rows = []
    for label, options in OPTIONS:
        accuracies = [r["accuracy"] for r in runs[label]]
        ratios = [
            r["seconds"] / ref["seconds"] for r, ref in zip(runs[label], reference, strict=True)
        ]
        rows.append(
            {
                "option": label,
                "fit_options": options,
                "test_accuracy": spread(accuracies, 4),
                "accuracy_change": round(statistics.median(accuracies) - reference_accuracy, 4),
                "time_ratio": spread(ratios, 2),
                "seconds": spread([r["seconds"] for r in runs[label]], 1),
                "runs": runs[label],
            }
        )
    result = {
        "benchmark": "augmentation",
        "task": {
            "model": MODEL,
            "train_images": args.train_images,
            "test_images": len(test.images),
            "epochs": args.epochs,
            "rounds": args.rounds,
            "dataset": "fashion-mnist",
        },
        "machine": machine_info(),
        "rows": rows,
    }
    for row in rows:
        print(
            f"{row['option']:20s} {row['test_accuracy']['median']:.4f} "
            f"({row['accuracy_change']:+.4f})  x{row['time_ratio']['median']:.2f}"
        )
    if not args.no_save:
        print(write_result("augmentation", result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
