"""``compare``: a fair leaderboard of the zoo's models on the user's data."""

from __future__ import annotations

import contextlib
import inspect
import math
import os
import platform
import shutil
import tempfile
from collections.abc import Sequence
from typing import Any

import torch

from .._version import __version__
from ..devices import resolve_device
from ..models import get as get_model
from ..training import fit
from ..training.arguments import DEFAULT_EPOCHS
from ..training.precision import resolve_precision
from ..training.progress import stage
from .data import prepare
from .leaderboard import Leaderboard, Row
from .measure import count_macs
from .progress import WholeClock
from .runner import Plan, run_model
from .selection import (
    Candidate,
    DataShape,
    checked_max_params,
    left_out_lines,
    model_names,
    select,
)
from .store import Store, check_out

__all__ = ["compare"]

# fit options compare sets itself, the same way for every model.
_COMPARE_SETS = {
    "epochs": "epochs= or time_budget= of compare",
    "seed": "seed= of compare",
    "device": "device= of compare",
    "precision": "precision= of compare",
    "val_data": "val_data= of compare",
    "verbose": "verbose= of compare",
    "monitor": "compare (val_accuracy with validation data, else loss)",
    "restore_best": "compare (the best validation epoch is kept and scored)",
    "checkpoint": "compare (out=)",
    "checkpoint_dir": "compare (out=)",
    "resume": "compare (a rerun into the same out= continues)",
    "callbacks": "compare (a callback's state would leak from one model into the next)",
}


def compare(
    models: str | Sequence[str],
    train_data: Any,
    test_data: Any = None,
    *,
    val_data: float | Any = 0.1,
    epochs: int | None = None,
    time_budget: float | None = None,
    seed: int = 0,
    device: str | torch.device = "auto",
    out: str | os.PathLike | None = None,
    max_params: int | None = None,
    precision: str = "auto",
    num_classes: int | None = None,
    data_name: str | None = None,
    verbose: int = 1,
    **fit_options: Any,
) -> Leaderboard:
    """Train several zoo models the same way on the same data, and rank them.

    Fair by construction: one split of the data (seeded), one seed for every model's
    initialisation and data order, one budget (epochs, or seconds per model), and each model's
    default ``fit`` recipe (no learning rate or schedule is chosen here). The data is read once
    and put on the device once, for every model; each model is dropped before the next is
    built. A model that fails (cannot take the images, runs out of memory, its loss diverges)
    gets a row saying why, and the others go on.

    Args:
        models: ``"auto"`` (every registered model that can take the data), or model names and
            ``fnmatch`` patterns (``["lenet5", "resnet1*"]``). Each model is built for the
            data: its classes and channels, and ``small_input=True`` for images of at most
            64 pixels on a side in the families that have it.
        train_data: A dataset name ("fashion-mnist") or image folder (then its test split is
            the test data), an ``ImageTensorDataset``, an ``(images, labels)`` pair of tensors,
            or any ``Dataset`` that ``fit`` takes.
        test_data: The data the models are scored on, in the same forms. None: the named
            dataset's test split, else the validation split (the leaderboard says so: that
            split also picked each model's best epoch).
        val_data: A share of ``train_data`` held out (the same for every model), validation data,
            or None. Each model keeps the weights of its best validation epoch.
        epochs: Epochs per model; default ``fit``'s default (4).
        time_budget: Instead of ``epochs``: seconds of training per model. Each model's epochs
            are planned from its measured step cost (a short timed run of a fresh copy), so its
            schedule spans the whole budget.
        seed: The seed of the split, every model's initialisation and every run.
        device: "auto" (cuda, then mps, then cpu) or any torch device.
        out: A folder for the checkpoints and the tables (leaderboard.md, .csv, .json,
            pareto.png). A comparison run again into the same folder with the same settings
            keeps its finished rows and trains the rest; with other settings it is refused.
            None keeps the checkpoints in a temporary folder, deleted at the end.
        max_params: Leave out models with more parameters than this.
        precision: ``fit``'s and ``evaluate``'s precision: "auto", "fp32", "bf16", "fp16".
        num_classes: The number of classes, for data that does not say (a ``Dataset`` without
            ``classes``); default from the data.
        data_name: What to call the data in the tables and the picture (default: the dataset
            name or folder, when ``train_data`` is one).
        verbose: 1 shows which models were left out and why, then fit's progress while each
            model trains (its bar on a terminal, else a line every few seconds; each line also
            gives the comparison's elapsed time and an estimate of the rest), and a line per
            model as it finishes; 0 prints nothing.
        **fit_options: Other options of :func:`cnnzoo.fit`, the same for every model
            (``batch_size``, ``augment``, ``lr``, ...); the options compare sets itself are
            refused.

    Returns:
        The :class:`~cnnzoo.comparison.Leaderboard`, best first.

    Raises:
        ValueError: Bad arguments, unusable data, a selection without models, or an ``out``
            that holds a comparison with other settings.
        TypeError: An option ``fit`` does not take.

    Example:
        >>> import cnnzoo
        >>> board = cnnzoo.compare(["lenet5", "mini_resnet"], "fashion-mnist", epochs=2)
        >>> print(board.to_markdown())  # doctest: +SKIP
    """
    # Every argument, the models asked for and the out folder are checked before any data is
    # read: a typo is refused at once, not after the data is decoded.
    _check_options(fit_options, epochs, time_budget, verbose)
    _check_values(seed, num_classes, val_data)
    model_names(models)
    checked_max_params(max_params)
    target = resolve_device(device)
    resolve_precision(precision, target)
    if out is not None:
        check_out(out)
    with Store.lock(out) if out is not None else contextlib.nullcontext():
        return _compare(
            models, train_data, test_data, val_data, epochs, time_budget, seed, target, out,
            max_params, precision, num_classes, data_name, verbose, fit_options,
        )  # fmt: skip


