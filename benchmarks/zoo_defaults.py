"""Every registered model trained with ``fit``'s defaults on one small Fashion-MNIST task.

The question this answers: does a user who passes nothing but the model and the data get a run
that learns, whichever classic net they chose? Each registered model is trained with
``cnnzoo.fit(model, train, val_data=0.1, seed=seed)`` and every other argument at its default
(4 epochs, batch 128: 84 optimizer steps), on the same fixed subset of Fashion-MNIST (3,000
images), from 3 seeds, and scored on a fixed subset of the test split. For one model of each
recipe family a small grid of peak rates (seed 0) is the reference the defaults are held to; the
grid's point at the reference's own recipe is its seed-0 run with the defaults, not trained
twice.

Each model sees the images in the size it takes:

* the 28×28 nets (``lenet5``, ``mini_inception``, ``mini_resnet``) the images as they are;
* ``cifar_cnn`` (fixed 32×32) the images padded by 2 pixels, LeNet's classic 32×32 layout;
* the ImageNet families (AlexNet, VGG, GoogLeNet, ResNet, DenseNet) are built with
  ``small_input=True`` and see the images downsampled to 8×8 (antialiased): the smallest input
  every one of those families takes (DenseNet and VGG need 8×8). At 16×16 the whole benchmark
  would take about twice as long, over the hour it is sized for on 2 cores; the price is that
  8×8 is hard on the plain VGGs, whose last eight (VGG-19) convolutions then see 1×1 maps;
* ``alexnet_original`` (fixed 227×227) the images upsampled to 227×227;
* the monkeypox tutorial's nets (fixed 3×224×224) an image folder of the same images written as
  224×224 RGB PNG files and read back with ``cnnzoo.data.load_dataset``.

The three fixed large-input nets train on the first 1,000 images of the task (the same epochs):
their images have 780 to 800 times the pixels of an 8×8 one, and all 3,000 would take them
alone past the benchmark's hour. Their family references (``network_bn``, ``alexnet_original``)
are measured on the same 1,000 images, so every model is held to a grid run on its own data.

````--update RESULT --models NAME...`` trains again the defaults of the models named (after their
recipe or their initialisation changed), and the grid of each family reference among them, and
writes them with every other row and grid of ``RESULT`` as a new result.

A run *learns* when its test accuracy ends more than 5 points above chance and its last epoch's
training loss is below its first's; the defaults *hold* for a model when every seed learns and
the mean test accuracy over the seeds is at least 95% of the best grid accuracy of its family's
reference. Accuracy, not time, is measured, so the benchmark may run on a shared machine (the
seconds are written down as seen).

Usage::

    python benchmarks/zoo_defaults.py                        # the whole zoo, 3 seeds, the grids
    python benchmarks/zoo_defaults.py --models "vgg*" --no-grid --seeds 0
    python benchmarks/zoo_defaults.py --quick                # smoke test: 3 models, tiny data
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import math
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cnnzoo
from benchmarks._machine import machine_info, write_result
from cnnzoo.data import ImageTensorDataset, load_dataset
from cnnzoo.models import info, list_models
from cnnzoo.training.arguments import DEFAULT_EPOCHS
from cnnzoo.training.collapse import TrainingCollapseWarning

EPOCHS = DEFAULT_EPOCHS  # fit's own default (4)
# 2,700 to train, 300 held out by val_data=0.1: 21 steps an epoch (fit drops a partial batch)
TRAIN_IMAGES = 3000
LARGE_INPUT_TRAIN_IMAGES = 1000  # the fixed 224/227-pixel nets (see the module docstring)
TEST_IMAGES = 500
SEEDS = (0, 1, 2)
VAL_FRACTION = 0.1
SUBSET_SEED = 1234  # which images form the task: fixed, whatever the run's seed
SMALL_SIDE = 8  # the ImageNet families' input side (see the module docstring)
# Peak rates of the reference grids (AdamW under fit's one-cycle schedule): every recipe lies
# inside its family's grid with a rate on either side, except at the grid's edges below.
GRID = (3e-4, 1e-3, 3e-3, 1e-2)
# The cheap 28×28 nets get a wider grid for free; the costly large-input nets a narrower one
# (on an earlier, 21-step task network_bn blew up from 3e-3 and AlexNet stalled from 3e-3).
FAMILY_GRIDS = {
    "lenet": (3e-3, 1e-2, 2e-2, 5e-2, 1e-1),
    "mini_resnet": (1e-3, 3e-3, 1e-2, 2e-2, 5e-2),
    "mini_inception": (3e-4, 1e-3, 3e-3, 1e-2, 2e-2),
    "cifar_cnn": (3e-4, 1e-3, 3e-3, 1e-2, 2e-2),
    "network_bn": (1e-4, 3e-4, 1e-3),
    "alexnet_original": (1e-4, 3e-4, 1e-3),
}
# One reference model per recipe family: the grid is run on it, and every model of the family
# is held to its best grid accuracy. Where a family's models differ in depth, the reference is
# one that learns faster in the task's 84 steps (VGG-16 for VGG-19), so the bar is not lowered.
REFERENCES = {
    "lenet": "lenet5",
    "alexnet": "alexnet",
    "alexnet_original": "alexnet_original",
    "vgg": "vgg11",
    "vgg_deep": "vgg16",
    "vgg_bn": "vgg11_bn",
    "googlenet": "googlenet",
    "resnet": "resnet18",
    "densenet": "densenet121",
    "mini_inception": "mini_inception",
    "mini_resnet": "mini_resnet",
    "cifar_cnn": "cifar_cnn",
    "network_bn": "network_bn",
}
CHANCE_MARGIN = 0.05  # a run ending within 5 points of chance did not learn
HOLD_SHARE = 0.95  # the defaults must reach 95% of the family's best grid accuracy


def recipe_family(name: str) -> str:
    """The recipe family a model is held to: the models of a registry family that share a recipe.

    So every recipe is tested by a grid: VGG splits three ways (with BatchNorm; without, VGG-11
    and VGG-13; without, VGG-16 and VGG-19, which train at a lower rate), the tutorial's nets
    each have their own, and ``alexnet_original`` too (it trains on the large-input task).
    """
    family = info(name).family
    if name == "alexnet_original":
        return name
    if family == "vgg":
        if name.endswith("_bn"):
            return "vgg_bn"
        return "vgg_deep" if name in ("vgg16", "vgg19") else "vgg"
    if family == "tutorial":
        return "network_bn" if name.startswith("network_bn") else name
    return family


def input_kind(name: str) -> str:
    """How the model sees the task's images: "native", "pad32", "small", "upsample" or "folder"."""
    model_info = info(name)
    if model_info.fixed_input_size:
        channels, height, _ = model_info.input_size
        if (height, channels) == (28, 1):
            return "native"
        if height == 32:
            return "pad32"
        return "folder" if channels == 3 else "upsample"
    return "small"


