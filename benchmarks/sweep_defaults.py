"""Epochs to a test-accuracy target for candidate ``fit`` defaults (the measurement behind them).

For each model and each candidate recipe (peak rate, batch size, schedule length and shape,
label smoothing), ``cnnzoo.fit`` trains the model from the same seeded initial weights on
Fashion-MNIST and the 10,000 test images are evaluated after every epoch, until the target is
reached or the schedule ends. Epochs and optimizer steps to the target depend only on the seed,
not on how busy the machine is, so this sweep can run on a shared machine; the cost of one step
at each batch size is measured separately, in alternation (``benchmarks/step_costs.py``), and
the two multiply into time to the target.

The training data is the headline benchmark's: ``val_data=0.2`` (48,000 training images, a
validation pass per epoch), as in ``benchmarks/time_to_accuracy.py``.

Usage::

    python benchmarks/sweep_defaults.py                         # every candidate, both models
    python benchmarks/sweep_defaults.py --models lenet5 --candidates lr3e-2_e4_bf16 --seeds 0 1 2
    python benchmarks/sweep_defaults.py --models lenet5 --max-train-images 512 --no-save  # smoke
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cnnzoo
from benchmarks._machine import machine_info, write_result
from cnnzoo.data import ImageTensorDataset, load_dataset

TARGETS = {"lenet5": 0.87, "mini_resnet": 0.90}


def onecycle(pct_start: float) -> Any:
    """fit's one-cycle schedule with another warm-up share (to try the shape without a new API)."""

    def build(optimizer: torch.optim.Optimizer, total_steps: int) -> Any:
        peaks = [group["lr"] for group in optimizer.param_groups]
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer,
            max_lr=peaks,
            total_steps=total_steps + 1,
            pct_start=pct_start,
            anneal_strategy="linear",
            cycle_momentum=False,
            div_factor=10.0,
            final_div_factor=100.0,
        )

    build.__name__ = f"onecycle(pct_start={pct_start})"
    return build


def parse_candidate(name: str) -> dict[str, Any]:
    """fit options from a candidate's name: ``lr3e-2_e4_b128_ls0.1_pct0.3_bf16``.

    Tokens (any order, "_"-separated): ``lr<peak rate>``, ``e<epochs>``, ``b<batch size>``,
    ``ls<label smoothing>``, ``pct<warm-up share of the one-cycle>``, ``bf16`` / ``fp32``
    (precision), ``base`` (fit's defaults at the time of the sweep). Options not named are
    fit's defaults.

    Raises:
        ValueError: A token that is none of these.
    """
    options: dict[str, Any] = {}
    for token in name.split("_"):
        if token == "base":
            continue
        if token in ("bf16", "fp32"):
            options["precision"] = token
        elif token.startswith("lr"):
            options["lr"] = float(token[2:])
        elif token.startswith("ls"):
            options["label_smoothing"] = float(token[2:])
        elif token.startswith("pct"):
            options["schedule"] = onecycle(float(token[3:]))
        elif token.startswith("e") and token[1:].isdigit():
            options["epochs"] = int(token[1:])
        elif token.startswith("b") and token[1:].isdigit():
            options["batch_size"] = int(token[1:])
        else:
            raise ValueError(
                f"candidate {name!r}: unknown token {token!r}; use lr<rate>, e<epochs>, "
                "b<batch>, ls<smoothing>, pct<warm-up share>, bf16 or fp32"
            )
    return options


# The candidates swept by default (any other name that parse_candidate reads can be passed).
CANDIDATES = [
    "base",
    "lr2e-2",
    *(f"lr{lr}_e{epochs}" for epochs in (2, 3, 4, 5) for lr in ("1e-2", "2e-2", "3e-2", "5e-2")),
    "lr2e-2_b64_e2",
    "lr2e-2_b64_e3",
    "lr5e-2_b256_e3",
    "lr3e-2_e3_ls0.1",
    "lr3e-2_e3_pct0.1",
    "lr3e-2_e3_bf16",
    "lr3e-2_e4_bf16",
]


def run_candidate(
    name: str,
    options: dict[str, Any],
    train: ImageTensorDataset,
    test: ImageTensorDataset,
    target: float,
    val_fraction: float | None,
    seed: int = 0,
) -> dict[str, Any]:
    """Train ``name`` with ``options`` until ``target`` test accuracy or the schedule's end."""
    torch.manual_seed(seed)
    model = cnnzoo.get_model(name)
    curve: list[dict[str, Any]] = []

    class TestEveryEpoch:
        def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
            accuracy = cnnzoo.evaluate(model, test)["accuracy"]
            curve.append({"epoch": epoch + 1, "test_accuracy": round(accuracy, 4)})
            print(f"  {name} epoch {epoch + 1}: test accuracy {accuracy:.4f}", flush=True)
            if accuracy >= target:
                raise cnnzoo.training.StopTraining

    start = time.perf_counter()
    history = cnnzoo.fit(
        model,
        train,
        val_data=val_fraction,
        verbose=0,
        callbacks=[TestEveryEpoch()],
        device="cpu",
        seed=seed,
        **options,
    )
    reached = next((p["epoch"] for p in curve if p["test_accuracy"] >= target), None)
    steps_per_epoch = history.params["steps"]
    return {
        "model": name,
        "options": {k: getattr(v, "__name__", v) for k, v in options.items()},
        "seed": seed,
        "target": target,
        "epochs_to_target": reached,
        "steps_to_target": None if reached is None else reached * steps_per_epoch,
        "steps_per_epoch": steps_per_epoch,
        "curve": curve,
        "seconds_on_a_shared_machine": round(time.perf_counter() - start, 1),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(TARGETS), choices=list(TARGETS))
    parser.add_argument("--candidates", nargs="+", default=list(CANDIDATES))
    parser.add_argument(
        "--val-fraction", type=float, default=0.2, help="held-out share (0: train on all 60,000)"
    )
    parser.add_argument("--max-train-images", type=int, help="first N images only (smoke runs)")
    parser.add_argument("--target", type=float, help="override the per-model target")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="model and data seeds")
    parser.add_argument("--no-save", action="store_true")
    args = parser.parse_args(argv)
    try:
        chosen = {name: parse_candidate(name) for name in args.candidates}
    except ValueError as error:
        parser.error(str(error))

    train = load_dataset("fashion-mnist")
    test = load_dataset("fashion-mnist", "test")
    if args.max_train_images:
        n = args.max_train_images
        train = ImageTensorDataset(
            train.images[:n], train.labels[:n], train.classes, train.mean, train.std
        )
    rows = []
    for model in args.models:
        target = TARGETS[model] if args.target is None else args.target
        for candidate in args.candidates:
            for seed in args.seeds:
                print(f"== {model} {candidate} seed {seed}: {chosen[candidate]}", flush=True)
                row = run_candidate(
                    model,
                    chosen[candidate],
                    train,
                    test,
                    target,
                    args.val_fraction or None,
                    seed,
                )
                row["candidate"] = candidate
                print(
                    f"== {model} {candidate} seed {seed}: {row['epochs_to_target']} epochs, "
                    f"{row['steps_to_target']} steps to {target}",
                    flush=True,
                )
                rows.append(row)
    result = {
        "benchmark": "sweep_defaults",
        "val_fraction": args.val_fraction or None,
        "rows": rows,
        "machine": machine_info(),
    }
    if not args.no_save:
        print(f"written to {write_result('sweep_defaults', result)}")
    return result


if __name__ == "__main__":
    main()
