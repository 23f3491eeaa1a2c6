"""Machine description and result writing shared by the benchmarks."""

from __future__ import annotations

import datetime
import json
import os
import platform
import socket
import statistics
from pathlib import Path
from typing import Any

import torch

RESULTS = Path(__file__).resolve().parent / "results"


# The instruction sets that change how fast (and along which floating-point path) torch's CPU
# kernels run: machines of one kind differ in them, so every timing names them.
SPEED_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16")


def machine_info(device: str = "cpu") -> dict[str, Any]:
    """What the numbers were measured on."""
    fields: dict[str, str] = {}
    try:  # the first processor's lines; the others repeat them
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    cpu = fields.get("model name") or platform.processor() or "unknown"
    flags = set(fields.get("flags", "").split())
    info: dict[str, Any] = {
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu": cpu,
        "cpu_flags": [flag for flag in SPEED_FLAGS if flag in flags],
        "cpu_cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_average_at_start": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "device": device,
    }
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
    return info


def next_result_path(name: str) -> Path:
    """benchmarks/results/<name>-<timestamp>.json, for a result written now or as it grows."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    return RESULTS / f"{name}-{stamp}.json"


def write_json_atomic(path: Path, result: dict[str, Any]) -> None:
    """Write ``result`` to ``path`` through a temporary file: a reader never sees half of it."""
    temporary = path.with_name(f".{path.name}.partial")
    temporary.write_text(json.dumps(result, indent=2) + "\n")
    os.replace(temporary, path)


def write_result(name: str, result: dict[str, Any]) -> Path:
    """Save ``result`` as benchmarks/results/<name>-<timestamp>.json and return the path."""
    path = next_result_path(name)
    write_json_atomic(path, result)
    return path


def spread(values: list[float], digits: int | None = None) -> dict[str, Any]:
    """Median and range of ``values`` (rounded to ``digits`` when given), as the results record."""

    def rounded(value: float) -> float:
        return value if digits is None else round(value, digits)

    return {
        "median": rounded(statistics.median(values)),
        "min": rounded(min(values)),
        "max": rounded(max(values)),
        "values": [rounded(v) for v in values],
    }