def train_images_of(name: str, train_images: int) -> int:
    """How many of the task's training images ``name`` sees (see the module docstring)."""
    if input_kind(name) in ("folder", "upsample"):
        return min(train_images, LARGE_INPUT_TRAIN_IMAGES)
    return train_images


def grid_of(family: str) -> tuple[float, ...]:
    """The peak rates of ``family``'s reference grid."""
    return FAMILY_GRIDS.get(family, GRID)


def build(name: str, num_classes: int) -> torch.nn.Module:
    """The model as the benchmark trains it (see :func:`input_kind`)."""
    kind = input_kind(name)
    if kind == "small":
        return cnnzoo.get_model(name, num_classes=num_classes, in_channels=1, small_input=True)
    if kind == "folder":
        return cnnzoo.get_model(name, num_classes=num_classes)
    return cnnzoo.get_model(name, num_classes=num_classes, in_channels=1)


def subset(data: ImageTensorDataset, n: int) -> ImageTensorDataset:
    """A fixed, seeded choice of ``n`` images (the same whatever the run's seed)."""
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(SUBSET_SEED))[:n]
    return ImageTensorDataset(
        data.images[order], data.labels[order], data.classes, data.mean, data.std
    )


def resized(data: ImageTensorDataset, size: int, pad: int = 0) -> ImageTensorDataset:
    """The same images at ``size``×``size`` (antialiased), or padded by ``pad`` pixels."""
    images = data.images
    if pad:
        images = F.pad(images, (pad, pad, pad, pad))
    else:
        scaled = F.interpolate(
            images.float(), size=(size, size), mode="bilinear", antialias=True, align_corners=False
        )
        images = scaled.round().clamp(0, 255).to(torch.uint8)
    # The statistics of the images as given, as load_dataset measures them on a dataset's own.
    pixels = images.float().div(255)
    mean, std = pixels.mean(dim=(0, 2, 3)).tolist(), pixels.std(dim=(0, 2, 3)).tolist()
    return ImageTensorDataset(images, data.labels, data.classes, mean, std)


