"""Cost ratios of training-step variants, measured in alternating rounds in one process.

Each comparison holds a few variants of the same training (or evaluation) step, such as batch
sizes, the optimizer's implementation, bf16 autocast, thread counts, the validation batch size,
``torch.compile``. In every round each variant runs a few warm-up steps and then ``--steps``
timed steps, one variant after the other; the rounds repeat. A variant's cost is reported per
image, as the median over the rounds and as the median (and range) of its per-round ratio to the
comparison's first variant. Ratios taken this way, seconds apart in one process, hold up on a
busy machine much better than absolute times do (a load that slows one round slows every
variant of it), which is why fit's defaults are chosen from them together with the epochs to
the target (``benchmarks/sweep_defaults.py``).

``compile`` also reports the one-off compile time and the number of steps after which compiling
has paid for itself (the break-even).

Usage::

    python benchmarks/step_costs.py batch fused bf16 --model lenet5
    python benchmarks/step_costs.py compile --model mini_resnet --rounds 3
    python benchmarks/step_costs.py batch --model lenet5 --steps 2 --rounds 1 --no-save   # smoke
"""

from __future__ import annotations

import argparse
import functools
import itertools
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cnnzoo
from benchmarks._machine import machine_info, write_result
from cnnzoo.data import load_dataset

Step = Callable[[], None]
COMPARISONS = ("batch", "fused", "bf16", "threads", "eval_batch", "compile")


def cpu_has_amx() -> bool:
    """Whether this CPU has AMX tiles for bf16 (read from its flags, never assumed)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "amx_bf16" in flags


def build(model_name: str) -> tuple[torch.nn.Module, int, int]:
    """The model (seed 0), its input side and channels; the ImageNet families at 32x32."""
    torch.manual_seed(0)
    try:
        model = cnnzoo.get_model(model_name, small_input=True)
    except ValueError:  # a net without small_input: its own size
        model = cnnzoo.get_model(model_name)
    side = model.input_size[-1] if model.fixed_input_size else 32
    return model.to(memory_format=torch.channels_last), side, model.in_channels


@functools.cache
def fashion_mnist(count: int = 4096) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``count`` Fashion-MNIST training images, normalised, and their labels."""
    data = load_dataset("fashion-mnist")
    images = (data.images[:count].float() / 255 - data.mean[0]) / data.std[0]
    return images, data.labels[:count]


