"""Image folders on disk: the tutorial's ImageFolder pipeline against cnnzoo streamed and in memory.

A generated folder of JPEGs stands in for the monkeypox BatchNorm CNN tutorial's photographs:
Fashion-MNIST T-shirts and sneakers, upscaled to 224x224 and tinted to RGB, two classes. The
tutorial's own network (``network_bn``) trains on it with batch 32 in each contender:

* ``tutorial``: torchvision ``ImageFolder`` with ``Resize``/``ToTensor``/``Normalize`` and a
  ``DataLoader`` (shuffled, the same workers as cnnzoo), a plain fp32 loop with Adam;
* ``streamed``: ``cnnzoo.fit`` on ``load_dataset(folder, in_memory=False)``;
* ``in_memory``: ``cnnzoo.fit`` on ``load_dataset(folder, in_memory=True)``;
* ``decoded_cache``: the prototype of a decoded-image cache on disk: the streamed path reading
  a memory-mapped ``uint8`` file of the decoded images instead of decoding the JPEGs (it
  measures whether such a cache would pay off before one is built into cnnzoo).

Each contender trains two epochs of the whole folder per round and the second epoch is timed
(the first pays the one-off costs: worker start-up, the model's first steps). The rounds
alternate the contenders' order; the ratios (tutorial seconds / contender seconds, i.e. epochs
per second relative to the tutorial) are taken within each round, median and range reported.

Memory: a streamed run (``load_dataset`` with its decoding pass, then ``--rss-steps`` training
steps) in a fresh process on the folder and on one 4x larger; peak RSS of the training process
and of its largest DataLoader worker. An in-memory run on both for contrast.

Usage::

    nice -n 10 python benchmarks/streaming.py            # ~10 min on 2 CPU cores
    python benchmarks/streaming.py --quick --no-save     # smoke test, about a minute
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cnnzoo
from benchmarks._machine import machine_info, spread, write_result
from cnnzoo.data import StreamedImageFolder, load_dataset
from cnnzoo.data.streamed import decode_chunks
from cnnzoo.training.feed.batches import default_num_workers

CONTENDERS = ("tutorial", "streamed", "in_memory", "decoded_cache")
CLASSES = {"tshirt": 0, "sneaker": 7}  # Fashion-MNIST labels
SIDE = 224
BATCH = 32


# -- the folder ------------------------------------------------------------------------------
def make_folder(root: Path, count: int, seed: int = 0) -> Path:
    """``count`` JPEGs under ``root/train/<class>/``, half per class, 224x224 RGB."""
    from PIL import Image

    fashion = load_dataset("fashion-mnist", "train")
    generator = np.random.default_rng(seed)
    for name, label in CLASSES.items():
        folder = root / "train" / name
        folder.mkdir(parents=True, exist_ok=True)
        picks = (fashion.labels == label).nonzero().flatten()[: count // 2].tolist()
        for i, index in enumerate(picks):
            grey = Image.fromarray(fashion.images[index, 0].numpy()).resize((SIDE, SIDE))
            tint = generator.uniform(0.4, 1.0, size=3)
            rgb = (np.asarray(grey, dtype=np.float32)[..., None] * tint).astype(np.uint8)
            Image.fromarray(rgb).save(folder / f"{i:05d}.jpg", quality=90)
    return root


# -- the contenders ----------------------------------------------------------------------------
def network() -> torch.nn.Module:
    torch.manual_seed(0)
    return cnnzoo.get_model("network_bn", num_classes=2)


def tutorial_epochs(root: Path, workers: int, epochs: int) -> list[float]:
    """The tutorial's pipeline: seconds per epoch."""
    from torchvision import datasets, transforms

    transform = transforms.Compose(
        [
            transforms.Resize((SIDE, SIDE)),
            transforms.ToTensor(),
            transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
        ]
    )
    data = datasets.ImageFolder(str(root / "train"), transform=transform)
    loader = torch.utils.data.DataLoader(data, batch_size=BATCH, shuffle=True, num_workers=workers)
    model = network()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    loss_fn = torch.nn.CrossEntropyLoss()
    seconds = []
    for _ in range(epochs):
        started = time.perf_counter()
        model.train()
        correct = 0
        for x, y in loader:
            optimizer.zero_grad()
            outputs = model(x)
            loss = loss_fn(outputs, y)
            loss.backward()
            optimizer.step()
            correct += (outputs.argmax(1) == y).sum().item()
        seconds.append(time.perf_counter() - started)
    return seconds


