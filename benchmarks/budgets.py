"""fit's defaults against the ten-line tutorial loop at every budget: small data, short runs.

The question this answers: does a user who passes nothing but the model and the data do at least
as well with ``cnnzoo.fit`` as with the loop every tutorial writes (Adam 1e-3, batch 32, a
constant rate: the LeNet-5 and AlexNet Fashion-MNIST tutorial, and Keras's ``model.fit``
defaults), whatever the budget? A grid of budgets (training images x epochs) is trained both
ways on the same Fashion-MNIST images, from the same initial weights, for 3 seeds, and scored on
the same test images.

The models: one of each recipe family of the zoo (the zoo benchmark's references), each seeing
the images as the zoo benchmark feeds it (the ImageNet families ``small_input`` at 8x8), and
three nets cnnzoo does not define, as a user would bring them:

* ``user_plain``: two convolutions and a linear layer, no normalisation (the PyTorch "Training
  a classifier" tutorial's shape);
* ``user_bn``: two convolution-BatchNorm-ReLU blocks, global pooling, a linear layer;
* ``torchvision_mobilenet_v3_small``: torchvision's MobileNetV3-Small, which cnnzoo does not
  define, on the images as 32x32 RGB.

Every model trains in the two short cells (500 images x 5 epochs, 2,000 x 1), where fit's
budget-sized batch acts. The longer cells are for the nets cheap enough to fit them in the
benchmark's time: the 28x28 zoo nets and the user's plain and BatchNorm nets up to 10,000
images, and the cheapest of them (``LARGEST_CELL_NETS``) on all 60,000. The ImageNet families
at 8x8 cost 10 to 40 times a 28x28 net per image (AlexNet's classifier alone has 54 million
weights) and train in the short cells only. The large-input nets (``network_bn``,
``alexnet_original``; 224x224 and 227x227) cost 800 times an 8x8 net per image: their one cell
(500 x 5) would take longer than the rest of the grid, so the default run leaves them out (name
them with ``--models``); the zoo benchmark measures their small budget (900 images x 4 epochs)
against their own grid of rates.

Both sides normalise the images with the same statistics (the model's, else the data's). The
tutorial side is a plain PyTorch loop with no cnnzoo code in it. A cell *holds* when the
defaults' mean test accuracy is at least the tutorial's (at least 0.98 times it where both are
within 2 points of 100%).

Usage::

    python benchmarks/budgets.py                     # the whole grid (about an hour on 2 cores)
    python benchmarks/budgets.py --models user_plain lenet5 --cells 2000x1 500x5
    python benchmarks/budgets.py --quick             # smoke test: 2 models, tiny data
    python benchmarks/budgets.py --join A.json B.json  # one result from runs of parts of the grid

The grid may be measured in parts (``--models``/``--cells``, one process a core with
``--threads 1``) and the parts joined into one result.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cnnzoo
from benchmarks._machine import machine_info, next_result_path, write_json_atomic
from benchmarks.zoo_defaults import REFERENCES, build, input_kind, resized, subset, write_folder
from cnnzoo.data import ImageTensorDataset, load_dataset
from cnnzoo.training.collapse import TrainingCollapseWarning

# (training images, epochs): from 500 images to all 60,000, one to ten epochs.
CELLS = ((500, 5), (2000, 1), (2000, 4), (10000, 1), (60000, 1))
SHORT_CELLS = ((500, 5), (2000, 1))
# The cells each kind of model trains in (the costly ones in fewer; see the module docstring).
CELLS_OF_KIND = {
    "folder": ((500, 5),),
    "upsample": ((500, 5),),
    "small": SHORT_CELLS,
    "rgb32": SHORT_CELLS,
}
LARGEST_CELL_NETS = ("lenet5", "mini_resnet", "user_plain", "user_bn")
# One model of each recipe family (the zoo benchmark's references) but the large-input nets.
DEFAULT_ZOO_MODELS = tuple(
    name
    for name in sorted(set(REFERENCES.values()))
    if input_kind(name) not in ("folder", "upsample")
)
USER_NETS = ("user_plain", "user_bn", "torchvision_mobilenet_v3_small")
SEEDS = (0, 1, 2)
TEST_IMAGES = 2000
SMALL_SIDE = 8
TUTORIAL = {"optimizer": "Adam", "lr": 1e-3, "batch_size": 32, "schedule": "constant"}


class UserPlain(nn.Module):
    """Two convolutions, no normalisation: the shape of PyTorch's "Training a classifier"."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.fc = nn.Linear(32 * 7 * 7, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.fc(x.flatten(1))