def write_folder(train: ImageTensorDataset, test: ImageTensorDataset, root: Path) -> Path:
    """The task as an image folder of 224×224 RGB PNG files: ``root/{train,test}/<class>/``."""
    from PIL import Image

    for split, data in (("train", train), ("test", test)):
        big = resized(data, 224).images
        for index, (image, label) in enumerate(zip(big, data.labels.tolist(), strict=True)):
            folder = root / split / f"{label}_{data.classes[label].replace('/', '-')}"
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image[0].numpy()).convert("RGB").save(folder / f"{index:05d}.png")
    return root


class Task:
    """The fixed task in every form the zoo needs, each made once, on first use."""

    def __init__(self, train_images: int, test_images: int, workdir: Path) -> None:
        self.train = subset(load_dataset("fashion-mnist"), train_images)
        self.test = subset(load_dataset("fashion-mnist", "test"), test_images)
        self.num_classes = len(self.train.classes)
        self._workdir = workdir
        self._forms: dict[str, tuple[Any, Any]] = {}

    def data(self, kind: str) -> tuple[Any, Any]:
        """``(train, test)`` for models of ``kind`` (see :func:`input_kind`)."""
        if kind not in self._forms:
            if kind == "native":
                form = (self.train, self.test)
            elif kind == "pad32":
                form = (resized(self.train, 32, pad=2), resized(self.test, 32, pad=2))
            elif kind == "small":
                form = (resized(self.train, SMALL_SIDE), resized(self.test, SMALL_SIDE))
            elif kind == "upsample":
                form = (resized(self.train, 227), resized(self.test, 227))
            else:
                folder = write_folder(self.train, self.test, self._workdir / "folder")
                form = (load_dataset(folder, "train"), load_dataset(folder, "test"))
            self._forms[kind] = form
        return self._forms[kind]

    @staticmethod
    def chance_of(test_images: int) -> float:
        """Accuracy of always answering the most frequent class of the task's test images."""
        labels = subset(load_dataset("fashion-mnist", "test"), test_images).labels
        return float(torch.bincount(labels).max()) / len(labels)


