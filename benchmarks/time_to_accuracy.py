"""Time to 0.87 Fashion-MNIST test accuracy: the seed 002 LeNet recipe against ``cnnzoo.fit``.

Both runs happen in one invocation on the same machine:

* reference: seed 002 exactly: torchvision's ``FashionMNIST`` with ``Resize(28)`` + ``ToTensor``,
  ``random_split`` 80/20, ``DataLoader(batch_size=32, shuffle=True, num_workers=0)``, the seed's
  LeNet (no activations between its Linear layers), Adam at 1e-3, a validation pass per epoch;
* cnnzoo: ``cnnzoo.fit(get_model("lenet5"), train, val_data=0.2)`` with every other argument at
  its default.

After every epoch each model is evaluated on the 10,000 test images (with the clock paused:
this is the benchmark's measurement, not part of either recipe) until it reaches the target.
The headline is the ratio of the two training times.

Usage::

    python benchmarks/time_to_accuracy.py                 # the full benchmark
    python benchmarks/time_to_accuracy.py --target 0.8 --max-epochs 2   # a quick smoke run
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
from torch.utils.data import DataLoader, random_split

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cnnzoo
from benchmarks._machine import machine_info, write_result
from cnnzoo.data import load_dataset, search_paths


class SeedLeNet(nn.Module):
    """Seed 002's LeNet, as written (no activation between F5, F6 and F7)."""

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


def reference_run(root: Path, test_x, test_y, target: float, max_epochs: int) -> dict:
    from torchvision import transforms
    from torchvision.datasets import FashionMNIST

    torch.manual_seed(0)
    transform = transforms.Compose([transforms.Resize(size=28), transforms.ToTensor()])
    full = FashionMNIST(str(root), train=True, transform=transform, download=False)
    train_data, val_data = random_split(full, [round(0.8 * len(full)), round(0.2 * len(full))])
    train_loader = DataLoader(train_data, batch_size=32, shuffle=True, num_workers=0)
    val_loader = DataLoader(val_data, batch_size=32, shuffle=True, num_workers=0)
    model = SeedLeNet()
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
            f"reference epoch {epoch + 1}: {trained:.1f}s test accuracy {accuracy:.4f}", flush=True
        )
        if accuracy >= target:
            break
    return summarize_run(curve, target)


def cnnzoo_run(target: float, max_epochs: int) -> dict:
    train = load_dataset("fashion-mnist")
    test = load_dataset("fashion-mnist", "test")
    torch.manual_seed(0)
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
                f"cnnzoo epoch {epoch + 1}: {trained:.1f}s test accuracy {accuracy:.4f}", flush=True
            )
            clock["paused"] += time.perf_counter() - paused
            if accuracy >= target or epoch + 1 >= max_epochs:
                raise cnnzoo.training.StopTraining

    history = cnnzoo.fit(model, train, val_data=0.2, verbose=0, callbacks=[TestEveryEpoch()])
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", type=float, default=0.87)
    parser.add_argument("--max-epochs", type=int, default=30)
    parser.add_argument("--skip-reference", action="store_true")
    args = parser.parse_args()

    test = load_dataset("fashion-mnist", "test")
    test_x, test_y = test.images.float() / 255, test.labels  # ToTensor's scaling
    result = {"benchmark": "time_to_accuracy", "target": args.target, "machine": machine_info()}
    result["cnnzoo"] = cnnzoo_run(args.target, args.max_epochs)
    if not args.skip_reference:
        with tempfile.TemporaryDirectory() as workdir:
            root = stage_torchvision_layout(Path(workdir))
            result["reference"] = reference_run(root, test_x, test_y, args.target, args.max_epochs)
        if result["reference"]["reached"] and result["cnnzoo"]["reached"]:
            result["speedup"] = round(
                result["reference"]["seconds"] / result["cnnzoo"]["seconds"], 2
            )
    path = write_result("time_to_accuracy", result)
    print(f"speedup: {result.get('speedup', 'n/a (a run did not reach the target)')}")
    print(f"written to {path}")


if __name__ == "__main__":
    main()
