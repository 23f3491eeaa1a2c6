"""The one model factory: build registered models by name, and rebuild saved ones.

- ``get`` (alias ``get_model``) builds a model and records the arguments it was built with on
  it (``model.cnnzoo_config``), so checkpoints can rebuild it, and gives it its data
  configuration (``model.pretrained_cfg``: input size, and for pretrained weights their mean,
  std, resize and class names).
- ``rebuild`` turns a recorded configuration and its weights back into a model. Both
  ``cnnzoo.load`` (one safetensors file) and ``cnnzoo.from_pretrained`` (a folder or Hub
  repository) go through it, so they build, check and place models the same way.

A configuration read from a file never steers the code: only the builder's own options are
accepted, each of the type its default has and within sane bounds, never ``weights`` (a file
cannot make cnnzoo download or read anything else), and the model it describes is first built on
the ``meta`` device (no memory) and compared with the file's tensors, so nothing large is
allocated for a file that does not match.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..checkpoint._io import PathLike, read_safetensors, sniff_format
from ..checkpoint._tensors import load_checked
from ..checkpoint._weights import describe_config, read_config, read_data_config
from ..data import DataConfig
from ..devices import resolve_device
from ..pretrained import load_pretrained
from ..transfer import adapt_first_conv
from .checks import check_size_argument
from .features import FeatureListNet
from .registry import Builder, lookup

__all__ = ["build_from_config", "get", "get_model", "load", "rebuild"]

_SIZE_ARGUMENTS = ("num_classes", "in_channels")
# Upper bounds on sizes read from a file: far above any real classifier, far below what would
# ask for gigabytes (a corrupted or hostile num_classes=10_000_000 would).
MAX_FILE_SIZES = {"num_classes": 100_000, "in_channels": 4096}


def get(
    name: str,
    num_classes: int | None = None,
    in_channels: int | None = None,
    *,
    weights: Any = None,
    **kwargs: Any,
) -> nn.Module:
    """Build a registered model.

    Args:
        name: Registry name (case-insensitive), e.g. ``"resnet18"``.
        num_classes: Number of classes; ``None`` keeps the model's default.
        in_channels: Input channels; ``None`` keeps the model's default.
        weights: ``"imagenet"`` for torchvision's ImageNet weights (families shared with
            torchvision), or the path of a ``.safetensors`` or torchvision ``.pth`` state dict.
        **kwargs: Model-specific options, such as ``small_input=True``; and, for the families
            with stages, ``features_only=True`` (a backbone returning the feature map of each
            stage, as timm's ``features_only``) with ``out_indices`` (stage numbers, or an int
            ``n`` for the last ``n``; default all).

    Returns:
        The model, in training mode, on the CPU. Its ``pretrained_cfg`` (a
        :class:`cnnzoo.data.DataConfig`) holds its input size and classes, and with ``weights``
        the weights' mean, std, resize and class names; a model not trained yet has no mean
        and std (``fit`` records the ones it trains with). With ``features_only``, a
        ``cnnzoo.models.features.FeatureListNet`` (carrying the same ``pretrained_cfg``).

    Raises:
        ValueError: Unknown name (with the closest names), or invalid arguments.
    """
    key, entry = lookup(name)
    build_kwargs = dict(kwargs)
    features_only = build_kwargs.pop("features_only", False)
    out_indices = build_kwargs.pop("out_indices", None)
    if not isinstance(features_only, bool):
        raise ValueError(f"features_only must be True or False, got {features_only!r}")
    if out_indices is not None and not features_only:
        raise ValueError(
            "out_indices selects the stages of a backbone: pass it with features_only=True"
        )
    # Checked here as well as by ZooModel: before any download, and for builders of any kind.
    for what, value in zip(_SIZE_ARGUMENTS, (num_classes, in_channels), strict=True):
        if value is not None:
            check_size_argument(key, what, value)
            build_kwargs[what] = value
    _check_kwargs(key, entry.builder, build_kwargs)

    data_config = None
    if weights is not None:
        model, data_config = _build_pretrained(key, entry.builder, build_kwargs, weights)
    else:
        model = entry.builder(**build_kwargs)
    if isinstance(model, nn.Module):
        if hasattr(model, "model_name"):
            model.model_name = key  # type: ignore[assignment]  # torch's stub: a Module takes any attribute
        config = {"name": key, **_resolved_arguments(entry.builder, build_kwargs)}
        own = getattr(model, "pretrained_cfg", None)
        if data_config is not None or own is None:
            own = data_config or _default_data_config(model)
            model.pretrained_cfg = own  # type: ignore[assignment]  # torch's stub: a Module takes any attribute
        data_config = own
        if features_only:
            features = FeatureListNet(model, out_indices)
            features.pretrained_cfg = data_config  # type: ignore[assignment]  # torch's stub: a Module takes any attribute
            config.update(features_only=True, out_indices=list(features.out_indices))
            model = features
        model.cnnzoo_config = config  # type: ignore[assignment]  # torch's stub: a Module takes any attribute
    elif features_only:
        raise ValueError(f"features_only needs an nn.Module; {key}'s builder returned {model!r}")
    return model


get_model = get


def _build_pretrained(
    key: str, builder: Builder, build_kwargs: dict[str, Any], weights: Any
) -> tuple[nn.Module, DataConfig | None]:
    """Load the weights at the shape they were trained for, then adapt input and head.

    ``num_classes`` and ``in_channels`` in ``build_kwargs`` are the *target* shape: the first
    convolution is adapted to other channels (``cnnzoo.transfer.adapt_first_conv``) and the
    classifier replaced for other classes, only after the weights loaded strictly. The
    weights' data configuration follows: statistics for the new channel count, and no class
    names for a new head.
    """
    options = {k: v for k, v in build_kwargs.items() if k not in _SIZE_ARGUMENTS}
    loaded = load_pretrained(key, builder, options, weights)
    model, data_config = loaded.model, loaded.data_config
    target_channels = build_kwargs.get("in_channels", loaded.in_channels)
    target_classes = build_kwargs.get("num_classes", loaded.num_classes)
    if target_channels != loaded.in_channels:
        adapt_first_conv(model, target_channels)
        data_config = data_config and data_config.for_channels(target_channels)
    if target_classes != loaded.num_classes:
        reset_classifier = getattr(model, "reset_classifier", None)
        if not callable(reset_classifier):
            raise ValueError(
                f"{key} has no reset_classifier(), so its {loaded.num_classes}-class head cannot "
                f"be replaced by a {target_classes}-class one"
            )
        reset_classifier(target_classes)
        data_config = data_config and data_config.replace(
            num_classes=target_classes, label_names=None
        )
    return model, data_config


def _default_data_config(model: nn.Module) -> DataConfig:
    """A new model's data configuration: its input size and classes; no normalisation yet."""
    size = getattr(model, "input_size", None)
    classes = getattr(model, "num_classes", None)
    sized = isinstance(size, tuple) and len(size) == 3 and all(isinstance(v, int) for v in size)
    return DataConfig(
        input_size=size if sized else None,
        num_classes=classes if isinstance(classes, int) and not isinstance(classes, bool) else None,
    )


