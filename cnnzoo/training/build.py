"""Build the :class:`Run` of a ``fit`` call: data feed, model, optimizer, schedule, callbacks."""

from __future__ import annotations

import math
import warnings
from typing import Any, Literal

import torch
from torch import nn
from torch.utils.data import DataLoader

from ..augmentation import BatchMix, check_drop_path, make_augment
from ..checkpoint import peek_training_state
from .arguments import FitConfig, auto
from .budget import DEFAULT_BATCH_SIZE, BatchChoice, choose
from .callbacks import in_call_order
from .collapse import CollapseWatch, label_entropy, majority_share
from .contract import check_classifier, fit_rule, image_reading, model_data_config, record
from .data_start import initialise_from_data
from .distributed import Distributed
from .ema import ExponentialMovingAverage
from .evaluation import check_label_range, infer_num_classes, input_dtype
from .feed import (
    Batches,
    LoaderBatches,
    ModelInput,
    Source,
    Streamed,
    make_batches,
    resolve,
    split,
)
from .history import History
from .hooks import CallbackList
from .losses import CrossEntropy, training_forward
from .monitor import Monitor
from .norm_stats import has_batch_norm
from .optimizers import DEFAULT_LR, make_optimizer, make_scheduler, steps_per_epoch_end
from .precision import resolve_precision
from .progress import ProgressBar
from .recipes import DefaultRate, default_rate, model_recipe
from .resume import run_settings
from .run import Run
from .shortcuts import shortcut_callbacks

__all__ = ["build_run"]

# torch.compile repays its compile time only on runs at least this long (CUDA).
_COMPILE_MIN_STEPS = 2000


