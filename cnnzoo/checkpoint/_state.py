"""Complete, pickle-free training state for resuming an interrupted ``fit``.

A state directory holds two kinds of file:

- ``training_state-<epoch>-<token>.safetensors``: every tensor (model weights, optimizer
  moments, RNG states), each under a flat name;
- ``training_state.json``: the manifest, written last and atomically, holding everything else
  as JSON and naming the tensor file it goes with.

The manifest is the commit point: a process killed at any moment leaves either the previous
complete state or the new one, never a mix. The first save in a directory writes a manifest
holding no state yet before any tensor file, so tensor files without a manifest can only mean a
manifest deleted (or lost): that directory is refused, never taken as empty and cleaned out.

Non-tensor values travel through a small tagged JSON encoding (see ``_manifest``), so optimizer
and scheduler state dicts round-trip exactly; a manifest read back is checked field by field,
and decoded only into what the format defines, before anything uses it.
"""

from __future__ import annotations

import contextlib
import json
import random
import secrets
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .._files import read_json
from .._version import __version__
from ._io import (
    PathLike,
    check_regular_file,
    read_safetensors,
    write_json_atomic,
    write_safetensors_atomic,
)
from ._manifest import Encoder, check_component_keys, check_manifest, check_rng, decode
from ._tensors import drop_aliases, load_checked, own_storage
from ._weights import data_config_of, model_config, unwrap_model

__all__ = [
    "MANIFEST_NAME",
    "TrainingState",
    "load_training_state",
    "peek_training_state",
    "save_training_state",
]

MANIFEST_NAME = "training_state.json"
_FORMAT = "cnnzoo.training_state"
# The manifest holds the history and the optimizers' small state (tensors are in their own file).
_MAX_MANIFEST_BYTES = 64 * 1024 * 1024
_FORMAT_VERSION = 1
_TENSOR_PREFIX = "training_state-"


@dataclass
class TrainingState:
    """What ``load_training_state`` restored besides the objects it filled in place.

    Attributes:
        epoch: The last finished epoch, 0-based (resume at ``epoch + 1``).
        history: Metric name to one value per finished epoch.
        extra: Whatever the trainer stored in ``extra`` (data order, best score, ...).
        data_config: The model's data configuration when the state was saved (a plain dict:
            input size, mean, std, class names), or ``None``.
        settings: The run's settings the trainer stored (learning rate, batch size, ...), which
            a resumed run must share.
    """

    epoch: int
    history: dict[str, list[Any]] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    data_config: dict[str, Any] | None = None
    settings: dict[str, Any] = field(default_factory=dict)


# -- random number generators ---------------------------------------------------------------------
def _capture_rng() -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    numpy = sys.modules.get("numpy")  # only if the program uses numpy already
    if numpy is not None:
        state["numpy"] = numpy.random.get_state()
    return state