def train_one(
    name: str, task: Task, seed: int, epochs: int, lr: float | None = None
) -> dict[str, Any]:
    """One ``fit`` of ``name`` from ``seed`` (``lr=None``: fit's default), then scored."""
    train, test = task.data(input_kind(name))
    torch.manual_seed(seed)
    model = build(name, task.num_classes)
    options = {} if lr is None else {"lr": lr}
    started = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            history = cnnzoo.fit(
                model, train, val_data=VAL_FRACTION, epochs=epochs, seed=seed, verbose=0, **options
            )
        except FloatingPointError as error:  # a diverged run is a result, not a crash
            return {
                "model": name,
                "seed": seed,
                "lr": lr,
                "diverged": str(error),
                "test_accuracy": None,
                "loss": [],
                "alerts": [],
                "seconds_as_seen": round(time.perf_counter() - started, 1),
            }
    seconds = time.perf_counter() - started
    accuracy = cnnzoo.evaluate(model, test)["accuracy"]
    return {
        "model": name,
        "seed": seed,
        "lr": lr,
        "lr_used": history.params["lr"],
        "lr_source": history.params.get("lr_source"),
        "test_accuracy": round(accuracy, 4),
        "loss": [round(v, 4) for v in history.history["loss"]],
        "val_accuracy": [round(v, 4) for v in history.history.get("val_accuracy", [])],
        "alerts": [
            {"epoch": alert["epoch"] + 1, "kind": alert["kind"]} for alert in history.alerts
        ],
        "warned": sum(issubclass(w.category, TrainingCollapseWarning) for w in caught),
        "seconds_as_seen": round(seconds, 1),
    }


def learned(row: dict[str, Any], chance: float) -> bool:
    """The run ended more than 5 points above chance with a loss below its first epoch's."""
    accuracy, loss = row.get("test_accuracy"), row.get("loss") or []
    if accuracy is None or not loss or not all(math.isfinite(v) for v in loss):
        return False
    return accuracy > chance + CHANCE_MARGIN and (len(loss) == 1 or loss[-1] < loss[0])


