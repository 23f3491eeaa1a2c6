"""Mixed precision: which autocast dtype a run uses, and the autocast context for it."""

from __future__ import annotations

import contextlib

import torch

__all__ = ["PRECISIONS", "autocast", "resolve_precision"]

PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def resolve_precision(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``precision`` on ``device``, or None for plain fp32.

    ``"auto"`` is bf16 autocast on CUDA GPUs that support it and fp32 elsewhere (on CPU, bf16
    autocast is slower than fp32 for these small nets unless the CPU has AMX).
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
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