def _restore_rng(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    cuda = state.get("cuda")
    if cuda and torch.cuda.is_available() and torch.cuda.device_count() == len(cuda):
        torch.cuda.set_rng_state_all(cuda)
    if "numpy" in state:
        import numpy

        name, keys, position, has_gauss, cached = state["numpy"]
        numpy.random.set_state(
            (name, numpy.asarray(keys, dtype=numpy.uint32), position, has_gauss, cached)
        )


# -- saving ---------------------------------------------------------------------------------------
def save_training_state(
    directory: PathLike,
    *,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any = None,
    scaler: Any = None,
    epoch: int,
    history: dict[str, list[Any]],
    extra: dict[str, Any] | None = None,
    settings: dict[str, Any] | None = None,
) -> None:
    """Write the complete training state to ``directory``, atomically.

    Captures the model, optimizer, learning-rate scheduler and gradient scaler state dicts,
    the RNG states (torch CPU, CUDA when in use, Python ``random``, NumPy when imported), the
    epoch, the history, ``extra`` and the model's data configuration, with no pickle: tensors
    go to a safetensors file, everything else to a JSON manifest written last.

    Args:
        directory: The state directory (created if needed). Older states in it are replaced.
        model: The model being trained.
        optimizer: Its optimizer.
        scheduler: Its learning-rate scheduler (anything with ``state_dict``), if any.
        scaler: Its ``torch.amp.GradScaler``, if any.
        epoch: The epoch just finished, 0-based.
        history: Metric name to one value per finished epoch.
        extra: More state to keep (tensors, numbers, strings, lists, dicts), e.g. the data
            order generator's state or the best score so far.
        settings: The settings of the run (numbers, strings, booleans, None; no tensors), for a
            later run to compare its own with before resuming (see :func:`peek_training_state`).

    Raises:
        ValueError: Some state cannot be stored without pickle (the message names it).
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    model = unwrap_model(model)  # a compiled or DDP model's state is its inner model's
    encoder = Encoder()
    manifest: dict[str, Any] = {
        "format": _FORMAT,
        "format_version": _FORMAT_VERSION,
        "cnnzoo_version": __version__,
        "epoch": int(epoch),
        "model": {
            "config": model_config(model),
            "class": type(model).__name__,
            "data_config": data_config_of(model),
        },
        "optimizer": {
            "class": type(optimizer).__name__,
            "state": encoder.encode(optimizer.state_dict(), "optimizer"),
        },
        "scheduler": _component(scheduler, "scheduler", encoder),
        "scaler": _component(scaler, "scaler", encoder),
        "rng": encoder.encode(_capture_rng(), "rng"),
        "history": encoder.encode(dict(history), "history"),
        "extra": encoder.encode(dict(extra or {}), "extra"),
        "settings": _plain(dict(settings or {})),
    }
    model_tensors = {f"model/{k}": v for k, v in drop_aliases(model.state_dict()).items()}
    tensors = own_storage({**model_tensors, **encoder.tensors})

    if not (directory / MANIFEST_NAME).exists():
        # Before any tensor file: a directory with tensor files but no manifest is then never
        # one whose first save was interrupted, always one whose manifest went missing.
        write_json_atomic(directory / MANIFEST_NAME, _pending_manifest())
    tensor_file = f"{_TENSOR_PREFIX}{int(epoch):05d}-{secrets.token_hex(4)}.safetensors"
    write_safetensors_atomic(directory / tensor_file, tensors, {"format": "pt"})
    manifest["tensors_file"] = tensor_file
    write_json_atomic(directory / MANIFEST_NAME, manifest)  # the commit point
    _remove_stale_files(directory, keep=tensor_file)


def _pending_manifest() -> dict[str, Any]:
    """The manifest of a directory whose first state is being written: no state yet."""
    return {
        "format": _FORMAT,
        "format_version": _FORMAT_VERSION,
        "cnnzoo_version": __version__,
        "tensors_file": None,
    }


def _plain(settings: dict[str, Any]) -> Any:
    """``settings`` as plain JSON (numbers, strings, booleans, None, lists, dicts), checked."""
    encoded = Encoder().encode(settings, "settings")
    if "__tensor__" in json.dumps(encoded):
        raise ValueError("settings hold a tensor; store tensors in extra")
    return encoded


def _component(obj: Any, what: str, encoder: Encoder) -> dict[str, Any] | None:
    if obj is None:
        return None
    if not hasattr(obj, "state_dict"):
        raise ValueError(f"the {what} ({type(obj).__name__}) has no state_dict() to save")
    return {"class": type(obj).__name__, "state": encoder.encode(obj.state_dict(), what)}


def _remove_stale_files(directory: Path, keep: str) -> None:
    """Delete superseded tensor files and temporary files left by interrupted writes."""
    for path in directory.iterdir():
        stale_tensors = path.name.startswith(_TENSOR_PREFIX) and path.name != keep
        leftover = path.name.startswith((f".{_TENSOR_PREFIX}", f".{MANIFEST_NAME}."))
        if stale_tensors or (leftover and path.name.endswith(".tmp")):
            with contextlib.suppress(OSError):
                path.unlink()


# -- loading --------------------------------------------------------------------------------------
def load_training_state(
    directory: PathLike,
    *,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any = None,
    scaler: Any = None,
    map_location: str | torch.device | None = None,
) -> TrainingState | None:
    """Restore a training state written by ``save_training_state``, in place.

    Fills the model, optimizer (with its per-parameter state), scheduler and scaler, and sets
    the RNGs back to where they were when the state was saved.

    Args:
        directory: The state directory.
        model: The model, built exactly as when the state was saved.
        optimizer: A fresh optimizer of the same type over the same parameters.
        scheduler: The scheduler, when one was saved.
        scaler: The gradient scaler; its state is restored when one was saved.
        map_location: Unused for placement (tensors are copied onto the model's and
            optimizer's own devices); accepted for symmetry with ``torch.load``.

    Returns:
        The epoch, history and extra state, or ``None`` when ``directory`` holds no state.

    Raises:
        ValueError: The state is corrupted, or does not match the model, optimizer or
            scheduler given (the message says which, and how to start over).
    """
    del map_location  # load_state_dict already moves every tensor where it belongs
    directory = Path(directory)
    manifest = _committed_manifest(directory)
    if manifest is None:
        return None
    start_over = f" To start over, delete {str(directory)!r} or use another checkpoint directory."
    tensor_path = directory / manifest["tensors_file"]
    if not tensor_path.is_file():
        raise ValueError(
            f"the training state in {str(directory)!r} is incomplete: its manifest names "
            f"{manifest['tensors_file']!r}, which is missing.{start_over}"
        )
    tensors, _ = read_safetensors(tensor_path)
    decoded = {}
    for key in ("optimizer", "scheduler", "scaler", "rng", "history", "extra"):
        try:
            decoded[key] = decode(manifest[key], tensors, key)
        except ValueError as error:
            raise ValueError(
                f"the training state in {str(directory)!r} is corrupted: its manifest and tensor "
                f"file do not agree ({error}).{start_over}"
            ) from None
    problem = check_rng(decoded["rng"])
    if problem is not None:
        raise ValueError(
            f"the training state in {str(directory)!r} is corrupted: {problem}.{start_over}"
        )

    model = unwrap_model(model)
    model_tensors = {k[len("model/") :]: v for k, v in tensors.items() if k.startswith("model/")}
    saved_config = manifest["model"].get("config")
    hint = (f"It was saved from {saved_config}." if saved_config else "") + start_over
    load_checked(
        model, model_tensors, source=f"the training state in {str(directory)!r}", hint=hint
    )
    _load_component(optimizer, decoded["optimizer"], "optimizer", directory, start_over)
    _load_component(scheduler, decoded["scheduler"], "scheduler", directory, start_over)
    if scaler is not None and decoded["scaler"] is not None:
        _load_component(scaler, decoded["scaler"], "scaler", directory, start_over)
    _restore_rng(decoded["rng"])
    data_config = manifest["model"].get("data_config")
    return TrainingState(
        epoch=int(manifest["epoch"]),
        history=decoded["history"],
        extra=decoded["extra"],
        data_config=data_config if isinstance(data_config, dict) else None,
        settings=decode(manifest.get("settings") or {}, {}, "settings"),
    )


def peek_training_state(directory: PathLike) -> TrainingState | None:
    """What a state directory holds, without loading its tensors or changing anything.

    Args:
        directory: The state directory.

    Returns:
        The epoch, history and settings of the state (``extra`` is left empty: it may hold
        tensors), or ``None`` when the directory holds no state.

    Raises:
        ValueError: The manifest is corrupted, or missing while tensor files of a state are
            there (the message says what to do).
    """
    directory = Path(directory)
    manifest = _committed_manifest(directory)
    if manifest is None:
        return None
    try:
        history = decode(manifest["history"], {}, "history")
        settings = decode(manifest.get("settings") or {}, {}, "settings")
    except ValueError as error:
        raise ValueError(
            f"the training state in {str(directory)!r} is corrupted: its manifest cannot be "
            f"read ({error}). To start over, delete {str(directory)!r} or use another "
            "checkpoint directory."
        ) from None
    return TrainingState(epoch=int(manifest["epoch"]), history=history, settings=settings)


def _committed_manifest(directory: Path) -> dict[str, Any] | None:
    """The manifest of the state in ``directory``, or None when there is none (yet).

    Raises:
        ValueError: Tensor files of a state are there but no manifest; or a corrupted manifest.
    """
    manifest_path = directory / MANIFEST_NAME
    if not manifest_path.exists():
        leftovers = sorted(p.name for p in _tensor_files(directory))
        if leftovers:
            raise ValueError(
                f"{str(directory)!r} holds training-state tensors ({', '.join(leftovers)}) but "
                f"no {MANIFEST_NAME}, the manifest that says which of them is complete: it was "
                "deleted or lost, and cnnzoo will not guess, nor start over and delete them. "
                f"Restore {MANIFEST_NAME} to resume, or delete {str(directory)!r} (or choose "
                "another checkpoint directory) to start afresh"
            )
        return None
    check_regular_file(manifest_path, "training-state manifest")
    return _read_manifest(manifest_path)


def _tensor_files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    return [p for p in directory.iterdir() if p.name.startswith(_TENSOR_PREFIX) and p.is_file()]


def _read_manifest(path: Path) -> dict[str, Any] | None:
    """The manifest at ``path``; None for one written before the first state was complete."""
    try:  # bounded: a sparse multi-GB file is refused by its size, never read whole
        manifest = read_json(
            path, "a training-state manifest", max_bytes=_MAX_MANIFEST_BYTES, allow_nan=True
        )
    except ValueError:  # too large, not UTF-8, not JSON, too deep, a 400-digit integer
        manifest = None
    if (
        isinstance(manifest, dict)
        and manifest.get("format") == _FORMAT
        and manifest.get("tensors_file", "") is None
    ):
        return None  # the first save began and was not finished: no state yet
    required = ("epoch", "tensors_file", "model", "optimizer", "rng", "history", "extra")
    if (
        not isinstance(manifest, dict)
        or manifest.get("format") != _FORMAT
        or not all(key in manifest for key in required)
        or not isinstance(manifest["tensors_file"], str)
        or "/" in manifest["tensors_file"]
        or "\\" in manifest["tensors_file"]
    ):
        raise ValueError(
            f"{str(path)!r} is not a valid cnnzoo training-state manifest; to start over, "
            "delete its folder or use another checkpoint directory"
        )
    version = manifest.get("format_version", 0)
    if not isinstance(version, int) or isinstance(version, bool):
        raise ValueError(f"{str(path)!r} is not a valid cnnzoo training-state manifest")
    if version > _FORMAT_VERSION:
        raise ValueError(
            f"{str(path)!r} was written by a newer cnnzoo ({manifest.get('cnnzoo_version')!r}); "
            "upgrade cnnzoo to resume from it"
        )
    problem = check_manifest(manifest)
    if problem is not None:
        raise ValueError(
            f"{str(path)!r} is not a valid cnnzoo training-state manifest: {problem}. To start "
            f"over, delete {str(path.parent)!r} or use another checkpoint directory"
        )
    return manifest


def _load_component(
    obj: Any, saved: dict[str, Any] | None, what: str, directory: Path, start_over: str
) -> None:
    where = f"the training state in {str(directory)!r}"
    if obj is None and saved is None:
        return
    if obj is None or saved is None:
        had = "has" if saved is not None else "has no"
        given = "none was given" if obj is None else f"a {type(obj).__name__} was given"
        raise ValueError(f"{where} {had} {what} state but {given}.{start_over}")
    if saved["class"] != type(obj).__name__:
        raise ValueError(
            f"{where} holds a {saved['class']} {what} state but a {type(obj).__name__} was "
            f"given.{start_over}"
        )
    problem = check_component_keys(obj, saved["state"], what)
    if problem is not None:
        raise ValueError(f"{where} is corrupted: {problem}.{start_over}")
    try:
        obj.load_state_dict(saved["state"])
    except (ValueError, KeyError, RuntimeError, TypeError) as err:
        raise ValueError(f"{where} does not match the {what} given ({err}).{start_over}") from None