def _compare(
    models: str | Sequence[str],
    train_data: Any,
    test_data: Any,
    val_data: float | Any,
    epochs: int | None,
    time_budget: float | None,
    seed: int,
    target: torch.device,
    out: str | os.PathLike | None,
    max_params: int | None,
    precision: str,
    num_classes: int | None,
    data_name: str | None,
    verbose: int,
    fit_options: dict[str, Any],
) -> Leaderboard:
    """:func:`compare` once its arguments are checked (and ``out`` is locked)."""
    data = prepare(
        train_data,
        test_data,
        val_data,
        seed=seed,
        device=target,
        num_classes=num_classes,
        name=data_name,
        verbose=verbose,
    )
    candidates, left_out = select(models, data.shape, max_params=max_params)
    if verbose and left_out:
        print(f"left out {len(left_out)} of {len(left_out) + len(candidates)} models:")
        for line in left_out_lines(left_out, data.shape):
            print(f"  {line}", flush=True)
    budget_epochs = None if time_budget is not None else (epochs or DEFAULT_EPOCHS)
    settings = {
        "cnnzoo": __version__,
        "data": data.description,
        "val_data": val_data if isinstance(val_data, float) or val_data is None else "data",
        "seed": seed,
        "budget": {"epochs": budget_epochs, "time_budget": time_budget},
        "device": str(target),
        "precision": precision,
        "fit_options": {k: _describe(v) for k, v in sorted(fit_options.items())},
    }
    evaluated_on = "test" if data.test is not None else "validation"
    plan = Plan(budget_epochs, time_budget, seed, target, precision, dict(fit_options), verbose)
    scratch = None if out is not None else tempfile.mkdtemp(prefix="cnnzoo-compare-")
    store = Store(out if out is not None else str(scratch), settings)
    rows: list[Row] = []
    machine = _machine(target)  # the load average as the comparison starts

    def board() -> Leaderboard:
        return Leaderboard(
            rows, settings, evaluated_on=evaluated_on, left_out=left_out, machine=machine
        )

    clock = WholeClock(_costs(candidates, data.shape, time_budget, verbose))
    try:
        for number, candidate in enumerate(candidates, 1):
            row = store.finished(candidate.name)
            reused = row is not None
            if row is None:
                label = f"[{number}/{len(candidates)}] {candidate.name}"
                with stage(label, clock.describe(candidate.name)):
                    row = run_model(candidate, data, plan, store.checkpoint(candidate.name))
                clock.finished(candidate.name)
                if out is None:
                    row.checkpoint = None  # the temporary folder goes at the end
                store.record(row)
            else:
                clock.kept(candidate.name)
            rows.append(row)
            if out is not None:
                store.write_tables(board(), picture=number == len(candidates))
            if verbose:
                print(_progress(number, len(candidates), row, reused, evaluated_on), flush=True)
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    return board()


