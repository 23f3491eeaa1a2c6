"""cnnzoo.fit against the ways people train instead: images/s, time to accuracy, peak memory.

Contenders (``benchmarks/_contenders.py``): ``cnnzoo.fit``; a hand-written in-memory eager loop
(the practical eager limit); a plain ``DataLoader`` loop as tutorials write it; PyTorch
Lightning's ``Trainer``; Keras 3 on its PyTorch backend. All train the same architecture from
the same initial weights on Fashion-MNIST (lenet5 and mini_resnet; resnet18 with
``small_input=True`` too with ``--device cuda``), with two recipes:

* **same**: fit's defaults (AdamW, one-cycle, batch 128, ...) for everyone: the frameworks'
  own overhead;
* **own**: each one's documented default: what a user who does not choose gets (Adam at 1e-3,
  batch 32, constant rate for the DataLoader tutorial, Lightning and Keras; fit's defaults for
  fit). The hand-written loop has no defaults and runs the same recipe only.

How each figure is obtained:

* **images/s**: in each of ``--rounds`` alternating rounds (the order rotates every round),
  every contender and recipe trains one short epoch; the time from the start of step
  ``warmup + 1`` to the start of step ``warmup + steps + 1`` is measured (a step starts at the
  model's training forward, or Keras's ``on_train_batch_begin``), so it covers everything the
  loop does per step and none of the set-up. Median and range over the rounds.
* **time to target**: one run from the contender's first line of training code to the end of
  the first epoch whose test accuracy (all 10,000 test images, evaluated after every epoch with
  the clock paused) reaches the target. Measured for fit, the hand-written loop, and the peer
  with the highest images/s under its own defaults (the three peers' own defaults are one
  recipe, so that peer is the fastest to the target). The others are **derived**, and marked
  so: the measured run's epochs to the target at that recipe times the 60,000 training images
  divided by the contender's median images/s. ``--to-target all`` measures every one instead
  (far longer than the default run's budget of 15 minutes on 2 CPU cores).
* **peak memory**: every contender runs in its own process (one per model), whose peak resident
  set size is reset after the data is loaded and the framework imported, and read at the end
  (Linux ``VmHWM``): the interpreter, torch, the framework, the data as the contender holds it,
  and training. On CUDA, ``torch.cuda.max_memory_allocated`` as well.

A peer whose framework is not installed (``pip install "cnnzoo[bench]"``) is skipped, and the
output says so.

Usage::

    python benchmarks/peers.py                                   # CPU: lenet5 and mini_resnet
    python benchmarks/peers.py --device cuda                     # + resnet18 (small_input)
    python benchmarks/peers.py --models lenet5 --contenders fit eager --rounds 1 \\
        --round-images 512 --max-train-images 2048 --to-target none --no-save   # smoke run
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import multiprocessing
import os
import resource
import sys
import time
import traceback
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import _contenders as contenders
from benchmarks._machine import machine_info, write_result
from benchmarks._machine import spread as spread_values

TARGETS = {"lenet5": 0.87, "mini_resnet": 0.90, "resnet18": 0.92}
# Images per images/s round (steps = images // batch size), and the most epochs a
# constant-rate ("own") run may take to reach its target.
ROUND_IMAGES = {"lenet5": 7680, "mini_resnet": 3840, "resnet18": 25600}
MAX_EPOCHS = {"lenet5": 30, "mini_resnet": 15, "resnet18": 15}
GPU_ONLY = ("resnet18",)


def missing_framework(contender: str) -> str | None:
    """Why ``contender`` cannot run here (its framework is not installed), or None."""
    package = contenders.REQUIRES.get(contender)
    if package is None or importlib.util.find_spec(package) is not None:
        return None
    return f"{package} is not installed (pip install 'cnnzoo[bench]'): {contender} skipped"


# -- one contender's work (run in its own process, or in this one with --no-workers) ----------
def reset_peak_memory(device: torch.device) -> None:
    """Start the peak-memory count afresh (Linux: write 5 to /proc/self/clear_refs)."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory(device: torch.device) -> dict[str, float | None]:
    """Peak resident set size (MiB) since the reset, and the CUDA peak allocated on CUDA."""
    rss = None
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                rss = int(line.split()[1]) / 1024
    except OSError:
        scale = 1 if sys.platform == "darwin" else 1024  # macOS reports bytes, Linux KiB
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20
    memory: dict[str, float | None] = {"peak_rss_mib": None if rss is None else round(rss, 1)}
    if device.type == "cuda":
        memory["cuda_max_allocated_mib"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
    return memory


class Runner:
    """One contender for one model, answering the orchestrator's commands."""

    def __init__(self, contender: str, model: str, device: str, limits: dict[str, Any]) -> None:
        self.device = torch.device(device)
        data = contenders.Data.load(limits.get("max_train_images"), limits.get("max_test_images"))
        self.peer = contenders.make(contender, model, data, self.device)
        self.model = model
        self.peer.prepare()
        # The first optimizer of a process imports torch._dynamo (seconds, ~100 MiB): every
        # contender builds one, so it is paid here, before the clocks and the memory count.
        torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))])
        self.max_epochs = limits["max_epochs"]
        self.train_images = len(data.train)
        reset_peak_memory(self.device)
        self.rss_at_start = peak_memory(self.device)["peak_rss_mib"]

    def recipe(self, name: str) -> contenders.Recipe:
        return contenders.recipes(self.peer.name, self.model, self.max_epochs, self.device)[name]

    def images_per_second(self, recipe: str, images: int, warmup: int) -> dict[str, Any]:
        chosen = self.recipe(recipe)
        # At least 3 timed steps: a one-cycle schedule needs 4 steps in all (OneCycleLR divides
        # by zero below that).
        steps = max(3, images // chosen.batch_size)
        clock = contenders.StepClock(warmup, steps, self.device)
        needed = clock.steps_needed * chosen.batch_size
        if needed > self.train_images:
            raise ValueError(
                f"an images/s round needs {needed} training images, there are "
                f"{self.train_images}; lower --round-images or --warmup"
            )
        self.peer.train(chosen, needed, 1, clock)
        return {"images_per_s": steps * chosen.batch_size / clock.seconds, "steps": steps}

    def to_target(self, recipe: str, target: float) -> dict[str, Any]:
        chosen = self.recipe(recipe)
        clock = contenders.EpochClock(target, chosen.epochs, self.peer.test_accuracy, self.device)
        self.peer.train(chosen, self.train_images, chosen.epochs, clock)
        return clock.result()

    def memory(self) -> dict[str, Any]:
        return {**peak_memory(self.device), "rss_at_start_mib": self.rss_at_start}

    def handle(self, command: tuple) -> dict[str, Any]:
        name, *args = command
        return getattr(self, name)(*args)


def serve(connection: Any, contender: str, model: str, device: str, limits: dict) -> None:
    """A worker process's loop: build the Runner, then answer commands until "stop"."""
    os.environ.setdefault("KERAS_BACKEND", "torch")
    try:
        runner = Runner(contender, model, device, limits)
        connection.send({"ready": True})
    except Exception:
        connection.send({"error": traceback.format_exc()})
        return
    while True:
        command = connection.recv()
        if command[0] == "stop":
            return
        try:
            connection.send(runner.handle(command))
        except Exception:
            connection.send({"error": traceback.format_exc()})


class ContenderFailed(RuntimeError):
    """A contender raised; the benchmark records it and goes on with the others."""


class Worker:
    """A contender in its own process (spawned: a fresh interpreter, its own peak memory)."""

    def __init__(self, contender: str, model: str, device: str, limits: dict) -> None:
        self.contender = contender
        context = multiprocessing.get_context("spawn")
        self.connection, child = context.Pipe()
        self.process = context.Process(
            target=serve, args=(child, contender, model, device, limits), daemon=True
        )
        self.process.start()
        self._reply()

    def _reply(self) -> dict[str, Any]:
        try:
            reply = self.connection.recv()
        except EOFError:
            raise ContenderFailed(f"{self.contender}: its process died") from None
        if "error" in reply:
            raise ContenderFailed(f"{self.contender} failed:\n{reply['error']}")
        return reply

    def call(self, *command: Any) -> dict[str, Any]:
        self.connection.send(command)
        return self._reply()

    def close(self) -> None:
        if self.process.is_alive():
            with contextlib.suppress(BrokenPipeError, OSError):
                self.connection.send(("stop",))
            self.process.join(timeout=30)
        if self.process.is_alive():
            self.process.terminate()


class InProcess:
    """A contender in this process (``--no-workers``: quick runs and tests; memory not kept)."""

    def __init__(self, contender: str, model: str, device: str, limits: dict) -> None:
        self.contender = contender
        self.runner = Runner(contender, model, device, limits)

    def call(self, *command: Any) -> dict[str, Any]:
        if command[0] == "memory":
            return {"peak_rss_mib": None, "note": "not measured in-process"}
        try:
            return self.runner.handle(command)
        except Exception as error:
            raise ContenderFailed(f"{self.contender} failed:\n{traceback.format_exc()}") from error

    def close(self) -> None:
        pass


# -- the orchestration -----------------------------------------------------------------------
def spread(values: list[float]) -> dict:
    return spread_values(values, 3)


def rotated(items: list, by: int) -> list:
    by %= max(1, len(items))
    return items[by:] + items[:by]


def bench_model(model: str, args: argparse.Namespace, names: list[str]) -> dict[str, Any]:
    """Every figure for one model: images/s rounds, runs to the target, peak memory."""
    target = TARGETS[model] if args.target is None else args.target
    limits = {
        "max_train_images": args.max_train_images,
        "max_test_images": args.max_test_images,
        "max_epochs": args.max_epochs or MAX_EPOCHS[model],
    }
    spawn = InProcess if args.no_workers else Worker
    workers: dict[str, Any] = {}
    failures: dict[str, str] = {}
    for name in names:
        if name == "keras" and model not in _keras_ports():
            failures[name] = f"no Keras port of {model} in benchmarks/_keras_ports.py: skipped"
            print(f"  {failures[name]}", flush=True)
            continue
        try:
            workers[name] = spawn(name, model, args.device, limits)
        except ContenderFailed as error:
            failures[name] = str(error)
            print(f"  {error}", flush=True)
    pairs = [
        (name, recipe)
        for name in workers
        for recipe in contenders.recipes(
            name, model, limits["max_epochs"], torch.device(args.device)
        )
    ]
    rows: dict[tuple[str, str], dict[str, Any]] = {
        pair: {"contender": pair[0], "recipe": pair[1], "images_per_s_rounds": []} for pair in pairs
    }
    images = args.round_images or ROUND_IMAGES[model]
    try:
        for round_ in range(args.rounds):
            for pair in rotated(pairs, round_):
                name, recipe = pair
                if name in failures:
                    continue
                try:
                    reply = workers[name].call("images_per_second", recipe, images, args.warmup)
                except ContenderFailed as error:
                    failures[name] = str(error)
                    print(f"  {error}", flush=True)
                    continue
                rows[pair]["images_per_s_rounds"].append(reply["images_per_s"])
                rows[pair]["timed_steps"] = reply["steps"]
                print(
                    f"  round {round_ + 1} {name:10s} {recipe:4s}: "
                    f"{reply['images_per_s']:9.1f} images/s",
                    flush=True,
                )
        rows = {pair: row for pair, row in rows.items() if pair[0] not in failures}
        for row in rows.values():
            row["images_per_s"] = spread(row.pop("images_per_s_rounds"))
        for pair in plan_to_target(rows, args.to_target):
            name, recipe = pair
            print(f"  {name} ({recipe} recipe) to {target}...", flush=True)
            try:
                reply = workers[name].call("to_target", recipe, target)
            except ContenderFailed as error:
                failures[name] = str(error)
                print(f"  {error}", flush=True)
                continue
            rows[pair]["to_target"] = {**reply, "how": "measured"}
            print(
                f"  {name} ({recipe}): "
                + (
                    f"{reply['seconds']:.1f}s, {reply['epochs']} epochs"
                    if reply["reached"]
                    else f"not reached in {len(reply['curve'])} epochs ({reply['seconds_run']}s)"
                ),
                flush=True,
            )
        rows = {pair: row for pair, row in rows.items() if pair[0] not in failures}
        train_images = args.max_train_images or 60_000
        derive_to_target(rows, min(train_images, 60_000))
        for name, worker in workers.items():
            if name in failures:
                continue
            memory = worker.call("memory")
            for pair, row in rows.items():
                if pair[0] == name:
                    row["memory"] = memory
    finally:
        for worker in workers.values():
            worker.close()
    recipe_notes = {
        f"{name}/{recipe}": asdict(chosen)
        for name in workers
        for recipe, chosen in contenders.recipes(
            name, model, limits["max_epochs"], torch.device(args.device)
        ).items()
    }
    return {
        "model": model,
        "target": target,
        "round_images": images,
        "rows": list(rows.values()),
        "recipes": recipe_notes,
        "skipped": failures,
        "summary": summarize(rows),
    }


def _keras_ports() -> tuple[str, ...]:
    from benchmarks._keras_ports import PORTS

    return tuple(PORTS)


def plan_to_target(rows: dict[tuple[str, str], dict], mode: str) -> list[tuple[str, str]]:
    """The (contender, recipe) runs to the target that are measured, not derived."""
    if mode == "none":
        return []
    if mode == "all":
        return list(rows)
    chosen = [pair for pair in (("fit", "same"), ("eager", "same")) if pair in rows]
    own = [pair for pair in rows if pair[1] == "own"]
    if own:
        chosen.append(max(own, key=lambda pair: rows[pair]["images_per_s"]["median"]))
    return chosen


def derive_to_target(rows: dict[tuple[str, str], dict], train_images: int) -> None:
    """Fill the unmeasured runs: the recipe's measured epochs at the contender's images/s.

    The "same" recipe takes its epochs from the hand-written loop's run (else fit's); the "own"
    recipes from the measured peer's.
    """
    for recipe, sources in (("same", ("eager", "fit")), ("own", ())):
        measured = [
            rows[pair]
            for pair in rows
            if pair[1] == recipe
            and "to_target" in rows[pair]
            and (not sources or pair[0] in sources)
        ]
        if sources:
            measured.sort(key=lambda row: sources.index(row["contender"]))
        if not measured:
            continue
        source = measured[0]
        for pair, row in rows.items():
            if pair[1] != recipe or "to_target" in row:
                continue
            reached = source["to_target"]["reached"]
            epochs = source["to_target"]["epochs"] if reached else len(source["to_target"]["curve"])
            seconds = epochs * train_images / row["images_per_s"]["median"]
            row["to_target"] = {
                "how": f"derived: {source['contender']}'s {epochs} epochs at this images/s",
                "reached": reached,
                "epochs": epochs if reached else None,
                "seconds": round(seconds, 1) if reached else None,
                "seconds_run": round(seconds, 1),
            }


def summarize(rows: dict[tuple[str, str], dict]) -> dict[str, Any]:
    """The ratios the issue's targets are stated in.

    * ``fit_vs_<peer>_images_per_s``: fit's images/s over the peer's (same recipe), one ratio
      per round (the rounds pair them), median and range;
    * the fastest peer with its own defaults (measured or derived) and how many times longer
      it took than fit with its defaults; ``..._at_least`` when no peer reached the target (a
      lower bound: it ran out of epochs).
    """
    summary: dict[str, Any] = {}
    fit = rows.get(("fit", "same"))
    for (name, recipe), row in rows.items():
        if fit is None or name == "fit" or recipe != "same":
            continue
        pairs = zip(fit["images_per_s"]["values"], row["images_per_s"]["values"], strict=False)
        summary[f"fit_vs_{name}_images_per_s"] = spread([a / b for a, b in pairs])
    fit_time = (fit or {}).get("to_target", {})
    own = [row for pair, row in rows.items() if pair[1] == "own" and "to_target" in row]
    if not own or not fit_time.get("reached"):
        return summary
    reached = [row for row in own if row["to_target"]["reached"]]
    if reached:
        peer = min(reached, key=lambda row: row["to_target"]["seconds"])
        summary["peer_over_fit_time_to_target"] = round(
            peer["to_target"]["seconds"] / fit_time["seconds"], 2
        )
    else:
        peer = min(own, key=lambda row: row["to_target"]["seconds_run"])
        summary["peer_over_fit_time_to_target_at_least"] = round(
            peer["to_target"]["seconds_run"] / fit_time["seconds"], 2
        )
    summary["fastest_peer_own_defaults"] = peer["contender"]
    summary["fastest_peer_how"] = peer["to_target"]["how"]
    return summary


def print_table(result: dict[str, Any]) -> None:
    print(
        f"\n{result['model']}: target {result['target']}; images/s median [range] over rounds\n"
        f"{'contender':11s} {'recipe':6s} {'images/s':>26s} {'to target':>22s} {'peak RSS':>10s}"
    )
    for row in result["rows"]:
        ips = row["images_per_s"]
        timing = row.get("to_target")
        if timing is None:
            to_target = "-"
        elif timing["reached"]:
            mark = "" if timing["how"] == "measured" else "~"
            to_target = f"{mark}{timing['seconds']:.1f}s ({timing['epochs']} ep)"
        else:
            to_target = f">{timing['seconds_run']:.0f}s (not reached)"
        rss = row.get("memory", {}).get("peak_rss_mib")
        print(
            f"{row['contender']:11s} {row['recipe']:6s} "
            f"{ips['median']:9.1f} [{ips['min']:.1f}-{ips['max']:.1f}]".ljust(45)
            + f"{to_target:>22s} {'-' if rss is None else f'{rss:.0f} MiB':>10s}"
        )
    for note in result["skipped"].values():
        print(f"  {note.splitlines()[0]}")
    print(f"  summary: {result['summary']}")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--models", nargs="+", help="default: lenet5 mini_resnet (+ resnet18 on cuda)"
    )
    parser.add_argument(
        "--contenders",
        nargs="+",
        default=list(contenders.CONTENDERS),
        choices=contenders.CONTENDERS,
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--round-images", type=int, help="images per images/s round")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps per round")
    parser.add_argument("--to-target", choices=["auto", "all", "none"], default="auto")
    parser.add_argument("--target", type=float, help="override every model's target")
    parser.add_argument("--max-epochs", type=int, help="cap of the constant-rate runs")
    parser.add_argument("--max-train-images", type=int, help="first N training images (smoke)")
    parser.add_argument("--max-test-images", type=int, help="first N test images (smoke)")
    parser.add_argument("--no-workers", action="store_true", help="run contenders in-process")
    parser.add_argument("--no-save", action="store_true")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    models = args.models or ["lenet5", "mini_resnet"] + (
        list(GPU_ONLY) if args.device.startswith("cuda") else []
    )
    unknown = sorted(set(models) - set(TARGETS))
    if unknown:
        parser.error(f"unknown models {unknown}; choose from {sorted(TARGETS)}")

    started = time.perf_counter()
    skipped = {name: why for name in args.contenders if (why := missing_framework(name))}
    for why in skipped.values():
        print(why, flush=True)
    names = [name for name in args.contenders if name not in skipped]
    result: dict[str, Any] = {
        "benchmark": "peers",
        "method": __doc__,
        "rounds": args.rounds,
        "device": args.device,
        "skipped": skipped,
        "models": [],
        "versions": versions(names),
        "machine": machine_info(args.device),
    }
    for model in models:
        print(f"== {model}", flush=True)
        outcome = bench_model(model, args, names)
        result["models"].append(outcome)
        print_table(outcome)
    result["seconds"] = round(time.perf_counter() - started, 1)
    print(f"\nthe whole run took {result['seconds']:.0f}s")
    if not args.no_save:
        print(f"written to {write_result('peers', result)}")
    return result


def versions(names: list[str]) -> dict[str, str]:
    """The versions of the frameworks compared."""
    from importlib.metadata import PackageNotFoundError, version

    found = {"torch": torch.__version__}
    for package in ("lightning", "keras"):
        if package in names:
            with contextlib.suppress(PackageNotFoundError):
                found[package] = version(package)
    return found


if __name__ == "__main__":
    main()
