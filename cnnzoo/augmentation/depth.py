"""Stochastic depth (Huang et al., 2016, "Deep Networks with Stochastic Depth") for any model.

While training, each residual branch is dropped for a random share of the samples (its output
zeroed, the survivors scaled up by ``1 / (1 - p)``: torchvision's ``StochasticDepth`` in "row"
mode), so the block passes its shortcut alone; the drop rate grows linearly with depth, from
``rate / L`` at the first block to ``rate`` at the last (the paper's linear decay). In eval mode
nothing changes. A block says where its residual branch ends with a class attribute,
``drop_path_site``, naming the submodule whose output is the branch ("" for the block's own
output): ``bn2`` of ResNet's basic block, ``bn3`` of its bottleneck, ``conv2`` of the tutorial's
residual block and the whole DenseNet layer, whose new features are dropped before they join
the concatenation. GoogLeNet's Inception modules have no shortcut (their branches are
concatenated, nothing passes around them), so stochastic depth does not apply to them.

Nothing is added to the model: forward hooks do the dropping, and they are removed when the
context ends, so parameter counts, state dicts and saved files stay exactly those of the model.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

__all__ = ["check_drop_path", "check_drop_path_rate", "drop_path_sites", "stochastic_depth"]


def check_drop_path_rate(value: object) -> None:
    """Refuse a drop-path rate outside [0, 1).

    Raises:
        ValueError: naming the values it takes.
    """
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not number or not 0 <= value < 1:  # type: ignore[operator]
        raise ValueError(
            f"drop_path_rate must be a number in [0, 1) (the drop rate of the deepest block; "
            f"0.1 is a usual value, 0 turns it off), got {value!r}"
        )


def drop_path_sites(model: nn.Module) -> list[nn.Module]:
    """The modules whose output is a residual branch, in the order the model holds them."""
    sites = []
    for module in model.modules():
        site = getattr(type(module), "drop_path_site", None)
        if isinstance(site, str):
            sites.append(module.get_submodule(site))
    return sites


@contextlib.contextmanager
def stochastic_depth(model: nn.Module, rate: float) -> Iterator[list[float]]:
    """Drop residual branches at random while ``model`` trains, inside the ``with`` block.

    Args:
        model: A model with residual or dense blocks (ResNet, DenseNet, mini_resnet, or blocks
            of your own declaring ``drop_path_site``).
        rate: Drop rate of the deepest block, in [0, 1); 0 changes nothing.

    Yields:
        The drop rate of each block, shallowest first (empty for rate 0).

    Raises:
        ValueError: A rate outside [0, 1), or a model with no residual branch to drop.
    """
    check_drop_path(model, rate)
    if rate == 0:
        yield []
        return
    sites = drop_path_sites(model)
    rates = [rate * (i + 1) / len(sites) for i in range(len(sites))]
    handles = [
        site.register_forward_hook(_dropper(p)) for site, p in zip(sites, rates, strict=True)
    ]
    try:
        yield rates
    finally:
        for handle in handles:
            handle.remove()


def check_drop_path(model: nn.Module, rate: object) -> None:
    """Refuse a rate outside [0, 1), or a rate above 0 for a model without residual branches.

    Raises:
        ValueError: naming the problem and the fix.
    """
    check_drop_path_rate(rate)
    if rate and not drop_path_sites(model):
        raise ValueError(
            f"drop_path_rate={rate} needs residual or dense blocks to drop, and "
            f"{getattr(model, 'model_name', type(model).__name__)} has none (stochastic depth "
            "drops a block's branch so its shortcut carries the signal; GoogLeNet, VGG, AlexNet "
            "and the plain tutorial nets have no shortcut). Use drop_path_rate=0, or declare "
            "drop_path_site on your own blocks"
        )


def _dropper(p: float) -> Any:
    from torchvision.ops import stochastic_depth as drop

    def hook(module: nn.Module, inputs: Any, output: torch.Tensor) -> torch.Tensor:
        # The model's mode decides, not the site's: fit and users call model.train()/eval().
        return drop(output, p, "row", module.training)

    return hook


def check_regularisation(mixup: object, cutmix: object, drop_path_rate: object) -> None:
    """Check fit's ``mixup``, ``cutmix`` and ``drop_path_rate`` values (not yet the model).

    Raises:
        ValueError: naming the option and the values it takes.
    """
    from .mixing import check_alpha

    check_alpha("mixup", mixup)
    check_alpha("cutmix", cutmix)
    check_drop_path_rate(drop_path_rate)
