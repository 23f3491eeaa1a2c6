"""The contract every cnnzoo model follows (learned from timm).

A model splits into ``forward_features`` (the convolutional trunk, returning a feature map) and
``forward_head`` (pooling or flattening, any hidden layers, then the final classifier). The final
classifier is one module found at ``classifier_path`` so that ``reset_classifier`` can swap it for
transfer learning, and ``forward_head(x, pre_logits=True)`` returns the ``num_features``-wide
vector that feeds it.

Every forward checks the input shape first, so a wrong channel count or too small an image fails
with a message that names the model and the fix, not with a matrix-shape error from deep in torch.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["ZooModel", "check_size_argument", "classifier_head"]

# The smallest value each size argument may take: 0 classes means "no classifier, features out".
_MINIMUM = {"num_classes": 0, "in_channels": 1}


def check_size_argument(model_name: str, what: str, value: object) -> None:
    """Refuse a ``num_classes`` or ``in_channels`` that is not an integer at or above its minimum.

    ``True`` is refused too: it is an ``int`` to Python, but never what the caller meant.

    Args:
        model_name: The model the argument is for, named in the message.
        what: ``"num_classes"`` or ``"in_channels"``.
        value: The value given.

    Raises:
        ValueError: The value is not acceptable.
    """
    low = _MINIMUM[what]
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise ValueError(f"{what} must be an integer >= {low} for {model_name}, got {value!r}")


def classifier_head(num_features: int, num_classes: int) -> nn.Module:
    """The final classifier: ``nn.Linear(num_features, num_classes)``.

    ``num_classes=0`` gives ``nn.Identity``, so the model returns its ``(N, num_features)``
    features: what ``reset_classifier(0)`` does, and what building with ``num_classes=0`` does.
    """
    return nn.Linear(num_features, num_classes) if num_classes > 0 else nn.Identity()


class ZooModel(nn.Module):
    """Base class of the cnnzoo models.

    Subclasses call ``super().__init__(num_classes, in_channels)`` first, which validates both
    and sets them with ``model_name``; then they set the other attributes below, build their
    layers and implement ``forward_features`` and ``pre_logits``.

    Args:
        num_classes: Outputs of the classifier; 0 builds none (the model returns features).
        in_channels: Channels of the input images.

    Raises:
        ValueError: ``num_classes`` or ``in_channels`` is not a non-bool integer, or is below 0
            or 1 respectively; the message names the model.

    Attributes:
        num_classes: Outputs of the classifier (0 after ``reset_classifier(0)``).
        in_channels: Channels of the input images.
        num_features: Width of the vector that feeds the final classifier.
        input_size: Default input ``(C, H, W)`` for this configuration.
        min_input_size: Smallest ``(H, W)`` the network accepts.
        fixed_input_size: True when the head is a fixed-size ``Flatten``-``Linear``, so only
            ``input_size`` itself is accepted.
        classifier_path: Dotted path of the final classifier module (``"fc"``,
            ``"classifier.6"``), the module ``reset_classifier`` replaces.
        model_name: Registry name, used in error messages (set by ``cnnzoo.models.get``).
    """

    num_classes: int
    in_channels: int
    num_features: int
    input_size: tuple[int, int, int]
    min_input_size: tuple[int, int]
    fixed_input_size: bool = False
    classifier_path: str = "classifier"

    def __init__(self, num_classes: int, in_channels: int) -> None:
        super().__init__()
        self.model_name = type(self).__name__.lower()
        check_size_argument(self.model_name, "num_classes", num_classes)
        check_size_argument(self.model_name, "in_channels", in_channels)
        self.num_classes = num_classes
        self.in_channels = in_channels

    # -- the parts subclasses implement -------------------------------------------------------
    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Run the convolutional trunk.

        Args:
            x: Images ``(N, in_channels, H, W)``.

        Returns:
            The last feature map, ``(N, C', H', W')``.
        """
        raise NotImplementedError

    def pre_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Turn the feature map into the ``(N, num_features)`` vector the classifier reads."""
        raise NotImplementedError

    # -- the shared contract ------------------------------------------------------------------
    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Apply the head to the output of ``forward_features``.

        Args:
            x: The feature map from ``forward_features``.
            pre_logits: Return the ``(N, num_features)`` vector before the final classifier.

        Returns:
            Logits ``(N, num_classes)``, or features ``(N, num_features)``.
        """
        x = self.pre_logits(x)
        return x if pre_logits else self.get_classifier()(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Classify images ``(N, in_channels, H, W)`` into ``(N, num_classes)`` logits."""
        self.check_input(x)
        return self.forward_head(self.forward_features(x))

    def get_classifier(self) -> nn.Module:
        """Return the final classifier module (the one ``reset_classifier`` replaces)."""
        return self.get_submodule(self.classifier_path)

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the final classifier with a freshly initialised one.

        Args:
            num_classes: New number of classes; 0 replaces the classifier with ``nn.Identity`` so
                the model returns its pooled ``(N, num_features)`` features.
        """
        if num_classes < 0:
            raise ValueError(f"num_classes must be >= 0, got {num_classes}")
        head = classifier_head(self.num_features, num_classes)
        old = self.get_classifier()
        if isinstance(old, nn.Linear):  # keep the device and dtype the model already lives on
            head = head.to(device=old.weight.device, dtype=old.weight.dtype)
        parent_path, _, child = self.classifier_path.rpartition(".")
        parent = self.get_submodule(parent_path) if parent_path else self
        setattr(parent, child, head)
        self.num_classes = num_classes

    def check_input(self, x: torch.Tensor) -> None:
        """Raise a clear ``ValueError`` when ``x`` is not a batch this model can take."""
        name = self.model_name
        if x.dim() != 4:
            hint = " Add a batch dimension with x.unsqueeze(0)." if x.dim() == 3 else ""
            raise ValueError(
                f"{name} expects a batch of images shaped (N, C, H, W); got shape "
                f"{tuple(x.shape)}.{hint}"
            )
        channels, height, width = x.shape[1], x.shape[2], x.shape[3]
        if channels != self.in_channels:
            raise ValueError(
                f"{name} expects {self.in_channels} input channel(s), got {channels} "
                f"(input shape {tuple(x.shape)}). Convert the images, or build the model with "
                f"in_channels={channels}."
            )
        if self.fixed_input_size:
            expected = tuple(self.input_size[1:])
            if (height, width) != expected:
                raise ValueError(
                    f"{name} takes exactly {expected[0]}x{expected[1]} images (its head is a "
                    f"fixed-size Linear layer); got {height}x{width}. Resize the images to "
                    f"{expected[0]}x{expected[1]}."
                )
            return
        min_h, min_w = self.min_input_size
        if height < min_h or width < min_w:
            raise ValueError(
                f"{name} needs images of at least {min_h}x{min_w}; got {height}x{width}. Resize "
                "the images up" + self._small_input_hint() + "."
            )

    def _small_input_hint(self) -> str:
        """Suggest ``small_input=True`` where the model has it and it is off."""
        if getattr(self, "small_input", None) is False:
            return ", or build the model with small_input=True for 28x28 and 32x32 images"
        return ""
