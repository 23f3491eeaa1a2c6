"""The reproduction table: every architecture trained on Fashion-MNIST with cnnzoo's recipe.

Each model is trained on the 60,000 training images with ``cnnzoo.fit`` (its defaults plus the
small per-model recipe in :data:`RECIPES`) once per seed and evaluated on the 10,000 test
images. The nets with weights shipped in cnnzoo train the recipe of those weights
(``benchmarks/train_weights.py``), so the table's seeds say how far another seed lands from the
shipped file; ``--ship-weights`` saves the run at the recipe's own seed as those weights. The
table sets the median test accuracy over the seeds beside the published numbers that cnnzoo
aims to beat: d2l's (Dive into Deep Learning), trained 10 epochs with SGD, and Zalando's
Fashion-MNIST benchmark table.

Inputs are adapted once, up front, on the whole ``uint8`` tensor: a net of fixed input size gets
the 28x28 images resized as ``predict`` resizes a file for it; the normalisation statistics are
measured again on the adapted training images.

Usage::

    python benchmarks/reproduce.py                     # the CPU-sized rows, seeds 0, 1 and 2
    python benchmarks/reproduce.py --models cifar_cnn --seeds 0 --ship-weights
    python benchmarks/reproduce.py --join A.json B.json    # one table from runs of parts of it
    python benchmarks/reproduce.py --models all --device cuda        # the whole table, on a GPU
    python benchmarks/reproduce.py --models lenet5 --epochs 1 --max-train-images 512   # smoke run
"""

from __future__ import annotations

import argparse
import dataclasses
import fnmatch
import json
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cnnzoo
from benchmarks import train_weights
from benchmarks._fashion import adapted_splits, input_side
from benchmarks._machine import machine_info, write_result
from benchmarks._reproduce_table import reproduce_table
from cnnzoo.data import ImageTensorDataset, load_dataset

# The ImageNet families adapt their stem to small images with ``small_input=True``.
SMALL_INPUT_FAMILIES = ("alexnet", "vgg", "googlenet", "resnet", "densenet")


@dataclass(frozen=True)
class Recipe:
    """How one model is trained here: ``fit`` keyword arguments beyond its defaults.

    Attributes:
        epochs: Passes over the 60,000 training images.
        fit_options: Further ``cnnzoo.fit`` arguments (``augment``, ``lr``, ...).
        model_options: Further ``cnnzoo.get_model`` arguments (``small_input``, ...).
    """

    epochs: int = 10
    fit_options: dict[str, Any] = field(default_factory=dict)
    model_options: dict[str, Any] = field(default_factory=dict)


def _weights_recipe(name: str) -> Recipe:
    """The recipe of the weights cnnzoo ships for ``name``, without its seed."""
    options = {k: v for k, v in train_weights.RECIPES[name].items() if k not in ("epochs", "seed")}
    return Recipe(epochs=train_weights.RECIPES[name]["epochs"], fit_options=options)


_SMALL = {"small_input": True}
_AUGMENT = {"augment": ["crop", "flip"]}
RECIPES: dict[str, Recipe] = {
    # The 28x28 nets (cifar_cnn resized to its fixed 32x32): their shipped weights' recipes.
    **{name: _weights_recipe(name) for name in train_weights.RECIPES},
    # The fixed-size nets at their own input size (resized once): GPU rows.
    "alexnet_original": Recipe(epochs=10),
    "network_bn": Recipe(epochs=10),
    "network_bn_v2": Recipe(epochs=10),
    # The ImageNet families with the small-image stem: GPU rows.
    **{
        name: Recipe(epochs=10, fit_options=_AUGMENT, model_options=_SMALL)
        for name in (
            "alexnet",
            "googlenet",
            "densenet121",
            *(f"resnet{depth}" for depth in (18, 34, 50, 101, 152)),
            *(f"vgg{depth}{bn}" for depth in (11, 13, 16, 19) for bn in ("", "_bn")),
        )
    },
}