class CachedFolder(StreamedImageFolder):
    """A streamed folder whose pixels come from a memory-mapped ``uint8`` file (the cache)."""

    def __init__(self, folder: StreamedImageFolder, cache: Path) -> None:
        super().__init__(
            folder.samples,
            folder.labels,
            folder.classes,
            folder.mean,
            folder.std,
            folder.image_size,
            resize=False,
        )
        self.cache = str(cache)
        self._rows: np.ndarray | None = None

    def pixels(self, index: int) -> torch.Tensor:
        if self._rows is None:  # opened in each worker
            shape = (len(self), 3, *self.image_size)
            self._rows = np.memmap(self.cache, dtype=np.uint8, mode="r", shape=shape)
        return torch.from_numpy(np.array(self._rows[index]))


def build_cache(folder: StreamedImageFolder, path: Path) -> float:
    """Write the decoded images to ``path``; the seconds it took."""
    started = time.perf_counter()
    rows = np.memmap(path, dtype=np.uint8, mode="w+", shape=(len(folder), 3, *folder.image_size))
    start = 0
    for chunk in decode_chunks(folder.samples, None, "cache"):
        rows[start : start + len(chunk)] = chunk.numpy()
        start += len(chunk)
    rows.flush()
    return time.perf_counter() - started


def fit_epochs(data: Any, workers: int, epochs: int) -> list[float]:
    history = cnnzoo.fit(
        network(), data, epochs=epochs, batch_size=BATCH, num_workers=workers, verbose=0
    )
    return history.history["epoch_seconds"]


# -- memory -----------------------------------------------------------------------------------
class _StopAfter:
    def __init__(self, steps: int) -> None:
        self.steps = steps

    def on_batch_begin(self, batch: int, logs: dict) -> None:
        if batch >= self.steps:
            raise cnnzoo.training.StopTraining


def _peak_mb(pid: int | str = "self") -> float:
    """A process's peak resident memory (``VmHWM``: per address space, reset by ``exec``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


class _WorkerPeaks(threading.Thread):
    """Samples the peak memory of this process's children (the DataLoader workers)."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peaks: dict[str, float] = {}
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.2):
            for children in Path("/proc/self/task").glob("*/children"):
                for pid in children.read_text().split():
                    with contextlib.suppress(OSError):  # it exited since the listing
                        self.peaks[pid] = max(self.peaks.get(pid, 0.0), _peak_mb(pid))


def rss_child(root: Path, mode: str, steps: int, workers: int) -> None:
    """Load and train a few steps; print peak memory in MB (after loading, after training)."""
    sampler = _WorkerPeaks()
    sampler.start()
    data = load_dataset(root, "train", in_memory=mode == "in_memory")
    after_load = _peak_mb()
    cnnzoo.fit(
        network(),
        data,
        epochs=1,
        batch_size=BATCH,
        num_workers=workers,
        verbose=0,
        callbacks=[_StopAfter(steps)],
    )
    sampler.done.set()
    sampler.join()
    print(
        json.dumps(
            {
                "load_peak_mb": after_load,
                "main_mb": _peak_mb(),
                "worker_mb": max(sampler.peaks.values(), default=0.0),
            }
        )
    )


