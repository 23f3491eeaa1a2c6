"""Fine-tuning cnnzoo's own Fashion-MNIST weights on a small new task, against training from random.

The new task has labels the weights never saw: which way up a piece of clothing is. Its images
are Fashion-MNIST *test* images (the shipped weights trained on the training split only), each
turned by 0, 90, 180 or 270 degrees, and the class is the turn: four classes, balanced. A small
training set (a few hundred images) and a test set of other images, the same for every run.

Each model that ships weights is trained on it three ways, from the same seeds, with ``fit``'s
defaults and the same epochs:

* ``random``: ``get_model(name, num_classes=4)``, from random weights;
* ``fine-tuned``: ``get_model(name, weights="fashion-mnist", num_classes=4)``: the shipped
  weights with a new 4-class head, every layer trained at the model's recipe rate;
* ``fine-tuned, lr/10``: the same at a tenth of that rate, the usual advice for fine-tuning.

Usage::

    python benchmarks/transfer.py                 # 2 models x 3 ways x 3 seeds (a few minutes)
    python benchmarks/transfer.py --quick         # smoke test: one model, one seed, tiny data
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cnnzoo
from benchmarks._machine import machine_info, spread, write_result
from cnnzoo.data import ImageTensorDataset, load_dataset, resize_pixels
from cnnzoo.weights import shipped

TURNS = ("upright", "turned 90 degrees", "upside down", "turned 270 degrees")
SEEDS = (0, 1, 2)
TRAIN_IMAGES, TEST_IMAGES, EPOCHS = 400, 2000, 5
WAYS = ("random", "fine-tuned", "fine-tuned, lr/10")
TASK_SEED = 2024  # which test images form the task: fixed, whatever the run's seed


def turned_task(train_images: int, test_images: int) -> tuple[Any, Any]:
    """(train, test) of the orientation task, from disjoint Fashion-MNIST test images."""
    source = load_dataset("fashion-mnist", "test")
    order = torch.randperm(len(source), generator=torch.Generator().manual_seed(TASK_SEED))
    picks = order[: train_images + test_images]
    images = source.images[picks]
    turns = torch.arange(len(picks)) % len(TURNS)
    turned = torch.stack(
        [torch.rot90(image, int(k), dims=(1, 2)) for image, k in zip(images, turns, strict=True)]
    )

    def part(index: slice) -> ImageTensorDataset:
        return ImageTensorDataset(turned[index], turns[index], TURNS, source.mean, source.std)

    return part(slice(0, train_images)), part(slice(train_images, None))


def build(name: str, way: str) -> tuple[torch.nn.Module, dict[str, Any]]:
    """The model for ``way`` and the fit options it adds."""
    if way == "random":  # grey, as the weights are
        return cnnzoo.get_model(name, num_classes=len(TURNS), in_channels=1), {}
    model = cnnzoo.get_model(name, weights="fashion-mnist", num_classes=len(TURNS))
    if way == "fine-tuned":
        return model, {}
    recipe = cnnzoo.models.info(name).recipe
    return model, {"lr": recipe.lr / 10}


def at_size(data: ImageTensorDataset, model: torch.nn.Module) -> ImageTensorDataset:
    """The task at a fixed-size model's size (cifar_cnn: 32x32), resized as predict resizes."""
    size = tuple(model.input_size[1:])
    if not model.fixed_input_size or tuple(data.images.shape[-2:]) == size:
        return data
    images = resize_pixels(data.images, size)
    return ImageTensorDataset(images, data.labels, data.classes, data.mean, data.std)


def one_run(name: str, way: str, train: Any, test: Any, seed: int, epochs: int) -> dict[str, Any]:
    torch.manual_seed(seed)  # the new head's start (and the whole model's, from random)
    model, options = build(name, way)
    train, test = at_size(train, model), at_size(test, model)
    started = time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the collapse watch is not the point here
        history = cnnzoo.fit(model, train, epochs=epochs, seed=seed, verbose=0, **options)
    return {
        "way": way,
        "seed": seed,
        "test_accuracy": round(cnnzoo.evaluate(model, test)["accuracy"], 4),
        "cpu_seconds": round(time.process_time() - started, 1),
        "lr": history.params["lr"],
        "batch_size": history.params["batch_size"],
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-images", type=int, default=TRAIN_IMAGES)
    parser.add_argument("--test-images", type=int, default=TEST_IMAGES)
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    parser.add_argument("--quick", action="store_true", help="smoke test: one model, tiny data")
    parser.add_argument("--no-save", action="store_true")
    args = parser.parse_args(argv)
    models = sorted({w.model for w in shipped() if w.tag == "fashion-mnist"})
    if args.quick:
        models, args.seeds = ["lenet5"], [0]  # the cheapest of them
        args.train_images, args.test_images, args.epochs = 64, 64, 1
    train, test = turned_task(args.train_images, args.test_images)
    rows = []
    for name in models:
        runs = []
        for seed in args.seeds:  # the ways alternate within a seed
            for way in WAYS:
                run = one_run(name, way, train, test, seed, args.epochs)
                runs.append(run)
                print(f"{name:12s} {way:18s} seed {seed}: {run['test_accuracy']:.4f}", flush=True)
        for way in WAYS:
            mine = [r for r in runs if r["way"] == way]
            rows.append(
                {
                    "model": name,
                    "way": way,
                    "test_accuracy": spread([r["test_accuracy"] for r in mine], 4),
                    "cpu_seconds": spread([r["cpu_seconds"] for r in mine], 1),
                    "lr": mine[0]["lr"],
                    "batch_size": mine[0]["batch_size"],
                    "runs": mine,
                }
            )
    result = {
        "benchmark": "transfer",
        "task": {
            "name": "which way up (Fashion-MNIST test images turned by 0/90/180/270 degrees)",
            "classes": list(TURNS),
            "train_images": args.train_images,
            "test_images": args.test_images,
            "epochs": args.epochs,
            "seeds": args.seeds,
        },
        "machine": machine_info(),
        "rows": rows,
    }
    for row in rows:
        accuracy = row["test_accuracy"]
        print(
            f"{row['model']:12s} {row['way']:18s} median {accuracy['median']:.4f} "
            f"[{accuracy['min']:.4f}-{accuracy['max']:.4f}]"
        )
    if not (args.no_save or args.quick):
        print(write_result("transfer", result))
    return result


if __name__ == "__main__":
    main()
