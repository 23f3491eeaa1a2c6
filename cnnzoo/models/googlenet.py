"""GoogLeNet (Szegedy et al. 2014, "Going deeper with convolutions"), as in the paper.

The widths are those of the paper's table 1, and the "5x5" branch of each Inception module is a
real 5x5 convolution (torchvision's is a 3x3, a bug kept for its old weights, so this model is
deliberately not key-compatible with torchvision's). Batch normalisation follows every conv in
place of the paper's local response normalisation, as in every modern reimplementation.

``forward`` always returns plain logits. With ``aux_logits=True`` the two auxiliary classifiers
of the paper (after 4a and 4d) are built too, and ``forward_with_aux`` returns
``(logits, aux1, aux2)`` for a training loss such as ``loss + 0.3 * (loss1 + loss2)``.

``small_input=True`` adapts the stem to 28x28 and 32x32 images: a 3x3 stride-1 first conv and no
max pool after the stem, so a 28x28 image reaches the last stage at 7x7, like 224x224 does in the
paper's network.
"""

from __future__ import annotations

import torch
from torch import nn

from ..blocks import ConvBNAct, Inception
from .base import ZooModel
from .checks import resolve_drop_rate
from .heads import check_global_pool, classifier_head, pool_layer
from .registry import TrainingRecipe, register
from .stages import run_trunk

__all__ = ["GoogLeNet", "googlenet"]

# The paper's table 1: (ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj) of each module.
_INCEPTION_WIDTHS: dict[str, tuple[int, int, int, int, int, int]] = {
    "3a": (64, 96, 128, 16, 32, 32),
    "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64),
    "4b": (160, 112, 224, 24, 64, 64),
    "4c": (128, 128, 256, 24, 64, 64),
    "4d": (112, 144, 288, 32, 64, 64),
    "4e": (256, 160, 320, 32, 128, 128),
    "5a": (256, 160, 320, 32, 128, 128),
    "5b": (384, 192, 384, 48, 128, 128),
}
_TRUNK = [
    "conv1",
    "maxpool1",
    "conv2",
    "conv3",
    "maxpool2",
    "inception3a",
    "inception3b",
    "maxpool3",
    *(f"inception4{letter}" for letter in "abcde"),
    "maxpool4",
    "inception5a",
    "inception5b",
]
_DROP_RATE = 0.4


def _max_pool() -> nn.MaxPool2d:
    # ceil_mode gives the paper's resolutions: 112 -> 56 -> 28 -> 14 -> 7 from a 224 input.
    return nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True)