def real_batches(count: int, channels: int, side: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Fashion-MNIST images shaped for the model: padded to ``side``, repeated to ``channels``.

    Real images, and a new batch every step: a fixed random batch gets memorised, and the
    saturated (sigmoid) nets then compute with denormal numbers, which slows fp32 and not
    bf16 and made bf16 look 1.3x faster for lenet5 than it is in training.
    """
    images, labels = fashion_mnist()
    pad = (side - images.shape[-1]) // 2
    images = F.pad(images, (pad, side - 28 - pad, pad, side - 28 - pad), value=float(images.min()))
    images = images.expand(-1, channels, -1, -1)[:count]
    return images.contiguous(memory_format=torch.channels_last), labels[:count]


def train_step(
    model_name: str,
    batch_size: int,
    *,
    fused: bool | None = None,
    dtype: torch.dtype | None = None,
    compiled: bool = False,
) -> Step:
    """One channels-last AdamW training step of ``model_name`` on the next real batch."""
    model, side, channels = build(model_name)
    images, labels = real_batches(4096, channels, side)
    batches = list(zip(images.split(batch_size), labels.split(batch_size), strict=True))
    batches = [(x, y) for x, y in batches if len(y) == batch_size] or batches[:1]
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=fused)
    forward = torch.compile(model) if compiled else model
    turn = itertools.cycle(batches)

    def step() -> None:
        x, y = next(turn)
        with torch.autocast("cpu", dtype=dtype, enabled=dtype is not None):
            logits = forward(x)
        loss = F.cross_entropy(logits.float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def eval_step(model_name: str, batch_size: int, images: int = 2048) -> Step:
    """Inference over ``images`` images in batches of ``batch_size`` (a validation pass)."""
    model, side, channels = build(model_name)
    model.eval()
    x, _ = real_batches(images, channels, side)

    def step() -> None:
        with torch.inference_mode():
            for chunk in x.split(batch_size):
                model(chunk).argmax(1)

    return step


def with_threads(count: int, step: Step) -> Step:
    def threaded() -> None:
        before = torch.get_num_threads()
        torch.set_num_threads(count)
        try:
            step()
        finally:
            torch.set_num_threads(before)

    return threaded


# A comparison: name -> (variant name -> (images per call, step factory)).
def comparisons(
    model: str, batch: int, dtype: torch.dtype | None = None
) -> dict[str, dict[str, tuple[int, Callable[[], Step]]]]:
    """The comparisons; ``dtype`` is the autocast of every variant but the bf16 comparison's."""
    return {
        "batch": {
            f"batch {size}": (size, lambda size=size: train_step(model, size, dtype=dtype))
            for size in (batch, 64, 256, 512)
        },
        "fused": {
            "AdamW default (for-loop on CPU)": (
                batch,
                lambda: train_step(model, batch, dtype=dtype),
            ),
            "AdamW fused=True": (
                batch,
                lambda: train_step(model, batch, fused=True, dtype=dtype),
            ),
        },
        "bf16": {
            "fp32": (batch, lambda: train_step(model, batch)),
            "bf16 autocast": (batch, lambda: train_step(model, batch, dtype=torch.bfloat16)),
        },
        "threads": {
            f"{torch.get_num_threads()} threads": (
                batch,
                lambda: train_step(model, batch, dtype=dtype),
            ),
            "1 thread": (batch, lambda: with_threads(1, train_step(model, batch, dtype=dtype))),
        },
        "eval_batch": {
            f"eval batch {size}": (2048, lambda size=size: eval_step(model, size))
            for size in (128, 512, 1024, 2048)
        },
        "compile": {
            "eager": (batch, lambda: train_step(model, batch, dtype=dtype)),
            "torch.compile": (
                batch,
                lambda: train_step(model, batch, compiled=True, dtype=dtype),
            ),
        },
    }


def timed(step: Step, steps: int, warmup: int, clock: Callable[[], float]) -> float:
    """Seconds per call over ``steps`` calls after ``warmup`` untimed ones."""
    for _ in range(warmup):
        step()
    start = clock()
    for _ in range(steps):
        step()
    return (clock() - start) / steps


def compare(
    variants: dict[str, tuple[int, Callable[[], Step]]],
    rounds: int,
    steps: int,
    warmup: int,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, Any]:
    """Every variant's cost per image in alternating rounds, and its ratio to the first one."""
    built: dict[str, tuple[int, Step]] = {}
    setup: dict[str, float] = {}
    for name, (images, factory) in variants.items():
        start = time.perf_counter()
        step = factory()
        step()  # the first call pays one-off costs (a compile, oneDNN's primitive cache)
        setup[name] = time.perf_counter() - start
        built[name] = (images, step)
    per_image: dict[str, list[float]] = {name: [] for name in built}
    for round_ in range(rounds):
        for name, (images, step) in built.items():
            per_image[name].append(timed(step, steps, warmup, clock) / images)
        print(
            f"  round {round_ + 1}: "
            + ", ".join(f"{n} {v[-1] * 1e6:.1f} us/img" for n, v in per_image.items()),
            flush=True,
        )
    first = next(iter(built))
    rows = {}
    for name, costs in per_image.items():
        ratios = [base / cost for base, cost in zip(per_image[first], costs, strict=True)]
        rows[name] = {
            "us_per_image_median": round(statistics.median(costs) * 1e6, 2),
            "us_per_image_min": round(min(costs) * 1e6, 2),
            "speed_vs_first_of_minima": round(min(per_image[first]) / min(costs), 3),
            "speed_vs_first_median": round(statistics.median(ratios), 3),
            "speed_vs_first_range": [round(min(ratios), 3), round(max(ratios), 3)],
            "first_call_seconds": round(setup[name], 2),
        }
    return {"baseline": first, "variants": rows}


def break_even(rows: dict[str, Any], batch: int) -> dict[str, Any]:
    """Steps after which torch.compile's first call has been repaid by its faster steps."""
    eager, compiled = rows["eager"], rows["torch.compile"]
    saving = (eager["us_per_image_median"] - compiled["us_per_image_median"]) * batch * 1e-6
    overhead = compiled["first_call_seconds"] - eager["first_call_seconds"]
    steps = round(overhead / saving) if saving > 0 else None
    return {"compile_seconds": round(overhead, 1), "saving_per_step_s": saving, "steps": steps}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("comparisons", nargs="+", choices=COMPARISONS)
    parser.add_argument("--model", default="lenet5")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument(
        "--clock",
        choices=["wall", "cpu"],
        default="wall",
        help="wall: elapsed time; cpu: this process's CPU time, which a busy machine distorts "
        "far less (use it with OMP_NUM_THREADS=1, where CPU time is the step's whole cost)",
    )
    parser.add_argument(
        "--precision",
        choices=["fp32", "bf16"],
        default="fp32",
        help="autocast of the variants (not of the bf16 comparison, which has both)",
    )
    parser.add_argument("--no-save", action="store_true")
    args = parser.parse_args(argv)
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    dtype = torch.bfloat16 if args.precision == "bf16" else None
    available = comparisons(args.model, args.batch_size, dtype)
    result: dict[str, Any] = {
        "benchmark": "step_costs",
        "model": args.model,
        "batch_size": args.batch_size,
        "rounds": args.rounds,
        "steps": args.steps,
        "clock": args.clock,
        "precision": args.precision,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cpu_has_amx": cpu_has_amx(),
        "comparisons": {},
        "machine": machine_info(),
    }
    for name in args.comparisons:
        print(f"== {name} ({args.model})", flush=True)
        rows = compare(available[name], args.rounds, args.steps, args.warmup, clock)
        if name == "compile":
            rows["break_even"] = break_even(rows["variants"], args.batch_size)
        result["comparisons"][name] = rows
        for variant, row in rows["variants"].items():
            print(f"  {variant}: {row}", flush=True)
        if "break_even" in rows:
            print(f"  break-even: {rows['break_even']}", flush=True)
    if not args.no_save:
        print(f"written to {write_result('step_costs', result)}")
    return result


if __name__ == "__main__":
    main()
