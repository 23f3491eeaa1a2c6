"""Backbones the timm way: ``get(name, features_only=True, out_indices=...)``.

``FeatureListNet`` keeps the trunk of a model with stages (the modules its trunk plan runs, up to
the deepest stage asked for) under their own names, so its state dict is the model's without the
head, and returns the feature map of every selected stage as a list, shallowest first. Its
``feature_info`` says the channels, stride and module name of each, as timm's does.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .base import ZooModel
from .checks import check_image_batch, is_eager
from .stages import FeatureInfo, run_trunk, take_indices

__all__ = ["FeatureListNet"]


class FeatureListNet(nn.Module):
    """The trunk of ``model``, returning the feature maps of the stages ``out_indices``.

    Args:
        model: A cnnzoo model with stages (``model.feature_info`` not empty).
        out_indices: Stage numbers (negative ones count from the end), an int ``n`` for the
            last ``n`` stages, or ``None`` for all.

    Raises:
        ValueError: The model has no stages, or ``out_indices`` is out of range.

    Attributes:
        feature_info: A ``FeatureInfo`` selecting ``out_indices``: ``channels()``,
            ``reduction()``, ``module_name()``.
        out_indices: The selected stage numbers, sorted.
    """

    def __init__(self, model: nn.Module, out_indices: int | Sequence[int] | None = None) -> None:
        super().__init__()
        name = getattr(model, "model_name", type(model).__name__)
        if not isinstance(model, ZooModel):
            raise ValueError(
                f"features_only needs a cnnzoo model with stages (a ZooModel with feature_info); "
                f"{name} is a {type(model).__name__}"
            )
        model._require_stages("features_only")
        chosen = take_indices(name, len(model.feature_info), out_indices)
        self.out_indices = tuple(chosen)
        self.feature_info: FeatureInfo = model.feature_info.from_other(chosen)
        self.return_layers: list[str] = self.feature_info.module_name()
        plan = model.trunk_plan
        self.plan: list[str] = plan[: plan.index(self.return_layers[-1]) + 1]
        self._adopt_trunk(model)

        self.model_name = name
        self.in_channels = model.in_channels
        self.input_size = model.input_size
        self.min_input_size = model.min_input_size
        self.fixed_input_size = model.fixed_input_size
        self.small_input_hint = model._small_input_hint()
        self.grad_checkpointing = False

    def _adopt_trunk(self, model: nn.Module) -> None:
        """Register the model's modules the plan uses, under the same names.

        A ``Sequential`` the plan enters is cut after its last module in use; slicing keeps its
        keys (``features.0`` ... ``features.k``), so the state dict keeps the model's names.
        """
        used: dict[str, list[str]] = {}
        for path in self.plan:
            top, _, rest = path.partition(".")
            used.setdefault(top, []).append(rest)
        for top, inner in used.items():
            child = model.get_submodule(top)
            if all(inner) and isinstance(child, nn.Sequential):
                names = list(child._modules)
                last = max(names.index(path.split(".")[0]) for path in inner)
                child = child[: last + 1]
            self.add_module(top, child)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Return the feature maps of the selected stages, shallowest first."""
        if is_eager(x):
            self.check_input(x)
        cuts = self.return_layers if self.grad_checkpointing else []
        _, outputs = run_trunk(self, self.plan, x, collect=self.return_layers, checkpoint_at=cuts)
        return outputs

    def check_input(self, x: torch.Tensor) -> None:
        """Raise a clear ``TypeError``/``ValueError`` when ``x`` is not a batch the trunk takes."""
        check_image_batch(
            x,
            name=self.model_name,
            in_channels=self.in_channels,
            min_input_size=self.min_input_size,
            fixed_input_size=self.input_size[1:] if self.fixed_input_size else None,
            small_input_hint=self.small_input_hint,
        )

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute each stage's activations in the backward pass instead of storing them."""
        self.grad_checkpointing = bool(enable)
