"""Stages: what each stage of a trunk outputs, running a trunk plan, gradient checkpointing.

Models with stages (the ImageNet families) describe their trunk as an ordered list of modules,
the *trunk plan*, and name the module that ends each stage (``FeatureInfo``). That one
description gives ``forward_intermediates``, the ``features_only`` backbones of
``cnnzoo.models.get`` and gradient checkpointing, all run by ``run_trunk``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import torch
import torch.utils.checkpoint
from torch import nn

__all__ = [
    "FeatureInfo",
    "checkpointed",
    "keep_norm_statistics",
    "run_modules",
    "run_trunk",
    "take_indices",
]


class FeatureInfo:
    """What each stage of a model outputs, with timm's ``FeatureInfo`` interface.

    Each entry is a dict with ``num_chs`` (channels), ``reduction`` (total stride from the input)
    and ``module`` (the dotted name of the module whose output it is, usable as a
    ``torchvision.models.feature_extraction`` return node), plus its ``index``. Indexing and
    iterating give those dicts; ``channels()``, ``reduction()`` and ``module_name()`` give one
    value per selected stage (``out_indices``), or for the stages ``idx`` names.

    Args:
        info: One dict per stage, shallowest first.
        out_indices: The stages a feature extractor returns (default: all).
    """

    def __init__(
        self, info: Sequence[Mapping[str, Any]], out_indices: Sequence[int] | None = None
    ) -> None:
        self.info = [{**entry, "index": i} for i, entry in enumerate(info)]
        self.out_indices = tuple(range(len(self.info)) if out_indices is None else out_indices)

    def from_other(self, out_indices: Sequence[int]) -> FeatureInfo:
        """The same stages with another selection."""
        return FeatureInfo(self.info, out_indices)

    def get(self, key: str, idx: int | Sequence[int] | None = None) -> Any:
        """``key`` of the selected stages (a list), or of stage ``idx`` (one value or a list)."""
        if idx is None:
            return [self.info[i][key] for i in self.out_indices]
        if isinstance(idx, Sequence):
            return [self.info[i][key] for i in idx]
        return self.info[idx][key]

    def get_dicts(
        self, keys: Sequence[str] | None = None, idx: int | Sequence[int] | None = None
    ) -> Any:
        """The entries (restricted to ``keys``) of the selected stages, or of ``idx``."""
        indices = self.out_indices if idx is None else idx
        pick = (lambda d: dict(d)) if keys is None else (lambda d: {k: d[k] for k in keys})
        if isinstance(indices, Sequence):
            return [pick(self.info[i]) for i in indices]
        return pick(self.info[indices])

    def channels(self, idx: int | Sequence[int] | None = None) -> Any:
        """Channels of the selected stages (or of ``idx``)."""
        return self.get("num_chs", idx)

    def reduction(self, idx: int | Sequence[int] | None = None) -> Any:
        """Total stride of the selected stages (or of ``idx``)."""
        return self.get("reduction", idx)

    def module_name(self, idx: int | Sequence[int] | None = None) -> Any:
        """Module names of the selected stages (or of ``idx``)."""
        return self.get("module", idx)

    def __getitem__(self, item: int) -> dict[str, Any]:
        return self.info[item]

    def __len__(self) -> int:
        return len(self.info)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.info)

    def __repr__(self) -> str:
        stages = ", ".join(f"{d['module']}: {d['num_chs']}ch /{d['reduction']}" for d in self.info)
        return f"FeatureInfo([{stages}], out_indices={self.out_indices})"


def take_indices(name: str, num_stages: int, indices: int | Sequence[int] | None) -> list[int]:
    """Turn timm's ``indices``/``out_indices`` into sorted stage numbers.

    Args:
        name: The model, for messages.
        num_stages: How many stages it has.
        indices: ``None`` for all stages, an int ``n`` for the last ``n``, or stage numbers
            (negative ones count from the end).

    Raises:
        ValueError: An index out of range, a count out of range, or not integers.
    """
    if indices is None:
        return list(range(num_stages))
    if isinstance(indices, int) and not isinstance(indices, bool):
        if not 1 <= indices <= num_stages:
            raise ValueError(
                f"{name} has {num_stages} stages: an int selects the last n, 1 <= n <= "
                f"{num_stages}; got {indices}"
            )
        return list(range(num_stages - indices, num_stages))
    if isinstance(indices, (str, bytes)) or not isinstance(indices, Sequence) or not indices:
        raise ValueError(
            f"indices must be None, an int, or a non-empty list of stage numbers, got {indices!r}"
        )
    chosen = set()
    for index in indices:
        if isinstance(index, bool) or not isinstance(index, int):
            raise ValueError(f"stage indices must be integers, got {index!r} in {indices!r}")
        if not -num_stages <= index < num_stages:
            raise ValueError(
                f"{name} has {num_stages} stages (0..{num_stages - 1}, or negative from the "
                f"end); got index {index}"
            )
        chosen.add(index % num_stages)
    return sorted(chosen)


@contextlib.contextmanager
def keep_norm_statistics(modules: Sequence[nn.Module]) -> Iterator[None]:
    """Undo, on exit, any change to the running statistics of the norm layers in ``modules``.

    Gradient checkpointing runs the forward pass a second time during backward; without this
    every BatchNorm would take that second pass into its running mean and variance, and a
    checkpointed model would end training with other statistics than the same model trained
    plainly.
    """
    buffers = [
        buffer
        for module in modules
        for norm in module.modules()
        if getattr(norm, "track_running_stats", False)  # BatchNorm, SyncBatchNorm, InstanceNorm
        for buffer in (norm.running_mean, norm.running_var, norm.num_batches_tracked)
        if isinstance(buffer, torch.Tensor)  # None when the layer keeps no statistics
    ]
    saved = [buffer.clone() for buffer in buffers]
    try:
        yield
    finally:
        with torch.no_grad():
            for buffer, value in zip(buffers, saved, strict=True):
                buffer.copy_(value)


def checkpointed(
    function: Callable[..., torch.Tensor], modules: Sequence[nn.Module], *args: Any
) -> torch.Tensor:
    """``function(*args)`` under ``torch.utils.checkpoint`` (non-reentrant).

    Activations inside are recomputed in the backward pass instead of stored; the norm layers
    of ``modules`` keep the statistics of the one real forward pass.
    """

    def contexts() -> tuple[contextlib.AbstractContextManager, contextlib.AbstractContextManager]:
        return contextlib.nullcontext(), keep_norm_statistics(modules)

    return torch.utils.checkpoint.checkpoint(
        function, *args, use_reentrant=False, context_fn=contexts
    )


def run_modules(root: nn.Module, paths: Sequence[str], x: torch.Tensor) -> torch.Tensor:
    """Apply the submodules of ``root`` named by ``paths``, in order."""
    for path in paths:
        x = root.get_submodule(path)(x)
    return x


def run_trunk(
    root: nn.Module,
    plan: Sequence[str],
    x: torch.Tensor,
    *,
    collect: Sequence[str] = (),
    stop_after: str | None = None,
    checkpoint_at: Sequence[str] = (),
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Run a trunk plan, keeping the outputs of the modules named in ``collect``.

    Args:
        root: The module the plan's dotted names are relative to.
        plan: Module names, in the order ``forward_features`` applies them.
        x: The input.
        collect: Names (in plan order) whose outputs to return.
        stop_after: Stop after this module instead of running the whole plan.
        checkpoint_at: Stage-ending names that cut the plan into segments run under gradient
            checkpointing (empty: no checkpointing).

    Returns:
        The last output and the collected ones.
    """
    end = plan.index(stop_after) + 1 if stop_after is not None else len(plan)
    cuts = set(collect) | set(checkpoint_at)
    segment: list[str] = []
    collected: list[torch.Tensor] = []
    for position, path in enumerate(plan[:end]):
        segment.append(path)
        if path in cuts or position == end - 1:
            if checkpoint_at and torch.is_grad_enabled():
                modules = [root.get_submodule(p) for p in segment]
                x = checkpointed(lambda t, s=tuple(segment): run_modules(root, s, t), modules, x)
            else:
                x = run_modules(root, segment, x)
            segment = []
            if path in collect:
                collected.append(x)
    return x, collected
