"""One model's row: build it, train it with its default recipe, save it, score the saved file.

The scores are those of the checkpoint on disk: the trained model is saved, dropped, and the
file loaded back with ``cnnzoo.load`` before it is evaluated and timed, so every number in the
row is what a user gets from that file. A failure of this model (it cannot take the input, runs
out of memory, its loss diverges) becomes a row saying why, and nothing of the model stays in
memory afterwards.
"""

from __future__ import annotations

import gc
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..checkpoint import save
from ..models import get, load
from ..summarize import count_parameters
from ..training import evaluate, fit
from ..training.budget import DEFAULT_BATCH_SIZE
from ..training.precision import resolve_precision
from .budget import plan_epochs
from .data import Prepared
from .leaderboard import Row
from .measure import count_macs, inference_speed
from .selection import Candidate

__all__ = ["Plan", "describe_failure", "run_model"]


@dataclass(frozen=True)
class Plan:
    """What every model of a comparison shares.

    Attributes:
        epochs: Epochs per model (None with a time budget).
        time_budget: Seconds of training per model (None with a fixed number of epochs).
        seed: The seed of every model's initialisation and run.
        device: Where everything runs.
        precision: ``fit``'s and ``evaluate``'s precision option.
        fit_options: Other ``fit`` options, the same for every model (the recipe's defaults
            otherwise: no learning rate is chosen here).
        verbose: ``fit``'s progress display while each model trains (0: none).
    """

    epochs: int | None
    time_budget: float | None
    seed: int
    device: torch.device
    precision: str = "auto"
    fit_options: dict[str, Any] = field(default_factory=dict)
    verbose: int = 0


def run_model(candidate: Candidate, data: Prepared, plan: Plan, checkpoint: Path) -> Row:
    """Train, save, reload and measure one model.

    Args:
        candidate: The model and its build options.
        data: The comparison's data.
        plan: What every model shares.
        checkpoint: Where the trained weights go.

    Returns:
        The model's row: "ok", "collapsed", or "failed" with the reason.
    """
    row = Row(candidate.name, options=dict(candidate.options), params=candidate.params)
    if candidate.problem is not None:
        row.status, row.reason = "failed", candidate.problem
        return row
    try:
        _train(candidate, data, plan, checkpoint, row)
        _measure(data, plan, checkpoint, row)
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as error:  # one model's failure must not end the comparison
        row = Row(
            candidate.name,
            status="failed",
            reason=describe_failure(error),
            options=dict(candidate.options),
            params=candidate.params,
        )
    finally:
        _release(plan.device)
    return row


def describe_failure(error: BaseException) -> str:
    """One line saying why a model failed, with what to do where that is known."""
    first = (str(error).strip().splitlines() or [""])[0]
    # Printed and kept in a row: an escape sequence in an error's text is not sent to a terminal.
    first = "".join(c if c.isprintable() else "?" for c in first)[:1000]
    if isinstance(error, torch.OutOfMemoryError) or "out of memory" in first.lower():
        return f"out of memory ({first[:160]}); pass a smaller batch_size= or leave the model out"
    return f"{type(error).__name__}: {first}" if first else type(error).__name__


def _build(candidate: Candidate, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)  # every model starts from its seed's initialisation
    return get(candidate.name, **candidate.options)


def _train(candidate: Candidate, data: Prepared, plan: Plan, checkpoint: Path, row: Row) -> None:
    options = {
        **plan.fit_options,
        "seed": plan.seed,
        "device": plan.device,
        "precision": plan.precision,
        "verbose": 0,
    }
    if plan.time_budget is not None:
        if options.get("batch_size") is None:
            # The plan times one epoch at a batch size the run then keeps; fit sizes its own by
            # the epochs, which the plan has yet to decide: so fit's default batch, 128.
            options["batch_size"] = DEFAULT_BATCH_SIZE
        planned = plan_epochs(
            lambda: _build(candidate, plan.seed),
            data.train,
            data.val,
            time_budget=plan.time_budget,
            fit_options=options,  # the timing runs stay quiet
        )
        epochs = planned.epochs
        _release(plan.device)
    else:
        assert plan.epochs is not None  # a plan has epochs or a time budget
        epochs = plan.epochs
    has_val = data.val is not None
    model = _build(candidate, plan.seed)
    started = time.perf_counter()
    history = fit(
        model,
        data.train,
        data.val,
        epochs=epochs,
        monitor="val_accuracy" if has_val else "loss",
        restore_best=has_val,  # the epoch the validation split picks is the one scored
        **{**options, "verbose": plan.verbose},
    )
    _sync(plan.device)
    row.train_seconds = time.perf_counter() - started
    row.epochs = len(history.epoch)
    row.lr = history.params.get("lr")
    if history.alerts:  # fit warned once already; the row keeps what it said
        first = history.alerts[0]
        row.alert = {
            "kind": first["kind"],
            "epoch": first["epoch"] + 1,
            "message": first["message"],
        }
    if has_val:
        # The epoch restore_best kept (the first of the best); recorded by fit's EarlyStopping.
        val = dict(zip(history.epoch, history.history["val_accuracy"], strict=True))
        best = history.best_epoch
        if best is None:
            best = max(val, key=lambda e: (val[e], -e))
        row.best_val_accuracy, row.best_epoch = val[best], best + 1
    save(model, checkpoint)


def _measure(data: Prepared, plan: Plan, checkpoint: Path, row: Row) -> None:
    model = load(checkpoint, device=plan.device)
    metrics = evaluate(model, data.scored, device=plan.device, precision=plan.precision)
    row.accuracy = float(metrics["accuracy"])
    row.top5_accuracy = metrics.get("top5_accuracy")
    row.macro_f1 = _finite(metrics["macro_f1"])
    row.params = count_parameters(model)
    row.macs = count_macs(model, data.shape)
    dtype = resolve_precision(plan.precision, plan.device)
    row.images_per_second, row.latency_ms = inference_speed(model, data.shape, dtype)
    row.checkpoint = str(checkpoint)
    row.checkpoint_bytes = checkpoint.stat().st_size
    predicted = metrics["confusion_matrix"].sum(0)
    if int((predicted > 0).sum()) == 1 and int((metrics["confusion_matrix"].sum(1) > 0).sum()) > 1:
        chosen = int(predicted.argmax())
        name = data.classes[chosen] if data.classes else str(chosen)
        row.status = "collapsed"
        row.reason = (
            f"predicts class {name!r} for every image: training collapsed or was too short "
            "(try more epochs, another seed, or a lower lr=)"
        )


def _finite(value: Any) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _release(device: torch.device) -> None:
    """Give back what the last model held: its tensors, and the allocator's cached blocks."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