def _check_kwargs(key: str, builder: Builder, kwargs: dict[str, Any]) -> None:
    """Reject an unknown keyword, or an option of the wrong type, early."""
    params = inspect.signature(builder).parameters
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        unknown = sorted(set(kwargs) - set(params))
        if unknown:
            raise ValueError(
                f"{key} does not take {', '.join(map(repr, unknown))}; its options are: "
                f"{_options_of(params)}"
            )
    for name, value in kwargs.items():
        if name in params and name not in _SIZE_ARGUMENTS:
            _check_type(key, name, value, params[name].default)


def _options_of(params: Mapping[str, inspect.Parameter]) -> str:
    accepted = [n for n, p in params.items() if n not in _SIZE_ARGUMENTS and _is_named(p)]
    return ", ".join(["num_classes", "in_channels", *accepted])


def _is_named(param: inspect.Parameter) -> bool:
    return param.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


def _check_type(key: str, name: str, value: Any, default: Any) -> None:
    """Refuse a value whose type contradicts the option's default (``small_input="yes"``).

    A truthy string or number where a bool is expected would otherwise be taken silently, and
    ``True`` where a number is expected counts as 1.

    Raises:
        TypeError: The value is not of the default's kind.
    """
    if isinstance(default, bool):
        wanted, ok = "True or False", isinstance(value, bool)
    elif isinstance(default, int):
        wanted, ok = "an integer", isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(default, float):
        wanted = "a number"
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    elif isinstance(default, str):
        wanted, ok = "a string", isinstance(value, str)
    else:
        return  # no default, or None: the builder checks its own option
    if not ok:
        raise TypeError(f"{name} must be {wanted} for {key}, got {value!r}")


