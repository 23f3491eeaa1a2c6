"""State-dict plumbing shared by weight files and training state.

Tied weights (one tensor under two names) are written once and restored from the model's own
ties on load; tensors that merely share memory are copied apart, since safetensors refuses
overlapping storage. Loading compares names and shapes first so that a wrong architecture or a
wrong ``num_classes`` is reported in one readable message rather than torch's error dump.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import torch
from torch import nn

__all__ = ["LoadResult", "drop_aliases", "load_checked", "own_storage"]

_MAX_LISTED = 6
# Name prefixes that wrappers add: DataParallel/DDP (``module.``), torch.compile (``_orig_mod.``).
_WRAPPER_PREFIXES = ("module.", "_orig_mod.")


class LoadResult(NamedTuple):
    """What did not load, when loading with ``strict=False``.

    Attributes:
        missing_keys: Names the model has and the file lacks (left as they were).
        unexpected_keys: Names the file has and the model lacks (ignored).
        mismatched_keys: Names in both whose shapes, or kinds of dtype (floating point,
            integer, ...), differ (left as they were).
    """

    missing_keys: list[str]
    unexpected_keys: list[str]
    mismatched_keys: list[str]


def _identity(t: torch.Tensor) -> tuple:
    """Key under which two entries are the very same tensor (a tie, not a copy)."""
    return (
        t.device,
        t.untyped_storage().data_ptr(),
        t.storage_offset(),
        tuple(t.shape),
        t.stride(),
        t.dtype,
    )


def drop_aliases(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Keep the first name of each group of tied tensors (the others are rebuilt on load)."""
    kept: dict[str, torch.Tensor] = {}
    seen: set[tuple] = set()
    for name, tensor in state.items():
        if tensor.numel() > 0:  # empty tensors have no storage to share
            key = _identity(tensor)
            if key in seen:
                continue
            seen.add(key)
        kept[name] = tensor
    return kept


