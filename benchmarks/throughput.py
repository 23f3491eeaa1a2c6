"""Training throughput (images/s): a plain PyTorch loop against ``cnnzoo.fit``.

The model is ``resnet18`` with ``small_input=True`` on 32x32 RGB images (CIFAR-sized, random
data: throughput does not depend on the pixels), 10 classes, the same batch size and optimizer
(AdamW) for both. The plain loop is the one most tutorials write: a ``DataLoader`` over a
``TensorDataset``, ``loss.item()`` every step, fp32. ``cnnzoo.fit`` runs with its defaults for
the device (on CUDA: bf16 autocast and channels_last). Each side runs two epochs and reports the
second, so start-up costs (workers, caches, autotuning) are left out of both.

Usage::

    python benchmarks/throughput.py                      # CPU, 512 images per epoch
    python benchmarks/throughput.py --device cuda --images 20000 --batch-size 256
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cnnzoo
from benchmarks._machine import machine_info, write_result


def make_data(count: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (count, 3, 32, 32), dtype=torch.uint8, generator=generator)
    return images, torch.randint(0, 10, (count,), generator=generator)


def build_model() -> nn.Module:
    torch.manual_seed(0)
    return cnnzoo.get_model("resnet18", num_classes=10, in_channels=3, small_input=True)


def plain_loop(images, labels, device: torch.device, batch_size: int) -> float:
    model = build_model().to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    criterion = nn.CrossEntropyLoss()
    loader = DataLoader(
        TensorDataset(images.float() / 255, labels), batch_size=batch_size, shuffle=True
    )
    seconds = 0.0
    for _ in range(2):  # the second epoch is the measurement
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        model.train()
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            loss = criterion(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            loss.item()
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
    return len(images) / seconds


def cnnzoo_fit(images, labels, device: torch.device, batch_size: int) -> tuple[float, dict]:
    model = build_model()
    history = cnnzoo.fit(
        model, (images, labels), epochs=2, batch_size=batch_size, device=device, verbose=0
    )
    steps = history.params["steps"]
    return steps * batch_size / history.history["epoch_seconds"][-1], history.params


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=128)
    args = parser.parse_args()
    device = torch.device(args.device)
    images, labels = make_data(args.images)
    plain = plain_loop(images, labels, device, args.batch_size)
    print(f"plain PyTorch loop: {plain:.1f} images/s", flush=True)
    fitted, params = cnnzoo_fit(images, labels, device, args.batch_size)
    print(f"cnnzoo.fit:         {fitted:.1f} images/s", flush=True)
    result = {
        "benchmark": "throughput",
        "model": "resnet18(small_input=True), 3x32x32, 10 classes",
        "images_per_epoch": args.images,
        "batch_size": args.batch_size,
        "plain_images_per_second": round(plain, 1),
        "cnnzoo_images_per_second": round(fitted, 1),
        "ratio": round(fitted / plain, 2),
        "fit_params": params,
        "machine": machine_info(str(device)),
    }
    print(f"ratio: {result['ratio']}x; written to {write_result('throughput', result)}")


if __name__ == "__main__":
    main()
