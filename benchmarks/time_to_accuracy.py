"""Time to 0.87 Fashion-MNIST test accuracy with LeNet-5: the tutorial's recipe against ``fit``.

Both sides run in one invocation, in alternation, ``--rounds`` times (the side that goes first
alternates too), so a slow spell on the machine hits both; the headline is the median of the
per-round ratios, with their range:

* reference: the LeNet-5 and AlexNet Fashion-MNIST tutorial as written: torchvision's
  ``FashionMNIST`` with ``Resize(28)`` + ``ToTensor``, ``random_split`` 80/20,
  ``DataLoader(batch_size=32, shuffle=True, num_workers=0)``, the tutorial's LeNet (no
  activations between its Linear layers), Adam at 1e-3, a validation pass per epoch;
* cnnzoo: ``cnnzoo.fit(get_model("lenet5"), train, val_data=0.2)`` with every other argument
  at its default.

After every epoch each model is evaluated on the 10,000 test images with the clock paused (this
is the benchmark's measurement, not part of either recipe); a side's time is its training and
validation (and, for cnnzoo, ``fit``'s set-up) up to the end of the first epoch at or above the
target. Round ``r`` seeds both sides with ``r`` (initial weights, split, data order), so the
rounds are also seeds: the epochs to the target may differ from round to round, and a side that
ends its run below the target (``fit``'s 4 epochs, the tutorial's ``--max-epochs``) *misses*
that round. The headline is the median speed-up over the rounds both sides reached, and says
how many rounds missed.

Usage::

    python benchmarks/time_to_accuracy.py                 # the full benchmark (5 rounds)
    python benchmarks/time_to_accuracy.py --target 0.5 --max-epochs 1 --rounds 1 \\
        --max-train-images 2000 --no-save                 # a quick smoke run
"""

from __future__ import annotations

import argparse
import gzip
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, Subset, random_split

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cnnzoo
from benchmarks._machine import machine_info, write_result
from benchmarks._machine import spread as spread_values
from cnnzoo.data import ImageTensorDataset, load_dataset, search_paths