# Published Fashion-MNIST test accuracy, d2l (Dive into Deep Learning) and Zalando's Fashion-MNIST
# benchmark: (architecture, accuracy).
D2L = {
    "lenet5": ("LeNet", 0.805),
    "alexnet_original": ("AlexNet", 0.880),
    "alexnet": ("AlexNet", 0.880),
    "vgg11": ("VGG-11/4", 0.918),
    "googlenet": ("GoogLeNet", 0.889),
    "resnet18": ("ResNet-18", 0.910),
    "densenet121": ("DenseNet", 0.876),
}
ZALANDO = {
    "resnet18": ("ResNet18", 0.949),
    "googlenet": ("GoogleNet", 0.937),
    "vgg16": ("VGG16", 0.935),
}


def select_models(patterns: list[str]) -> list[str]:
    """Expand model names, fnmatch patterns or "all" into the recipes' names, in table order.

    Raises:
        ValueError: A name or pattern that matches no model with a recipe.
    """
    if "all" in patterns:
        return list(RECIPES)
    chosen: list[str] = []
    for pattern in patterns:
        matches = [name for name in RECIPES if fnmatch.fnmatchcase(name, pattern)]
        if not matches:
            raise ValueError(
                f"no model with a recipe matches {pattern!r}; choose from {sorted(RECIPES)} "
                "or 'all'"
            )
        chosen += [name for name in matches if name not in chosen]
    return chosen


def run_one(
    name: str,
    recipe: Recipe,
    train: ImageTensorDataset,
    test: ImageTensorDataset,
    device: str,
    seed: int,
    ship: bool = False,
) -> dict[str, Any]:
    """Train ``name`` by its recipe from ``seed`` and return its row of the table.

    With ``ship``, the run is saved as the shipped weights (``name`` must have a weights recipe,
    and ``seed`` must be its seed).
    """
    torch.manual_seed(seed)
    model = train_weights.build(name, **recipe.model_options)
    train_data, test_data = adapted_splits(train, test, model)
    start = time.perf_counter()
    history = cnnzoo.fit(
        model,
        train_data,
        epochs=recipe.epochs,
        device=device,
        seed=seed,
        verbose=2,
        **recipe.fit_options,
    )
    train_seconds = time.perf_counter() - start
    metrics = cnnzoo.evaluate(model, test_data, device=device)
    side = input_side(model)
    row = {
        "model": name,
        "seed": seed,
        "test_accuracy": round(float(metrics["accuracy"]), 4),
        "test_loss": round(float(metrics["loss"]), 4),
        "epochs": recipe.epochs,
        "train_images": len(train_data),
        "input_size": [1, side, side],
        "train_seconds": round(train_seconds, 1),
        "epoch_seconds": [round(s, 1) for s in history.history["epoch_seconds"]],
        "train_accuracy": [round(a, 4) for a in history.history["accuracy"]],
        "parameters": cnnzoo.count_parameters(model),
        "recipe": asdict(recipe),
        "fit_params": history.params,
    }
    if ship:
        weights_recipe = {**recipe.fit_options, "epochs": recipe.epochs, "seed": seed}
        if weights_recipe != train_weights.RECIPES.get(name):
            raise SystemExit(f"--ship-weights: {name} seed {seed} is not its weights' recipe")
        entry = train_weights.publish(
            model,
            name,
            train_weights.RECIPES[name],
            metrics["accuracy"],
            train_seconds,
            len(train_data),
        )
        row["shipped_sha256"] = entry["sha256"]
    return row


def summarise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per model, in the rows' order: test accuracy median and range over the seeds, times."""
    summary = []
    for name in dict.fromkeys(row["model"] for row in rows):
        runs = sorted((row for row in rows if row["model"] == name), key=lambda r: r["seed"])
        accuracies = [row["test_accuracy"] for row in runs]
        seconds = [row["train_seconds"] for row in runs]
        first = runs[0]
        summary.append(
            {
                "model": name,
                "seeds": [row["seed"] for row in runs],
                "test_accuracy": {
                    "median": statistics.median(accuracies),
                    "min": min(accuracies),
                    "max": max(accuracies),
                },
                "train_seconds": {"median": statistics.median(seconds), "max": max(seconds)},
                "epochs": first["epochs"],
                "input_size": first["input_size"],
                "parameters": first["parameters"],
                "recipe": first["recipe"],
            }
        )
    return summary


