"""``save`` and ``load_weights``: model weights in safetensors files, no pickle.

A file written by ``save`` holds the weights and, in the safetensors metadata, the registry
configuration needed to rebuild the model (``cnnzoo.config``, JSON), the model's data
configuration (``cnnzoo.pretrained_cfg``, JSON: input size, mean, std, class names) and the
cnnzoo version.
Rebuilding a model from that configuration needs the registry, so ``cnnzoo.load`` lives with it
in ``cnnzoo.models``; this file layer only reads and writes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .._files import loads_json
from .._version import __version__
from ..devices import resolve_device
from ._io import PathLike, read_state_dict
from ._io import write_safetensors_atomic as _write
from ._tensors import LoadResult, drop_aliases, load_checked, own_storage

__all__ = [
    "CONFIG_KEY",
    "DATA_CONFIG_KEY",
    "SAVE_ID_KEY",
    "VERSION_KEY",
    "data_config_of",
    "describe_config",
    "load_weights",
    "model_config",
    "read_config",
    "read_data_config",
    "save",
    "unwrap_model",
    "weights_payload",
]

CONFIG_KEY = "cnnzoo.config"
DATA_CONFIG_KEY = "cnnzoo.pretrained_cfg"
VERSION_KEY = "cnnzoo.version"
# save_pretrained's token shared by model.safetensors and config.json: files of one save agree.
SAVE_ID_KEY = "cnnzoo.save_id"


def unwrap_model(model: nn.Module) -> nn.Module:
    """The model inside ``torch.compile``, ``nn.DataParallel`` and DistributedDataParallel.

    Those wrappers share the parameters of the module they wrap but prefix their names
    (``_orig_mod.``, ``module.``) and hide its attributes; files are written from, and loaded
    into, the module itself. Wrappers nest (a compiled DDP model), so all are peeled.
    """
    while True:
        inner = getattr(model, "_orig_mod", None)  # torch.compile's OptimizedModule
        if not isinstance(inner, nn.Module) and isinstance(
            model, (nn.DataParallel, nn.parallel.DistributedDataParallel)
        ):
            inner = model.module
        if not isinstance(inner, nn.Module):
            return model
        model = inner


def model_config(model: nn.Module) -> dict[str, Any] | None:
    """The registry configuration that rebuilds ``model`` with ``cnnzoo.models.get(**config)``.

    It is the ``cnnzoo_config`` recorded by ``get``, with ``num_classes`` and ``in_channels``
    read from the model itself, since ``reset_classifier`` or an adapted first convolution
    change them after building.

    Returns:
        The configuration, or ``None`` for a model not built by ``cnnzoo.models.get``.
    """
    model = unwrap_model(model)
    config = getattr(model, "cnnzoo_config", None)
    if not isinstance(config, dict) or "name" not in config:
        return None
    config = dict(config)
    for attribute in ("num_classes", "in_channels"):
        value = getattr(model, attribute, None)
        if isinstance(value, int) and not isinstance(value, bool):
            config[attribute] = value
    pool = getattr(model, "global_pool", None)  # reset_classifier(global_pool=...) changes it
    if "global_pool" in config and isinstance(pool, str):
        config["global_pool"] = pool
    return config


def data_config_of(model: nn.Module) -> dict[str, Any] | None:
    """The model's data configuration (``model.pretrained_cfg``) as a plain JSON-able dict.

    This file layer reads it as a mapping (``cnnzoo.data.DataConfig`` is one); rebuilding a
    ``DataConfig`` from it is the caller's job.

    Raises:
        ValueError: ``pretrained_cfg`` is set but is not a mapping of JSON values, or it
            contradicts the model (its classes or channels).
    """
    config = getattr(model, "pretrained_cfg", None)
    if config is None:
        return None
    if not isinstance(config, Mapping):
        raise ValueError(
            f"model.pretrained_cfg must be a cnnzoo.data.DataConfig or a dict, got "
            f"{type(config).__name__}"
        )
    plain = {str(k): list(v) if isinstance(v, tuple) else v for k, v in config.items()}
    _check_describes(plain, model)
    try:
        json.dumps(plain, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"model.pretrained_cfg holds a value a checkpoint cannot store as JSON ({error})"
        ) from None
    return plain


def _check_describes(config: dict[str, Any], model: nn.Module) -> None:
    """Refuse to record a data configuration that contradicts the model saved with it.

    (``cnnzoo.data.DataConfig.check_model`` checks the same when the model is used; this file
    layer sees the configuration as a plain mapping.)
    """
    classes, channels = getattr(model, "num_classes", None), getattr(model, "in_channels", None)
    names, size = config.get("label_names"), config.get("input_size")
    said = config.get("num_classes")
    fix = (
        "set model.pretrained_cfg = model.pretrained_cfg.replace(num_classes=..., "
        "label_names=...) to describe the model (reset_classifier does this)"
    )
    if isinstance(classes, int) and not isinstance(classes, bool):
        if isinstance(said, int) and said != classes:
            raise ValueError(
                f"model.pretrained_cfg says num_classes={said} but the model has {classes} "
                f"outputs: a checkpoint would record the wrong classes; {fix}"
            )
        if isinstance(names, list | tuple) and len(names) != classes:
            raise ValueError(
                f"model.pretrained_cfg names {len(names)} classes but the model has {classes} "
                f"outputs: a checkpoint would name them wrongly; {fix}"
            )
    if (
        isinstance(channels, int)
        and isinstance(size, list | tuple)
        and size
        and isinstance(size[0], int)
        and size[0] != channels
    ):
        raise ValueError(
            f"model.pretrained_cfg says input_size={list(size)} but the model takes {channels} "
            f"channels; set model.pretrained_cfg = model.pretrained_cfg.for_channels({channels})"
        )


def read_data_config(path: PathLike, metadata: dict[str, str]) -> dict[str, Any] | None:
    """The data configuration stored in a file's metadata (a plain dict), or ``None``.

    Raises:
        ValueError: The stored configuration is not a JSON object.
    """
    raw = metadata.get(DATA_CONFIG_KEY)
    if raw is None:
        return None
    try:
        config = loads_json(raw)  # bounded depth and numbers, as every JSON read back
    except ValueError:
        config = None
    if not isinstance(config, dict):
        raise ValueError(f"{str(path)!r} has a corrupted data configuration in its metadata")
    return config


def config_to_json(config: dict[str, Any]) -> str:
    """Encode a model configuration as JSON, naming any option that JSON cannot hold."""
    for key, value in config.items():
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError):
            raise ValueError(
                f"cannot record option {key}={value!r} of model {config.get('name')!r}: a "
                "checkpoint stores options as JSON (numbers, strings, booleans, None, lists, "
                "dicts). Build the model with JSON-friendly options, or save the weights alone "
                "with cnnzoo.save(model, path, include_config=False)"
            ) from None
    return json.dumps(config, sort_keys=True)


def save(
    model: nn.Module,
    path: PathLike,
    *,
    metadata: dict[str, str] | None = None,
    include_config: bool = True,
) -> Path:
    """Save a model's weights, and what rebuilds it, to a safetensors file.

    The write is atomic: the file appears complete or not at all. Tied weights are stored once.

    Args:
        model: Any ``nn.Module``. Models from ``cnnzoo.models.get`` also record their
            configuration, so ``cnnzoo.load(path)`` can rebuild them; other modules are saved
            as weights only, for ``cnnzoo.load_weights``. A model's data configuration
            (``model.pretrained_cfg``: input size, mean, std, class names) is recorded too, so
            the file says how to feed the model. A ``torch.compile``d,
            ``nn.DataParallel`` or DDP model is saved as the model it wraps (its configuration
            and unprefixed names).
        path: Destination file (conventionally ``*.safetensors``); parent folders are created.
        metadata: Extra string metadata to store (for example metrics, a dataset name).
        include_config: Record the model and data configurations (turn off to save weights
            only).

    Returns:
        The path written.

    Raises:
        ValueError: A model option that cannot be stored as JSON, or a metadata value that is
            not a string.

    Example:
        >>> model = cnnzoo.get_model("lenet5")
        >>> cnnzoo.save(model, "lenet5.safetensors")
        >>> same = cnnzoo.load("lenet5.safetensors")
    """
    tensors, header = weights_payload(model, metadata=metadata, include_config=include_config)
    path = Path(path)
    _write(path, tensors, header)
    return path


def weights_payload(
    model: nn.Module, *, metadata: dict[str, str] | None = None, include_config: bool = True
) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The tensors and metadata :func:`save` writes for ``model`` (checked, not yet written).

    Raises:
        TypeError: ``model`` is not an ``nn.Module``.
        ValueError: As :func:`save`.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"save expects an nn.Module, got {type(model).__name__}")
    model = unwrap_model(model)
    header = {"format": "pt", VERSION_KEY: __version__}
    config = model_config(model) if include_config else None
    if config is not None:
        header[CONFIG_KEY] = config_to_json(config)
    data_config = data_config_of(model) if include_config else None
    if data_config is not None:
        header[DATA_CONFIG_KEY] = json.dumps(data_config, sort_keys=True)
    for key, value in (metadata or {}).items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise ValueError(
                f"metadata must map strings to strings (safetensors stores text); got "
                f"{key!r}: {value!r}. Encode other values, e.g. with json.dumps"
            )
        if key in header:
            raise ValueError(f"metadata key {key!r} is reserved by cnnzoo")
        header[key] = value
    return own_storage(drop_aliases(model.state_dict())), header


def read_config(path: PathLike, metadata: dict[str, str]) -> dict[str, Any]:
    """The model configuration stored in a file's metadata, validated.

    Raises:
        ValueError: The file holds no cnnzoo configuration, or an unreadable one.
    """
    if CONFIG_KEY not in metadata:
        raise ValueError(
            f"{str(path)!r} holds weights but no cnnzoo model configuration (it was saved from "
            "a model not built by cnnzoo.models.get, or by another tool), so cnnzoo.load cannot "
            "rebuild the model. Build the model yourself and use "
            "cnnzoo.load_weights(model, path)"
        )
    try:
        config = loads_json(metadata[CONFIG_KEY])
    except ValueError:
        config = None
    if not isinstance(config, dict) or not isinstance(config.get("name"), str):
        raise ValueError(f"{str(path)!r} has a corrupted cnnzoo configuration in its metadata")
    return config


def describe_config(config: dict[str, Any] | None) -> str:
    """One sentence saying what a file was saved from, for error messages."""
    if not config:
        return ""
    options = ", ".join(f"{k}={v!r}" for k, v in sorted(config.items()) if k != "name")
    return f"The file was saved from {config['name']}({options})."


def load_weights(
    model: nn.Module,
    path: PathLike,
    device: str | torch.device | None = None,
    strict: bool = True,
) -> LoadResult:
    """Load weights from a file into an existing model, in place.

    Works for any ``nn.Module``, including your own, and for the model inside a
    ``torch.compile``, DataParallel or DDP wrapper. Reads safetensors files and PyTorch
    state-dict files (``.pth``/``.pt``, with ``torch.load(weights_only=True)``); names saved with
    a wrapper's prefix (``module.``, ``_orig_mod.``) are matched without it.

    Args:
        model: The module to fill.
        path: A ``.safetensors`` file, or a PyTorch state dict.
        device: Move the model here first; ``None`` keeps it where it is.
        strict: Require the names and shapes to match exactly. With ``False``, missing,
            unexpected and shape-mismatched names are skipped (and returned), which is how to
            load a backbone whose head differs.

    Returns:
        A ``LoadResult`` listing what was skipped (all empty when ``strict``).

    Raises:
        FileNotFoundError: No such file.
        ValueError: An unreadable file, weights that do not fit (``strict``), or a device this
            machine does not have.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"load_weights expects an nn.Module, got {type(model).__name__}")
    model = unwrap_model(model)
    target = resolve_device(device) if device is not None else None
    tensors, metadata = read_state_dict(path)
    stored = None
    if CONFIG_KEY in metadata:
        try:
            stored = read_config(path, metadata)
        except ValueError:
            stored = None  # only used to word an error; the weights themselves are validated
    if target is not None:
        model.to(target)
    hint = describe_config(stored) + " Build the model to match, or pass strict=False to load "
    hint += "only the parts that fit."
    return load_checked(model, tensors, source=repr(str(path)), strict=strict, hint=hint)
