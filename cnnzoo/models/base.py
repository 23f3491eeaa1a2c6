"""The contract every cnnzoo model follows (learned from timm).

A model splits into ``forward_features`` (the convolutional trunk, returning a feature map) and
``forward_head`` (pooling or flattening, any hidden layers, then the final classifier). The final
classifier is one module found at ``classifier_path`` so that ``reset_classifier`` can swap it for
transfer learning, and ``forward_head(x, pre_logits=True)`` returns the ``num_features``-wide
vector that feeds it.

Every forward checks the input first, so a wrong channel count, too small an image or integer
pixels fail with a message that names the model and the fix, not with a matrix-shape error from
deep in torch. The check runs in eager mode only: under ``torch.jit.script``/``trace``,
``torch.fx``, ``torch.compile`` and ``torch.export`` it stays out of the graph, so every model
scripts, traces and exports cleanly.

Models with stages (the ImageNet families) also describe their trunk as an ordered list of
modules, the *trunk plan*, and name the module that ends each stage (``feature_info``). That one
description gives ``forward_intermediates``, the ``features_only`` backbones of
``cnnzoo.models.get`` and gradient checkpointing.

This module holds the contract itself, ``ZooModel``; the checks it runs live in ``checks``, the
head's pieces in ``heads``, and the stage machinery in ``stages``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import torch
from torch import nn

from ..data import DataConfig  # reset_classifier rewrites the model's data configuration

# The contract's helpers live in rooms of their own; their names stay importable from here, where
# they were first published (cnnzoo.models.base.FeatureInfo, ...).
from .checks import check_image_batch, check_size_argument, is_eager, resolve_drop_rate
from .heads import POOL_TYPES, check_global_pool, classifier_head, pool_layer
from .stages import (
    FeatureInfo,
    checkpointed,
    keep_norm_statistics,
    run_modules,
    run_trunk,
    take_indices,
)

__all__ = [
    "POOL_TYPES",
    "FeatureInfo",
    "ZooModel",
    "check_global_pool",
    "check_image_batch",
    "check_size_argument",
    "checkpointed",
    "classifier_head",
    "is_eager",
    "keep_norm_statistics",
    "pool_layer",
    "resolve_drop_rate",
    "run_modules",
    "run_trunk",
    "take_indices",
]


class ZooModel(nn.Module):
    """Base class of the cnnzoo models.

    Subclasses call ``super().__init__(num_classes, in_channels)`` first, which validates both
    and sets them with ``model_name``; then they set the other attributes below, build their
    layers and implement ``forward_features``, ``pre_logits`` and (for TorchScript, which cannot
    look modules up by name) ``forward_head``. Families with stages call ``_set_stages``.

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
        feature_info: The stages (``FeatureInfo``); empty for models without stages.
        grad_checkpointing: Whether ``forward_features`` recomputes activations in backward.
        model_name: Registry name, used in error messages (set by ``cnnzoo.models.get``).
    """

    # Class attributes without annotations: TorchScript cannot read string annotations.
    fixed_input_size = False
    classifier_path = "classifier"
    if TYPE_CHECKING:  # the attributes subclasses set, declared for type checkers only
        num_features: int
        input_size: tuple[int, int, int]
        min_input_size: tuple[int, int]
        pretrained_cfg: DataConfig

    def __init__(self, num_classes: int, in_channels: int) -> None:
        super().__init__()
        self.model_name = type(self).__name__.lower()
        check_size_argument(self.model_name, "num_classes", num_classes)
        check_size_argument(self.model_name, "in_channels", in_channels)
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.grad_checkpointing = False
        self.feature_info = FeatureInfo([])
        self.trunk_plan: list[str] = []

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

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Apply the head to the output of ``forward_features``.

        The families override this with a direct call of their classifier, which TorchScript
        can compile; this generic version serves subclasses that only set ``classifier_path``.

        Args:
            x: The feature map from ``forward_features``.
            pre_logits: Return the ``(N, num_features)`` vector before the final classifier.

        Returns:
            Logits ``(N, num_classes)``, or features ``(N, num_features)``.
        """
        x = self.pre_logits(x)
        return x if pre_logits else self.get_classifier()(x)

    # -- the shared contract ------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Classify images ``(N, in_channels, H, W)`` into ``(N, num_classes)`` logits."""
        if not torch.jit.is_scripting():  # TorchScript skips this block without compiling it
            self.check_eager_input(x)
        return self.forward_head(self.forward_features(x))

    def get_classifier(self) -> nn.Module:
        """Return the final classifier module (the one ``reset_classifier`` replaces)."""
        return self.get_submodule(self.classifier_path)

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        """Replace the final classifier with a freshly initialised one (timm's signature).

        Args:
            num_classes: New number of classes; 0 replaces the classifier with ``nn.Identity`` so
                the model returns its pooled ``(N, num_features)`` features.
            global_pool: ``None`` keeps the pooling; ``"avg"`` or ``"max"`` changes it, and
                ``""`` (with ``num_classes=0``) returns the unpooled feature map, on the
                families whose head pools (see ``set_global_pool``).

        Raises:
            ValueError: ``num_classes`` is not an integer >= 0, or ``global_pool`` does not
                apply to this model.
        """
        check_size_argument(self.model_name, "num_classes", num_classes)
        # Re-check the current pooling too: an unpooled map cannot feed a new Linear head.
        pool = global_pool if global_pool is not None else getattr(self, "global_pool", None)
        if pool is not None:
            self.set_global_pool(pool, num_classes)
        head = classifier_head(self.num_features, num_classes)
        old = self.get_classifier()
        if isinstance(old, nn.Linear):  # keep the device and dtype the model already lives on
            head = head.to(device=old.weight.device, dtype=old.weight.dtype)
        parent_path, _, child = self.classifier_path.rpartition(".")
        parent = self.get_submodule(parent_path) if parent_path else self
        setattr(parent, child, head)
        self.num_classes = num_classes
        self._describe_new_head(num_classes)

    def _describe_new_head(self, num_classes: int) -> None:
        """Make the data configuration say what the new head is: its classes, no names yet.

        The old class names belong to the old head; kept, they would be saved with the new
        weights and name its outputs wrongly.
        """
        config = getattr(self, "pretrained_cfg", None)
        if isinstance(config, DataConfig):
            self.pretrained_cfg = config.replace(num_classes=num_classes, label_names=None)
        elif isinstance(config, Mapping):
            # a plain mapping a user set: kept a mapping, as they gave it
            self.pretrained_cfg = {**config, "num_classes": num_classes, "label_names": None}  # type: ignore[assignment]

    def set_global_pool(self, global_pool: str, num_classes: int) -> None:
        """Change the pooling of the head; models whose head cannot change it refuse.

        Families whose head pools override this and keep the choice in ``self.global_pool``
        (a build option too, so checkpoints record it).

        Args:
            global_pool: ``"avg"``, ``"max"`` or ``""`` (no pooling).
            num_classes: The classes the head will have (``""`` needs 0).

        Raises:
            ValueError: This model's head has no pooling to change.
        """
        raise ValueError(
            f"{self.model_name} has no pooling layer to change (global_pool={global_pool!r}): "
            "its head flattens a fixed-size feature map into a Linear layer. Call "
            "reset_classifier(num_classes) without global_pool"
        )

    def check_eager_input(self, x: torch.Tensor) -> None:
        """``check_input`` in eager mode; nothing while traced, compiled or exported."""
        if is_eager(x):
            self.check_input(x)

    def check_input(self, x: torch.Tensor) -> None:
        """Raise a clear ``TypeError``/``ValueError`` when ``x`` is not a batch this model takes."""
        fixed = self.fixed_input_size and getattr(self, "input_size", None) is not None
        check_image_batch(
            x,
            name=self.model_name,
            in_channels=self.in_channels,
            # a subclass that states no size gets the channel and dtype checks only
            min_input_size=getattr(self, "min_input_size", None),
            fixed_input_size=self.input_size[1:] if fixed else None,
            small_input_hint=self._small_input_hint(),
        )

    def _small_input_hint(self) -> str:
        """Suggest ``small_input=True`` where the model has it and it is off."""
        if getattr(self, "small_input", None) is False:
            return ", or build the model with small_input=True for 28x28 and 32x32 images"
        return ""

    # -- stages ----------------------------------------------------------------------------------
    def _set_stages(self, plan: Sequence[str], stages: Sequence[tuple[str, int, int]]) -> None:
        """Declare the trunk as a plan of modules and the stages it passes through.

        Args:
            plan: Dotted module names that ``forward_features`` applies, in order.
            stages: ``(module, channels, reduction)`` of the module ending each stage, in plan
                order.
        """
        names = [module for module, _, _ in stages]
        if not set(names) <= set(plan):
            raise ValueError(f"stage modules {names} are not all in the trunk plan {list(plan)}")
        self.trunk_plan = list(plan)
        self.feature_info = FeatureInfo(
            [{"num_chs": c, "reduction": r, "module": m} for m, c, r in stages]
        )

    def _require_stages(self, what: str) -> None:
        if not len(self.feature_info):
            raise ValueError(
                f"{self.model_name} has no stages for {what}: its fixed-size head makes it a "
                "classifier only. Use forward_features(x) for its last feature map, or a family "
                "with stages (alexnet, vgg, googlenet, resnet, densenet) as a backbone"
            )

    def forward_intermediates(
        self,
        x: torch.Tensor,
        indices: int | Sequence[int] | None = None,
        norm: bool = False,
        stop_early: bool = False,
        output_fmt: str = "NCHW",
        intermediates_only: bool = False,
    ) -> list[torch.Tensor] | tuple[torch.Tensor, list[torch.Tensor]]:
        """Return the feature maps of the stages ``indices`` (timm's signature).

        Args:
            x: Images ``(N, in_channels, H, W)``.
            indices: ``None`` for every stage, an int ``n`` for the last ``n``, or stage numbers
                (see ``feature_info``).
            norm: Accepted for timm's signature; the models have no separate final norm to
                apply (DenseNet's ``norm5`` belongs to its last stage), so it changes nothing.
            stop_early: Stop after the last stage asked for; the returned final map is then
                that stage's output instead of ``forward_features``'s.
            output_fmt: ``"NCHW"`` or ``"NHWC"`` (channels last) for the intermediates.
            intermediates_only: Return only the list of intermediates.

        Returns:
            ``(final, intermediates)``: the ``forward_features`` output and the list of stage
            outputs; or only the list.

        Raises:
            ValueError: No stages, indices out of range, or an unknown ``output_fmt``.
        """
        self._require_stages("forward_intermediates")
        if output_fmt not in ("NCHW", "NHWC"):
            raise ValueError(f"output_fmt must be 'NCHW' or 'NHWC', got {output_fmt!r}")
        self.check_eager_input(x)
        chosen = take_indices(self.model_name, len(self.feature_info), indices)
        names = self.feature_info.module_name(chosen)
        stop = names[-1] if stop_early or intermediates_only else None
        final, outputs = run_trunk(
            self,
            self.trunk_plan,
            x,
            collect=names,
            stop_after=stop,
            checkpoint_at=self._checkpoint_cuts(),
        )
        if output_fmt == "NHWC":
            outputs = [t.permute(0, 2, 3, 1) for t in outputs]
        if intermediates_only:
            return outputs
        return self._finish_trunk(final) if stop is None else final, outputs

    def _finish_trunk(self, x: torch.Tensor) -> torch.Tensor:
        """What ``forward_features`` applies after the plan's modules (nothing by default)."""
        return x

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute each stage's activations in the backward pass instead of storing them.

        Uses ``torch.utils.checkpoint`` (non-reentrant), one checkpoint per stage: much less
        memory for a little more compute, with the same gradients. Norm layers keep the running
        statistics of the real forward pass (not updated again by the recomputation).

        Args:
            enable: Turn checkpointing on (``True``) or off.

        Raises:
            ValueError: The model has no stages to checkpoint.
        """
        if enable:
            self._require_stages("gradient checkpointing")
        self.grad_checkpointing = bool(enable)

    def _checkpoint_cuts(self) -> list[str]:
        """The stage ends that cut the trunk into checkpoints (none when it is off)."""
        if not self.grad_checkpointing:
            return []
        return [entry["module"] for entry in self.feature_info]

    @torch.jit.unused
    def forward_features_checkpointed(self, x: torch.Tensor) -> torch.Tensor:
        """``forward_features`` with one gradient checkpoint per stage."""
        final, _ = run_trunk(self, self.trunk_plan, x, checkpoint_at=self._checkpoint_cuts())
        return self._finish_trunk(final)