def _resolved_arguments(builder: Builder, kwargs: dict[str, Any]) -> dict[str, Any]:
    """The builder's arguments with its defaults filled in (what a checkpoint must record)."""
    resolved: dict[str, Any] = {}
    for pname, param in inspect.signature(builder).parameters.items():
        if param.kind in (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL):
            continue
        if param.default is not inspect.Parameter.empty:
            resolved[pname] = param.default
    resolved.update(kwargs)
    return resolved


# -- rebuilding saved models ----------------------------------------------------------------------
def build_from_config(
    config: dict[str, Any],
    source: str,
    tensors: Mapping[str, torch.Tensor] | None = None,
    tensors_source: str | None = None,
) -> nn.Module:
    """Build the model a saved configuration describes, with fresh weights.

    The configuration comes from a file, so it is checked as data, never trusted: only the
    builder's own options, of the type of their defaults, ``num_classes`` <= 100,000 and
    ``in_channels`` <= 4096, no ``weights`` (a file cannot make cnnzoo download or read another
    file), JSON scalars only. With ``tensors``, the model is first built on the ``meta`` device
    and its shapes compared with theirs, so a configuration that does not match its weights is
    refused before any memory is allocated for it.

    Args:
        config: A recorded ``cnnzoo_config``: the registry ``name`` and the build arguments.
        source: Where the configuration came from, for error messages (a quoted path).
        tensors: The weights saved with the configuration, to check it against.
        tensors_source: Where ``tensors`` came from, when not from ``source`` itself.

    Returns:
        The model, as ``get(**config)`` builds it.

    Raises:
        ValueError: The configuration names no registered model, or holds options the builder
            does not take, of the wrong type, out of bounds, or that do not match ``tensors``;
            the message names ``source``.
    """
    options = dict(config)
    name = options.pop("name")
    try:
        key, entry = lookup(name)
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"cannot rebuild the model stored in {source}: {err} If it is your own model, "
            "register it with cnnzoo.models.register before loading"
        ) from None
    try:
        _check_file_options(key, entry.builder, options)
        if tensors is not None:
            _check_shapes(key, options, tensors, tensors_source or source)
        return get(key, **options)
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"cannot rebuild the model stored in {source} (model {key!r}, options {options}): "
            f"{err}. The file was altered, or not written by this version of cnnzoo; nothing "
            "was built. Build the model yourself and use cnnzoo.load_weights(model, path)"
        ) from None