def _costs(
    candidates: list[Candidate], shape: DataShape, time_budget: float | None, verbose: int
) -> dict[str, float]:
    """Each model's share of the work, for the estimate shown while it runs (none: silent).

    Under a time budget every model trains as long; else a model's training costs in
    proportion to its multiply-accumulates per image, counted on the meta device (no memory).
    """
    if not verbose or time_budget is not None:
        return {c.name: 1.0 for c in candidates}
    costs = {}
    for candidate in candidates:
        try:
            with torch.device("meta"):
                model = get_model(candidate.name, **candidate.options)
            costs[candidate.name] = float(count_macs(model, shape))
        except (ValueError, TypeError, RuntimeError):  # a model that cannot run: its row says
            costs[candidate.name] = 0.0
    return costs


def _check_options(
    fit_options: dict[str, Any], epochs: int | None, time_budget: float | None, verbose: int
) -> None:
    for name in fit_options:
        if name in _COMPARE_SETS:
            raise ValueError(f"{name}= is set by {_COMPARE_SETS[name]}, not passed to fit")
    accepted = set(inspect.signature(fit).parameters) - {"model", "train_data"}
    unknown = sorted(set(fit_options) - accepted)
    if unknown:
        raise TypeError(
            f"compare() got option(s) fit does not take: {', '.join(unknown)}; see "
            "help(cnnzoo.fit) for fit's options"
        )
    if epochs is not None and time_budget is not None:
        raise ValueError("pass epochs= or time_budget=, not both: one budget for every model")
    if epochs is not None and (isinstance(epochs, bool) or not isinstance(epochs, int)):
        raise ValueError(f"epochs must be a positive whole number, got {epochs!r}")
    if epochs is not None and epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs}")
    if time_budget is not None and (
        isinstance(time_budget, bool)
        or not isinstance(time_budget, int | float)
        or not math.isfinite(time_budget)
        or time_budget <= 0
    ):
        raise ValueError(
            f"time_budget is seconds per model, a positive number; got {time_budget!r}"
        )
    if verbose not in (0, 1):
        raise ValueError(f"verbose is 0 or 1, got {verbose!r}")


def _check_values(seed: Any, num_classes: Any, val_data: Any) -> None:
    """The plain values among compare's arguments: no silent coercion of text or fractions."""
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be a whole number, got {seed!r:.80}")
    if num_classes is not None and (
        isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2
    ):
        raise ValueError(
            f"num_classes must be a whole number of at least 2, or None (from the data); got "
            f"{num_classes!r:.80}"
        )
    if isinstance(val_data, float) and not 0.0 < val_data < 1.0:
        raise ValueError(
            f"val_data as a share must be in (0, 1), got {val_data}; or pass validation data, "
            "or None"
        )


def _describe(option: Any) -> Any:
    """A fit option as plain JSON (custom objects by their kind)."""
    if option is None or isinstance(option, bool | int | float | str):
        return option
    if isinstance(option, list | tuple) and all(isinstance(o, str) for o in option):
        return list(option)
    return f"custom {getattr(option, '__qualname__', type(option).__name__)}"


def _progress(number: int, total: int, row: Row, reused: bool, evaluated_on: str) -> str:
    head = f"[{number}/{total}] {row.model}"
    if row.status == "failed":
        return f"{head}: failed: {row.reason}"
    scored = "test" if evaluated_on == "test" else "val"
    line = (
        f"{head}: {scored} accuracy {row.accuracy:.4f}, {row.epochs} epoch(s) in "
        f"{row.train_seconds:.1f} s"
    )
    if row.status == "collapsed":
        line += f" (collapsed: {row.reason})"
    return line + (" (finished earlier, kept)" if reused else "")


def _machine(device: torch.device) -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    machine = {
        "cpu": cpu,
        "cpu_cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "device": str(device),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }
    if device.type == "cuda":
        machine["gpu"] = torch.cuda.get_device_name(device)
    return machine