def build_run(
    model: nn.Module,
    train_data: Any,
    val_data: Any,
    config: FitConfig,
    dist: Distributed,
    device: torch.device,
) -> Run:
    """Everything one ``fit`` call trains with, checked before the first step.

    Args:
        model: The model; moved to ``device`` (and to channels-last when that is on).
        train_data: ``fit``'s ``train_data``.
        val_data: ``fit``'s ``val_data``: data, a fraction of ``train_data``, or None.
        config: The other options.
        dist: This process's place in a ``torchrun`` run.
        device: Where training runs.

    Returns:
        The :class:`Run`.

    Raises:
        ValueError: Bad options, empty data, labels outside ``[0, num_classes)``, or images the
            model cannot take (from one probe forward pass).
    """
    check_classifier(model, "fit")
    check_drop_path(model, config.drop_path_rate)
    _check_optimizer_trains(config.optimizer, model)
    seed = config.seed
    dtype = resolve_precision(config.precision, device)
    data_config = model_data_config(model)
    reading = image_reading(model, data_config)
    train_source = resolve(train_data, what="train_data", reading=reading)
    val_source: Source | None
    if isinstance(val_data, float):
        train_source, val_source = split(train_source, val_data, seed)
    else:
        val_source = (
            None if val_data is None else resolve(val_data, what="val_data", reading=reading)
        )
    # The model's normalisation, else the training data's: recorded on the model below.
    normalisation = fit_rule(data_config, train_source.facts)
    built_callbacks = shortcut_callbacks(config, has_validation=val_source is not None)
    resumed = _resumed(config)
    batch = _batch_size(config, train_source, dist, resumed, model)

    # channels_last measured 1.4-1.6x faster training steps on CPU (lenet5, mini_resnet,
    # cifar_cnn; resnet18 even) and is the fast layout for CUDA convolutions too.
    fast_layout = device.type in ("cpu", "cuda")
    channels_last = auto(config.channels_last, fast_layout, "channels_last")
    model.to(device)

    def batches(source: Any, train: bool) -> Batches:
        what = "train_data" if train else "val_data"
        return make_batches(
            source,
            rule=ModelInput(source.facts, normalisation, what),
            what=what,
            input_dtype=input_dtype(model),
            train=train,
            augment=make_augment(config.augment, normalisation) if train else None,
            shard=dist.shard,
            device=device,
            batch_size=batch.size,
            seed=seed,
            channels_last=channels_last,
            num_workers=config.num_workers,
        )

    train_batches = batches(train_source, train=True)
    val_batches = None if val_source is None else batches(val_source, train=False)
    if len(train_batches) == 0:
        raise ValueError("train_data is empty: it yields no batches")

    # One probe forward: the model's own error for wrong images, before any training.
    num_classes = infer_num_classes(model, train_batches, dtype)
    # After the probe: it also gives lazy layers (nn.LazyLinear) their shapes, which the
    # channels-last conversion needs.
    if channels_last:
        model.to(memory_format=torch.channels_last)
    for what, fed in (("train_data", train_batches), ("val_data", val_batches)):
        _install_label_check(fed, num_classes, what)
    record(
        model, data_config, train_source.facts, normalisation, train_batches.example(), num_classes
    )

    rate = _peak_rate(model, config, resumed, batch)
    optimizer = make_optimizer(config.optimizer, model, rate.lr, config.weight_decay)
    settings = run_settings(config, optimizer, val_data, train_batches, val_batches)
    settings["batch_size"] = batch.size
    # The schedule counts optimizer steps: one per `accumulate` batches (and one for the rest).
    total_steps = config.epochs * math.ceil(len(train_batches) / config.accumulate)
    scheduler = make_scheduler(
        config.schedule,
        optimizer,
        total_steps,
        warmup=config.warmup,
        mode=_plateau_mode(config),
    )
    if steps_per_epoch_end(scheduler):
        _check_plateau_monitor(config.monitor, has_validation=val_source is not None)
    scaler = torch.amp.GradScaler(device.type) if dtype == torch.float16 else None
    loss_fn = CrossEntropy(config.label_smoothing) if config.loss_fn is None else config.loss_fn
    if isinstance(loss_fn, nn.Module):
        loss_fn.to(device)  # a loss with weights (class weights) lives where the logits are
    # After every check that can refuse the call (a refused fit leaves the model as built),
    # before the moving average copies the weights and DDP broadcasts rank 0's.
    data_init = initialise_from_data(model, train_batches)
    decay = config.ema_decay
    ema = None if decay is None else ExponentialMovingAverage(model, decay)

    # Models with auxiliary heads (GoogLeNet) train through forward_with_aux.
    train_model = dist.wrap(training_forward(model), device)
    long_enough = device.type == "cuda" and total_steps >= _COMPILE_MIN_STEPS
    if auto(config.compile, long_enough, "compile"):
        # torch.compile returns the module wrapped (an OptimizedModule); its stub says a callable
        train_model = torch.compile(train_model)  # type: ignore[assignment]

    schedule = config.schedule
    history = History(
        {
            "epochs": config.epochs,
            "batch_size": batch.size,
            "batch_size_source": batch.source,
            "steps": len(train_batches),
            "optimizer": type(optimizer).__name__,
            "lr": settings["lr"],  # the peak: read before the schedule lowered it to start
            "lr_source": rate.source,
            "schedule": schedule if isinstance(schedule, str | None) else "custom",
            "device": str(device),
            "precision": str(dtype or "fp32"),
            "channels_last": channels_last,
            "world_size": dist.world_size,
            "accumulate": config.accumulate,
            "grad_clip": config.grad_clip,
            "ema": decay,
            "data_init": data_init,
        }
    )
    # The EMA swaps the training weights back in at on_epoch_begin, before any other callback.
    first = [] if ema is None else [ema]
    callbacks = CallbackList(in_call_order([*first, *built_callbacks, *config.callbacks]))
    watch = CollapseWatch(
        num_classes=num_classes,
        train_chance=majority_share(train_batches.labels, num_classes),
        val_chance=None if val_batches is None else _val_chance(val_batches, num_classes),
        default_loss=config.loss_fn is None,
        lr_source=rate.source,
        label_entropy=label_entropy(train_batches.labels, num_classes),
        val_images=None if val_batches is None else val_batches.num_samples,
    )
    return Run(
        config=config,
        model=model,
        train_model=train_model,
        optimizer=optimizer,
        scheduler=scheduler,
        scaler=scaler,
        history=history,
        device=device,
        dtype=dtype,
        dist=dist,
        train_batches=train_batches,
        val_batches=val_batches,
        num_classes=num_classes,
        callbacks=callbacks,
        progress=ProgressBar(config.verbose, config.epochs, enabled=dist.is_main),
        loss_fn=loss_fn,
        ema=ema,
        settings=settings,
        watch=watch,
        # Streamed and DataLoader data too: the same answers as in memory (16 batches read again).
        recalibrate_norms=ema is None and has_batch_norm(model),
        mix=_batch_mix(config, num_classes),
    )


def _batch_mix(config: FitConfig, num_classes: int) -> BatchMix | None:
    if config.mixup == 0 and config.cutmix == 0:
        return None
    return BatchMix(config.mixup, config.cutmix, num_classes, config.seed)


def _samples(train: Source, dist: Distributed) -> int | None:
    """Training samples per process, or None for data of no known length (an iterable)."""
    try:
        return len(train) // dist.world_size
    except TypeError:
        return None


def _resumed(config: FitConfig) -> dict[str, Any] | None:
    """The settings of the run ``resume=True`` continues (None when there is none to read).

    A resumed run keeps the batch size and rate fit chose for it at its start, even when more
    epochs would now choose others. A state that cannot be read is refused with its own message
    when the run begins.
    """
    if not (config.resume and config.checkpoint_dir is not None):
        return None
    try:
        found = peek_training_state(config.checkpoint_dir)
    except (OSError, ValueError):
        return None
    return None if found is None else dict(found.settings)