def _check_file_options(key: str, builder: Builder, options: dict[str, Any]) -> None:
    """Only the builder's own options, of the right types and sizes (see build_from_config)."""
    if "weights" in options:
        raise ValueError(
            "it asks for weights=" + repr(options["weights"]) + ", which a file may not: cnnzoo "
            "never downloads or reads another file because a checkpoint says so (load the "
            "weights it holds, or ask for weights= yourself with cnnzoo.get_model)"
        )
    _check_backbone_options(options)
    options = {k: v for k, v in options.items() if k not in _BACKBONE_OPTIONS}
    params = inspect.signature(builder).parameters
    known = {name for name, param in params.items() if _is_named(param)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise ValueError(
            f"{key} does not take {', '.join(map(repr, unknown))}; its options are: "
            f"{_options_of(params)}"
        )
    for name, value in options.items():
        if not _is_json_scalar(value):
            raise TypeError(f"option {name} must be a number, string, boolean or null")
        if name in MAX_FILE_SIZES:
            check_size_argument(key, name, value)
            if value > MAX_FILE_SIZES[name]:
                raise ValueError(
                    f"{name}={value} is beyond what cnnzoo accepts from a file "
                    f"(at most {MAX_FILE_SIZES[name]:,})"
                )


# The factory's own options (timm's backbones), recorded beside the builder's.
_BACKBONE_OPTIONS = ("features_only", "out_indices")
_MAX_STAGES = 16


def _check_backbone_options(options: dict[str, Any]) -> None:
    """``features_only`` a boolean, ``out_indices`` a short list of stage numbers."""
    if not isinstance(options.get("features_only", False), bool):
        raise TypeError(f"features_only must be true or false, got {options['features_only']!r}")
    indices = options.get("out_indices")
    if indices is None:
        return
    stages = range(-_MAX_STAGES, _MAX_STAGES)
    if (
        not isinstance(indices, list)
        or len(indices) > _MAX_STAGES
        or not all(isinstance(i, int) and not isinstance(i, bool) and i in stages for i in indices)
    ):
        raise ValueError(f"out_indices must be a list of stage numbers, got {indices!r}")


def _is_json_scalar(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    return value is None or isinstance(value, bool | int | str)


def _check_shapes(
    key: str, options: dict[str, Any], tensors: Mapping[str, torch.Tensor], where: str
) -> None:
    """Build the described model on the meta device and compare its shapes with the file's."""
    with torch.device("meta"):
        probe = get(key, **options)
    expected = {name: tuple(t.shape) for name, t in probe.state_dict().items()}
    wrong = [
        f"{name}: file {tuple(tensors[name].shape)} vs configuration {shape}"
        for name, shape in expected.items()
        if name in tensors and tuple(tensors[name].shape) != shape
    ]
    if wrong:
        listed = "; ".join(wrong[:4]) + (f"; ... ({len(wrong) - 4} more)" if len(wrong) > 4 else "")
        raise ValueError(
            f"its configuration does not match the weights in {where}: {len(wrong)} shape "
            f"mismatch(es) ({listed})"
        )


def rebuild(
    config: dict[str, Any],
    tensors: Mapping[str, torch.Tensor],
    *,
    source: str,
    device: str | torch.device = "cpu",
    config_source: str | None = None,
    data_config: Mapping[str, Any] | None = None,
) -> nn.Module:
    """Rebuild a saved model from its configuration and load its weights strictly.

    Args:
        config: The recorded configuration (registry ``name`` and build arguments).
        tensors: The saved state dict.
        source: Where the weights came from, for error messages (a quoted path).
        device: Where to put the model. Callers resolve it before reading large files, so a
            missing device fails first.
        config_source: Where the configuration came from, when not from ``source`` itself.
        data_config: The recorded data configuration (``model.pretrained_cfg``); ``None``
            keeps the model's default (files written before cnnzoo recorded it).

    Returns:
        The model, in evaluation mode, on ``device``.

    Raises:
        ValueError: A configuration that cannot be built, weights that do not fit it, or a
            device this machine does not have.
    """
    target = resolve_device(device)
    model = build_from_config(config, config_source or source, tensors, source)
    hint = describe_config(config) + " The weights do not fit the configuration saved with them."
    load_checked(model, tensors, source=source, hint=hint)
    if data_config is not None:
        where = config_source or source
        recorded = DataConfig.from_dict(data_config, source=where)
        try:
            recorded.check_model(
                getattr(model, "num_classes", None), getattr(model, "in_channels", None), where
            )
        except ValueError as error:  # the file's fault: it cannot be fixed by the reader
            raise ValueError(
                f"{error}. The file's data configuration does not describe its weights: save "
                "the model again with a matching pretrained_cfg"
            ) from None
        model.pretrained_cfg = recorded  # type: ignore[assignment]  # torch's stub: a Module takes any attribute
    return model.to(target).eval()


def load(path: PathLike, device: str | torch.device = "cpu") -> nn.Module:
    """Rebuild a model saved by ``cnnzoo.save`` and load its weights strictly.

    Args:
        path: A file written by ``cnnzoo.save``.
        device: Where to put the model: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, a ``torch.device``.

    Returns:
        The model, in evaluation mode, on ``device``, with the data configuration the file
        recorded (``model.pretrained_cfg``).

    Raises:
        FileNotFoundError: No such file.
        ValueError: Not a valid safetensors file (truncated, corrupted), no cnnzoo
            configuration in it, weights that do not fit the configuration, or a device this
            machine does not have.

    Example:
        >>> cnnzoo.save(cnnzoo.get_model("lenet5"), "lenet5.safetensors")
        >>> model = cnnzoo.load("lenet5.safetensors")
    """
    target = resolve_device(device)  # fail before reading a large file
    try:
        tensors, metadata = read_safetensors(path)
    except ValueError:
        _refuse_torch_file(path)
        raise
    config = read_config(path, metadata)
    data_config = read_data_config(path, metadata)
    return rebuild(config, tensors, source=repr(str(path)), device=target, data_config=data_config)


def _refuse_torch_file(path: PathLike) -> None:
    """Point a PyTorch state dict, which holds no configuration to rebuild from, to load_weights."""
    if Path(path).is_file() and sniff_format(path) == "torch":  # never open a FIFO
        raise ValueError(
            f"{str(path)!r} is a PyTorch state dict (torch.save), which records no cnnzoo model "
            "configuration, so cnnzoo.load cannot rebuild the model. Build the model and load "
            "the weights with cnnzoo.load_weights(model, path)"
        ) from None