def user_bn(num_classes: int = 10) -> nn.Module:
    """Two convolution-BatchNorm-ReLU blocks and global pooling."""
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1),
        nn.BatchNorm2d(32),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1),
        nn.BatchNorm2d(64),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(64, num_classes),
    )


def kind_of(name: str) -> str:
    """How ``name`` sees the images: the zoo benchmark's kinds, "user" and "rgb32"."""
    if name == "torchvision_mobilenet_v3_small":
        return "rgb32"
    if name in USER_NETS:
        return "user"
    return input_kind(name)


def make_model(name: str, num_classes: int) -> nn.Module:
    """A fresh model (seed the generator first)."""
    if name == "user_plain":
        return UserPlain(num_classes)
    if name == "user_bn":
        return user_bn(num_classes)
    if name == "torchvision_mobilenet_v3_small":
        import torchvision

        return torchvision.models.mobilenet_v3_small(num_classes=num_classes)
    return build(name, num_classes)


def cells_of(name: str, cells: tuple[tuple[int, int], ...]) -> list[tuple[int, int]]:
    """The cells ``name`` trains in: every cell for the cheap nets, fewer for the costly ones."""
    allowed = CELLS_OF_KIND.get(kind_of(name))
    if allowed is not None:
        return [cell for cell in cells if cell in allowed]
    if name in LARGEST_CELL_NETS:
        return list(cells)
    return [cell for cell in cells if cell[0] < 60000]


class Images:
    """The task's images in every form a model takes, made once per size."""

    def __init__(self, train_images: int, test_images: int, workdir: Path) -> None:
        full = load_dataset("fashion-mnist")
        self.train = subset(full, min(train_images, len(full)))
        self.test = subset(load_dataset("fashion-mnist", "test"), test_images)
        self.workdir = workdir
        self._forms: dict[str, tuple[Any, Any]] = {}

    def data(self, kind: str, train_images: int) -> tuple[ImageTensorDataset, ImageTensorDataset]:
        """(train, test) for ``kind``: the first ``train_images`` of the task's training set."""
        if kind not in self._forms:
            self._forms[kind] = self._make(kind)
        train, test = self._forms[kind]
        return _head(train, train_images), test

    def _make(self, kind: str) -> tuple[ImageTensorDataset, ImageTensorDataset]:
        train, test = self.train, self.test
        if kind in ("native", "user"):
            return train, test
        if kind == "pad32":
            return resized(train, 32, pad=2), resized(test, 32, pad=2)
        if kind == "small":
            return resized(train, SMALL_SIDE), resized(test, SMALL_SIDE)
        if kind == "rgb32":
            return _rgb(resized(train, 32)), _rgb(resized(test, 32))
        # the large-input nets: their one cell's images, and as many test images
        few = max(images for images, _ in CELLS_OF_KIND[kind])
        train, test = _head(train, few), _head(test, few)
        if kind == "upsample":
            return resized(train, 227), resized(test, 227)
        folder = write_folder(train, test, self.workdir / "folder")
        return (
            load_dataset(folder, "train", in_memory=True),
            load_dataset(folder, "test", in_memory=True),
        )


def _head(data: ImageTensorDataset, n: int) -> ImageTensorDataset:
    return ImageTensorDataset(data.images[:n], data.labels[:n], data.classes, data.mean, data.std)


def _rgb(data: ImageTensorDataset) -> ImageTensorDataset:
    images = data.images.repeat(1, 3, 1, 1)
    return ImageTensorDataset(images, data.labels, data.classes, data.mean * 3, data.std * 3)


