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
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import torch
import torch.utils.checkpoint
from torch import nn

from ..data import DataConfig

__all__ = [
    "POOL_TYPES",
    "FeatureInfo",
    "ZooModel",
    "check_global_pool",
    "check_image_batch",
    "check_size_argument",
    "classifier_head",
    "is_eager",
    "keep_norm_statistics",
    "pool_layer",
    "resolve_drop_rate",
    "run_modules",
    "take_indices",
]

# The smallest value each size argument may take: 0 classes means "no classifier, features out".
_MINIMUM = {"num_classes": 0, "in_channels": 1}
# The pooling a head may use before its classifier ("" keeps the feature map unpooled).
POOL_TYPES = ("avg", "max", "")


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


def resolve_drop_rate(
    model_name: str, drop_rate: float, dropout: float | None, default: float
) -> float:
    """The classifier dropout probability, from ``drop_rate`` or its older name ``dropout``.

    ``dropout`` was the option's name before ``drop_rate`` (timm's) replaced it; it stays
    accepted so existing code and saved configurations keep building the same model.

    Args:
        model_name: The model, named in messages.
        drop_rate: The ``drop_rate`` argument.
        dropout: The ``dropout`` argument (``None`` when not given).
        default: The builder's default ``drop_rate``, to tell a given one from the default.

    Raises:
        TypeError: Not a number.
        ValueError: Outside ``[0, 1)``, or both names given with different values.
    """
    if dropout is not None:
        if drop_rate != default and drop_rate != dropout:
            raise ValueError(
                f"{model_name} got drop_rate={drop_rate!r} and dropout={dropout!r}; dropout is "
                "the older name of drop_rate, give only drop_rate"
            )
        drop_rate = dropout
    if isinstance(drop_rate, bool) or not isinstance(drop_rate, (int, float)):
        raise TypeError(f"drop_rate must be a number in [0, 1) for {model_name}, got {drop_rate!r}")
    if not 0.0 <= drop_rate < 1.0:
        raise ValueError(f"drop_rate must be in [0, 1) for {model_name}, got {drop_rate!r}")
    return float(drop_rate)


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


# -- input checks, eager mode only ----------------------------------------------------------------
def is_eager(x: torch.Tensor) -> bool:
    """True when ``x`` is a real tensor run eagerly, not traced, compiled or exported.

    A tracer sees shape checks as data-dependent control flow (``torch.fx``), warns about them
    (``torch.jit.trace``) or bakes them into guards (``torch.compile``, ``torch.export``); the
    checks exist for people, who run models eagerly.
    """
    return not (
        isinstance(x, torch.fx.Proxy) or torch.jit.is_tracing() or torch.compiler.is_compiling()
    )


