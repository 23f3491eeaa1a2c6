"""Write the benchmark figures into the docs from the result JSON: no figure typed by hand.

The docs mark each generated part with a pair of comments, ``<!-- bench:NAME -->`` and
``<!-- /bench:NAME -->``; everything between them is replaced. The parts:

* ``tta-headline`` (inline): the time-to-accuracy speed-up, median and range over the rounds;
* ``tta-table``: both sides' epochs and seconds per round, from ``time_to_accuracy-*.json``;
* ``peers-tables``: one table per model, from ``peers-*.json``;
* ``peers-summary`` (inline): fit against the hand-written loop and the fastest peer;
* ``sweep-table``: every ``sweep_defaults-*.json`` row (epochs to target per candidate recipe);
* ``step-costs-table``: every ``step_costs-*.json`` comparison (per-step cost ratios);
* ``zoo-headline`` (inline), ``zoo-summary`` and ``zoo-runs``: every model trained with fit's
  defaults, against its family's best grid rate, and every run behind it, from
  ``zoo_defaults-*.json``;
* ``compare-table``: the leaderboard ``cnnzoo.compare`` wrote, from ``compare-*.json``
  (``benchmarks/compare_docs.py``), as ``Leaderboard.to_markdown`` prints it;
* ``compare-overhead``: compare against the same models trained one by one, from
  ``compare_overhead-*.json``;
* ``augmentation-table``: each augmentation and regularisation option of ``fit`` against none,
  one table per task (the newest ``augmentation-*.json`` of each);
* ``weights-table``: the weights shipped in the package, from ``cnnzoo/weights/index.json``;
* ``streaming-table``: image folders streamed and in memory against the tutorial's pipeline,
  and their peak memory, from ``streaming-*.json``;
* ``budgets-table``: fit's defaults against the tutorial loop on a grid of budgets, from
  ``budgets-*.json``;
* ``reproduce-table``: every CPU-sized net trained on all of Fashion-MNIST, median and range
  over the seeds, beside published figures, from ``reproduce-*.json``;
* ``transfer-table``: the shipped weights fine-tuned on a new task against training from
  random, from ``transfer-*.json``;
* ``newcomer-times``: what the README's main job and test suite cost (CPU-seconds, wall time),
  from ``newcomer_times-*.json``;
* ``deploy-table`` and ``deploy-headline`` (inline): inference speed and accuracy of eager,
  ``torch.compile``, ONNX Runtime float32 and int8, from ``deploy-*.json``.

The sweep and step-cost tables gather every JSON of their benchmark in ``benchmarks/results/``;
the other parts use the newest one.

Usage::

    python benchmarks/render_docs.py                 # rewrite README.md and docs/*.md
    python benchmarks/render_docs.py --check         # exit 1 if a doc is not up to date
    python benchmarks/render_docs.py --peers benchmarks/results/peers-20261123-150000.json
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
WEIGHTS_INDEX = ROOT / "cnnzoo" / "weights" / "index.json"
DOCS = [
    ROOT / "README.md",
    ROOT / "benchmarks" / "README.md",
    *sorted((ROOT / "docs").glob("*.md")),
]

CONTENDER_NAMES = {
    "fit": "`cnnzoo.fit`",
    "eager": "hand-written in-memory loop",
    "dataloader": "`DataLoader` loop (tutorial style)",
    "lightning": "PyTorch Lightning `Trainer`",
    "keras": "Keras 3 (PyTorch backend)",
}
MARKER = re.compile(
    r"(<!-- bench:(?P<name>[a-z-]+) -->)(?P<body>.*?)(<!-- /bench:(?P=name) -->)", re.S
)


def newest(prefix: str) -> Path | None:
    """The newest ``<prefix>-<stamp>.json`` in benchmarks/results (stamps sort by time)."""
    found = sorted(RESULTS.glob(f"{prefix}-[0-9]*.json"))
    return found[-1] if found else None


def relative(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(ROOT / "benchmarks"))
    except ValueError:
        return path.name


def spread_text(spread: dict[str, float], unit: str = "", digits: int = 1) -> str:
    """``median [min–max]`` with ``unit``."""
    return (
        f"{spread['median']:.{digits}f}{unit} "
        f"[{spread['min']:.{digits}f}–{spread['max']:.{digits}f}{unit}]"
    )


def machine_text(result: dict[str, Any]) -> str:
    machine = result["machine"]
    versions = ", ".join(f"{k} {v}" for k, v in result.get("versions", {}).items())
    load = machine.get("load_average_at_start")
    load_text = f", load average at start {load[0]:.2f}" if load else ""
    flags = machine.get("cpu_flags")
    flags_text = "" if flags is None else f" ({', '.join(flags) or 'no AVX2'})"
    return (
        f"{machine['cpu']}{flags_text}, {machine['cpu_cores']} cores, torch threads "
        f"{machine['torch_threads']}, device {machine['device']}"
        + (f" ({machine['gpu']})" if machine.get("gpu") else "")
        + f"; {versions or 'torch ' + machine['torch']}{load_text}"
    )


# -- time to accuracy ------------------------------------------------------------------------
def tta_headline(result: dict[str, Any], source: Path) -> str:
    speedup = result["summary"].get("speedup")
    if speedup is None:
        return "(no round reached the target on both sides)"
    rounds, total = len(speedup["values"]), len(result["rounds"])
    kind = "alternating rounds, one seed each" if "seed" in result["rounds"][0] else "rounds"
    which = (
        f"{total} {kind}"
        if rounds == total
        else f"the {rounds} of {total} {kind} where both sides reached it"
    )
    missed = result["summary"].get("cnnzoo", {}).get("missed", 0)
    misses = f"; fit's 4 epochs missed the target in {missed} of {total}" if missed else ""
    return (
        f"**{speedup['median']:.1f}×** (median of {which}, range "
        f"{speedup['min']:.1f}–{speedup['max']:.1f}×{misses})"
    )


def tta_table(result: dict[str, Any], source: Path) -> str:
    target = result["target"]
    lines = [
        f"`benchmarks/time_to_accuracy.py` → `{relative(source)}`; {machine_text(result)}.",
        "",
        f"| recipe | epochs to {target} | seconds per round | median [range] |",
        "| --- | ---: | --- | --- |",
    ]
    names = {
        "reference": "the LeNet-5 and AlexNet Fashion-MNIST tutorial's recipe (torchvision "
        "dataset + `ToTensor`, `DataLoader` batch 32, Adam 1e-3)",
        "cnnzoo": "`cnnzoo.fit` with its defaults",
    }
    for side in ("reference", "cnnzoo"):
        runs = [r[side] for r in result["rounds"] if side in r]
        if not runs:
            continue
        seconds = [f"{run['seconds']:.1f}" if run["reached"] else "not reached" for run in runs]
        summary = result["summary"].get(side) or {}
        epochs = ", ".join(str(e) for e in summary.get("epochs", [])) or "-"
        median = spread_text(summary["seconds"], " s") if "seconds" in summary else "-"
        if summary.get("missed"):
            epochs += f" ({summary['missed']} of {summary['rounds']} rounds missed)"
        lines.append(f"| {names[side]} | {epochs} | {', '.join(seconds)} | {median} |")
    speedup = result["summary"].get("speedup")
    if speedup:
        per_round = ", ".join(f"{v:.1f}×" for v in speedup["values"])
        lines.append(f"| **speed-up** | | {per_round} | **{spread_text(speedup, '×')}** |")
    if result.get("one_off_seconds") is not None:
        lines += [
            "",
            f"Not in either figure: {result['one_off_seconds']:.1f} s of one-off start-up that "
            "both sides pay once in a fresh process (torch imports `torch._dynamo` when the "
            "first optimizer is built); it is paid before the rounds.",
        ]
    return "\n".join(lines)


# -- peers -----------------------------------------------------------------------------------
def recipe_text(recipe: dict[str, Any]) -> str:
    schedule = "one-cycle" if recipe["schedule"] == "onecycle" else "constant rate"
    name = "AdamW" if recipe["optimizer"] == "adamw" else "Adam"
    text = f"{name} {recipe['lr']:g} {schedule}, batch {recipe['batch_size']}"
    if recipe["schedule"]:
        text += f", {recipe['epochs']} epochs"
    if recipe.get("label_smoothing"):
        text += f", label smoothing {recipe['label_smoothing']:g}"
    if recipe.get("precision") == "bf16":
        text += ", bf16 autocast"
    return text


def to_target_text(row: dict[str, Any]) -> tuple[str, str]:
    timing = row.get("to_target")
    if timing is None:
        return "-", "-"
    derived = timing["how"] != "measured"
    if not timing["reached"]:
        return f"> {timing['seconds_run']:.0f} s (not reached)", "-"
    mark = "≈ " if derived else ""
    return f"{mark}{timing['seconds']:.1f} s" + (" (derived)" if derived else ""), str(
        timing["epochs"]
    )


def memory_text(row: dict[str, Any]) -> str:
    memory = row.get("memory", {})
    peak = memory.get("peak_rss_mib")
    if peak is None:
        return "-"
    text = f"{peak:.0f}"
    if memory.get("rss_at_start_mib") is not None:
        text += f" (+{peak - memory['rss_at_start_mib']:.0f})"
    if memory.get("cuda_max_allocated_mib") is not None:
        text += f"; CUDA {memory['cuda_max_allocated_mib']:.0f}"
    return text


def peers_tables(result: dict[str, Any], source: Path) -> str:
    lines = [
        f"`benchmarks/peers.py` → `{relative(source)}`; {machine_text(result)}; "
        f"{result['rounds']} alternating rounds.",
    ]
    for model in result["models"]:
        fit = next(
            (r for r in model["rows"] if r["contender"] == "fit" and r["recipe"] == "same"), None
        )
        lines += [
            "",
            f"**{model['model']}**, to {model['target']} test accuracy "
            f"({model['round_images']:,} images per images/s round)",
            "",
            "| contender | recipe | images/s, median [range] | vs fit | time to target "
            "| epochs | peak RSS MiB (+ training) |",
            "| --- | --- | --- | ---: | --- | ---: | --- |",
        ]
        for row in model["rows"]:
            recipe = model["recipes"][f"{row['contender']}/{row['recipe']}"]
            which = "fit's defaults" if row["recipe"] == "same" else "its own defaults"
            ratio = (
                f"{row['images_per_s']['median'] / fit['images_per_s']['median']:.2f}"
                if fit
                else "-"
            )
            seconds, epochs = to_target_text(row)
            lines.append(
                f"| {CONTENDER_NAMES[row['contender']]} | {which}: {recipe_text(recipe)} "
                f"| {spread_text(row['images_per_s'])} | {ratio} | {seconds} | {epochs} "
                f"| {memory_text(row)} |"
            )
        for note in model.get("skipped", {}).values():
            lines.append(f"\nNot run: {note.splitlines()[0]}")
    for why in result.get("skipped", {}).values():
        lines.append(f"\nNot run: {why}")
    return "\n".join(lines)


def peers_summary(result: dict[str, Any], source: Path) -> str:
    parts = []
    for model in result["models"]:
        summary = model["summary"]
        bits = []
        if "fit_vs_eager_images_per_s" in summary:
            bits.append(
                f"`fit` trains at {spread_text(summary['fit_vs_eager_images_per_s'], '×', 2)} "
                "the hand-written loop's images/s"
            )
        if "peer_over_fit_time_to_target" in summary:
            bits.append(
                f"reaches {model['target']} {summary['peer_over_fit_time_to_target']:.1f}× "
                "faster than the fastest peer with its own defaults "
                f"({CONTENDER_NAMES[summary['fastest_peer_own_defaults']]})"
            )
        elif "peer_over_fit_time_to_target_at_least" in summary:
            bits.append(
                f"reaches {model['target']} at least "
                f"{summary['peer_over_fit_time_to_target_at_least']:.1f}× faster than the "
                "fastest peer with its own defaults, which did not reach it"
            )
        if bits:
            parts.append(f"{model['model']}: " + "; ".join(bits))
    return "; ".join(parts) if parts else "(no summary in the result)"


# -- the measurements behind fit's defaults (every result, not the newest) --------------------
def sweep_table(results: list[tuple[Path, dict[str, Any]]]) -> str:
    lines = [
        "| model | training images | candidate | seed | epochs to target | test accuracy per "
        "epoch | result |",
        "| --- | --- | --- | ---: | ---: | --- | --- |",
    ]
    rows = []
    for path, result in results:
        images = "48,000 + validation" if result.get("val_fraction") else "60,000"
        for row in result["rows"]:
            rows.append((row["model"], images, row["candidate"], row.get("seed", 0), row, path))
    for model, images, candidate, seed, row, path in sorted(rows, key=lambda r: r[:4]):
        reached = row["epochs_to_target"]
        curve = ", ".join(f"{point['test_accuracy']:.4f}" for point in row["curve"])
        lines.append(
            f"| {model} | {images} | `{candidate}` | {seed} "
            f"| {reached if reached else 'not reached'} | {curve} | `{relative(path)}` |"
        )
    return "\n".join(lines)


def step_costs_table(results: list[tuple[Path, dict[str, Any]]]) -> str:
    lines = [
        "| model | comparison | variant | speed vs first, median [range] | first call s | result |",
        "| --- | --- | --- | --- | ---: | --- |",
    ]
    for path, result in results:
        setting = (
            f"{result['model']} (batch {result['batch_size']}, {result.get('precision', 'fp32')})"
        )
        for name, comparison in result["comparisons"].items():
            for variant, row in comparison["variants"].items():
                speed = {
                    "median": row["speed_vs_first_median"],
                    "min": row["speed_vs_first_range"][0],
                    "max": row["speed_vs_first_range"][1],
                }
                lines.append(
                    f"| {setting} | {name} | {variant} | {spread_text(speed, '×', 2)} "
                    f"| {row['first_call_seconds']:.1f} | `{relative(path)}` |"
                )
            if "break_even" in comparison:
                even = comparison["break_even"]
                steps = f"{even['steps']:,} steps" if even["steps"] else "never"
                lines.append(
                    f"| {setting} | {name} | break-even of {even['compile_seconds']:.0f} s of "
                    f"compiling | {steps} | | `{relative(path)}` |"
                )
    return "\n".join(lines)


# -- the zoo's defaults ------------------------------------------------------------------------
INPUTS = {
    "native": "28×28",
    "pad32": "32×32 (padded)",
    "small": "{side}×{side}, `small_input`",
    "upsample": "227×227",
    "folder": "224×224 RGB folder",
}


def _accuracy(value: float | None) -> str:
    return "diverged" if value is None else f"{value:.3f}"


def _alerts(row: dict[str, Any]) -> str:
    alerts = row.get("alerts") or []
    return ", ".join(f"{a['kind']} (epoch {a['epoch']})" for a in alerts) or "none"


def zoo_summary(result: dict[str, Any], source: Path) -> str:
    """Per model: the default rate, min and mean accuracy over the seeds, the family's best."""
    task = result["task"]
    lines = [
        f"Task: {task['train_images']:,} Fashion-MNIST training images (a tenth held out for "
        f"validation), {task['epochs']} epochs, {task['test_images']} test images, seeds "
        f"{', '.join(map(str, result['seeds']))}; chance {result['chance']:.3f}. "
        f"From `{relative(source)}`; {machine_text(result)}; "
        f"{result['seconds_as_seen'] / 60:.0f} minutes with {result['jobs']} worker processes"
        + _grid_source(result, source)
        + ".",
        "",
        "| model | input | default lr | min accuracy | mean | family's best of grid (lr) "
        "| share | every seed learns | alerts |",
        "|---|---|---:|---:|---:|---|---:|---|---:|",
    ]
    best_rate = {}
    for row in result["grid"]:
        family = row["family"]
        if row["test_accuracy"] is not None and (
            family not in best_rate or row["test_accuracy"] > best_rate[family][0]
        ):
            best_rate[family] = (row["test_accuracy"], row["lr"], row["model"])
    for line in result["summary"]:
        best = best_rate.get(line["family"])
        best_text = "–" if best is None else f"{best[0]:.3f} ({best[2]}, {best[1]:g})"
        share = "–" if line["share_of_best"] is None else f"{line['share_of_best']:.0%}"
        lines.append(
            f"| `{line['model']}` | {_input_text(result, line['model'])} | "
            f"{line['lr_used']:g} | {line['min_accuracy']:.3f} | {line['mean_accuracy']:.3f} | "
            f"{best_text} | {share} | {'yes' if line['learned_every_seed'] else '**no**'} | "
            f"{line['alerts']} |"
        )
    return "\n".join(lines)