class TutorialLeNet(nn.Module):
    """The LeNet-5 and AlexNet Fashion-MNIST tutorial's LeNet, as written.

    No activation between F5, F6 and F7 (cnnzoo's ``lenet5`` has LeCun's sigmoids there).
    """

    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(1, 6, kernel_size=5, padding=2)
        self.sig = nn.Sigmoid()
        self.s2 = nn.AvgPool2d(2, 2)
        self.c3 = nn.Conv2d(6, 16, kernel_size=5)
        self.s4 = nn.AvgPool2d(2, 2)
        self.flatten = nn.Flatten()
        self.f5 = nn.Linear(400, 120)
        self.f6 = nn.Linear(120, 84)
        self.f7 = nn.Linear(84, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.s2(self.sig(self.c1(x)))
        x = self.s4(self.sig(self.c3(x)))
        return self.f7(self.f6(self.f5(self.flatten(x))))


def stage_torchvision_layout(workdir: Path) -> Path:
    """torchvision's FashionMNIST reads ``root/FashionMNIST/raw/<unzipped IDX>``: stage it."""
    raw = workdir / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for place in search_paths("fashion-mnist"):
        for folder in (place, place / "FashionMNIST" / "raw"):
            if (folder / "train-images-idx3-ubyte.gz").is_file():
                for gz in folder.glob("*-ubyte.gz"):
                    with gzip.open(gz) as src, open(raw / gz.stem, "wb") as dst:
                        shutil.copyfileobj(src, dst)
                return workdir
    load_dataset("fashion-mnist")  # raises the error naming every place looked
    raise FileNotFoundError("Fashion-MNIST IDX files not found")


def reference_run(
    root: Path,
    test_x,
    test_y,
    target: float,
    max_epochs: int,
    max_train_images: int | None,
    seed: int,
) -> dict:
    """The tutorial's recipe until ``target`` test accuracy (or ``max_epochs``)."""
    from torchvision import transforms
    from torchvision.datasets import FashionMNIST

    torch.manual_seed(seed)
    transform = transforms.Compose([transforms.Resize(size=28), transforms.ToTensor()])
    full = FashionMNIST(str(root), train=True, transform=transform, download=False)
    if max_train_images:
        full = Subset(full, range(min(max_train_images, len(full))))
    train_data, val_data = random_split(full, [round(0.8 * len(full)), round(0.2 * len(full))])
    train_loader = DataLoader(train_data, batch_size=32, shuffle=True, num_workers=0)
    val_loader = DataLoader(val_data, batch_size=32, shuffle=True, num_workers=0)
    model = TutorialLeNet()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.001)
    criterion = nn.CrossEntropyLoss()
    trained, curve = 0.0, []
    for epoch in range(max_epochs):
        start = time.perf_counter()
        model.train()
        for b_x, b_y in train_loader:
            output = model(b_x)
            loss = criterion(output, b_y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            for b_x, b_y in val_loader:
                criterion(model(b_x), b_y)
        trained += time.perf_counter() - start
        accuracy = test_accuracy(model, test_x, test_y)
        curve.append({"epoch": epoch + 1, "seconds": round(trained, 2), "test_accuracy": accuracy})
        print(
            f"  tutorial epoch {epoch + 1}: {trained:.1f}s test accuracy {accuracy:.4f}", flush=True
        )
        if accuracy >= target:
            break
    return summarize_run(curve, target)


def cnnzoo_run(
    train: ImageTensorDataset, test: ImageTensorDataset, target: float, max_epochs: int, seed: int
) -> dict:
    """``fit`` with its defaults (and ``val_data=0.2``) until ``target`` test accuracy."""
    torch.manual_seed(seed)
    model = cnnzoo.get_model("lenet5")
    curve: list[dict] = []
    clock = {"paused": 0.0, "start": time.perf_counter()}

    class TestEveryEpoch:
        def on_epoch_end(self, epoch, logs):
            paused = time.perf_counter()
            accuracy = cnnzoo.evaluate(model, test)["accuracy"]
            trained = paused - clock["start"] - clock["paused"]
            curve.append(
                {"epoch": epoch + 1, "seconds": round(trained, 2), "test_accuracy": accuracy}
            )
            print(
                f"  cnnzoo epoch {epoch + 1}: {trained:.1f}s test accuracy {accuracy:.4f}",
                flush=True,
            )
            clock["paused"] += time.perf_counter() - paused
            if accuracy >= target or epoch + 1 >= max_epochs:
                raise cnnzoo.training.StopTraining

    history = cnnzoo.fit(
        model, train, val_data=0.2, seed=seed, verbose=0, callbacks=[TestEveryEpoch()]
    )
    result = summarize_run(curve, target)
    result["fit_params"] = history.params
    return result


def test_accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    model.eval()
    with torch.inference_mode():
        predicted = torch.cat([model(x).argmax(1) for x in images.split(1000)])
    return float((predicted == labels).double().mean())


def summarize_run(curve: list[dict], target: float) -> dict:
    reached = next((point for point in curve if point["test_accuracy"] >= target), None)
    return {
        "reached": reached is not None,
        "epochs": reached["epoch"] if reached else None,
        "seconds": reached["seconds"] if reached else None,
        "curve": curve,
    }


def warm_up() -> float:
    """Pay the process's one-off costs before any clock starts; returns their seconds.

    The first optimizer built in a process makes torch import ``torch._dynamo`` (seconds). In a
    fresh process each side would pay it once; here only the side that ran first would.
    """
    start = time.perf_counter()
    torch.optim.Adam([nn.Parameter(torch.zeros(1))])
    return time.perf_counter() - start


def spread(values: list[float]) -> dict:
    return spread_values(values, 2)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", type=float, default=0.87)
    parser.add_argument("--max-epochs", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=5, help="rounds; round r is seed r")
    parser.add_argument("--skip-reference", action="store_true")
    parser.add_argument("--max-train-images", type=int, help="first N training images (smoke)")
    parser.add_argument("--no-save", action="store_true")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")

    train = load_dataset("fashion-mnist")
    if args.max_train_images:
        n = args.max_train_images
        train = ImageTensorDataset(
            train.images[:n], train.labels[:n], train.classes, train.mean, train.std
        )
    test = load_dataset("fashion-mnist", "test")
    test_x, test_y = test.images.float() / 255, test.labels  # ToTensor's scaling
    result: dict = {
        "benchmark": "time_to_accuracy",
        "target": args.target,
        "rounds": [],
        "machine": machine_info(),
    }
    result["one_off_seconds"] = round(warm_up(), 2)
    print(
        f"one-off start-up costs (paid by both sides in a fresh process): "
        f"{result['one_off_seconds']}s",
        flush=True,
    )
    with tempfile.TemporaryDirectory() as workdir:
        root = None if args.skip_reference else stage_torchvision_layout(Path(workdir))
        for round_ in range(args.rounds):
            sides = ["cnnzoo", "reference"] if round_ % 2 == 0 else ["reference", "cnnzoo"]
            outcome: dict = {"seed": round_}
            for side in sides:
                print(f"round {round_ + 1}: {side}", flush=True)
                if side == "cnnzoo":
                    outcome[side] = cnnzoo_run(train, test, args.target, args.max_epochs, round_)
                elif root is not None:
                    outcome[side] = reference_run(
                        root,
                        test_x,
                        test_y,
                        args.target,
                        args.max_epochs,
                        args.max_train_images,
                        round_,
                    )
            both = [outcome.get(side) for side in ("reference", "cnnzoo")]
            if all(run and run["reached"] for run in both):
                outcome["speedup"] = round(both[0]["seconds"] / both[1]["seconds"], 2)
            result["rounds"].append(outcome)
    summary: dict = {}
    for side in ("reference", "cnnzoo"):
        ran = [r[side] for r in result["rounds"] if side in r]
        runs = [run for run in ran if run["reached"]]
        if ran:
            summary[side] = {"rounds": len(ran), "missed": len(ran) - len(runs)}
        if runs:
            summary[side].update(
                epochs=sorted({run["epochs"] for run in runs}),
                seconds=spread([run["seconds"] for run in runs]),
            )
    speedups = [r["speedup"] for r in result["rounds"] if "speedup" in r]
    if speedups:
        summary["speedup"] = spread(speedups)
    result["summary"] = summary
    print(f"summary: {summary}")
    if not args.no_save:
        print(f"written to {write_result('time_to_accuracy', result)}")
    return result


if __name__ == "__main__":
    main()