def verdicts(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Per model: minimum and mean accuracy over seeds, learned on every seed, held to the grid."""
    chance = result["chance"]
    best = {
        family: max((r["test_accuracy"] or 0.0 for r in rows), default=None)
        for family, rows in _by(result["grid"], "family").items()
    }
    summary = []
    for name, rows in _by(result["defaults"], "model").items():
        accuracies = [r["test_accuracy"] or 0.0 for r in rows]
        family = recipe_family_of(result, name)
        reference = best.get(family)
        mean = statistics.fmean(accuracies)
        summary.append(
            {
                "model": name,
                "family": family,
                "lr_used": rows[0].get("lr_used"),
                "min_accuracy": min(accuracies),
                "mean_accuracy": round(mean, 4),
                "best_of_grid": reference,
                "share_of_best": None if not reference else round(mean / reference, 3),
                "learned_every_seed": all(learned(r, chance) for r in rows),
                "holds": all(learned(r, chance) for r in rows)
                and (not reference or mean >= HOLD_SHARE * reference),
                "alerts": sum(len(r.get("alerts", [])) for r in rows),
            }
        )
    return summary


def alert_outcomes(result: dict[str, Any]) -> dict[str, Any]:
    """How the runs that fit warned about ended, and how many healthy runs it warned about.

    The measurement behind fit's choice to warn and go on rather than act: a run that was
    warned about but ends well would be hurt by an automatic intervention.
    """
    chance = result["chance"]
    best = {
        family: max((r["test_accuracy"] or 0.0 for r in rows), default=0.0)
        for family, rows in _by(result["grid"], "family").items()
    }
    # A grid point that is a defaults run is counted once, as a defaults run.
    rows = [*result["defaults"], *(r for r in result["grid"] if not r.get("defaults_run"))]
    warned = [r for r in rows if r.get("alerts")]
    ended = []
    for row in warned:
        family = recipe_family_of(result, row["model"])
        accuracy = row["test_accuracy"] or 0.0
        ended.append(
            {
                "model": row["model"],
                "lr": row["lr"] if row["lr"] is not None else row.get("lr_used"),
                "kind": row["alerts"][0]["kind"],
                "epoch": row["alerts"][0]["epoch"],
                "test_accuracy": row["test_accuracy"],
                "share_of_best": round(accuracy / best[family], 3) if best.get(family) else None,
                "at_chance": accuracy <= chance + CHANCE_MARGIN,
                "above_recipe": row["lr"] is not None
                and row["lr"] > result.get("recipes", {}).get(row["model"], math.inf),
            }
        )
    return {
        "runs": len(rows),
        "warned": len(warned),
        "warned_at_chance": sum(e["at_chance"] for e in ended),
        "warned_defaults": sum(1 for r in result["defaults"] if r.get("alerts")),
        # Silent failures: runs that did not learn with no warning (a NaN raises, not silent).
        "unwarned_at_chance": sum(
            1
            for r in rows
            if not r.get("alerts") and "diverged" not in r and not learned(r, chance)
        ),
        "ended": ended,
    }


def _recipe_lr(name: str) -> float | None:
    recipe = info(name).recipe
    return None if recipe is None else recipe.lr


def recipe_family_of(result: dict[str, Any], name: str) -> str:
    return result.get("families", {}).get(name) or recipe_family(name)


def _by(rows: list[dict[str, Any]], key: str) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        grouped.setdefault(row[key], []).append(row)
    return grouped


def select(patterns: list[str]) -> list[str]:
    """The registered models matching any of ``patterns``, in the registry's order."""
    return [n for n in list_models() if any(fnmatch.fnmatch(n, p.lower()) for p in patterns)]


# Each worker process holds the tasks of its jobs, each made on first use.
_TASKS: dict[int, Task] = {}
_WORKDIR: tempfile.TemporaryDirectory | None = None
_TEST_IMAGES = TEST_IMAGES

Job = tuple[str, int, int, "float | None", int]  # model, seed, epochs, lr, training images


def _worker_init(test_images: int) -> None:
    """A worker: one torch thread (workers run side by side, one per core)."""
    global _WORKDIR, _TEST_IMAGES
    torch.set_num_threads(1)
    _WORKDIR = tempfile.TemporaryDirectory()
    _TEST_IMAGES = test_images


def _job(job: Job) -> dict[str, Any]:
    name, seed, epochs, lr, train_images = job
    if train_images not in _TASKS:
        assert _WORKDIR is not None
        workdir = Path(_WORKDIR.name) / str(train_images)
        _TASKS[train_images] = Task(train_images, _TEST_IMAGES, workdir)
    row = train_one(name, _TASKS[train_images], seed, epochs, lr)
    row["train_images"] = train_images
    return row


def job_cost(name: str) -> float:
    """Multiply-accumulates of one forward pass at the size the benchmark feeds the model."""
    from torch.utils.flop_counter import FlopCounterMode

    kind = input_kind(name)
    side = {"native": 28, "pad32": 32, "small": SMALL_SIDE, "upsample": 227, "folder": 224}[kind]
    with torch.device("meta"):
        model = build(name, 10)
    channels = 3 if kind == "folder" else 1
    with FlopCounterMode(display=False) as counter:
        model.eval()(torch.empty(1, channels, side, side, device="meta"))
    return counter.get_total_flops() / 2


def _job_key(job: Job) -> str:
    return json.dumps(list(job))


def read_journal(journal: Path | None, jobs: list[Job]) -> dict[int, dict[str, Any]]:
    """The rows of ``jobs`` a stopped run of the same jobs already wrote to ``journal``."""
    if journal is None or not journal.is_file():
        return {}
    index = {_job_key(job): i for i, job in enumerate(jobs)}
    done = {}
    for line in journal.read_text().splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:  # a line cut short by the stop
            continue
        if entry.get("job") in index:
            done[index[entry["job"]]] = entry["row"]
    return done


def run_jobs(
    jobs: list[Job], workers: int, test_images: int, journal: Path | None = None
) -> list[dict[str, Any]]:
    """Every job's row, in the order given; the costliest jobs start first.

    With a ``journal``, each finished job's row is appended to it as it comes, and the jobs it
    already holds (a run stopped before its end) are not trained again.
    """
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from multiprocessing import get_context

    costs = {name: job_cost(name) for name in {job[0] for job in jobs}}
    done = read_journal(journal, jobs)
    if done:
        print(f"{len(done)} of {len(jobs)} jobs taken from {journal}", flush=True)
    order = sorted(
        (i for i in range(len(jobs)) if i not in done),
        key=lambda i: -costs[jobs[i][0]] * jobs[i][2] * jobs[i][4],
    )
    rows: list[dict[str, Any] | None] = [done.get(i) for i in range(len(jobs))]
    context = get_context("spawn")
    with ProcessPoolExecutor(
        workers, mp_context=context, initializer=_worker_init, initargs=(test_images,)
    ) as pool:
        futures = {pool.submit(_job, jobs[i]): i for i in order}
        for future in as_completed(futures):
            row = future.result()
            row["macs_per_image"] = costs[row["model"]]
            rows[futures[future]] = row
            if journal is not None:
                with journal.open("a") as log:  # one line a job: a stop loses no finished job
                    log.write(
                        json.dumps({"job": _job_key(jobs[futures[future]]), "row": row}) + "\n"
                    )
            _report("default" if row["lr"] is None else f"grid lr={row['lr']:g}", row)
    return [row for row in rows if row is not None]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["*"], help="names or patterns")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS), help="a run each")
    parser.add_argument("--epochs", type=int, default=EPOCHS, help="epochs of every run")
    parser.add_argument(
        "--train-images", type=int, default=TRAIN_IMAGES, help="training images (a tenth held out)"
    )
    parser.add_argument("--test-images", type=int, default=TEST_IMAGES, help="images scored")
    parser.add_argument("--grid", type=float, nargs="+", help="peak rates (default: per family)")
    parser.add_argument("--no-grid", action="store_true", help="the defaults only")
    parser.add_argument("--grid-only", action="store_true", help="the reference grids only")
    parser.add_argument(
        "--update",
        type=Path,
        metavar="RESULT",
        help="train again the defaults of --models (after their recipe or initialisation "
        "changed), and the grids of the references among them, and write RESULT's other rows "
        "and grids with them, as one new result",
    )
    parser.add_argument(
        "--jobs", type=int, default=os.cpu_count() or 1, help="worker processes, one thread each"
    )
    parser.add_argument(
        "--journal",
        type=Path,
        default=None,
        help="append each finished job here, and take the jobs it holds from a stopped run",
    )
    parser.add_argument("--quick", action="store_true", help="smoke test: 3 models, tiny data")
    parser.add_argument("--no-save", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.models, args.seeds, args.epochs = ["lenet5", "mini_resnet", "resnet18"], [0], 1
        args.train_images, args.test_images, args.grid = 256, 128, [1e-3]
    models = select(args.models)
    if not models:
        parser.error(f"no registered model matches {args.models}")
    if args.update is not None and (args.models == ["*"] or args.grid_only or args.quick):
        parser.error("--update retrains the defaults of the models named by --models, no others")
    started = time.perf_counter()
    families = {name: recipe_family(name) for name in models}
    task = {
        "dataset": "fashion-mnist",
        "train_images": args.train_images,
        "test_images": args.test_images,
        "val_fraction": VAL_FRACTION,
        "epochs": args.epochs,
        "small_side": SMALL_SIDE,
        "large_input_train_images": min(args.train_images, LARGE_INPUT_TRAIN_IMAGES),
        "subset_seed": SUBSET_SEED,
    }
    n = args.train_images
    jobs: list[Job] = []
    if not args.grid_only:
        jobs += [
            (name, seed, args.epochs, None, train_images_of(name, n))
            for name in models
            for seed in args.seeds
        ]
    grid: list[dict[str, Any]] = []
    # Grid points that are a defaults run already (the reference at its own recipe, seed 0).
    shared: dict[str, float] = {}
    earlier: dict[str, Any] | None = None
    references = sorted({REFERENCES[families[model]] for model in models})
    if args.update is not None:
        earlier = json.loads(args.update.read_text())
        if earlier["task"] != task or earlier["seeds"] != args.seeds:
            parser.error(f"{args.update} measured another task: {earlier['task']}")
        # A retrained reference gets its grid again; the other retrained models' old seed-0 runs
        # stay in their family's grid as runs at their old rate.
        references = [] if args.no_grid else [name for name in references if name in models]
        regridded = {recipe_family(name) for name in references}
        grid = [
            {k: v for k, v in r.items() if not (k == "defaults_run" and r["model"] in models)}
            for r in earlier["grid"]
            if r["family"] not in regridded
        ]
    if not args.no_grid:
        reuse_defaults = not args.grid_only and 0 in args.seeds
        for name in references:
            for lr in args.grid or grid_of(recipe_family(name)):
                if reuse_defaults and name in models and lr == _recipe_lr(name):
                    shared[name] = lr
                else:
                    jobs.append((name, 0, args.epochs, lr, train_images_of(name, n)))
    rows = run_jobs(jobs, args.jobs, args.test_images, args.journal)
    for row in rows:
        if row["lr"] is not None:
            row["family"] = recipe_family(row["model"])
            grid.append(row)
        elif row["model"] in shared and row["seed"] == 0:
            grid.append(
                {
                    **row,
                    "lr": shared[row["model"]],
                    "family": recipe_family(row["model"]),
                    "defaults_run": True,
                }
            )
    result: dict[str, Any] = {
        "benchmark": "zoo_defaults",
        "task": task,
        "seeds": args.seeds,
        "quick": args.quick,
        "chance": Task.chance_of(args.test_images),
        "families": families,
        "inputs": {name: input_kind(name) for name in models},
        "recipes": {name: _recipe_lr(name) for name in models},
        "defaults": [row for row in rows if row["lr"] is None],
        "grid": grid,
        "jobs": args.jobs,
        "machine": machine_info(),
        "seconds_as_seen": round(time.perf_counter() - started, 1),
    }
    if earlier is not None:
        result = merge_update(earlier, result, args.update.name)
    result["summary"] = verdicts(result) if result["defaults"] else []
    result["alert_outcomes"] = alert_outcomes(result) if result["grid"] else None
    for line in result["summary"]:
        print(
            f"{line['model']:16s} min {line['min_accuracy']:.3f} mean {line['mean_accuracy']:.3f}"
            f" best-of-grid {line['best_of_grid']} holds {line['holds']}",
            flush=True,
        )
    if not args.no_save:
        # A smoke test's figures must never reach the docs: its file has another name.
        name = "zoo_defaults-quick" if args.quick else "zoo_defaults"
        print(f"written to {write_result(name, result)}")
    return result


def merge_update(earlier: dict[str, Any], update: dict[str, Any], source: str) -> dict[str, Any]:
    """``earlier`` with the defaults of ``update``'s models replaced by ``update``'s runs."""
    retrained = set(update["families"])
    merged = {**earlier, "grid": update["grid"]}
    for key in ("families", "inputs", "recipes"):
        merged[key] = {**earlier[key], **update[key]}
    kept = [r for r in earlier["defaults"] if r["model"] not in retrained]
    order = {name: i for i, name in enumerate(earlier["families"])}
    merged["defaults"] = sorted(
        [*kept, *update["defaults"]], key=lambda r: (order.get(r["model"], len(order)), r["seed"])
    )
    merged["updated"] = {
        "from": source,
        "models": sorted(retrained),
        "machine": update["machine"],
        "seconds_as_seen": update["seconds_as_seen"],
    }
    return merged


def _report(what: str, row: dict[str, Any]) -> None:
    accuracy = row.get("test_accuracy")
    loss = ", ".join(f"{v:.3g}" for v in row.get("loss", []))
    print(
        f"{row['model']:16s} {what:14s} seed {row['seed']} lr {row.get('lr_used')}: test "
        f"{accuracy} loss [{loss}] {row['seconds_as_seen']} s {row.get('alerts') or ''}",
        flush=True,
    )


if __name__ == "__main__":
    main()