def join(paths: list[Path]) -> dict[str, Any]:
    """One result from parts of the table: of one machine, one recipe per model, each run once."""
    parts = [json.loads(path.read_text()) for path in paths]
    first = parts[0]
    for path, part in zip(paths, parts, strict=True):
        for key in ("cpu", "torch"):
            if part["machine"].get(key) != first["machine"].get(key):
                raise SystemExit(f"{path} ran on another machine: join the parts of one machine")
    rows = [row for part in parts for row in part["rows"]]
    for row in rows:
        first_run = next(other for other in rows if other["model"] == row["model"])
        if row["recipe"] != first_run["recipe"]:
            raise SystemExit(
                f"--join got {row['model']} trained by two recipes ({first_run['recipe']} and "
                f"{row['recipe']}): join the runs of one recipe"
            )
    runs = [(row["model"], row["seed"]) for row in rows]
    twice = sorted(
        {f"{model} seed {seed}" for model, seed in runs if runs.count((model, seed)) > 1}
    )
    if twice:
        raise SystemExit(f"--join got a run twice ({', '.join(twice)}): name each run once")
    return {
        **first,
        "rows": rows,
        "summary": summarise(rows),
        "joined": [str(path.name) for path in paths],
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--models",
        nargs="+",
        default=list(train_weights.RECIPES),
        help='registry names or fnmatch patterns, or "all" (default: the CPU-sized rows)',
    )
    parser.add_argument("--device", default="auto", help='"cpu", "cuda", ... (default: auto)')
    parser.add_argument("--epochs", type=int, help="override every recipe's epochs")
    parser.add_argument(
        "--max-train-images", type=int, help="train on the first N images only (smoke runs)"
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument(
        "--ship-weights",
        action="store_true",
        help="save each run at its weights recipe's seed as cnnzoo's shipped weights",
    )
    parser.add_argument("--join", type=Path, nargs="+", help="result files to join into one")
    parser.add_argument("--no-save", action="store_true", help="print only, write no JSON")
    args = parser.parse_args(argv)

    if args.join:
        result = join(args.join)
        print(reproduce_table(result, "joined:"))
        if not args.no_save:
            print(f"written to {write_result('reproduce', result)}")
        return result
    names = select_models(args.models)
    train = load_dataset("fashion-mnist", "train")
    test = load_dataset("fashion-mnist", "test")
    if args.max_train_images:
        train = ImageTensorDataset(
            train.images[: args.max_train_images],
            train.labels[: args.max_train_images],
            train.classes,
            train.mean,
            train.std,
        )
    if args.ship_weights and (args.epochs or args.max_train_images):
        raise SystemExit(
            "--ship-weights trains the weights' own recipe: drop --epochs and --max-train-images"
        )
    rows = []
    for name in names:
        recipe = RECIPES[name]
        if args.epochs:
            recipe = dataclasses.replace(recipe, epochs=args.epochs)
        for seed in args.seeds:
            ship = args.ship_weights and train_weights.RECIPES.get(name, {}).get("seed") == seed
            print(f"== {name} seed {seed}: {recipe}", flush=True)
            row = run_one(name, recipe, train, test, args.device, seed, ship=ship)
            print(
                f"== {name} seed {seed}: test accuracy {row['test_accuracy']:.4f} in "
                f"{row['train_seconds']}s",
                flush=True,
            )
            rows.append(row)

    device = rows[0]["fit_params"].get("device", args.device) if rows else args.device
    result = {
        "benchmark": "reproduce",
        "dataset": "fashion-mnist",
        "published": {"d2l": D2L, "zalando": ZALANDO},
        "rows": rows,
        "summary": summarise(rows),
        "machine": machine_info(str(device)),
    }
    print(reproduce_table(result, "this run:"))
    if not args.no_save:
        print(f"written to {write_result('reproduce', result)}")
    return result


if __name__ == "__main__":
    main()