def _batch_size(
    config: FitConfig,
    train: Source,
    dist: Distributed,
    resumed: dict[str, Any] | None,
    model: nn.Module,
) -> BatchChoice:
    """The batch size asked for; else a resumed run's own, else one sized by the budget.

    A user's ``DataLoader`` keeps its own: a different ``batch_size`` is warned about, not used.
    """
    if isinstance(train, Streamed) and isinstance(train.data, DataLoader):
        loader = train.data
        sampled = getattr(loader.batch_sampler, "batch_size", None)
        if isinstance(loader.batch_size, int):
            own = BatchChoice(loader.batch_size, "the DataLoader's own")
        elif isinstance(sampled, int):
            own = BatchChoice(sampled, "the DataLoader's batch sampler")
        else:
            return BatchChoice(
                config.batch_size or DEFAULT_BATCH_SIZE,
                "not known: the DataLoader's batch sampler sizes its batches (a placeholder)",
            )
        if config.batch_size not in (None, own.size):
            warnings.warn(
                f"fit: batch_size={config.batch_size} does not re-batch a DataLoader; it yields "
                f"batches of {own.size}. Set the loader's batch_size, or pass its dataset",
                UserWarning,
                stacklevel=4,
            )
        return own
    if config.batch_size is not None:
        return BatchChoice(config.batch_size, "given by batch_size=")
    if resumed is not None:
        saved = resumed.get("batch_size", DEFAULT_BATCH_SIZE)  # (older states record none)
        if isinstance(saved, int) and not isinstance(saved, bool) and saved >= 1:
            return BatchChoice(saved, "the resumed run's own")
    found = model_recipe(model)
    short_runs = None if found is None else found[1].short_runs
    return choose(
        _samples(train, dist), config.epochs, config.accumulate, found is not None, short_runs
    )


def _peak_rate(
    model: nn.Module, config: FitConfig, resumed: dict[str, Any] | None, batch: BatchChoice
) -> DefaultRate:
    """The peak learning rate asked for, else the model's default (see :mod:`.recipes`).

    A batch the model's short-run recipe chose trains at that recipe's rate.
    """
    if config.lr is not None:
        return DefaultRate(float(config.lr), "given by lr=")
    if not (isinstance(config.optimizer, str) and config.optimizer.lower() in DEFAULT_LR):
        return DefaultRate(None, "the optimizer's own")
    saved = None if resumed is None else resumed.get("lr")
    if isinstance(saved, float) and math.isfinite(saved) and saved > 0:
        return DefaultRate(saved, "the resumed run's own")
    return default_rate(model, config.optimizer.lower(), short_run=batch.short_run)


def _val_chance(batches: Batches, num_classes: int) -> float | None:
    """Chance accuracy of the validation labels; None when they are not known up front."""
    if batches.labels is None:
        return None
    return majority_share(batches.labels, num_classes)


def _check_optimizer_trains(optimizer: Any, model: nn.Module) -> None:
    """Refuse a built optimizer none of whose parameters is the model's: it would train nothing.

    (Parameters of the loss, say, may ride along; but not one of the model's is a run that
    reports a normal history and leaves the model as it was.)
    """
    if not isinstance(optimizer, torch.optim.Optimizer):
        return
    own = {id(p) for p in model.parameters()}
    given = [p for group in optimizer.param_groups for p in group["params"]]
    if not any(id(p) in own for p in given):
        raise ValueError(
            f"the {type(optimizer).__name__} given to fit holds {len(given)} parameters, none of "
            "them the model's (it was built over another model, or over a copy), so training "
            "would leave the model unchanged; build it over this model: "
            f"torch.optim.{type(optimizer).__name__}(model.parameters(), ...)"
        )


def _plateau_mode(config: FitConfig) -> Literal["min", "max"]:
    """The direction of ``monitor`` for schedule="plateau" (other schedules need none)."""
    schedule = config.schedule
    if isinstance(schedule, str) and schedule.lower() == "plateau":
        return "max" if Monitor(config.monitor).higher_is_better else "min"
    return "min"


def _check_plateau_monitor(monitor: str, has_validation: bool) -> None:
    """schedule="plateau" watches ``monitor``: refuse one the run will not record."""
    recorded = ("loss", "accuracy", *(("val_loss", "val_accuracy") if has_validation else ()))
    if monitor not in recorded:
        hint = "pass val_data (e.g. val_data=0.1) or " if monitor.startswith("val_") else ""
        raise ValueError(
            f"schedule='plateau' watches monitor={monitor!r}, which this run does not record; "
            f"{hint}choose one of {list(recorded)}"
        )


def _install_label_check(batches: Batches | None, num_classes: int, what: str) -> None:
    """Check all labels now when known, else on each DataLoader batch as it arrives."""
    if batches is None:
        return
    if batches.labels is not None:
        check_label_range(batches.labels, num_classes, what)
    elif isinstance(batches, LoaderBatches):
        batches.check_labels = lambda y: check_label_range(y, num_classes, what)
