"""Model summaries: a torchsummary-like layer table and parameter counts."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

__all__ = ["count_parameters", "summary"]


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Count a model's parameters (shared parameters once).

    Args:
        model: Any module.
        trainable_only: Count only parameters with ``requires_grad``.

    Returns:
        The number of scalar parameters.
    """
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def _format_shape(output: object) -> str:
    if isinstance(output, torch.Tensor):
        return str([-1, *output.shape[1:]])
    if isinstance(output, (tuple, list)):
        return ", ".join(_format_shape(o) for o in output)
    return "-"


def summary(
    model: nn.Module,
    input_size: Sequence[int] | None = None,
    *,
    batch_size: int = 2,
    device: torch.device | str | None = None,
) -> str:
    """Describe a model layer by layer: output shapes and parameter counts.

    Runs one forward pass on a zero batch, in eval mode and without gradients (the model's mode is
    restored afterwards), recording every leaf module.

    Args:
        model: The model.
        input_size: One image's ``(C, H, W)``; defaults to ``model.input_size`` for cnnzoo models.
        batch_size: Batch used for the trace (2, so BatchNorm-style layers see a real batch).
        device: Where to run the trace; defaults to the device of the model's first parameter.

    Returns:
        The table as a string, ending with total, trainable and frozen parameter counts.

    Raises:
        ValueError: No input size given and the model has none, or the model rejects it.
    """
    if input_size is None:
        input_size = getattr(model, "input_size", None)
        if input_size is None:
            raise ValueError("summary needs input_size=(C, H, W) for a model without input_size")
    input_size = tuple(int(s) for s in input_size)
    if len(input_size) != 3 or min(input_size) < 1:
        raise ValueError(f"input_size must be (C, H, W) with positive sizes, got {input_size}")
    first = next(model.parameters(), None)
    if device is None:
        device = first.device if first is not None else torch.device("cpu")
    dtype = first.dtype if first is not None and first.is_floating_point() else torch.float32

    rows: list[tuple[str, str, int]] = []

    def record(name: str) -> Callable[[nn.Module, object, object], None]:
        def hook(module: nn.Module, _inputs: object, output: object) -> None:
            params = sum(p.numel() for p in module.parameters(recurse=False))
            rows.append((f"{name} ({type(module).__name__})", _format_shape(output), params))

        return hook

    handles = [
        module.register_forward_hook(record(name))
        for name, module in model.named_modules()
        if name and not any(True for _ in module.children())
    ]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros((batch_size, *input_size), device=device, dtype=dtype))
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()

    total = count_parameters(model)
    trainable = count_parameters(model, trainable_only=True)
    name_width = max([len("Layer (type)"), *(len(r[0]) for r in rows)]) + 2
    shape_width = max([len("Output Shape"), *(len(r[1]) for r in rows)]) + 2
    rule = "-" * (name_width + shape_width + 15)
    lines = [rule, f"{'Layer (type)':<{name_width}}{'Output Shape':<{shape_width}}{'Param #':>15}"]
    lines.append("=" * len(rule))
    lines += [f"{n:<{name_width}}{s:<{shape_width}}{p:>15,}" for n, s, p in rows]
    bytes_per_param = torch.finfo(dtype).bits // 8
    lines += [
        "=" * len(rule),
        f"Input size: {input_size}",
        f"Total params: {total:,}",
        f"Trainable params: {trainable:,}",
        f"Non-trainable params: {total - trainable:,}",
        f"Params size (MB): {total * bytes_per_param / 2**20:.2f}",
        rule,
    ]
    return "\n".join(lines)
