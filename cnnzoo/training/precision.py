"""Mixed precision: which autocast dtype a run uses, and the autocast context for it."""

from __future__ import annotations

import contextlib
import functools
from pathlib import Path

import torch

__all__ = ["PRECISIONS", "autocast", "cpu_has_native_bf16", "resolve_precision"]

PRECISIONS = ("auto", "fp32", "bf16", "fp16")

# CPU flags (Linux /proc/cpuinfo names) of native bf16 arithmetic: AVX-512 BF16 dot products
# and AMX tiles. Without them bf16 is emulated and slower than fp32.
_BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


@functools.cache
def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX-512 BF16 or AMX): detected, never assumed.

    Asks torch's own CPU detection first, then the kernel's CPU flags; anything it cannot
    confirm counts as no.
    """
    for probe in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
        check = getattr(torch.cpu, probe, None)
        try:
            if check is not None and check():
                return True
        except RuntimeError:  # pragma: no cover - a torch build without the probe's backend
            continue
    try:
        return cpuinfo_has_native_bf16(Path("/proc/cpuinfo").read_text())
    except OSError:
        return False


def cpuinfo_has_native_bf16(cpuinfo: str) -> bool:
    """Whether Linux ``/proc/cpuinfo`` text lists a native bf16 flag (avx512_bf16, amx_bf16)."""
    flags = {
        word for line in cpuinfo.splitlines() if line.startswith("flags") for word in line.split()
    }
    return any(flag in flags for flag in _BF16_CPU_FLAGS)


def resolve_precision(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``precision`` on ``device``, or None for plain fp32.

    ``"auto"`` is bf16 autocast on CUDA GPUs that support it and on CPUs with native bf16
    (AVX-512 BF16 or AMX), fp32 elsewhere. On an AVX-512 BF16 CPU (2 cores of an AMD EPYC)
    bf16 autocast made training steps 1.4x (mini_resnet), 1.6x (cifar_cnn) and 1.7-1.8x
    (resnet18 at 32x32) faster, LeNet-5 about even (benchmarks/step_costs.py, results in
    docs/benchmarks.md); on CPUs without it bf16 is emulated and slower than fp32.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        if device.type == "cpu" and cpu_has_native_bf16():
            return torch.bfloat16
        return None
    if precision == "fp16" and device.type == "cpu":
        raise ValueError("precision='fp16' needs a GPU; use 'bf16' or 'fp32' on the CPU")
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """An autocast context for ``dtype``, or a no-op one for fp32."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)
