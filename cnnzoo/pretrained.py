"""Pretrained weights: find them, build the model they were trained for, load them strictly.

``cnnzoo.models.get(name, ..., weights=...)`` lands here through the factory. ``weights`` is
``"fashion-mnist"`` (cnnzoo's own weights, shipped inside the package: :mod:`cnnzoo.weights`),
``"imagenet"`` (torchvision's weights, through torchvision's own download code), a torchvision
weights name such as ``"IMAGENET1K_V2"`` or enum member, or a local ``.safetensors`` / ``.pth``
file. The model is built at the shape the weights were trained for (1000 classes and 3 channels
for ImageNet) and loaded with ``strict=True``; adapting it to the user's classes and channels
afterwards is the factory's job, with ``cnnzoo.transfer``. The weights come with their data
configuration: torchvision's preprocessing (ImageNet mean and std, resize 256 then crop 224,
the 1000 category names) or the one a cnnzoo file recorded.

The factory passes the registered builder in, so this module needs nothing from
``cnnzoo.models``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import nn

from .checkpoint._io import read_state_dict
from .checkpoint._tensors import load_checked
from .checkpoint._weights import CONFIG_KEY, describe_config, read_config, read_data_config
from .data import DataConfig
from .weights import find, shipped, verified_path

__all__ = ["Pretrained", "load_pretrained"]

# cnnzoo names whose layout (and state-dict names) are torchvision's, so its weights load.
_TORCHVISION_PRETRAINED = re.compile(
    r"alexnet|vgg(11|13|16|19)(_bn)?|resnet(18|34|50|101|152)|densenet121"
)
_IMAGENET_SHAPE = (1000, 3)  # (num_classes, in_channels) of every torchvision ImageNet model
_WEIGHT_SUFFIXES = (".safetensors", ".pth", ".pt", ".bin", ".ckpt")


class Pretrained(NamedTuple):
    """A model with its pretrained weights loaded, at the shape they were trained for.

    ``data_config`` is how the weights expect their images (``None`` for a file that did not
    record it).
    """

    model: nn.Module
    num_classes: int
    in_channels: int
    data_config: DataConfig | None = None


def load_pretrained(
    key: str,
    builder: Callable[..., nn.Module],
    options: dict[str, Any],
    weights: Any,
) -> Pretrained:
    """Build a registered model at the shape of ``weights`` and load them strictly.

    Args:
        key: Registry name.
        builder: Its builder.
        options: The model options other than ``num_classes`` and ``in_channels`` (e.g.
            ``small_input``); they must be compatible with the weights.
        weights: ``"imagenet"``, a torchvision weights name (``"IMAGENET1K_V1"``) or enum member,
            or the path of a ``.safetensors`` / PyTorch state-dict file.

    Returns:
        The loaded model and the ``num_classes`` and ``in_channels`` it was built with.

    Raises:
        ValueError: The model has no such pretrained weights, or they do not fit the options.
        FileNotFoundError: A weights file that does not exist.
        ConnectionError: torchvision's weights could not be downloaded (the message says how to
            use a local copy).
    """
    state, source, file_config, known_shape, data_config = _resolve_weights(key, weights)
    num_classes, in_channels = _source_shape(builder, options, state, file_config, known_shape)

    model = builder(num_classes=num_classes, in_channels=in_channels, **options)
    if hasattr(model, "model_name"):  # name the model in error messages, as get() will
        model.model_name = key  # type: ignore[assignment]  # torch's stub: a Module takes any attribute
    hint = describe_config(file_config)
    if options.get("small_input"):
        hint += (
            " small_input=True changes the stem of the network, so weights trained on the "
            "standard stem do not fit it; drop small_input and resize the images instead "
            "(e.g. torchvision.transforms.Resize(224))."
        )
    load_checked(model, state, source=source, hint=hint.strip())
    return Pretrained(model, num_classes, in_channels, data_config)


def _resolve_weights(
    key: str, weights: Any
) -> tuple[
    dict[str, torch.Tensor], str, dict[str, Any] | None, tuple[int, int] | None, DataConfig | None
]:
    """Read the weights and what they say about themselves.

    Returns:
        ``(state, description, saved cnnzoo config, (classes, channels) when known, data
        configuration when known)``.
    """
    own = find(key, weights) if isinstance(weights, str) else None
    if own is not None:  # shipped inside the package: read like a file, after its sha256
        state, _, config, _, data_config = _read_file(verified_path(own))
        return state, f"cnnzoo's {key} {own.tag} weights", config, None, data_config
    if _is_torchvision_weights(weights) or (
        isinstance(weights, str) and not _looks_like_path(weights)
    ):
        member = _torchvision_member(key, weights)
        description = f"torchvision's {key} {member.name} weights"
        state = _download(key, member)
        return state, description, None, _IMAGENET_SHAPE, torchvision_data_config(member)
    if not isinstance(weights, (str, os.PathLike)):
        raise TypeError(
            f"weights must be 'imagenet', a torchvision weights name or a file path; got "
            f"{type(weights).__name__}"
        )
    path = Path(weights).expanduser()
    if not path.exists():
        raise FileNotFoundError(
            f"weights file {str(path)!r} does not exist (weights= takes 'imagenet' or the path "
            "of a .safetensors or .pth file)"
        )
    return _read_file(path)


def _read_file(
    path: Path,
) -> tuple[
    dict[str, torch.Tensor], str, dict[str, Any] | None, tuple[int, int] | None, DataConfig | None
]:
    state, metadata = read_state_dict(path)
    config = read_config(path, metadata) if CONFIG_KEY in metadata else None
    recorded = read_data_config(path, metadata)
    source = repr(str(path))
    data_config = None if recorded is None else DataConfig.from_dict(recorded, source=source)
    return state, source, config, None, data_config


def torchvision_data_config(member: Any) -> DataConfig:
    """The data configuration of torchvision weights: their ``transforms()`` and categories.

    Args:
        member: A torchvision weights enum member (``ResNet18_Weights.IMAGENET1K_V1``).

    Returns:
        Input size ``(3, crop, crop)``, mean, std, interpolation, ``crop_pct = crop / resize``
        (0.875 for 224 from 256) and the category names.
    """
    preprocess = member.transforms()  # torchvision's ImageClassification: nothing downloaded
    crop = int(preprocess.crop_size[0])
    resize = int(preprocess.resize_size[0])
    categories = member.meta.get("categories")
    return DataConfig(
        input_size=(3, crop, crop),
        mean=tuple(preprocess.mean),
        std=tuple(preprocess.std),
        interpolation=preprocess.interpolation.value,
        crop_pct=crop / resize,
        num_classes=len(categories) if categories else None,
        label_names=tuple(categories) if categories else None,
    )


def _looks_like_path(text: str) -> bool:
    return (
        os.sep in text
        or "/" in text
        or Path(text).suffix.lower() in _WEIGHT_SUFFIXES
        or Path(text).exists()
    )


def _is_torchvision_weights(obj: Any) -> bool:
    return hasattr(obj, "get_state_dict") and hasattr(obj, "url") and hasattr(obj, "name")


def _torchvision_member(key: str, weights: Any) -> Any:
    """The torchvision weights enum member that ``weights`` names for model ``key``."""
    if not _TORCHVISION_PRETRAINED.fullmatch(key):
        extra = (
            " (cnnzoo's googlenet has real 5x5 convolutions, unlike torchvision's, so "
            "torchvision's GoogLeNet weights cannot fit it)"
            if key == "googlenet"
            else ""
        )
        tags = [w.tag for w in shipped(key)]
        own = f"{key} has cnnzoo's own weights {', '.join(map(repr, tags))}; " if tags else ""
        raise ValueError(
            f"{key} has no weights named {weights!r}{extra}. {own}torchvision's ImageNet weights "
            "exist for alexnet, vgg11/13/16/19 (and _bn), resnet18/34/50/101/152 and "
            "densenet121; weights= also takes the path of a .safetensors or .pth file"
        )
    from torchvision.models import get_model_weights  # lazy: torchvision is heavy to import

    enum = get_model_weights(key)
    if _is_torchvision_weights(weights):
        if not isinstance(weights, enum):
            raise ValueError(f"{weights!r} are not weights for {key}; use one of {list(enum)}")
        return weights
    if weights.lower() in ("imagenet", "default"):
        return enum.DEFAULT
    try:
        return enum[weights.upper()]
    except KeyError:
        names = ", ".join(repr(m.name) for m in enum)
        raise ValueError(
            f"unknown weights {weights!r} for {key}: use 'imagenet' (torchvision's default, "
            f"{enum.DEFAULT.name}), one of {names}, or the path of a .safetensors or .pth file"
        ) from None


def _download(key: str, member: Any) -> dict[str, torch.Tensor]:
    """Fetch through torchvision's own download and cache (``<torch hub dir>/checkpoints``)."""
    cache = Path(torch.hub.get_dir()) / "checkpoints"
    try:
        return member.get_state_dict(progress=True, check_hash=True, weights_only=True)
    except OSError as err:  # urllib's URLError and HTTPError are OSErrors
        file_name = member.url.rsplit("/", 1)[-1]
        raise ConnectionError(
            f"could not download torchvision's {member.name} weights for {key} from "
            f"{member.url} ({getattr(err, 'reason', err)}). Download that file where there is "
            f"internet access, then either copy it to {str(cache)!r} (torchvision looks there "
            f"first) or pass its path: cnnzoo.get_model({key!r}, weights='/path/to/{file_name}')"
        ) from None
    except Exception as err:  # a corrupted cached file, a hash mismatch
        raise ValueError(
            f"torchvision's {member.name} weights for {key} could not be loaded ({err}). Delete "
            f"the cached copy in {str(cache)!r} to download it again"
        ) from None


def _source_shape(
    builder: Callable[..., nn.Module],
    options: dict[str, Any],
    state: dict[str, torch.Tensor],
    file_config: dict[str, Any] | None,
    known: tuple[int, int] | None,
) -> tuple[int, int]:
    """``(num_classes, in_channels)`` the weights were trained with."""
    if known is not None:
        return known
    if file_config is not None and {"num_classes", "in_channels"} <= set(file_config):
        return int(file_config["num_classes"]), int(file_config["in_channels"])
    with torch.device("meta"):  # a free probe: names and default shapes, no weights allocated
        probe = builder(**options)
    classes = int(getattr(probe, "num_classes", 0))
    channels = int(getattr(probe, "in_channels", 3))
    head = state.get(f"{getattr(probe, 'classifier_path', 'classifier')}.weight")
    if head is not None and head.dim() == 2:
        classes = head.shape[0]
    # The first convolution's weight is (out, in / groups, kH, kW) in the file.
    first = next((m for m in probe.named_modules() if isinstance(m[1], nn.Conv2d)), None)
    if first is not None and f"{first[0]}.weight" in state:
        channels = state[f"{first[0]}.weight"].shape[1] * first[1].groups
    return classes, channels