def own_storage(tensors: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Detach to contiguous CPU tensors that each own their whole storage, as safetensors needs.

    Raises:
        ValueError: A tensor lives on the ``meta`` device (it has no data to save).
    """
    result: dict[str, torch.Tensor] = {}
    storages: set[tuple] = set()
    for name, tensor in tensors.items():
        tensor = tensor.detach()
        if tensor.device.type == "meta":
            raise ValueError(
                f"tensor {name!r} is on the meta device and holds no data; materialise the "
                "model (model.to_empty(device='cpu') and load or initialise weights) first"
            )
        storage = (tensor.device, tensor.untyped_storage().data_ptr())
        whole = tensor.untyped_storage().nbytes() == tensor.numel() * tensor.element_size()
        if storage in storages or not whole or not tensor.is_contiguous():
            tensor = tensor.clone(memory_format=torch.contiguous_format)
        if tensor.numel() > 0:
            storages.add(storage)
        result[name] = tensor.cpu()
    return result


def _fill_aliases(
    model_state: Mapping[str, torch.Tensor], loaded: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """Give every tied name of the model the tensor stored under any of its tie partners."""
    groups: dict[tuple, list[str]] = {}
    for name, tensor in model_state.items():
        if tensor.numel() > 0:
            groups.setdefault(_identity(tensor), []).append(name)
    filled = dict(loaded)
    for names in groups.values():
        present = [n for n in names if n in loaded]
        if present:
            for name in names:
                filled.setdefault(name, loaded[present[0]])
    return filled


def _kind(tensor: torch.Tensor) -> str:
    """Floating point, complex, bool or integer: a load may convert within a kind, not across."""
    if tensor.is_floating_point():
        return "floating point"
    if tensor.is_complex():
        return "complex"
    return "bool" if tensor.dtype == torch.bool else "integer"


def strip_wrapper_prefix(
    model_state: Mapping[str, torch.Tensor], loaded: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """Drop a wrapper's prefix from every name, when, and only when, that makes them match.

    Files written from a ``torch.compile``d, DataParallel or DDP model by earlier versions (or
    by other tools) name every tensor ``_orig_mod.<name>`` or ``module.<name>``, possibly both.
    The prefix goes only if every name in the file carries it, no name of the model does, and
    the stripped names then meet the model's; otherwise the names are left for the usual
    checks to report.
    """
    stripped = loaded
    while stripped:
        prefix = next(
            (p for p in _WRAPPER_PREFIXES if all(k.startswith(p) for k in stripped)), None
        )
        if prefix is None or any(k.startswith(prefix) for k in model_state):
            break
        stripped = {k[len(prefix) :]: v for k, v in stripped.items()}
    if stripped is not loaded and set(stripped) & set(model_state):
        return stripped
    return loaded


def _listing(names: list[str]) -> str:
    shown = ", ".join(names[:_MAX_LISTED])
    return shown + (f", ... ({len(names) - _MAX_LISTED} more)" if len(names) > _MAX_LISTED else "")


def load_checked(
    model: nn.Module,
    loaded: Mapping[str, torch.Tensor],
    *,
    source: str,
    strict: bool = True,
    hint: str = "",
) -> LoadResult:
    """Load ``loaded`` into ``model`` after checking names and shapes.

    Args:
        model: The module to fill, in place.
        loaded: Tensors read from ``source``.
        source: What the tensors came from, for messages (a quoted file name).
        strict: Refuse any missing, unexpected or mismatched name. With ``False`` those are
            skipped and returned.
        hint: Extra sentence for the error message (e.g. what the file was saved from).

    Returns:
        The names that were skipped (all empty when ``strict``).

    Raises:
        ValueError: ``strict`` and the tensors do not fit the model exactly.
    """
    model_state = model.state_dict()
    loaded = _fill_aliases(model_state, strip_wrapper_prefix(model_state, dict(loaded)))
    missing = [k for k in model_state if k not in loaded]
    unexpected = [k for k in loaded if k not in model_state]
    mismatched = [k for k in model_state if k in loaded and loaded[k].shape != model_state[k].shape]
    wrong_kind = [
        k
        for k in model_state
        if k in loaded and k not in mismatched and _kind(loaded[k]) != _kind(model_state[k])
    ]
    if wrong_kind:
        # Integers where the model has floats (or the reverse) are not weights: copying them
        # would "load" nonsense, e.g. float bits re-read as int32 give values around 1e9.
        kinds = [f"{k}: file {loaded[k].dtype} vs model {model_state[k].dtype}" for k in wrong_kind]
        if strict:
            raise ValueError(
                f"{source} holds {len(wrong_kind)} tensor(s) whose dtype contradicts the "
                f"model's ({_listing(kinds)}): the file is corrupted or holds something other "
                f"than these weights. {hint}".rstrip()
            )
        mismatched += wrong_kind
    if strict and (missing or unexpected or mismatched):
        raise ValueError(
            _mismatch_message(
                model, model_state, loaded, source, hint, missing, unexpected, mismatched
            )
        )
    usable = {k: v for k, v in loaded.items() if k in model_state and k not in mismatched}
    try:
        model.load_state_dict(usable, strict=False)
    except RuntimeError as err:  # e.g. a dtype that cannot be copied (complex into float)
        reason = str(err).strip().splitlines()[-1]
        raise ValueError(f"cannot load {source} into the model: {reason}") from None
    return LoadResult(missing, unexpected, mismatched)


def _mismatch_message(
    model: nn.Module,
    model_state: Mapping[str, torch.Tensor],
    loaded: Mapping[str, torch.Tensor],
    source: str,
    hint: str,
    missing: list[str],
    unexpected: list[str],
    mismatched: list[str],
) -> str:
    what = getattr(model, "model_name", type(model).__name__)
    if model_state and not set(model_state) & set(loaded):
        problem = "it has no parameter names in common with the model: it holds weights for a "
        problem += "different architecture"
        parts = [problem]
    else:
        parts = []
        if mismatched:
            shapes = [
                f"{k}: file {tuple(loaded[k].shape)} vs model {tuple(model_state[k].shape)}"
                for k in mismatched
            ]
            parts.append(f"{len(mismatched)} shape mismatch(es) ({_listing(shapes)})")
        if missing:
            parts.append(f"{len(missing)} name(s) missing from the file ({_listing(missing)})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected name(s) ({_listing(unexpected)})")
    message = f"{source} does not fit {what}: " + "; ".join(parts) + "."
    return f"{message} {hint}" if hint else message
