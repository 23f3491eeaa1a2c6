"""Training and inference speed (images/s) of every registered model, against torchvision.

For each model, random images at a stated size are pushed through a fixed number of timed steps
after warm-up: a training step is forward, cross-entropy, backward and a plain SGD update; an
inference step is a forward pass under ``torch.inference_mode``. Each figure is the best of
``--rounds`` alternating measurements. Both use fp32 and the
channels-last memory format (``cnnzoo.fit``'s default on CPU and CUDA).

The families that share torchvision's code layout (alexnet, vgg*, resnet*, densenet121) are
timed against a reference in the same invocation: torchvision's own model built with the same
number of classes, with cnnzoo's modules transplanted where the configuration changes them
(``small_input``'s stem), and cnnzoo's weights loaded into it strictly. The two are checked to
compute the same function before they are timed, so the ratio (cnnzoo / torchvision, ~1.0
expected) measures only overhead, such as cnnzoo's input checks. The other models report
images/s alone.

Peak memory is CUDA's ``max_memory_allocated`` per phase; on CPU it is not measured.

Usage::

    python benchmarks/model_speed.py                            # all models, own input size
    python benchmarks/model_speed.py --small                    # 32x32 with small_input
    python benchmarks/model_speed.py "resnet*" vgg11 --device cuda --batch-size 64 --steps 20
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cnnzoo
from benchmarks._machine import machine_info, write_result

# Families that share torchvision's code layout (builders under the same names).
TORCHVISION_FAMILIES = ("alexnet", "vgg", "resnet", "densenet")


def model_options(name: str, small: bool) -> dict[str, Any]:
    """``get_model`` keyword arguments: ``small_input=True`` where the model takes it."""
    if not small:
        return {}
    try:  # on the meta device: no memory, no initialisation
        with torch.device("meta"):
            cnnzoo.get_model(name, small_input=True)
    except ValueError:  # the fixed-size nets (alexnet_original, lenet5, ...) have no such option
        return {}
    return {"small_input": True}


def torchvision_reference(model: nn.Module, name: str) -> nn.Module | None:
    """torchvision's ``name`` computing the same function as ``model``, or None if it has none.

    Modules that the configuration changed (a different type or configuration at the same
    path, e.g. ``small_input``'s stem) are copied over from ``model``; the rest stays
    torchvision's code. ``model``'s weights are then loaded strictly.
    """
    import torchvision

    family = cnnzoo.models.info(name).family
    if family not in TORCHVISION_FAMILIES or name not in torchvision.models.list_models():
        return None  # alexnet_original is of the alexnet family but not torchvision's

    reference = torchvision.models.get_model(name, weights=None, num_classes=model.num_classes)
    theirs = dict(reference.named_modules())
    replaced: list[str] = []
    for path, module in model.named_modules():
        if not path or any(path.startswith(done + ".") for done in replaced):
            continue
        if path not in theirs or _differs(module, theirs[path]):
            parent, _, leaf = path.rpartition(".")
            setattr(reference.get_submodule(parent), leaf, copy.deepcopy(module))
            replaced.append(path)
    reference.load_state_dict(model.state_dict(), strict=True)
    return reference


def _differs(ours: nn.Module, theirs: nn.Module) -> bool:
    # extra_repr holds a layer's configuration: shapes, strides, pooling output size...
    return type(ours).__name__ != type(theirs).__name__ or ours.extra_repr() != theirs.extra_repr()


def same_function(a: nn.Module, b: nn.Module, x: torch.Tensor) -> bool:
    """Whether ``a`` and ``b`` give the same eval-mode outputs on ``x``."""
    a.eval()
    b.eval()
    with torch.inference_mode():
        return torch.allclose(a(x), b(x), rtol=1e-4, atol=1e-5)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_steps(
    step: Callable[[], None], device: torch.device, warmup: int, steps: int
) -> tuple[float, int | None]:
    """Seconds for ``steps`` calls of ``step`` after ``warmup`` calls; CUDA peak bytes too."""
    for _ in range(warmup):
        step()
    _sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(device)
    seconds = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None
    return seconds, peak


def measure(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    device: torch.device,
    warmup: int,
    steps: int,
) -> dict[str, Any]:
    """Training and inference images/s (and CUDA peak MiB) of ``model`` on one fixed batch."""
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)

    def train_step() -> None:
        loss = F.cross_entropy(model(images), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def inference_step() -> None:
        with torch.inference_mode():
            model(images)

    model.train()
    train_seconds, train_peak = time_steps(train_step, device, warmup, steps)
    optimizer.zero_grad(set_to_none=True)
    model.eval()
    infer_seconds, infer_peak = time_steps(inference_step, device, warmup, steps)
    count = steps * len(images)
    return {
        "train_images_per_s": round(count / train_seconds, 2),
        "infer_images_per_s": round(count / infer_seconds, 2),
        "train_peak_mib": None if train_peak is None else round(train_peak / 2**20),
        "infer_peak_mib": None if infer_peak is None else round(infer_peak / 2**20),
    }


def speed_row(
    name: str,
    small: bool,
    batch_size: int,
    warmup: int,
    steps: int,
    rounds: int,
    device: torch.device,
) -> dict[str, Any]:
    """One model's row: its speed, and the torchvision reference's where there is one.

    The two are measured in alternation, ``rounds`` times each, and each keeps its best round,
    so neither gains from going second (warm caches, a quieter moment).
    """
    options = model_options(name, small)
    torch.manual_seed(0)
    model = cnnzoo.get_model(name, **options)
    channels, height, width = model.input_size
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(batch_size, channels, height, width, generator=generator)
    labels = torch.randint(0, model.num_classes, (batch_size,), generator=generator)
    reference = torchvision_reference(model, name)
    row: dict[str, Any] = {
        "model": name,
        "options": options,
        "input_size": [channels, height, width],
        "batch_size": batch_size,
        "parameters": cnnzoo.count_parameters(model),
    }
    if reference is not None and not same_function(model, reference, images[:2]):
        row["reference_error"] = "torchvision's model computes a different function"
        reference = None
    images = images.to(device, memory_format=torch.channels_last)
    labels = labels.to(device)
    contenders = {"cnnzoo": model, "torchvision": reference}
    best: dict[str, dict[str, Any]] = {}
    for _ in range(rounds):
        for label, contender in contenders.items():
            if contender is None:
                continue
            contender = contender.to(device, memory_format=torch.channels_last)
            figures = measure(contender, images, labels, device, warmup, steps)
            best[label] = _best(best.get(label), figures)
    row.update(best["cnnzoo"])
    if "torchvision" in best:
        theirs = best["torchvision"]
        row["torchvision"] = theirs
        row["train_ratio"] = round(row["train_images_per_s"] / theirs["train_images_per_s"], 3)
        row["infer_ratio"] = round(row["infer_images_per_s"] / theirs["infer_images_per_s"], 3)
    return row


def _best(old: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, Any]:
    if old is None:
        return new
    return {key: new[key] if old[key] is None else max(old[key], new[key]) for key in new}


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """The rows as a Markdown table (ratios are cnnzoo / torchvision)."""
    lines = [
        "| model | input | batch | train img/s | vs torchvision | infer img/s | vs torchvision "
        "| peak MiB (train) |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        _, height, width = row["input_size"]
        peak = row["train_peak_mib"]
        lines.append(
            f"| {row['model']} | {height}x{width} | {row['batch_size']} "
            f"| {row['train_images_per_s']:.1f} | {_ratio(row, 'train_ratio')} "
            f"| {row['infer_images_per_s']:.1f} | {_ratio(row, 'infer_ratio')} "
            f"| {'-' if peak is None else peak} |"
        )
    return "\n".join(lines)


def _ratio(row: dict[str, Any], key: str) -> str:
    return f"{row[key]:.2f}" if key in row else "-"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "patterns", nargs="*", default=["*"], help="model names or fnmatch patterns (default: all)"
    )
    parser.add_argument("--small", action="store_true", help="32x32 with small_input=True")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per phase")
    parser.add_argument(
        "--rounds", type=int, default=2, help="alternating measurements; the best one is kept"
    )
    parser.add_argument("--no-save", action="store_true", help="print only, write no JSON")
    args = parser.parse_args(argv)

    device = torch.device(args.device)
    names: list[str] = []
    for pattern in args.patterns:
        matches = cnnzoo.models.list_models(pattern)
        if not matches:
            raise SystemExit(f"no registered model matches {pattern!r}")
        names += [name for name in matches if name not in names]
    rows = []
    for name in names:
        row = speed_row(
            name, args.small, args.batch_size, args.warmup, args.steps, args.rounds, device
        )
        print(
            f"{name}: train {row['train_images_per_s']:.1f} img/s"
            f" ({_ratio(row, 'train_ratio')}), infer {row['infer_images_per_s']:.1f} img/s"
            f" ({_ratio(row, 'infer_ratio')})",
            flush=True,
        )
        rows.append(row)
    result = {
        "benchmark": "model_speed",
        "small": args.small,
        "batch_size": args.batch_size,
        "warmup_steps": args.warmup,
        "timed_steps": args.steps,
        "rounds": args.rounds,
        "precision": "fp32",
        "memory_format": "channels_last",
        "optimizer": "SGD(momentum=0.9)",
        "rows": rows,
        "machine": machine_info(str(device)),
    }
    print(markdown_table(rows))
    if not args.no_save:
        name = "model_speed-small" if args.small else "model_speed"
        print(f"written to {write_result(name, result)}")
    return result


if __name__ == "__main__":
    main()