class InceptionAux(nn.Module):
    """The paper's auxiliary classifier: pool to 4x4, 1x1 conv (128), FC 1024, dropout, FC.

    The paper pools 14x14 maps with a 5x5 stride-3 average pool, which gives 4x4; an adaptive
    pool gives 4x4 at any input size.

    Args:
        in_channels: Channels of the Inception output it reads (512 after 4a, 528 after 4d).
        num_classes: Outputs; 0 makes the last layer an identity (1024-wide features).
        dropout: Dropout rate before the last layer (0.7 in the paper).
    """

    def __init__(self, in_channels: int, num_classes: int, dropout: float = 0.7) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d((4, 4))
        self.conv = ConvBNAct(in_channels, 128, kernel_size=1)
        self.fc1 = nn.Linear(128 * 4 * 4, 1024)
        self.relu = nn.ReLU(inplace=True)
        self.dropout = nn.Dropout(dropout)
        self.fc2 = classifier_head(1024, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map an ``(N, in_channels, H, W)`` map to ``(N, num_classes)`` logits."""
        x = torch.flatten(self.conv(self.pool(x)), 1)
        return self.fc2(self.dropout(self.relu(self.fc1(x))))


class GoogLeNet(ZooModel):
    """GoogLeNet: stem, nine Inception modules, global average pool, dropout, ``fc``.

    Args:
        num_classes: Outputs of ``fc``; 0 replaces it with ``nn.Identity`` (pooled features).
        in_channels: Channels of the input images.
        aux_logits: Build the two auxiliary classifiers (used by ``forward_with_aux`` only).
        small_input: 3x3 stride-1 first conv and no stem max pools, for 28x28/32x32 images.
        drop_rate: Dropout rate before ``fc`` (0.4 in the paper).
        dropout_aux: Dropout rate in the auxiliary classifiers (0.7 in the paper).
        global_pool: Pooling before ``fc``: ``"avg"`` (the paper's), ``"max"``, or ``""``
            (none; with ``num_classes=0`` the model returns the last feature map).

    Stages (``feature_info``): ``conv1``, ``conv3``, ``inception3b``, ``inception4e`` and
    ``inception5b``, the last module at strides 2, 4, 8, 16, 32 (1, 1, 1, 2, 4 with
    ``small_input``).
    """

    classifier_path = "fc"

    def __init__(
        self,
        num_classes: int = 1000,
        in_channels: int = 3,
        aux_logits: bool = False,
        small_input: bool = False,
        drop_rate: float = _DROP_RATE,
        dropout_aux: float = 0.7,
        global_pool: str = "avg",
    ) -> None:
        super().__init__(num_classes, in_channels)
        drop_rate = resolve_drop_rate(self.model_name, drop_rate, None, drop_rate)
        self.global_pool = check_global_pool(self.model_name, global_pool, num_classes)
        self.aux_logits = aux_logits
        self.small_input = small_input
        self.num_features = 1024
        self.input_size = (in_channels, 32, 32) if small_input else (in_channels, 224, 224)
        # Each 3x3 stride-2 max pool (ceil_mode, no padding) needs >= 2 pixels and maps h to
        # ceil((h - 1) / 2). Walking back from maxpool4: 2 <- 4 (maxpool3) for small inputs;
        # 2 <- 4 <- 8 <- 16 <- 31 (conv1, stride 2) for the full stem.
        self.min_input_size = (4, 4) if small_input else (31, 31)

        if small_input:
            self.conv1 = ConvBNAct(in_channels, 64, kernel_size=3)
            self.maxpool1: nn.Module = nn.Identity()
        else:
            self.conv1 = ConvBNAct(in_channels, 64, kernel_size=7, stride=2)
            self.maxpool1 = _max_pool()
        self.conv2 = ConvBNAct(64, 64, kernel_size=1)
        self.conv3 = ConvBNAct(64, 192, kernel_size=3)
        self.maxpool2: nn.Module = nn.Identity() if small_input else _max_pool()

        widths = _INCEPTION_WIDTHS
        self.inception3a = Inception(192, *widths["3a"])
        self.inception3b = Inception(self.inception3a.out_channels, *widths["3b"])
        self.maxpool3 = _max_pool()
        self.inception4a = Inception(self.inception3b.out_channels, *widths["4a"])
        self.inception4b = Inception(self.inception4a.out_channels, *widths["4b"])
        self.inception4c = Inception(self.inception4b.out_channels, *widths["4c"])
        self.inception4d = Inception(self.inception4c.out_channels, *widths["4d"])
        self.inception4e = Inception(self.inception4d.out_channels, *widths["4e"])
        self.maxpool4 = _max_pool()
        self.inception5a = Inception(self.inception4e.out_channels, *widths["5a"])
        self.inception5b = Inception(self.inception5a.out_channels, *widths["5b"])

        self.aux1: InceptionAux | None = None
        self.aux2: InceptionAux | None = None
        if aux_logits:
            self.aux1 = InceptionAux(self.inception4a.out_channels, num_classes, dropout_aux)
            self.aux2 = InceptionAux(self.inception4d.out_channels, num_classes, dropout_aux)

        self.avgpool = pool_layer(global_pool, (1, 1))
        self.dropout = nn.Dropout(drop_rate)
        self.fc = classifier_head(1024, num_classes)
        self._init_weights()

        strides = (1, 1, 1, 2, 4) if small_input else (2, 4, 8, 16, 32)
        stage_ends = ["conv1", "conv3", "inception3b", "inception4e", "inception5b"]
        channels = [64, 192, *(getattr(self, n).out_channels for n in stage_ends[2:])]
        self._set_stages(_TRUNK, list(zip(stage_ends, channels, strides, strict=True)))

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=0.01)
                nn.init.constant_(m.bias, 0)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Return the ``(N, 1024, H/32, W/32)`` output of inception 5b (``H/4`` small)."""
        if self.grad_checkpointing and not torch.jit.is_scripting():
            return self.forward_features_checkpointed(x)
        x = self.maxpool1(self.conv1(x))
        x = self.maxpool2(self.conv3(self.conv2(x)))
        x = self.maxpool3(self.inception3b(self.inception3a(x)))
        x = self.inception4d(self.inception4c(self.inception4b(self.inception4a(x))))
        x = self.maxpool4(self.inception4e(x))
        return self.inception5b(self.inception5a(x))

    def pre_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Pool, flatten and apply dropout, giving ``(N, 1024)`` (the map when unpooled)."""
        x = self.avgpool(x)
        return self.dropout(x if self.global_pool == "" else torch.flatten(x, 1))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Pool and dropout, then ``fc``; ``pre_logits`` stops before ``fc``."""
        x = self.pre_logits(x)
        return x if pre_logits else self.fc(x)

    def set_global_pool(self, global_pool: str, num_classes: int) -> None:
        """Switch the pooling before ``fc`` to ``"avg"``, ``"max"`` or ``""`` (none)."""
        self.global_pool = check_global_pool(self.model_name, global_pool, num_classes)
        self.avgpool = pool_layer(global_pool, (1, 1))

    def forward_with_aux(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Return ``(logits, aux1, aux2)``, all ``(N, num_classes)``, in any mode.

        Gradient checkpointing (``set_grad_checkpointing``) applies here too.

        Args:
            x: Images ``(N, in_channels, H, W)``.

        Returns:
            The main logits and those of the auxiliary classifiers after 4a and 4d.

        Raises:
            ValueError: The model was built without ``aux_logits=True``.
        """
        if self.aux1 is None or self.aux2 is None:
            raise ValueError(
                f"{self.model_name} has no auxiliary classifiers; build it with "
                "aux_logits=True to use forward_with_aux"
            )
        self.check_eager_input(x)
        features, (after_4a, after_4d) = run_trunk(
            self,
            self.trunk_plan,
            x,
            collect=["inception4a", "inception4d"],
            checkpoint_at=self._checkpoint_cuts(),
        )
        return self.forward_head(features), self.aux1(after_4a), self.aux2(after_4d)

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        """Replace ``fc`` and, when present, the auxiliary classifiers' last layers.

        Args:
            num_classes: New number of classes; 0 makes them identities (features out).
            global_pool: ``None`` keeps the pooling before ``fc``; ``"avg"``, ``"max"`` or
                ``""`` (none, with ``num_classes=0``) changes it.
        """
        super().reset_classifier(num_classes, global_pool)
        for aux in (self.aux1, self.aux2):
            if aux is not None:
                aux.fc2 = classifier_head(1024, num_classes)
                aux.fc2.to(device=aux.fc1.weight.device, dtype=aux.fc1.weight.dtype)


_RECIPE = TrainingRecipe(
    3e-3,
    (
        "the best of 3e-4 to 1e-2 for GoogLeNet (small_input, 8x8 images) in the zoo benchmark "
        "(84 steps of Fashion-MNIST): 0.80 test accuracy"
    ),
)


@register(
    family="googlenet",
    source=(
        "named as the next step in the advanced-CNN tutorial (Inception module, residual "
        "block, on MNIST)"
    ),
    paper="Szegedy et al. 2014, Going Deeper with Convolutions",
    recipe=_RECIPE,
)
def googlenet(
    num_classes: int = 1000,
    in_channels: int = 3,
    aux_logits: bool = False,
    small_input: bool = False,
    drop_rate: float = _DROP_RATE,
    global_pool: str = "avg",
) -> GoogLeNet:
    """GoogLeNet (Inception v1) with real 5x5 branches and batch norm after every conv.

    Args:
        num_classes: Number of classes.
        in_channels: Channels of the input images.
        aux_logits: Also build the auxiliary classifiers after 4a and 4d; ``forward`` still
            returns only the logits, ``forward_with_aux`` returns all three.
        small_input: 3x3 stride-1 first conv and no stem max pools, for 28x28 and 32x32 images.
        drop_rate: Dropout rate before the classifier (0.4 in the paper).
        global_pool: Pooling before the classifier: ``"avg"``, ``"max"`` or ``""`` (none).

    Returns:
        The model.
    """
    return GoogLeNet(
        num_classes=num_classes,
        in_channels=in_channels,
        aux_logits=aux_logits,
        small_input=small_input,
        drop_rate=drop_rate,
        global_pool=global_pool,
    )