def run_defaults(model: nn.Module, train: Any, test: Any, epochs: int, seed: int) -> dict:
    """``cnnzoo.fit`` with nothing but the data, the epochs and the seed; then scored."""
    started, cpu_started = time.perf_counter(), time.process_time()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = cnnzoo.fit(model, train, epochs=epochs, seed=seed, verbose=0)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    return {
        "test_accuracy": round(cnnzoo.evaluate(model, test)["accuracy"], 4),
        "seconds_as_seen": round(seconds, 1),
        "cpu_seconds": round(cpu_seconds, 1),
        "batch_size": history.params["batch_size"],
        "steps": history.params["steps"] * epochs,
        "lr": history.params["lr"],
        "lr_source": history.params["lr_source"],
        "warned": [str(w.message)[:120] for w in caught if w.category is TrainingCollapseWarning],
    }


def run_tutorial(model: nn.Module, train: Any, test: Any, epochs: int, seed: int) -> dict:
    """The tutorial's loop in plain PyTorch: Adam 1e-3, batch 32, constant rate, shuffled."""
    x, y = _tensors(train, model)
    started, cpu_started = time.perf_counter(), time.process_time()
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=TUTORIAL["lr"])
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(y), generator=generator)
        for start in range(0, len(y), TUTORIAL["batch_size"]):
            index = order[start : start + TUTORIAL["batch_size"]]
            optimizer.zero_grad()
            F.cross_entropy(model(x[index]), y[index]).backward()
            optimizer.step()
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    x_test, y_test = _tensors(test, model)
    model.eval()
    with torch.no_grad():
        correct = sum(
            int((model(x_test[i : i + 500]).argmax(1) == y_test[i : i + 500]).sum())
            for i in range(0, len(y_test), 500)
        )
    return {
        "test_accuracy": round(correct / len(y_test), 4),
        "seconds_as_seen": round(seconds, 1),
        "cpu_seconds": round(cpu_seconds, 1),
        "steps": epochs * -(-len(y) // TUTORIAL["batch_size"]),
    }


def _tensors(data: ImageTensorDataset, model: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """Float images normalised as fit would (the model's statistics, else the data's)."""
    config = getattr(model, "pretrained_cfg", None) or {}
    mean = config.get("mean") or data.mean
    std = config.get("std") or data.std
    images = data.images.float() / 255 if data.images.dtype == torch.uint8 else data.images
    shape = (1, -1, 1, 1)
    images = (images - torch.tensor(mean).view(shape)) / torch.tensor(std).view(shape)
    return images, data.labels.long()


def holds(defaults: float, tutorial: float) -> bool:
    """The cell's rule: at least the tutorial's mean (0.98x of it near 100%)."""
    if defaults >= tutorial:
        return True
    return min(defaults, tutorial) >= 0.98 and defaults >= 0.98 * tutorial


def summarise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One line per (model, cell): both sides' means over the seeds, and whether it holds."""
    cells: dict[tuple[str, int, int], dict[str, list[float]]] = {}
    for row in rows:
        key = (row["model"], row["train_images"], row["epochs"])
        cells.setdefault(key, {"defaults": [], "tutorial": []})[row["side"]].append(
            row["test_accuracy"]
        )
    summary = []
    for (model, images, epochs), sides in cells.items():
        if not (sides["defaults"] and sides["tutorial"]):
            continue
        d, t = statistics.mean(sides["defaults"]), statistics.mean(sides["tutorial"])
        summary.append(
            {
                "model": model,
                "train_images": images,
                "epochs": epochs,
                "defaults": round(d, 4),
                "tutorial": round(t, 4),
                "difference": round(d - t, 4),
                "holds": holds(d, t),
            }
        )
    return summary


def _read_part(path: Path) -> dict[str, Any]:
    """One budgets result to join, or a clear refusal."""
    try:
        part = json.loads(path.read_text())
    except OSError as error:
        raise SystemExit(f"cannot read {path}: {error.strerror or error}") from None
    except ValueError:
        raise SystemExit(f"{path} is not JSON") from None
    if not isinstance(part, dict) or part.get("benchmark") != "budgets":
        raise SystemExit(f"{path} is not a budgets result")
    missing = [key for key in _PART_KEYS if key not in part]
    if missing or not isinstance(part.get("rows"), list):
        raise SystemExit(f"{path} is not a whole budgets result: it lacks {missing or ['rows']}")
    broken = (
        not isinstance(part["machine"], dict)
        or not _is_number(part["seconds_as_seen"])
        or not isinstance(part.get("joined", []), list)
        or not all(isinstance(entry, dict) for entry in part.get("joined", []))
    )
    if broken:
        raise SystemExit(f"{path} has a broken machine, seconds_as_seen or joined field")
    for row in part["rows"]:
        if not (isinstance(row, dict) and all(check(row.get(k)) for k, check in _ROW_CHECKS)):
            raise SystemExit(f"{path} has a row without {', '.join(k for k, _ in _ROW_CHECKS)}")
    return part


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


_PART_KEYS = ("tutorial", "test_images", "machine", "complete", "seconds_as_seen")
_ROW_CHECKS = (
    ("model", lambda v: isinstance(v, str)),
    ("side", lambda v: v in ("defaults", "tutorial")),
    ("seed", _is_int),
    ("train_images", _is_int),
    ("epochs", _is_int),
    ("test_accuracy", _is_number),
)


def _runs(path: Path, part: dict[str, Any]) -> list[dict[str, Any]]:
    """The runs a part holds: itself, or the runs it joined."""
    if part.get("joined"):
        return [{**entry, "threads": _threads(entry)} for entry in part["joined"]]
    run = {"source": path.name, "machine": part["machine"], "threads": part.get("threads")}
    return [{**run, "threads": _threads(run), "seconds": part["seconds_as_seen"]}]


def _threads(run: dict[str, Any]) -> Any:
    """A run's torch threads: its own record, else its machine's."""
    threads = run.get("threads")
    machine = run.get("machine")
    if threads is None and isinstance(machine, dict):
        return machine.get("torch_threads")
    return threads


def join(paths: list[Path]) -> dict[str, Any]:
    """One result from runs of parts of the grid; a cell measured twice keeps its later runs.

    The parts must be distinct files of one machine (its CPU and torch), the same tutorial
    recipe and the same test images; their thread counts may differ (each part records its).
    """
    if len({path.resolve() for path in paths}) < len(paths):
        raise SystemExit("--join got the same file twice: name each part once")
    parts = [_read_part(path) for path in paths]
    joined = [run for path, part in zip(paths, parts, strict=True) for run in _runs(path, part)]
    sources = [run["source"] for run in joined]
    twice = sorted({source for source in sources if sources.count(source) > 1})
    contents = [json.dumps(part, sort_keys=True) for part in parts]
    if twice or len(set(contents)) < len(contents):
        raise SystemExit(
            f"--join got a run twice ({', '.join(twice) or 'two files with the same content'}): "
            "a joined result already holds the runs it joined; name each run once"
        )
    first = parts[0]
    for path, part in zip(paths, parts, strict=True):
        for key in ("tutorial", "test_images"):
            if part[key] != first[key]:
                raise SystemExit(f"{path} measured another {key}: {part[key]} (not {first[key]})")
        for key in ("cpu", "torch"):
            if part["machine"].get(key) != first["machine"].get(key):
                raise SystemExit(
                    f"{path} ran on another machine ({key} {part['machine'].get(key)}, not "
                    f"{first['machine'].get(key)}): join the parts of one machine"
                )
    runs: dict[tuple[Any, ...], dict[str, Any]] = {}
    for part in parts:
        for row in part["rows"]:
            runs[(row["model"], row["train_images"], row["epochs"], row["seed"], row["side"])] = row
    rows = list(runs.values())
    return {
        **first,
        "threads": sorted({run["threads"] for run in joined if isinstance(run["threads"], int)}),
        "seeds": sorted({row["seed"] for row in rows}),
        "cells": [list(cell) for cell in sorted({(r["train_images"], r["epochs"]) for r in rows})],
        "rows": rows,
        "summary": summarise(rows),
        "complete": all(part["complete"] for part in parts),
        "seconds_as_seen": round(sum(part["seconds_as_seen"] for part in parts), 1),
        # a part that is itself a join lists the runs it joined
        "joined": joined,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--models", nargs="+", default=None, help="default: every model above")
    parser.add_argument(
        "--cells", nargs="+", default=None, help="IMAGESxEPOCHS, e.g. 2000x1 (default: the grid)"
    )
    parser.add_argument(
        "--seeds", type=int, nargs="+", default=list(SEEDS), help="one run of each side a seed"
    )
    parser.add_argument(
        "--test-images", type=int, default=TEST_IMAGES, help="the first N test images score"
    )
    parser.add_argument("--quick", action="store_true", help="smoke test: 2 models, tiny data")
    parser.add_argument("--no-save", action="store_true", help="print only, write no JSON")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch's threads (default: its own)"
    )
    parser.add_argument(
        "--join",
        nargs="+",
        type=Path,
        default=None,
        help="join these results into one, train nothing",
    )
    args = parser.parse_args(argv)
    if args.join:
        joined = join(args.join)
        if args.no_save:
            print(f"joined {len(args.join)} results: {len(joined['summary'])} cells (not saved)")
            return joined
        path = next_result_path("budgets")
        write_json_atomic(path, joined)
        print(f"joined {len(args.join)} results: {len(joined['summary'])} cells; wrote {path}")
        return joined
    if args.threads:
        torch.set_num_threads(args.threads)
    models = args.models or [*DEFAULT_ZOO_MODELS, *USER_NETS]
    cells = CELLS
    if args.cells:
        cells = tuple(tuple(int(v) for v in cell.split("x")) for cell in args.cells)  # type: ignore[misc]
    seeds, test_images = args.seeds, args.test_images
    if args.quick:
        models, cells, seeds, test_images = ["user_plain", "lenet5"], ((200, 1),), [0], 200
    largest = max(images for images, _ in cells)
    rows: list[dict[str, Any]] = []
    started = time.perf_counter()
    result: dict[str, Any] = {
        "benchmark": "budgets",
        "machine": machine_info(),
        "tutorial": TUTORIAL,
        "seeds": list(seeds),
        "test_images": test_images,
        "cells": [list(cell) for cell in cells],
        "threads": torch.get_num_threads(),
        "complete": False,
    }
    saving = not (args.no_save or args.quick)
    path = next_result_path("budgets") if saving else None

    def save(complete: bool) -> None:
        # after every cell, so a long run stopped early keeps what it measured
        result.update(
            seconds_as_seen=round(time.perf_counter() - started, 1),
            rows=rows,
            summary=summarise(rows),
            complete=complete,
        )
        if path is not None:
            write_json_atomic(path, result)

    with tempfile.TemporaryDirectory() as workdir:
        images = Images(largest, test_images, Path(workdir))
        for name in models:
            for train_images, epochs in cells_of(name, cells):
                train, test = images.data(kind_of(name), train_images)
                for seed in seeds:
                    # defaults and tutorial alternate, each from the same initial weights
                    for side, run in (("defaults", run_defaults), ("tutorial", run_tutorial)):
                        torch.manual_seed(seed)
                        model = make_model(name, 10)
                        row = run(model, train, test, epochs, seed)
                        row.update(
                            model=name,
                            side=side,
                            seed=seed,
                            train_images=len(train),
                            epochs=epochs,
                        )
                        rows.append(row)
                        print(
                            f"{name:32s} {len(train):6d} x {epochs:2d} {side:9s} seed {seed}: "
                            f"{row['test_accuracy']:.4f} in {row['seconds_as_seen']:.1f} s "
                            f"({row['cpu_seconds']:.1f} CPU-s)",
                            flush=True,
                        )
                save(complete=False)
    save(complete=True)
    summary = result["summary"]
    failing = [s for s in summary if not s["holds"]]
    print(f"{len(summary) - len(failing)} of {len(summary)} cells hold")
    for s in sorted(summary, key=lambda s: s["difference"])[:5]:
        print(
            f"  worst: {s['model']} {s['train_images']}x{s['epochs']}: "
            f"{s['defaults']:.3f} vs {s['tutorial']:.3f}"
        )
    if path is not None:
        print(f"wrote {path}")
    return result


if __name__ == "__main__":
    main()