def check_image_batch(
    x: Any,
    *,
    name: str,
    in_channels: int,
    min_input_size: Sequence[int] | None,
    fixed_input_size: Sequence[int] | None = None,
    small_input_hint: str = "",
) -> None:
    """Raise a clear error when ``x`` is not a batch of images a model can take.

    Args:
        x: The input.
        name: The model, named in the messages.
        in_channels: The channels the model expects.
        min_input_size: The smallest ``(H, W)`` accepted, or ``None`` when unknown.
        fixed_input_size: The only ``(H, W)`` accepted, for fixed-size heads; else ``None``.
        small_input_hint: Extra advice appended to the too-small message.

    Raises:
        TypeError: ``x`` is not a tensor, or not floating point (e.g. ``uint8`` pixels).
        ValueError: Wrong number of dimensions, channels or image size.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} expects a torch.Tensor of images, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(
            f"{name} expects floating-point images, got a {x.dtype} tensor. Convert them first, "
            "e.g. x.float() / 255 for 8-bit pixels, normalised as the model was trained (its "
            "data configuration), or let cnnzoo.predict/evaluate convert them."
        )
    if x.dim() != 4:
        hint = " Add a batch dimension with x.unsqueeze(0)." if x.dim() == 3 else ""
        raise ValueError(
            f"{name} expects a batch of images shaped (N, C, H, W); got shape "
            f"{tuple(x.shape)}.{hint}"
        )
    channels, height, width = x.shape[1], x.shape[2], x.shape[3]
    if channels != in_channels and x.shape[3] == in_channels:
        raise ValueError(
            f"{name} expects images shaped (N, C, H, W) with C={in_channels}; got shape "
            f"{tuple(x.shape)}, which looks channels-last (N, H, W, C), as NumPy and PIL store "
            "images. Permute them: x.permute(0, 3, 1, 2) (one (H, W, C) image: "
            "x.permute(2, 0, 1).unsqueeze(0)), or pass NumPy arrays to cnnzoo.predict, which "
            "reads them channels-last."
        )
    if channels != in_channels:
        raise ValueError(
            f"{name} expects {in_channels} input channel(s), got {channels} (input shape "
            f"{tuple(x.shape)}). Convert the images, or build the model with "
            f"in_channels={channels}."
        )
    if fixed_input_size is not None:
        expected = tuple(fixed_input_size)
        if (height, width) != expected:
            raise ValueError(
                f"{name} takes exactly {expected[0]}x{expected[1]} images (its head is a "
                f"fixed-size Linear layer); got {height}x{width}. Resize the images to "
                f"{expected[0]}x{expected[1]}."
            )
        return
    if min_input_size is None:
        return
    min_h, min_w = min_input_size
    if height < min_h or width < min_w:
        raise ValueError(
            f"{name} needs images of at least {min_h}x{min_w}; got {height}x{width}. Resize "
            "the images up" + small_input_hint + "."
        )


# -- stages: feature_info, intermediate outputs, gradient checkpointing --------------------------
class FeatureInfo:
    """What each stage of a model outputs, with timm's ``FeatureInfo`` interface.

    Each entry is a dict with ``num_chs`` (channels), ``reduction`` (total stride from the input)
    and ``module`` (the dotted name of the module whose output it is, usable as a
    ``torchvision.models.feature_extraction`` return node), plus its ``index``. Indexing and
    iterating give those dicts; ``channels()``, ``reduction()`` and ``module_name()`` give one
    value per selected stage (``out_indices``), or for the stages ``idx`` names.

    Args:
        info: One dict per stage, shallowest first.
        out_indices: The stages a feature extractor returns (default: all).
    """

    def __init__(
        self, info: Sequence[Mapping[str, Any]], out_indices: Sequence[int] | None = None
    ) -> None:
        self.info = [{**entry, "index": i} for i, entry in enumerate(info)]
        self.out_indices = tuple(range(len(self.info)) if out_indices is None else out_indices)

    def from_other(self, out_indices: Sequence[int]) -> FeatureInfo:
        """The same stages with another selection."""
        return FeatureInfo(self.info, out_indices)

    def get(self, key: str, idx: int | Sequence[int] | None = None) -> Any:
        """``key`` of the selected stages (a list), or of stage ``idx`` (one value or a list)."""
        if idx is None:
            return [self.info[i][key] for i in self.out_indices]
        if isinstance(idx, (tuple, list)):
            return [self.info[i][key] for i in idx]
        return self.info[idx][key]

    def get_dicts(
        self, keys: Sequence[str] | None = None, idx: int | Sequence[int] | None = None
    ) -> Any:
        """The entries (restricted to ``keys``) of the selected stages, or of ``idx``."""
        indices = self.out_indices if idx is None else idx
        pick = (lambda d: dict(d)) if keys is None else (lambda d: {k: d[k] for k in keys})
        if isinstance(indices, (tuple, list)):
            return [pick(self.info[i]) for i in indices]
        return pick(self.info[indices])

    def channels(self, idx: int | Sequence[int] | None = None) -> Any:
        """Channels of the selected stages (or of ``idx``)."""
        return self.get("num_chs", idx)

    def reduction(self, idx: int | Sequence[int] | None = None) -> Any:
        """Total stride of the selected stages (or of ``idx``)."""
        return self.get("reduction", idx)

    def module_name(self, idx: int | Sequence[int] | None = None) -> Any:
        """Module names of the selected stages (or of ``idx``)."""
        return self.get("module", idx)

    def __getitem__(self, item: int) -> dict[str, Any]:
        return self.info[item]

    def __len__(self) -> int:
        return len(self.info)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.info)

    def __repr__(self) -> str:
        stages = ", ".join(f"{d['module']}: {d['num_chs']}ch /{d['reduction']}" for d in self.info)
        return f"FeatureInfo([{stages}], out_indices={self.out_indices})"


def take_indices(name: str, num_stages: int, indices: int | Sequence[int] | None) -> list[int]:
    """Turn timm's ``indices``/``out_indices`` into sorted stage numbers.

    Args:
        name: The model, for messages.
        num_stages: How many stages it has.
        indices: ``None`` for all stages, an int ``n`` for the last ``n``, or stage numbers
            (negative ones count from the end).

    Raises:
        ValueError: An index out of range, a count out of range, or not integers.
    """
    if indices is None:
        return list(range(num_stages))
    if isinstance(indices, int) and not isinstance(indices, bool):
        if not 1 <= indices <= num_stages:
            raise ValueError(
                f"{name} has {num_stages} stages: an int selects the last n, 1 <= n <= "
                f"{num_stages}; got {indices}"
            )
        return list(range(num_stages - indices, num_stages))
    if isinstance(indices, (str, bytes)) or not isinstance(indices, Sequence) or not indices:
        raise ValueError(
            f"indices must be None, an int, or a non-empty list of stage numbers, got {indices!r}"
        )
    chosen = set()
    for index in indices:
        if isinstance(index, bool) or not isinstance(index, int):
            raise ValueError(f"stage indices must be integers, got {index!r} in {indices!r}")
        if not -num_stages <= index < num_stages:
            raise ValueError(
                f"{name} has {num_stages} stages (0..{num_stages - 1}, or negative from the "
                f"end); got index {index}"
            )
        chosen.add(index % num_stages)
    return sorted(chosen)


@contextlib.contextmanager
def keep_norm_statistics(modules: Sequence[nn.Module]) -> Iterator[None]:
    """Undo, on exit, any change to the running statistics of the norm layers in ``modules``.

    Gradient checkpointing runs the forward pass a second time during backward; without this
    every BatchNorm would take that second pass into its running mean and variance, and a
    checkpointed model would end training with other statistics than the same model trained
    plainly.
    """
    buffers = [
        buffer
        for module in modules
        for norm in module.modules()
        if getattr(norm, "track_running_stats", False)  # BatchNorm, SyncBatchNorm, InstanceNorm
        for buffer in (norm.running_mean, norm.running_var, norm.num_batches_tracked)
        if buffer is not None
    ]
    saved = [buffer.clone() for buffer in buffers]
    try:
        yield
    finally:
        with torch.no_grad():
            for buffer, value in zip(buffers, saved, strict=True):
                buffer.copy_(value)


def checkpointed(
    function: Callable[..., torch.Tensor], modules: Sequence[nn.Module], *args: Any
) -> torch.Tensor:
    """``function(*args)`` under ``torch.utils.checkpoint`` (non-reentrant).

    Activations inside are recomputed in the backward pass instead of stored; the norm layers
    of ``modules`` keep the statistics of the one real forward pass.
    """

    def contexts() -> tuple[contextlib.AbstractContextManager, contextlib.AbstractContextManager]:
        return contextlib.nullcontext(), keep_norm_statistics(modules)

    return torch.utils.checkpoint.checkpoint(
        function, *args, use_reentrant=False, context_fn=contexts
    )


def run_modules(root: nn.Module, paths: Sequence[str], x: torch.Tensor) -> torch.Tensor:
    """Apply the submodules of ``root`` named by ``paths``, in order."""
    for path in paths:
        x = root.get_submodule(path)(x)
    return x


def run_trunk(
    root: nn.Module,
    plan: Sequence[str],
    x: torch.Tensor,
    *,
    collect: Sequence[str] = (),
    stop_after: str | None = None,
    checkpoint_at: Sequence[str] = (),
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Run a trunk plan, keeping the outputs of the modules named in ``collect``.

    Args:
        root: The module the plan's dotted names are relative to.
        plan: Module names, in the order ``forward_features`` applies them.
        x: The input.
        collect: Names (in plan order) whose outputs to return.
        stop_after: Stop after this module instead of running the whole plan.
        checkpoint_at: Stage-ending names that cut the plan into segments run under gradient
            checkpointing (empty: no checkpointing).

    Returns:
        The last output and the collected ones.
    """
    end = plan.index(stop_after) + 1 if stop_after is not None else len(plan)
    cuts = set(collect) | set(checkpoint_at)
    segment: list[str] = []
    collected: list[torch.Tensor] = []
    for position, path in enumerate(plan[:end]):
        segment.append(path)
        if path in cuts or position == end - 1:
            if checkpoint_at and torch.is_grad_enabled():
                modules = [root.get_submodule(p) for p in segment]
                x = checkpointed(lambda t, s=tuple(segment): run_modules(root, s, t), modules, x)
            else:
                x = run_modules(root, segment, x)
            segment = []
            if path in collect:
                collected.append(x)
    return x, collected


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
            self.pretrained_cfg = {**config, "num_classes": num_classes, "label_names": None}

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