def _grid_source(result: dict[str, Any], source: Path) -> str:
    """Which models were trained again into earlier results of the same task, oldest first.

    Each ``--update`` names the result it started from; the chain is followed through the
    files that are still there.
    """
    steps = []
    updated = result.get("updated")
    seen = {source.name}
    while updated and updated["from"] not in seen:  # a chain that loops back ends there
        seen.add(updated["from"])
        earlier = source.parent / updated["from"]
        names = ", ".join(f"`{name}`" for name in updated["models"])
        steps.append(
            f"{names} trained again from `{relative(earlier)}` "
            f"({updated['seconds_as_seen'] / 60:.1f} min)"
        )
        updated = json.loads(earlier.read_text()).get("updated") if earlier.is_file() else None
    if not steps:
        return ""
    return "; after their recipe or initialisation changed, " + ", then ".join(reversed(steps))


def zoo_headline(result: dict[str, Any], source: Path) -> str:
    """One phrase: how many models learn on every seed and hold to their family's best rate."""
    summary = result["summary"]
    learned = sum(line["learned_every_seed"] for line in summary)
    holds = sum(line["holds"] for line in summary)
    shares = [line["share_of_best"] for line in summary if line["share_of_best"] is not None]
    lowest = f", the lowest at {min(shares):.0%}" if shares else ""
    return (
        f"{learned} of {len(summary)} models learn on every seed and {holds} reach 95% of the "
        f"accuracy of their family's best grid rate{lowest}"
    )


