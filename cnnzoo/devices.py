"""Turning what users write for a device ("auto", "cpu", "cuda:1", 1) into one that exists here.

One resolver for the whole package, so training, evaluation, checkpoint loading and the Hub agree
on what a device name means and fail the same clear way on a device this machine lacks.
"""

from __future__ import annotations

import torch

__all__ = ["resolve_device"]


def resolve_device(device: str | int | torch.device) -> torch.device:
    """Resolve a device argument, checking that the device exists on this machine.

    Args:
        device: ``"auto"`` (cuda, then mps, then cpu), a device name (``"cpu"``, ``"cuda"``,
            ``"cuda:1"``, ``"mps"``), a CUDA index, or a ``torch.device``.

    Returns:
        The device; a bare ``"cuda"`` gets the current CUDA device's index.

    Raises:
        ValueError: Not a device name, a device this machine does not have, or ``"meta"``
            (which holds no data).
    """
    if isinstance(device, str) and device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(
            f"invalid device {device!r}; use 'auto', 'cpu', 'cuda', 'cuda:<index>' or a "
            "torch.device"
        ) from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device {str(dev)!r} was requested but CUDA is not available on this machine "
                "(torch.cuda.is_available() is False); use device='cpu' or device='auto'"
            )
        count = torch.cuda.device_count()
        if dev.index is None:
            return torch.device("cuda", torch.cuda.current_device())
        if dev.index >= count:
            raise ValueError(
                f"device {str(dev)!r} was requested but this machine has {count} CUDA "
                f"device(s) (cuda:0 to cuda:{count - 1})"
            )
    elif dev.type == "meta":
        raise ValueError(
            "device 'meta' holds shapes but no data, so nothing can be trained, evaluated or "
            "loaded on it; use 'cpu', 'cuda' or 'auto' (to build a model without allocating "
            "memory, write: with torch.device('meta'): get_model(...))"
        )
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(
            f"device {str(dev)!r} was requested but MPS is not available on this machine; "
            "use device='cpu' or device='auto'"
        )
    return dev
