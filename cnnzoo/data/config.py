"""``DataConfig``: what a model expects of its input images (timm's ``pretrained_cfg``).

Every model built by :func:`cnnzoo.models.get` carries one as ``model.pretrained_cfg``; ``fit``
fills it from the training data, ``weights="imagenet"`` from torchvision's weights metadata,
checkpoints record it, and ``evaluate``, ``predict`` and the command line apply it. It is a
frozen dataclass that is also a read-only mapping, so timm-style ``cfg["mean"]`` and
``dict(cfg)`` work as well as ``cfg.mean``.

Example:
    >>> cfg = DataConfig(input_size=(1, 28, 28), mean=(0.286,), std=(0.353,))
    >>> cfg["mean"], cfg.std
    ((0.286,), (0.353,))
    >>> cfg.replace(label_names=tuple("0123456789"), num_classes=10).label_names[:3]
    ('0', '1', '2')
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

__all__ = ["INTERPOLATIONS", "LIMITS", "DataConfig", "channel_stats"]

# torchvision's InterpolationMode values that work on tensors (uint8 included).
INTERPOLATIONS = ("nearest", "nearest-exact", "bilinear", "bicubic")
# The bounds of every field, wherever a configuration comes from (a file, the Hub, Python): a
# file must not make cnnzoo allocate a 30 GB image or divide pixels by 1e-40. They are far
# beyond any real model's (ImageNet models take 224x224 images; CIFAR's classes are 10).
LIMITS = {
    "channels": 4096,  # as the in_channels a checkpoint may record
    "side": 8192,  # image height or width, also after the crop_pct resize
    "values": 64 * 1024 * 1024,  # C x H x W of one image (256 MB in float32)
    "classes": 100_000,  # as the num_classes a checkpoint may record
    "name_length": 256,
    "min_crop_pct": 0.1,
    # Normalisation runs in float32: (pixel - mean) / std must stay finite and meaningful.
    "min_std": 1e-6,  # channel_stats' own floor
    "max_std": 1e6,
    "max_abs_mean": 1e6,
}
# Keys of timm's pretrained_cfg that say nothing about the pixels; read and ignored.
_TIMM_KEYS = frozenset(
    (
        "architecture",
        "classifier",
        "crop_mode",
        "custom_load",
        "first_conv",
        "fixed_input_size",
        "hf_hub_filename",
        "hf_hub_id",
        "label_descriptions",
        "license",
        "min_input_size",
        "notes",
        "origin_url",
        "paper_ids",
        "paper_name",
        "pool_size",
        "source",
        "tag",
        "test_crop_pct",
        "test_input_size",
        "url",
    )
)


@dataclass(frozen=True, repr=False)
class DataConfig(Mapping[str, Any]):
    """The data contract of a model: how images become its input, and what its outputs mean.

    Attributes:
        input_size: ``(C, H, W)`` of the images the model takes; image files and PIL images are
            converted to ``C`` channels and resized to ``H x W``.
        mean: Per-channel mean subtracted from pixels in [0, 1]; ``None`` while no
            normalisation is known (a model not trained yet), ``(0.0, ...)`` with ``std``
            ``(1.0, ...)`` for a model that takes pixels in [0, 1] as they are.
        std: Per-channel standard deviation the pixels are divided by (after ``mean``).
        interpolation: How images of another size are resized: "bilinear" (default),
            "bicubic", "nearest" or "nearest-exact".
        crop_pct: ImageNet-style evaluation crop: images are resized to ``H / crop_pct`` and
            centre-cropped to ``H x W`` (0.875 for torchvision's weights: 256 then 224);
            ``None`` resizes straight to ``H x W``.
        num_classes: Width of the model's output.
        label_names: The class names, in output order (``None`` when unknown).

    Raises:
        ValueError: A field out of range or inconsistent with another (one mean per channel,
            one name per class); the message names the field.
    """

    input_size: tuple[int, int, int] | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    interpolation: str = "bilinear"
    crop_pct: float | None = None
    num_classes: int | None = None
    label_names: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        fix = object.__setattr__  # frozen: normalise the field types once, here
        if self.input_size is not None:
            fix(self, "input_size", _size(self.input_size))
        if (self.mean is None) != (self.std is None):
            raise ValueError("DataConfig: give mean and std together, or neither")
        if self.mean is not None:
            mean, std = _floats("mean", self.mean), _floats("std", self.std)
            if any(s <= 0 for s in std):
                raise ValueError(f"DataConfig: std values must be > 0, got {std}")
            _check_normalisation(mean, std)
            channels = self.input_size[0] if self.input_size is not None else None
            mean, std = _per_channel(mean, std, channels)
            fix(self, "mean", mean)
            fix(self, "std", std)
        fix(self, "interpolation", _interpolation(self.interpolation))
        if self.crop_pct is not None:
            fix(self, "crop_pct", _crop_pct(self.crop_pct, self.input_size))
        if self.num_classes is not None:
            classes = self.num_classes
            if not _is_int(classes) or not 0 <= classes <= LIMITS["classes"]:
                raise ValueError(
                    f"DataConfig: num_classes must be an integer in [0, {LIMITS['classes']:,}], "
                    f"got {classes!r}"
                )
            fix(self, "num_classes", int(classes))
        if self.label_names is not None:
            fix(self, "label_names", _label_names(self.label_names))
            if self.num_classes is not None and len(self.label_names) != self.num_classes:
                raise ValueError(
                    f"DataConfig: {len(self.label_names)} label_names for num_classes="
                    f"{self.num_classes}; give one name per class"
                )

    def __repr__(self) -> str:
        shown = []
        for key, value in self.items():
            if key == "label_names" and value is not None and len(value) > 4:
                value = f"({', '.join(map(repr, value[:3]))}, ... {len(value)} names)"
            else:
                value = repr(value)
            shown.append(f"{key}={value}")
        return f"DataConfig({', '.join(shown)})"

    # -- the mapping view (timm's pretrained_cfg is a dict) ---------------------------------
    def __getitem__(self, key: str) -> Any:
        if key not in _FIELDS:
            raise KeyError(key)
        return getattr(self, key)

    def __iter__(self) -> Iterator[str]:
        return iter(_FIELDS)

    def __len__(self) -> int:
        return len(_FIELDS)

    # -- building and changing ----------------------------------------------------------------
    def replace(self, **changes: Any) -> DataConfig:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """The fields as JSON-friendly values (lists for tuples), for checkpoints."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in self.items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "") -> DataConfig:
        """Read a configuration from a mapping: a saved one, a user's dict or timm's.

        Keys of timm's ``pretrained_cfg`` that do not concern the pixels (``url``,
        ``first_conv``, ``pool_size``, ...) are ignored; any other unknown key is refused, so a
        misspelt ``"maen"`` cannot pass unnoticed.

        Args:
            data: The mapping.
            source: Where it came from, for error messages (a quoted path).

        Raises:
            ValueError: Not a mapping, an unknown key, or an invalid value.
        """
        where = f" in {source}" if source else ""
        if isinstance(data, DataConfig):
            return data
        if not isinstance(data, Mapping):
            raise ValueError(
                f"the data configuration{where} must be a mapping such as "
                f"{{'mean': [...], 'std': [...]}} or a cnnzoo.data.DataConfig, got "
                f"{type(data).__name__}"
            )
        unknown = sorted(str(k) for k in data if k not in _FIELDS and k not in _TIMM_KEYS)
        if unknown:
            raise ValueError(
                f"the data configuration{where} has unknown key(s) {unknown}; its keys are "
                f"{list(_FIELDS)}"
            )
        try:
            return cls(**{k: v for k, v in data.items() if k in _FIELDS})
        except (TypeError, ValueError) as error:
            message = str(error).removeprefix("DataConfig: ")
            raise ValueError(f"invalid data configuration{where}: {message}") from None

    def for_channels(self, channels: int) -> DataConfig:
        """The configuration for a model whose first convolution was adapted to ``channels``.

        One channel takes the average of the per-channel statistics (the adapted filters sum
        the colour filters, so a grey image stands for equal colour planes); more channels
        repeat them in order, as :func:`cnnzoo.transfer.adapt_first_conv` repeats the filters.
        """
        size = None if self.input_size is None else (channels, *self.input_size[1:])
        if self.mean is None or self.std is None or len(self.mean) == channels:
            return self.replace(input_size=size)  # (mean and std are set together)
        mean: tuple[float, ...]
        std: tuple[float, ...]
        if channels == 1:
            mean, std = (sum(self.mean) / len(self.mean),), (sum(self.std) / len(self.std),)
        else:
            mean = tuple(self.mean[i % len(self.mean)] for i in range(channels))
            std = tuple(self.std[i % len(self.std)] for i in range(channels))
        return self.replace(input_size=size, mean=mean, std=std)

    def check_model(self, num_classes: Any, in_channels: Any, where: str) -> None:
        """Refuse a configuration that contradicts the model it describes.

        Args:
            num_classes: The width of the model's output (skipped unless an integer).
            in_channels: The channels of its input (skipped unless an integer).
            where: What holds the configuration, for the message ("model.pretrained_cfg").

        Raises:
            ValueError: ``num_classes``, the class names or the channels disagree with the
                model; the message says how to make them agree.
        """
        fix = (
            "model.pretrained_cfg = model.pretrained_cfg.replace(num_classes=..., "
            "label_names=...) to describe the model (reset_classifier does this)"
        )
        if _is_int(num_classes):
            if self.num_classes is not None and self.num_classes != num_classes:
                raise ValueError(
                    f"{where} says num_classes={self.num_classes} but the model has "
                    f"{num_classes} outputs; set {fix}"
                )
            if self.label_names is not None and len(self.label_names) != num_classes:
                raise ValueError(
                    f"{where} names {len(self.label_names)} classes but the model has "
                    f"{num_classes} outputs, so its outputs cannot be named; set {fix}"
                )
        channels = self.channels
        if _is_int(in_channels) and channels is not None and channels != in_channels:
            raise ValueError(
                f"{where} says input_size={self.input_size} but the model takes {in_channels} "
                "channels; set model.pretrained_cfg = model.pretrained_cfg.for_channels("
                f"{in_channels})"
            )

    @property
    def channels(self) -> int | None:
        """Input channels, when ``input_size`` is known."""
        return None if self.input_size is None else self.input_size[0]

    @property
    def image_size(self) -> tuple[int, int] | None:
        """``(H, W)``, when ``input_size`` is known."""
        return None if self.input_size is None else (self.input_size[1], self.input_size[2])


_FIELDS = tuple(f.name for f in dataclasses.fields(DataConfig))


# Images per float64 chunk of channel_stats (and of a streamed folder's statistics pass).
STATS_CHUNK = 16


def channel_stats(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and standard deviation of images, in [0, 1] pixel units.

    What ``load_dataset`` measures on an image folder's training split; use it to give a model
    the statistics of your own training tensors before ``fit``::

        mean, std = channel_stats(train_images)
        model.pretrained_cfg = model.pretrained_cfg.replace(mean=mean, std=std)

    Args:
        images: ``(N, C, H, W)`` pixels: ``uint8`` (0-255) or floating point in [0, 1].

    Returns:
        ``(mean, std)``, one value per channel (std at least 1e-6).
    """
    if images.dim() != 4 or len(images) == 0:
        raise ValueError(
            f"images must be (N, C, H, W) with N >= 1, got shape {tuple(images.shape)}"
        )
    unit = 255.0 if images.dtype == torch.uint8 else 1.0
    total = torch.zeros(images.shape[1], dtype=torch.float64)
    squares = torch.zeros_like(total)
    # In float64 a chunk at a time (a whole folder may not fit); a streamed folder sums the same
    # chunks in the same order, so its statistics are bit-identical to these.
    for chunk in images.split(STATS_CHUNK):
        x = chunk.double() / unit
        total += x.sum(dim=(0, 2, 3))
        squares += x.square().sum(dim=(0, 2, 3))
    count = images.numel() // images.shape[1]
    mean = total / count
    variance = (squares - count * mean.square()) / max(count - 1, 1)
    std = variance.clamp_min(0).sqrt().clamp_min(1e-6)
    return tuple(mean.tolist()), tuple(std.tolist())


# -- validation helpers ---------------------------------------------------------------------------
def _size(value: Any) -> tuple[int, int, int]:
    if (
        isinstance(value, (str, bytes))
        or not isinstance(value, Sequence)
        or len(value) != 3
        or not all(_is_int(v) for v in value)
        or min(value) < 1
    ):
        raise ValueError(
            f"DataConfig: input_size must be (C, H, W), three integers >= 1; got {value!r}"
        )
    channels, height, width = (int(v) for v in value)
    if (
        channels > LIMITS["channels"]
        or max(height, width) > LIMITS["side"]
        or channels * height * width > LIMITS["values"]
    ):
        raise ValueError(
            f"DataConfig: input_size {tuple(value)} is beyond what cnnzoo reads (at most "
            f"{LIMITS['channels']} channels, sides of {LIMITS['side']} pixels and "
            f"{LIMITS['values']:,} values per image): every image would be resized to it. Give "
            "the size the model was trained at"
        )
    return channels, height, width


def _crop_pct(crop: Any, size: tuple[int, int, int] | None) -> float:
    low = LIMITS["min_crop_pct"]
    if not isinstance(crop, int | float) or isinstance(crop, bool) or not low <= crop <= 1:
        raise ValueError(
            f"DataConfig: crop_pct must be in [{low}, 1] or None (0.875 for torchvision's "
            f"ImageNet weights), got {crop!r}"
        )
    crop = float(crop)
    if size is not None and math.ceil(max(size[1:]) / crop) > LIMITS["side"]:
        raise ValueError(
            f"DataConfig: crop_pct {crop} resizes images to {math.ceil(max(size[1:]) / crop)} "
            f"pixels before the crop to {size[1]}x{size[2]}, beyond {LIMITS['side']}; use a "
            "larger crop_pct"
        )
    return crop


def _check_normalisation(mean: tuple[float, ...], std: tuple[float, ...]) -> None:
    """Bound mean and std as float32 sees them: pixels are normalised in float32."""
    as_float32 = torch.tensor([*mean, *std], dtype=torch.float64).float().tolist()
    mean32, std32 = as_float32[: len(mean)], as_float32[len(mean) :]
    low, high = torch.tensor([LIMITS["min_std"], LIMITS["max_std"]]).tolist()  # float32 too
    if not all(low <= s <= high for s in std32):
        raise ValueError(
            f"DataConfig: std values must be in [{LIMITS['min_std']:g}, {LIMITS['max_std']:g}] "
            f"for pixels in [0, 1] (normalised in float32), got {std}; "
            "give the standard deviation of the training pixels (cnnzoo.data.channel_stats)"
        )
    if not all(abs(m) <= LIMITS["max_abs_mean"] for m in mean32):
        raise ValueError(
            f"DataConfig: mean values must be within +-{LIMITS['max_abs_mean']:g} for pixels in "
            f"[0, 1] (normalised in float32), got {mean}; give the mean of the training pixels "
            "(cnnzoo.data.channel_stats)"
        )


def _label_names(names: Any) -> tuple[str, ...]:
    if isinstance(names, (str, bytes)) or not isinstance(names, Sequence | tuple):
        raise ValueError("DataConfig: label_names must be a sequence of strings")
    if not all(isinstance(n, str) for n in names):
        raise ValueError("DataConfig: label_names must be a sequence of strings")
    if len(names) > LIMITS["classes"]:
        raise ValueError(
            f"DataConfig: {len(names):,} label_names, more than the {LIMITS['classes']:,} "
            "classes a model may have"
        )
    for i, name in enumerate(names):
        # Names are printed by predict and classify: a control character would rewrite the
        # terminal's output (an ANSI escape, a carriage return) rather than name a class.
        if len(name) > LIMITS["name_length"] or any(unicodedata.category(c) == "Cc" for c in name):
            raise ValueError(
                f"DataConfig: label_names[{i}] = {name[:40]!r}{'...' if len(name) > 40 else ''} "
                f"is not a class name (at most {LIMITS['name_length']} characters, no control "
                "characters)"
            )
    return tuple(names)


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _floats(name: str, value: Any) -> tuple[float, ...]:
    if isinstance(value, torch.Tensor):
        value = value.flatten().tolist()
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        value = (value,)
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or not value:
        raise ValueError(f"DataConfig: {name} must be a sequence of numbers, got {value!r}")
    if not all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in value):
        raise ValueError(f"DataConfig: {name} must be a sequence of numbers, got {value!r}")
    floats = tuple(float(v) for v in value)
    if not all(math.isfinite(v) for v in floats):
        raise ValueError(f"DataConfig: {name} must be finite, got {floats}")
    return floats


def _per_channel(
    mean: tuple[float, ...], std: tuple[float, ...], channels: int | None
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """One value per channel: a single value stands for every channel (as Normalize allows)."""
    if channels is not None:
        mean = mean * channels if len(mean) == 1 else mean
        std = std * channels if len(std) == 1 else std
    if len(mean) != len(std) or (channels is not None and len(mean) != channels):
        expected = f"{channels} (one per channel)" if channels is not None else "the same number"
        raise ValueError(
            f"DataConfig: mean has {len(mean)} and std {len(std)} values; expected {expected}"
        )
    return mean, std


def _interpolation(value: Any) -> str:
    text = getattr(value, "value", value)  # torchvision's InterpolationMode members too
    if not isinstance(text, str) or text.lower() not in INTERPOLATIONS:
        raise ValueError(
            f"DataConfig: interpolation must be one of {INTERPOLATIONS}, got {value!r}"
        )
    return text.lower()
