"""The model's data contract as training uses it: read it, apply it, and let ``fit`` record it.

A model's ``pretrained_cfg`` (a :class:`~cnnzoo.data.DataConfig`, or a dict in its shape) says
how pixels become its input. ``evaluate`` and ``predict`` apply it to every form of data; ``fit``
applies it when it is known and otherwise takes the training data's statistics (or none), then
records on the model what it trained with, so every later call agrees.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

from ..data import DataConfig
from .feed import DataFacts, ImageReading, ModelInput, Stats

__all__ = [
    "check_classifier",
    "fit_rule",
    "image_reading",
    "inference_rule",
    "model_data_config",
    "record",
]


def check_classifier(model: nn.Module, what: str, *, features_ok: bool = False) -> None:
    """Refuse a model that gives no class scores, before any data is read.

    A ``features_only`` backbone returns one feature map per stage, and a model built with
    ``num_classes=0`` returns its pooled features: training or evaluating them as classifiers
    would train on feature values as if they were classes. ``predict`` of a ``num_classes=0``
    model is feature extraction, and allowed (``features_ok``).

    Raises:
        TypeError: ``model`` is not an ``nn.Module``.
        ValueError: A backbone, or a model without classes (the message says how to add a
            head).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"{what} expects an nn.Module, got {type(model).__name__}")
    if getattr(model, "feature_info", None) is not None and not hasattr(model, "num_classes"):
        raise ValueError(
            f"{what} needs a classifier, but this model is a features_only backbone: it "
            "returns one feature map per stage, not class scores. Build the classifier "
            "instead (cnnzoo.get_model(name, num_classes=N), without features_only=True), or "
            "put your own head on the backbone's feature maps"
        )
    classes = getattr(model, "num_classes", None)
    if classes == 0 and not features_ok and not isinstance(classes, bool):
        features = getattr(model, "num_features", "its")
        raise ValueError(
            f"{what} needs class scores, but the model has num_classes=0: it returns its "
            f"{features} pooled features, and they would be taken for classes. Give it a head "
            "with model.reset_classifier(N), or build it with num_classes=N"
        )


def model_data_config(model: nn.Module) -> DataConfig | None:
    """The model's data configuration, validated; ``None`` when it has none.

    Raises:
        ValueError: ``model.pretrained_cfg`` is set but not a valid configuration, or one that
            contradicts the model (its classes or channels).
    """
    raw = getattr(model, "pretrained_cfg", None)
    if raw is None:
        return None
    config = DataConfig.from_dict(raw, source="model.pretrained_cfg")
    config.check_model(
        getattr(model, "num_classes", None),
        getattr(model, "in_channels", None),
        "model.pretrained_cfg",
    )
    return config


def image_reading(model: nn.Module, config: DataConfig | None) -> ImageReading:
    """How images that are not tensors are read for ``model``: its channels and input size."""
    if config is None or config.input_size is None:
        channels = getattr(model, "in_channels", None)
        known = isinstance(channels, int) and not isinstance(channels, bool)
        return ImageReading(channels=channels if known else None)
    return ImageReading(config.channels, config.image_size, config.interpolation, config.crop_pct)


def inference_rule(config: DataConfig | None, facts: DataFacts, what: str) -> ModelInput:
    """The rule for ``evaluate``/``predict``: the model's normalisation, whatever the data's form.

    A model that knows no normalisation (built but never trained by ``fit``, its
    ``pretrained_cfg`` without mean and std) falls back to the data's own statistics, with a
    warning: other forms of the same images would not carry them.
    """
    if config is not None and config.mean is not None and config.std is not None:
        return ModelInput(facts, (config.mean, config.std), what)
    if facts.stats is not None and not facts.normalized:
        warnings.warn(
            f"the model has no normalisation in its data configuration (model.pretrained_cfg), so "
            f"{what} is normalised with the data's own mean {facts.mean} and std {facts.std}; "
            "the same images as plain tensors would not be. fit records the normalisation it "
            "trains with; set model.pretrained_cfg for a model trained elsewhere",
            UserWarning,
            stacklevel=4,  # the caller of evaluate or predict
        )
    return ModelInput(facts, facts.stats, what)


def fit_rule(config: DataConfig | None, facts: DataFacts) -> Stats | None:
    """The normalisation ``fit`` trains with: the model's, else the training data's, else none."""
    if config is not None and config.mean is not None and config.std is not None:
        return config.mean, config.std
    return facts.stats


def record(
    model: nn.Module,
    config: DataConfig | None,
    facts: DataFacts,
    target: Stats | None,
    example: torch.Tensor,
    num_classes: int,
) -> DataConfig:
    """Set ``model.pretrained_cfg`` to what ``fit`` trains with, and return it.

    Args:
        model: The model being trained.
        config: Its data configuration before training, if any.
        facts: What the training data says about itself.
        target: The normalisation of the run (:func:`fit_rule`).
        example: One prepared input batch: its ``(C, H, W)`` becomes ``input_size``.
        num_classes: The width of the model's output.

    Returns:
        The recorded configuration: input size, mean and std (``0``/``1`` for pixels taken as
        they are), interpolation, classes and the data's class names when there is one per
        output.
    """
    channels = int(example.shape[1])
    if target is None and not facts.normalized:
        target = ((0.0,) * channels, (1.0,) * channels)  # pixels in [0, 1], as they are
    if target is None:
        warnings.warn(
            "train_data is declared normalised without its mean and std, so the model cannot "
            "record how to normalise image files for predict; pass them: "
            "cnnzoo.data.Normalized(data, mean=..., std=...)",
            UserWarning,
            stacklevel=4,
        )
    names = _label_names(config, facts, num_classes)
    base = config or DataConfig()
    recorded = base.replace(
        input_size=tuple(int(v) for v in example.shape[1:]),
        mean=None if target is None else target[0],
        std=None if target is None else target[1],
        num_classes=num_classes,
        label_names=names,
    )
    model.pretrained_cfg = recorded  # type: ignore[assignment]  # torch's stub: a Module takes any attribute
    return recorded


def _label_names(
    config: DataConfig | None, facts: DataFacts, num_classes: int
) -> tuple[str, ...] | None:
    names = facts.label_names
    if names is not None and len(names) == num_classes:
        return names
    if names is not None:
        warnings.warn(
            f"train_data names {len(names)} classes but the model has {num_classes} outputs; "
            "the class names are not recorded in the model's data configuration",
            UserWarning,
            stacklevel=5,  # the caller of fit
        )
    if config is not None and config.label_names and len(config.label_names) == num_classes:
        return config.label_names
    return None