def zoo_alerts(result: dict[str, Any], source: Path) -> str:
    """What fit warned about in the benchmark's runs, and how those runs ended."""
    outcomes = result.get("alert_outcomes")
    if not outcomes:
        return "(no grid in this result: nothing to say about the warnings)"
    ended = outcomes["ended"]
    recovered = [e["share_of_best"] for e in ended if not e["at_chance"] and e["share_of_best"]]
    spread = (
        f"; the other {len(recovered)} ended at {min(recovered):.0%}–{max(recovered):.0%} of their "
        "family's best"
        if recovered
        else ""
    )
    kinds = ", ".join(f"{k}: {n}" for k, n in sorted(_count(e["kind"] for e in ended).items()))
    above = sum(e["above_recipe"] for e in ended)
    default_text = "; ".join(
        f"`{r['model']}` seed {r['seed']}: {r['alerts'][0]['kind']}, test accuracy "
        f"{_accuracy(r['test_accuracy'])}"
        for r in result["defaults"]
        if r.get("alerts")
    )
    return (
        f"Of the {outcomes['runs']} runs, `fit` warned about {outcomes['warned']} "
        f"({kinds or 'none'}); {above} of them were grid runs at rates above the model's recipe, "
        f"{outcomes['warned_defaults']} were runs with the defaults"
        + (f" ({default_text})" if default_text else "")
        + ". "
        f"{outcomes['warned_at_chance']} of the warned runs ended within 5 points of "
        f"chance{spread}. Runs that did not learn (as defined above) and were not warned about: "
        f"{outcomes['unwarned_at_chance']}."
    )


