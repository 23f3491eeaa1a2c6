"""The pieces of a model's head: the final classifier and the pooling before it.

The final classifier is one module (``classifier_head``) so that ``ZooModel.reset_classifier``
can swap it for transfer learning; the pooling before it (``global_pool``, timm's option) is
validated against what the head can read (``check_global_pool``).
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

__all__ = ["POOL_TYPES", "check_global_pool", "classifier_head", "pool_layer"]

# The pooling a head may use before its classifier ("" keeps the feature map unpooled).
POOL_TYPES = ("avg", "max", "")


def classifier_head(num_features: int, num_classes: int) -> nn.Module:
    """The final classifier: ``nn.Linear(num_features, num_classes)``.

    ``num_classes=0`` gives ``nn.Identity``, so the model returns its ``(N, num_features)``
    features: what ``reset_classifier(0)`` does, and what building with ``num_classes=0`` does.
    """
    return nn.Linear(num_features, num_classes) if num_classes > 0 else nn.Identity()


def check_global_pool(
    model_name: str, global_pool: object, num_classes: int, choices: Sequence[str] = POOL_TYPES
) -> str:
    """Validate a ``global_pool`` option against what the model's head can do.

    Args:
        model_name: The model, named in messages.
        global_pool: ``"avg"``, ``"max"``, or ``""`` for no pooling.
        num_classes: The classes the head will have: ``""`` returns the unpooled feature map,
            which only an absent classifier (``num_classes=0``) can pass on.
        choices: The values this model's head supports.

    Returns:
        ``global_pool``.

    Raises:
        ValueError: Not one of ``choices``, or ``""`` with a classifier.
    """
    if global_pool not in choices:
        extra = (
            " (its hidden classifier layers read a pooled map of a fixed size, so it cannot "
            "go unpooled)"
            if "" not in choices and global_pool == ""
            else ""
        )
        raise ValueError(
            f"global_pool must be one of {', '.join(map(repr, choices))} for {model_name}, got "
            f"{global_pool!r}{extra}"
        )
    if global_pool == "" and num_classes > 0:
        raise ValueError(
            f"global_pool='' keeps {model_name}'s feature map unpooled, which a Linear "
            f"classifier cannot read: use it with num_classes=0 (got {num_classes})"
        )
    return global_pool  # type: ignore[return-value]


def pool_layer(global_pool: str, output_size: int | tuple[int, int]) -> nn.Module:
    """The adaptive pooling module for ``global_pool`` (``""``: ``nn.Identity``)."""
    if global_pool == "avg":
        return nn.AdaptiveAvgPool2d(output_size)
    if global_pool == "max":
        return nn.AdaptiveMaxPool2d(output_size)
    return nn.Identity()