def measure_rss(root: Path, mode: str, steps: int, workers: int) -> dict[str, float]:
    command = [sys.executable, __file__, "--rss-child", str(root), mode, str(steps), str(workers)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"the memory run failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# -- the rounds ---------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=512, help="images in the timed folder")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=None, help="None: cnnzoo's default")
    parser.add_argument("--rss-steps", type=int, default=8)
    parser.add_argument("--quick", action="store_true", help="a smoke test: tiny, one round")
    parser.add_argument("--no-save", action="store_true")
    parser.add_argument("--rss-child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.rss_child:
        root, mode, steps, workers = args.rss_child
        rss_child(Path(root), mode, int(steps), int(workers))
        return 0
    if args.quick:
        args.images, args.rounds, args.rss_steps = 64, 1, 2
    workers = default_num_workers() if args.workers is None else args.workers
    result: dict[str, Any] = {
        "machine": machine_info("cpu"),
        "versions": {"torch": torch.__version__, "cnnzoo": cnnzoo.__version__},
        "model": "network_bn",
        "image_size": [SIDE, SIDE],
        "batch_size": BATCH,
        "images": args.images,
        "steps_per_epoch": args.images // BATCH,
        "workers": workers,
        "rounds": [],
        "quick": args.quick,
    }
    scratch = Path(tempfile.mkdtemp(prefix="cnnzoo-streaming-"))
    try:
        started = time.perf_counter()
        small = make_folder(scratch / "small", args.images)
        large = make_folder(scratch / "large", 4 * args.images)
        result["generate_seconds"] = time.perf_counter() - started
        loads = {}
        for mode in ("streamed", "in_memory"):
            started = time.perf_counter()
            data = load_dataset(small, "train", in_memory=mode == "in_memory")
            loads[mode] = time.perf_counter() - started
        result["load_seconds"] = loads
        streamed = load_dataset(small, "train", in_memory=False)
        in_memory = load_dataset(small, "train", in_memory=True)
        result["cache_build_seconds"] = build_cache(streamed, scratch / "cache.u8")
        cached = CachedFolder(streamed, scratch / "cache.u8")
        runs = {
            "tutorial": lambda: tutorial_epochs(small, workers, 2),
            "streamed": lambda: fit_epochs(streamed, workers, 2),
            "in_memory": lambda: fit_epochs(in_memory, workers, 2),
            "decoded_cache": lambda: fit_epochs(cached, workers, 2),
        }
        for index in range(args.rounds):
            shift = index % len(CONTENDERS)
            order = CONTENDERS[shift:] + CONTENDERS[:shift]
            round_result = {"order": list(order)}
            for name in order:
                seconds = runs[name]()
                round_result[name] = {"epoch_seconds": seconds, "timed": seconds[-1]}
                print(f"round {index + 1} {name}: {seconds[-1]:.2f} s", flush=True)
            result["rounds"].append(round_result)
        del data
        result["summary"] = {
            name: spread([r["tutorial"]["timed"] / r[name]["timed"] for r in result["rounds"]])
            for name in CONTENDERS[1:]
        }
        result["summary"]["tutorial_seconds"] = spread(
            [r["tutorial"]["timed"] for r in result["rounds"]]
        )
        memory = {}
        for mode in ("streamed", "in_memory"):
            for label, root in (("1x", small), ("4x", large)):
                memory[f"{mode}_{label}"] = measure_rss(root, mode, args.rss_steps, workers)
                print(f"peak RSS {mode} {label}: {memory[f'{mode}_{label}']}", flush=True)
        result["memory"] = memory
        for mode in ("streamed", "in_memory"):
            for key in ("load_peak_mb", "main_mb"):
                growth = memory[f"{mode}_4x"][key] / memory[f"{mode}_1x"][key]
                result["memory"][f"{mode}_{key}_growth"] = growth
        result["load_average_at_end"] = os.getloadavg()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    for name in CONTENDERS[1:]:
        s = result["summary"][name]
        print(f"{name}: {s['median']:.2f}x the tutorial [{s['min']:.2f}-{s['max']:.2f}]")
    growth = result["memory"]["streamed_main_mb_growth"]
    print(f"streamed peak RSS, 4x folder / 1x: {growth:.2f}")
    if not args.no_save and not args.quick:
        print(f"wrote {write_result('streaming', result)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
