"""What the README's two commands cost a new user: the main job and the test suite.

Each runs as a new user runs it, in a child process (``cnnzoo train mini_resnet --data
fashion-mnist --epochs 6`` into a temporary folder; ``python -m pytest -q``), and is measured in
CPU-seconds (user + system time of the child and its workers, from ``getrusage``) and wall time.
CPU-seconds say what the work costs whatever else runs on the machine; wall time on a shared
machine is longer, by however much the other processes take. The machine (its CPU, and whether
it has AVX2 and AVX-512, which change the cost 3–5× between machines of one kind) is recorded
with the figures, and ``render_docs.py`` writes them into the README.

Usage::

    nice -n 10 python benchmarks/newcomer_times.py               # 3 rounds of the job, 1 suite
    python benchmarks/newcomer_times.py --quick                  # a smoke run (seconds), no
                                                                 # figures for the docs
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._machine import machine_info, spread, write_result

ROOT = Path(__file__).resolve().parents[1]
# The `cnnzoo` command, run in the repository root so that it is this checkout's code.
CNNZOO = [sys.executable, "-c", "import sys; from cnnzoo.cli import main; sys.exit(main())"]
MAIN_JOB = ["train", "mini_resnet", "--data", "fashion-mnist", "--epochs", "6"]
SUITE = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
# --quick: the same machinery on work of seconds (its JSON is named apart: never rendered).
QUICK_JOB = ["summary", "lenet5"]
QUICK_SUITE = [*SUITE, "tests/test_cli_words.py", "-k", "help or alias"]


def measure(command: list[str]) -> dict[str, float]:
    """Run ``command`` to its end; its CPU-seconds (children included) and wall seconds."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as output:
        done = subprocess.run(command, cwd=ROOT, stdout=output, stderr=subprocess.STDOUT)
        if done.returncode != 0:  # a figure of a failed run is no figure: say what failed
            output.seek(0)
            tail = "".join(output.readlines()[-40:])
            raise SystemExit(f"{' '.join(command)} failed ({done.returncode}):\n{tail}")
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"cpu_seconds": cpu, "wall_seconds": wall}


def rounds(make_command: Any, count: int) -> dict[str, Any]:
    """``count`` runs of the command ``make_command(folder)`` builds; the spread of each figure."""
    runs = []
    for number in range(count):
        with tempfile.TemporaryDirectory(prefix="cnnzoo-newcomer-") as folder:
            runs.append(measure(make_command(Path(folder))))
        print(f"  round {number + 1}/{count}: {runs[-1]['cpu_seconds']:.0f} CPU-s, "
              f"{runs[-1]['wall_seconds']:.0f} s wall", flush=True)  # fmt: skip
    return {
        "cpu_seconds": spread([r["cpu_seconds"] for r in runs], 1),
        "wall_seconds": spread([r["wall_seconds"] for r in runs], 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="runs of the main job")
    parser.add_argument("--suite-rounds", type=int, default=1, help="runs of the test suite")
    parser.add_argument("--quick", action="store_true", help="a smoke run of seconds")
    parser.add_argument("--no-save", action="store_true", help="print only, write no JSON")
    args = parser.parse_args(argv)
    job = QUICK_JOB if args.quick else MAIN_JOB
    suite = QUICK_SUITE if args.quick else SUITE
    print(f"main job: cnnzoo {' '.join(job)}", flush=True)
    main_job = rounds(lambda folder: [*CNNZOO, *job, *(["--out", str(folder)] * (not args.quick))],
                      args.rounds)  # fmt: skip
    print(f"test suite: python {' '.join(suite[1:])}", flush=True)
    tests = rounds(lambda folder: suite, args.suite_rounds)
    result = {
        "benchmark": "newcomer_times",
        "quick": args.quick,
        "machine": machine_info("cpu"),  # its cpu_flags say AVX2, AVX-512
        "main_job": {"command": "cnnzoo " + " ".join(job), "rounds": args.rounds, **main_job},
        "test_suite": {
            "command": "python " + " ".join(suite[1:]),
            "rounds": args.suite_rounds,
            **tests,
        },
    }
    print(json.dumps({k: result[k] for k in ("main_job", "test_suite")}, indent=2))
    if not args.no_save:
        name = "newcomer_times-quick" if args.quick else "newcomer_times"
        print(f"wrote {write_result(name, result)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