def _count(items: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in items:
        counts[item] = counts.get(item, 0) + 1
    return counts


def _kind(result: dict[str, Any], name: str) -> str:
    return result.get("inputs", {}).get(name, "small")


def _input_text(result: dict[str, Any], name: str) -> str:
    """The size a model saw, and how many images where it is fewer than the task's."""
    task = result["task"]
    text = INPUTS[_kind(result, name)].format(side=task.get("small_side", 16))
    fewer = task.get("large_input_train_images")
    if fewer and _kind(result, name) in ("folder", "upsample") and fewer < task["train_images"]:
        text += f", {fewer:,} images"
    return text


def zoo_runs(result: dict[str, Any], source: Path) -> str:
    """Every run: the defaults per model and seed, then the reference grids."""
    lines = [
        "| model | run | seed | lr | test accuracy | training loss per epoch | alerts |",
        "|---|---|---:|---:|---:|---|---|",
    ]
    runs = [
        *((row, "defaults") for row in result["defaults"]),
        *((row, "grid") for row in result["grid"] if not row.get("defaults_run")),
    ]
    for row, run in runs:
        rate = f"{row['lr']:g}" if row["lr"] is not None else f"{row['lr_used']:g}"
        losses = ", ".join(f"{v:.3g}" for v in row["loss"]) or "–"
        lines.append(
            f"| `{row['model']}` | {run} | {row['seed']} | {rate} | "
            f"{_accuracy(row['test_accuracy'])} | {losses} | {_alerts(row)} |"
        )
    return "\n".join(lines)


# -- compare ---------------------------------------------------------------------------------
def compare_table(result: dict[str, Any], source: Path) -> str:
    sys.path.insert(0, str(ROOT))  # this checkout's cnnzoo renders its own table
    from cnnzoo.comparison import Leaderboard

    board = Leaderboard.from_json(json.dumps(result["leaderboard"]))
    subset = result["subset"]
    settings = board.settings
    epochs = settings["budget"]["epochs"]
    lines = [
        f"`{result['command']}` → `{relative(source)}`; {machine_text(result)}. "
        f"Fashion-MNIST subset: {subset['train_samples']:,} training images "
        f"({settings['data']['val_samples']:,} held out for validation), "
        f"{subset['test_samples']:,} test images, {epochs} epoch(s) per model, seed "
        f"{settings['seed']}, precision {settings['precision']}, each model's default recipe.",
        "",
        board.to_markdown().rstrip("\n"),
    ]
    return "\n".join(lines)


def compare_overhead(result: dict[str, Any], source: Path) -> str:
    summary = result["summary"]
    models = ", ".join(f"`{m}`" for m in result["models"])
    rounds = len(result["rounds"])
    return "\n".join(
        [
            f"`benchmarks/compare_overhead.py` → `{relative(source)}`; {machine_text(result)}; "
            f"load average at the end {result['load_average_at_end'][0]:.2f}.",
            "",
            f"{models} on {result['subset']['train_samples']:,} training and "
            f"{result['subset']['test_samples']:,} test Fashion-MNIST images, "
            f"{result['epochs']} epoch(s) each, {rounds} alternating rounds:",
            "",
            "| | seconds, median [range] |",
            "| --- | --- |",
            f"| one by one with `fit` | {spread_text(summary['one_by_one_seconds'], ' s')} |",
            f"| `cnnzoo.compare` | {spread_text(summary['compare_seconds'], ' s')} |",
            "| of which beyond its `fit` calls | "
            f"{spread_text(summary['beyond_fit_seconds'], ' s')} |",
            f"| **compare / one by one** | **{spread_text(summary['ratio'], '×', 2)}** |",
        ]
    )


# -- streaming image folders -------------------------------------------------------------------
STREAMING_NAMES = {
    "tutorial": "the tutorial: `ImageFolder` + `Resize`/`ToTensor`/`Normalize`, `DataLoader`, "
    "fp32 loop",
    "streamed": "`cnnzoo.fit`, folder streamed from disk (`in_memory=False`)",
    "in_memory": "`cnnzoo.fit`, folder in memory (`in_memory=True`)",
    "decoded_cache": "prototype: streamed from a memory-mapped file of decoded images",
}


def streaming_table(result: dict[str, Any], source: Path) -> str:
    rounds = result["rounds"]
    end = result.get("load_average_at_end")
    end_text = f", load average at the end {end[0]:.2f}" if end else ""
    lines = [
        f"`benchmarks/streaming.py` → `{relative(source)}`; {machine_text(result)}{end_text}.",
        "",
        f"{result['model']} on {result['images']} generated 224x224 JPEGs (two classes), batch "
        f"{result['batch_size']}, {result['workers']} DataLoader worker(s) on every side; the "
        f"second of two epochs of {result['steps_per_epoch']} steps timed, {len(rounds)} "
        "alternating rounds.",
        "",
        "| pipeline | seconds per epoch, median [range] | epochs/s against the tutorial |",
        "| --- | --- | --- |",
    ]
    for name, label in STREAMING_NAMES.items():
        seconds = [r[name]["timed"] for r in rounds]
        median = {"median": statistics.median(seconds), "min": min(seconds), "max": max(seconds)}
        ratio = (
            "1.00× (reference)"
            if name == "tutorial"
            else spread_text(result["summary"][name], "×", 2)
        )
        lines.append(f"| {label} | {spread_text(median, ' s')} | {ratio} |")
    loads = result["load_seconds"]
    lines += [
        "",
        f"Loading (once, before training; every image decoded and checked, the mean and std "
        f"measured): streamed {loads['streamed']:.1f} s, in memory {loads['in_memory']:.1f} s; "
        "writing the decoded-image file of the prototype took "
        f"{result['cache_build_seconds']:.1f} s.",
        "",
        "| run | folder | peak RSS after loading | peak RSS with training | largest worker |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    memory = result["memory"]
    for mode in ("streamed", "in_memory"):
        for size, images in (("1x", result["images"]), ("4x", 4 * result["images"])):
            row = memory[f"{mode}_{size}"]
            worker = f"{row['worker_mb']:.0f} MB" if row["worker_mb"] else "-"
            lines.append(
                f"| {mode.replace('_', ' ')} | {images} images | {row['load_peak_mb']:.0f} MB | "
                f"{row['main_mb']:.0f} MB | {worker} |"
            )
    lines += [
        "",
        f"Peak RSS of the streamed run, folder 4x larger against 1x: "
        f"{memory['streamed_main_mb_growth']:.2f}× (in memory: "
        f"{memory['in_memory_main_mb_growth']:.2f}×).",
    ]
    return "\n".join(lines)


# -- budgets ---------------------------------------------------------------------------------
def _budgets_provenance(result: dict[str, Any]) -> str:
    """How a budgets result was made: one run, or parts of the grid joined."""
    joined = result.get("joined")
    if not joined:
        return "" if result.get("complete", True) else " **A partial run**: it was stopped early."
    threads = ", ".join(map(str, result.get("threads") or []))
    text = (
        f" Joined from {len(joined)} runs of parts of the grid on this machine (torch threads "
        f"{threads or 'as recorded'} per part; the file lists them)"
    )
    if not result.get("complete", True):
        text += ": one or more parts was stopped early, and the cells they finished are kept"
    return text + "."


def budgets_table(result: dict[str, Any], source: Path) -> str:
    """Per model and budget: fit's defaults against the tutorial loop, means over the seeds."""
    summary = result["summary"]
    holding = sum(line["holds"] for line in summary)
    worst = min(summary, key=lambda line: line["difference"])
    tutorial = result["tutorial"]
    lines = [
        f"{holding} of {len(summary)} cells hold (the defaults' mean test accuracy at least the "
        f"tutorial's); the worst: `{worst['model']}` on {worst['train_images']:,} images x "
        f"{worst['epochs']} epoch(s), {worst['defaults']:.3f} against {worst['tutorial']:.3f}. "
        f"Tutorial loop: {tutorial['optimizer']} {tutorial['lr']:g}, batch "
        f"{tutorial['batch_size']}, {tutorial['schedule']} rate. Mean test accuracy on "
        f"{result['test_images']:,} test images over seeds "
        f"{', '.join(map(str, result['seeds']))}; from `{relative(source)}`; "
        f"{machine_text(result)}; {result['seconds_as_seen'] / 60:.0f} minutes as seen. The "
        "seconds below are the median CPU-seconds of a run (wall seconds as seen on a shared "
        "machine where marked *wall*: runs measured before the script counted CPU time)."
        + _budgets_provenance(result),
        "",
        "| model | images x epochs | fit's batch, steps, lr | fit's defaults | tutorial loop "
        "| difference | holds | seconds (fit / tutorial) |",
        "|---|---|---|---:|---:|---:|---|---|",
    ]
    rows = result["rows"]
    for line in summary:

        def side(name: str, line: dict[str, Any] = line) -> list[dict[str, Any]]:
            return [
                row
                for row in rows
                if row["side"] == name
                and (row["model"], row["train_images"], row["epochs"])
                == (line["model"], line["train_images"], line["epochs"])
            ]

        fitted, tutored = side("defaults"), side("tutorial")
        first = fitted[0]
        timed = all("cpu_seconds" in r for r in fitted + tutored)
        key = "cpu_seconds" if timed else "seconds_as_seen"
        seconds = (
            f"{statistics.median(r[key] for r in fitted):.0f} / "
            f"{statistics.median(r[key] for r in tutored):.0f}" + ("" if timed else " *wall*")
        )
        seeds = len(fitted)
        if seeds != len(result["seeds"]) or len(tutored) != seeds:
            note_seeds = f" ({seeds} / {len(tutored)} seeds)"
        else:
            note_seeds = ""
        warned = sum(bool(r["warned"]) for r in fitted)
        note = f" ({warned} warned)" if warned else ""
        lines.append(
            f"| `{line['model']}` | {line['train_images']:,} x {line['epochs']}{note_seeds} | "
            f"{first['batch_size']}, {first['steps']}, {first['lr']:g} | "
            f"{line['defaults']:.3f}{note} | {line['tutorial']:.3f} | "
            f"{line['difference']:+.3f} | {'yes' if line['holds'] else '**no**'} | {seconds} |"
        )
    return "\n".join(lines)


# -- deployment ---------------------------------------------------------------------------
DEPLOY_NAMES = {
    "eager": "eager fp32",
    "compile": "`torch.compile`",
    "ort_fp32": "ONNX Runtime fp32",
    "ort_int8": "ONNX Runtime int8",
}
DEPLOY_MODELS = {
    "mini_resnet": "mini_resnet, 28x28",
    "resnet18_small": "resnet18 (`small_input`), 28x28",
    "resnet18_224": "resnet18, 224x224",
}


def cpu_flags_text(result: dict[str, Any]) -> str:
    flags = result["machine"].get("cpu_flags", {})
    have = [name for name, present in flags.items() if present]
    lacks = [name for name, present in flags.items() if not present]
    return f"CPU flags: {', '.join(have) or 'none'}; without {', '.join(lacks) or 'none'}"


def _deploy_rows(result: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """``(label, row)`` of each measured model, in the table's order."""
    models = result["models"]
    return [(label, models[key]) for key, label in DEPLOY_MODELS.items() if key in models]


def deploy_table(result: dict[str, Any], source: Path) -> str:
    settings = result["settings"]
    end = result.get("load_average_at_end")
    end_text = f", load average at the end {end[0]:.2f}" if end else ""
    lines = [
        f"`benchmarks/deploy.py` → `{relative(source)}`; {machine_text(result)}{end_text}. "
        f"{cpu_flags_text(result)}.",
        "",
        f"Images per second, median of {settings['rounds']} alternating rounds, and in brackets "
        "the speed against eager fp32 in the same round (median [range]):",
        "",
        "| model | batch | " + " | ".join(DEPLOY_NAMES.values()) + " |",
        "| --- | ---: | " + " | ".join("---:" for _ in DEPLOY_NAMES) + " |",
    ]
    for label, row in _deploy_rows(result):
        for batch, speed in row["speed"].items():
            cells = []
            for name in DEPLOY_NAMES:
                rate = speed["images_per_second"][name]["median"]
                ratio = speed["against_eager"][name]
                cells.append(
                    f"{rate:,.0f}"
                    if name == "eager"
                    else f"{rate:,.0f} ({spread_text(ratio, '×', 2)})"
                )
            lines.append(f"| {label} | {batch} | " + " | ".join(cells) + " |")
    lines += [
        "",
        f"Fashion-MNIST test accuracy on the first {settings['test_images']} test images (the "
        "models trained briefly inside the script: one epoch on the training images shown), and "
        "int8's change against eager fp32:",
        "",
        "| model | trained on | " + " | ".join(DEPLOY_NAMES.values()) + " | int8 − fp32 |",
        "| --- | ---: | " + " | ".join("---:" for _ in DEPLOY_NAMES) + " | ---: |",
    ]
    for label, row in _deploy_rows(result):
        if row["accuracy"] is None:
            agreement = row["agreement_with_eager"]["ort_int8"]
            lines.append(
                f"| {label} | untrained | "
                + " | ".join("—" for _ in DEPLOY_NAMES)
                + f" | top-1 agreement with fp32 {agreement:.1%} |"
            )
            continue
        accuracy = row["accuracy"]
        drop = (accuracy["ort_int8"] - accuracy["eager"]) * 100
        lines.append(
            f"| {label} | {row['train_images']:,} images | "
            + " | ".join(f"{accuracy[name]:.3f}" for name in DEPLOY_NAMES)
            + f" | {drop:+.1f} points |"
        )
    return "\n".join(lines)


# -- the README's two commands ---------------------------------------------------------------
def newcomer_times(result: dict[str, Any], source: Path) -> str:
    """What the main job and the test suite cost, in CPU-seconds and wall time, and where."""
    cores = result["machine"]["cpu_cores"]
    flags = result["machine"].get("cpu_flags") or []
    vector = "AVX-512" if "avx512f" in flags else "AVX2, no AVX-512" if "avx2" in flags else ""

    def cost(part: dict[str, Any], what: str) -> str:
        cpu, wall = part["cpu_seconds"], part["wall_seconds"]
        runs = part["rounds"]
        ranged = f" [{cpu['min']:,.0f}–{cpu['max']:,.0f}]" if runs > 1 else ""
        return (
            f"{what} **{cpu['median']:,.0f} CPU-seconds**{ranged} (at least "
            f"{cpu['median'] / cores / 60:.0f} min on {cores} cores; {wall['median'] / 60:.0f} "
            f"min of wall time measured, median of {runs})"
        )

    return (
        f"{cost(result['main_job'], 'the main job takes')}, "
        f"{cost(result['test_suite'], 'the tests')}, on {result['machine']['cpu']}"
        + (f" ({vector})" if vector else "")
        + "; machines of one kind differ 3–5×, and other processes on the cores lengthen the "
        f"wall time ({relative(source)})"
    )


def augmentation_tables(results: list[tuple[Path, dict[str, Any]]]) -> str:
    """One table per task (model, images, epochs), from the newest result of each."""
    sys.path.insert(0, str(ROOT))
    from benchmarks._augmentation_table import augmentation_table as table

    newest_of_task: dict[tuple[Any, ...], tuple[Path, dict[str, Any]]] = {}
    for path, result in sorted(results):  # stamps sort by time: a later result replaces
        task = result["task"]
        newest_of_task[(task["model"], task["train_images"], task["epochs"])] = (path, result)
    tables = []
    for path, result in sorted(newest_of_task.values(), key=lambda pair: pair[1]["task"]["epochs"]):
        header = f"`benchmarks/augmentation.py` → `{relative(path)}`; {machine_text(result)}."
        tables.append(table(result, header))
    return "\n\n".join(tables)


def transfer_table(result: dict[str, Any], source: Path) -> str:
    sys.path.insert(0, str(ROOT))
    from benchmarks._transfer_table import transfer_table as table

    return table(
        result, f"`benchmarks/transfer.py` → `{relative(source)}`; {machine_text(result)}."
    )


def reproduce_table(result: dict[str, Any], source: Path) -> str:
    sys.path.insert(0, str(ROOT))
    from benchmarks._reproduce_table import reproduce_table as table

    return table(
        result, f"`benchmarks/reproduce.py` → `{relative(source)}`; {machine_text(result)}."
    )


def weights_table(result: list[dict[str, Any]], source: Path) -> str:
    lines = [
        f"From `cnnzoo/weights/{source.name}`, written by `benchmarks/train_weights.py`.",
        "",
        "| model | `weights=` | test accuracy | recipe (`fit` arguments) | epochs | training "
        "time | parameters | MACs | sha256 |",
        "| --- | --- | ---: | --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for w in result:
        recipe = ", ".join(f"`{k}={v!r}`" for k, v in w["recipe"].items())
        lines.append(
            f"| `{w['model']}` | `{w['tag']}` | {w['test_accuracy']:.4f} | {recipe} | "
            f"{w['epochs']} | {w['train_seconds']:.0f} s | {w['num_params']:,} | "
            f"{w['macs']:,} | `{w['sha256'][:16]}…` |"
        )
    datasets = dict.fromkeys(w["dataset"] for w in result)
    if len(datasets) > 1:  # say which net saw its images adapted, and how
        lines += [""] + [f"- `{w['model']}`: {w['dataset']}." for w in result]
    else:
        lines += ["", f"Data: {next(iter(datasets), '-')}."]
    machines = sorted({w["machine"] for w in result})
    lines += ["", f"Trained on: {'; '.join(machines)} (a machine shared with other jobs)."]
    return "\n".join(lines)


def deploy_headline(result: dict[str, Any], source: Path) -> str:
    row = result["models"].get("resnet18_224") or result["models"].get("resnet18_small")
    if row is None:
        return "(not measured yet)"
    batch = str(result["settings"]["batch"])
    ratio = row["speed"][batch]["against_eager"]["ort_int8"]
    label = DEPLOY_MODELS[
        "resnet18_224" if "resnet18_224" in result["models"] else "resnet18_small"
    ]
    return f"{spread_text(ratio, '×', 2)} eager fp32's speed for {label} at batch {batch}"


RENDERERS: dict[str, tuple[str, Callable[[Any, Path], str]]] = {
    "budgets-table": ("budgets", budgets_table),
    "transfer-table": ("transfer", transfer_table),
    "reproduce-table": ("reproduce", reproduce_table),
    "weights-table": ("weights_index", weights_table),
    "compare-table": ("compare", compare_table),
    "compare-overhead": ("compare_overhead", compare_overhead),
    "tta-headline": ("time_to_accuracy", tta_headline),
    "tta-table": ("time_to_accuracy", tta_table),
    "peers-tables": ("peers", peers_tables),
    "peers-summary": ("peers", peers_summary),
    "zoo-headline": ("zoo_defaults", zoo_headline),
    "zoo-summary": ("zoo_defaults", zoo_summary),
    "zoo-runs": ("zoo_defaults", zoo_runs),
    "zoo-alerts": ("zoo_defaults", zoo_alerts),
    "streaming-table": ("streaming", streaming_table),
    "newcomer-times": ("newcomer_times", newcomer_times),
    "deploy-table": ("deploy", deploy_table),
    "deploy-headline": ("deploy", deploy_headline),
}
# Parts that sit inside a sentence; the others are blocks on lines of their own.
INLINE = {
    "tta-headline",
    "peers-summary",
    "zoo-headline",
    "zoo-alerts",
    "newcomer-times",
    "deploy-headline",
}
AGGREGATES: dict[str, tuple[str, Callable[[list[tuple[Path, dict[str, Any]]]], str]]] = {
    "sweep-table": ("sweep_defaults", sweep_table),
    "step-costs-table": ("step_costs", step_costs_table),
    "augmentation-table": ("augmentation", augmentation_tables),
}


def render(
    text: str, sources: dict[str, Path | None], gathered: dict[str, list[Path]] | None = None
) -> str:
    """``text`` with every marked part rendered from its benchmark's JSON.

    Args:
        text: A document.
        sources: The JSON each single-result part is rendered from, by benchmark (None: not
            measured yet, the part is left as it is).
        gathered: The JSON files each aggregate part gathers, by benchmark.
    """
    loaded: dict[Path, dict[str, Any]] = {}

    def load(path: Path) -> dict[str, Any]:
        if path not in loaded:
            loaded[path] = json.loads(path.read_text())
        return loaded[path]

    def replace(match: re.Match) -> str:
        name = match["name"]
        if name in AGGREGATES:
            benchmark, aggregate = AGGREGATES[name]
            paths = (gathered or {}).get(benchmark) or []
            if not paths:
                return match.group(0)
            body = aggregate([(path, load(path)) for path in paths])
        elif name in RENDERERS:
            benchmark, renderer = RENDERERS[name]
            source = sources.get(benchmark)
            if source is None:
                return match.group(0)  # nothing measured yet: leave the part as it is
            body = renderer(load(source), source)
        else:
            known = sorted([*RENDERERS, *AGGREGATES])
            raise ValueError(f"unknown generated part {name!r}; known: {known}")
        body = body if name in INLINE else f"\n{body}\n"
        return f"{match.group(1)}{body}{match.group(4)}"

    return MARKER.sub(replace, text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peers", type=Path, help="peers JSON (default: the newest)")
    parser.add_argument("--time-to-accuracy", type=Path, help="time_to_accuracy JSON")
    parser.add_argument("--zoo-defaults", type=Path, help="zoo_defaults JSON")
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if stale")
    parser.add_argument("docs", nargs="*", type=Path, help="files to render (default: all docs)")
    args = parser.parse_args(argv)
    sources = {
        "peers": args.peers or newest("peers"),
        "time_to_accuracy": args.time_to_accuracy or newest("time_to_accuracy"),
        "zoo_defaults": args.zoo_defaults or newest("zoo_defaults"),
        "compare": newest("compare"),
        "compare_overhead": newest("compare_overhead"),
        "streaming": newest("streaming"),
        "budgets": newest("budgets"),
        "newcomer_times": newest("newcomer_times"),
        "transfer": newest("transfer"),
        "reproduce": newest("reproduce"),
        "weights_index": WEIGHTS_INDEX if WEIGHTS_INDEX.is_file() else None,
        "deploy": newest("deploy"),
    }
    for benchmark, path in sources.items():
        print(f"{benchmark}: {path or 'no result yet; its parts are left as they are'}")
    gathered = {
        benchmark: sorted(RESULTS.glob(f"{benchmark}-[0-9]*.json"))
        for benchmark, _ in AGGREGATES.values()
    }
    stale = []
    for doc in args.docs or DOCS:
        text = doc.read_text()
        rendered = render(text, sources, gathered)
        if rendered != text:
            stale.append(doc)
            if not args.check:
                doc.write_text(rendered)
    verb = "stale" if args.check else "rewritten"
    for doc in stale:
        print(f"{verb}: {doc}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
