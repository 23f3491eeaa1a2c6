"""``fit``: the training loop.

The loop keeps the device busy: batches come from the feed (:mod:`cnnzoo.training.feed`) already
on the device, metrics accumulate in device tensors and are read back (one sync) only when the
progress display updates, and validation runs without gradients on the unwrapped model. What
happens around the epochs (best weights, early stopping, resumable state) is callbacks'
business: :mod:`cnnzoo.training.callbacks`.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from ..augmentation import stochastic_depth
from ..devices import resolve_device
from . import distributed
from .arguments import DEFAULT_EPOCHS, FitConfig
from .build import build_run
from .evaluation import accumulate as accumulate_metrics
from .evaluation import summarize
from .history import History
from .losses import LossFn, as_float, check_loss, main_logits
from .norm_stats import recalibrate_batch_norm
from .optimizers import OptimizerArg, steps_per_epoch_end
from .precision import autocast
from .run import Run
from .watching import watch_epoch

__all__ = ["fit"]

# Progress and the NaN check read metrics back this many times per epoch (one sync each).
_SYNCS_PER_EPOCH = 50


def fit(
    model: nn.Module,
    train_data: Any,
    val_data: Any = None,
    *,
    epochs: int = DEFAULT_EPOCHS,
    batch_size: int | None = None,
    optimizer: OptimizerArg = "adamw",
    lr: float | None = None,
    weight_decay: float | None = None,
    schedule: Any = "onecycle",
    label_smoothing: float = 0.0,
    augment: Any = None,
    device: str | torch.device = "auto",
    precision: str = "auto",
    channels_last: bool | str = "auto",
    compile: bool | str = "auto",
    seed: int = 0,
    callbacks: Iterable[Any] | None = None,
    verbose: int = 1,
    checkpoint: str | os.PathLike | None = None,
    monitor: str = "val_accuracy",
    restore_best: bool = False,
    patience: int | None = None,
    checkpoint_dir: str | os.PathLike | None = None,
    resume: bool = False,
    num_workers: int | None = None,
    loss_fn: LossFn | None = None,
    grad_clip: float | None = None,
    accumulate: int = 1,
    ema: bool | float | None = None,
    warmup: float | int | None = None,
    mixup: float = 0.0,
    cutmix: float = 0.0,
    drop_path_rate: float = 0.0,
) -> History:
    """Train a classifier.

    Args:
        model: Any ``nn.Module`` returning logits ``(N, num_classes)``; it is moved to
            ``device`` and stays there.
        train_data: An ``(images, labels)`` pair (images a tensor, a NumPy array, or a list of
            PIL images or image files), a ``Dataset`` yielding ``(image, label)``, or a
            ``DataLoader``. Tensor pairs, ``TensorDataset``s,
            :func:`cnnzoo.data.load_dataset` results and torchvision's MNIST-family datasets
            are put on the device once and batched by index (the fast path). Every form goes
            through one rule: pixels (``uint8``, or floats in [0, 1]) are scaled to [0, 1] and
            normalised with the model's mean and std (``model.pretrained_cfg``), or, for a
            model that has none yet, with the data's own (``load_dataset`` results, a
            ``Normalize`` transform; none for plain tensors). ``fit`` records that choice, the
            input size and the data's class names in ``model.pretrained_cfg``, so evaluate,
            predict and every checkpoint apply the same rule to any form of the same images.
        val_data: Validation data in the same forms, or a float in (0, 1): a seeded, shuffled
            share of ``train_data`` held out.
        epochs: Passes over the training data (the one-cycle schedule spans them all). The
            default 4 with the default peak rate reached 0.87 (LeNet-5) and 0.90 (mini_resnet)
            Fashion-MNIST test accuracy on every seed tried; longer runs end more accurate.
        batch_size: Samples per step (ignored for a ``DataLoader``). None (the default): for
            a model with a registered recipe, 128 while that leaves the run at least 80
            optimizer steps, else the largest of 64 and 32 that does (32 at the least): 2,000
            images for one epoch train at 32; for a model with none (a net of your own), 32.
            ``History.params["batch_size_source"]`` says which and why; a resumed run keeps
            its first batch size.
        optimizer: "adamw" (default), "adam", "sgd" (Nesterov, momentum 0.9), a
            ``torch.optim.Optimizer``, or a callable ``params -> optimizer``.
        lr: Peak learning rate. The default depends on the model: its registered training
            recipe (``cnnzoo.models.info(name).recipe``, from 3e-4 for AlexNet and the plain
            VGGs to 2e-2 for LeNet-5, measured on the whole zoo), else 3e-3; for adam and sgd
            their own defaults (1e-2, 0.05) scaled by the same factor.
            ``History.params["lr_source"]`` says which applied.
        weight_decay: Decay of weights (not biases or norms); default 5e-4 (adamw, sgd), 0 (adam).
        schedule: "onecycle" (default: warm-up over 25% of the steps, then linear decay),
            "cosine", "plateau" (``ReduceLROnPlateau`` on ``monitor``: the rate divided by 10
            after 2 epochs without improvement), None (constant), or
            ``callable(optimizer, total_steps) -> LRScheduler``. Schedules count optimizer
            steps (see ``accumulate``).
        label_smoothing: Label smoothing in [0, 1) of the default loss.
        augment: None; batch augmentations on the device by name, applied in order: "crop",
            "flip", "trivialaugment" (TrivialAugmentWide), "randaugment", "erasing" (random
            erasing), or several such as ``["crop", "flip", "trivialaugment"]``; or a callable
            taking the normalised batch (and optionally a ``torch.Generator``) and returning
            it augmented. See :mod:`cnnzoo.augmentation`.
        device: "auto" (cuda, then mps, then cpu) or any torch device.
        precision: "auto" (bf16 autocast on CUDA and on CPUs with native bf16, AVX-512 BF16
            or AMX; fp32 elsewhere), "fp32", "bf16" or "fp16".
        channels_last: Use the channels-last memory format for the model and its inputs; "auto"
            turns it on for CPU and CUDA (1.4-1.6x faster steps measured on CPU).
        compile: ``torch.compile`` the model; "auto" compiles only on CUDA runs long enough
            (>= 2000 steps) to repay the compile time; on CPU it is off.
        seed: Seeds torch's RNGs (dropout), the data order, the validation split and the
            augmentation. Build the model after ``torch.manual_seed(seed)`` as well for runs that
            repeat exactly.
        callbacks: Objects with any of Keras's hooks, such as :class:`ModelCheckpoint`,
            :class:`EarlyStopping` and :class:`BackupAndRestore` (see
            :mod:`cnnzoo.training.callbacks`). Under ``torchrun`` a stop requested at an
            epoch's end is agreed by all ranks (rank 0 decides); a stop in the middle of an
            epoch must be requested on every rank.
        verbose: 0 silent; 1 a bar during each epoch on a terminal or in a notebook (without
            either, a line every 10 seconds of a long epoch), then the epoch's line with every
            metric; 2 the epoch's lines only.
        checkpoint: Path of a ``.safetensors`` file that receives the best weights so far
            (by ``monitor``), written atomically with :func:`cnnzoo.save`: a shortcut for
            ``ModelCheckpoint(checkpoint, monitor)``.
        monitor: Metric for ``checkpoint``, ``restore_best``, ``patience`` and the best weights
            of ``checkpoint_dir``: "val_accuracy" (default) or "accuracy" (higher is better),
            "val_loss" or "loss" (lower is better). Rank other metrics with the callbacks and
            their ``mode=``.
        restore_best: Load the best weights back into the model at the end.
        patience: Stop after this many epochs without improvement of ``monitor``. With
            ``restore_best``, a shortcut for ``EarlyStopping(monitor, patience,
            restore_best_weights=restore_best)``.
        checkpoint_dir: Directory for the full training state, written atomically after every
            epoch so an interrupted run can resume (``BackupAndRestore(checkpoint_dir,
            resume)``); without ``checkpoint`` it also keeps the best weights (by ``monitor``,
            when the run records it) as ``best.safetensors``.
        resume: Continue from the state in ``checkpoint_dir`` if there is one.
        num_workers: DataLoader workers for datasets that are not held in memory.
        loss_fn: The loss, any callable ``(outputs, targets) -> scalar tensor`` (mean over the
            batch), such as ``nn.CrossEntropyLoss(weight=...)``. ``outputs`` are float32 logits,
            or, for a model with auxiliary heads (GoogLeNet with ``aux_logits=True``, trained
            through its ``forward_with_aux``), the tuple ``(logits, *aux)``; validation passes
            the logits alone. The default, :class:`~cnnzoo.training.CrossEntropy`, applies
            ``label_smoothing`` and adds the auxiliary losses weighted by 0.3 (the GoogLeNet
            paper).
        grad_clip: Clip the gradients' global L2 norm to this value before each optimizer step
            (``torch.nn.utils.clip_grad_norm_``; unscaled first under fp16).
        accumulate: Batches per optimizer step: gradients of ``accumulate`` batches of
            ``batch_size`` are averaged, as one batch ``accumulate`` times larger would give.
            The last group of an epoch may be shorter; it is averaged over its own batches.
        ema: Keep an exponential moving average of the weights and BatchNorm statistics:
            ``True`` (decay 0.999) or a decay in (0, 1). The average is validated, ranked and
            saved: from each epoch's end until the next epoch starts the model holds the
            averaged weights, so ``val_*`` metrics, ``checkpoint``, the best weights and
            callbacks see them, and the model keeps them after training. ``checkpoint_dir``
            keeps the training weights as well, to resume exactly.
        warmup: Linear warm-up of the learning rate for "cosine", None (then constant) or
            "onecycle" (replacing its 25%): a fraction of the optimizer steps in [0, 1) or a
            number of steps.
        mixup: Mixup's alpha (Zhang et al., 2018; 0.2 is the paper's ImageNet value), 0 off.
            The loss sees soft targets (class probabilities); ``accuracy`` is still measured
            on the images' own labels. A ``loss_fn`` must accept ``(N, C)`` probabilities.
        cutmix: CutMix's alpha (Yun et al., 2019; 1.0 in the paper), 0 off. With both, each
            batch gets one of the two at random.
        drop_path_rate: Stochastic depth (Huang et al., 2016): while training, the residual
            branch of each block is dropped at random, at a rate growing linearly with depth
            to this value at the last block; 0 (default) off. For models with residual or
            dense blocks (ResNet, DenseNet, mini_resnet); nothing is added to the model.

    A run that goes wrong without a NaN (the loss blowing up far above where it started, the
    accuracy falling back to chance, or no learning at all) is warned once, at the epoch it
    happens, with a :class:`~cnnzoo.training.TrainingCollapseWarning` that gives the figures,
    the rate in use and a lower one, and recorded in ``History.alerts``; training goes on as
    asked. BatchNorm statistics are re-measured at each epoch's end (see
    :mod:`cnnzoo.training.norm_stats`). A freshly built model that asks for a data-dependent
    start (the small-input VGGs without BatchNorm: ``init_from_data``) has its layers rescaled
    on the first training batch before the first step, once (``History.params["data_init"]``).

    Returns:
        The :class:`History` of the run.

    Raises:
        ValueError: Bad arguments, empty data, labels outside ``[0, num_classes)``, or images
            the model cannot take (raised before the first epoch).
        FloatingPointError: The loss became NaN or infinite (the message names the epoch and
            the step); the best checkpoint is left as it was.

    Example:
        >>> from cnnzoo import fit, evaluate, get_model
        >>> from cnnzoo.data import load_dataset
        >>> model = get_model("lenet5")
        >>> history = fit(model, load_dataset("fashion-mnist"), val_data=0.1, epochs=5)
        >>> evaluate(model, load_dataset("fashion-mnist", "test"))["accuracy"]  # doctest: +SKIP
    """
    config = FitConfig(
        epochs=epochs,
        batch_size=batch_size,
        optimizer=optimizer,
        lr=lr,
        weight_decay=weight_decay,
        schedule=schedule,
        label_smoothing=label_smoothing,
        augment=augment,
        precision=precision,
        channels_last=channels_last,
        compile=compile,
        seed=seed,
        callbacks=tuple(callbacks or ()),
        verbose=verbose,
        checkpoint=checkpoint,
        monitor=monitor,
        restore_best=restore_best,
        patience=patience,
        checkpoint_dir=checkpoint_dir,
        resume=resume,
        num_workers=num_workers,
        loss_fn=loss_fn,
        grad_clip=grad_clip,
        accumulate=accumulate,
        ema=ema,
        warmup=warmup,
        mixup=mixup,
        cutmix=cutmix,
        drop_path_rate=drop_path_rate,
    )
    torch.manual_seed(seed)
    target = resolve_device(device)
    dist = distributed.setup(target)
    try:
        return _train(build_run(model, train_data, val_data, config, dist, dist.device(target)))
    finally:
        dist.teardown()


def _train(run: Run) -> History:
    """The epoch loop: train, validate, record, call back; stop when asked."""
    model, callbacks = run.model, run.callbacks
    callbacks.set_run(run)
    callbacks.set_model(model)
    keras_flag = callbacks.uses_model_flag
    if keras_flag or hasattr(model, "stop_training"):
        # a flag left set by an earlier run must not stop this one
        model.stop_training = False  # type: ignore[assignment]  # torch's stub: a Module takes any attribute
    with run.held:  # the locks callbacks take are dropped however the run ends
        run.held.enter_context(stochastic_depth(model, run.config.drop_path_rate))
        return _train_held(run)


def _train_held(run: Run) -> History:
    model, callbacks, dist = run.model, run.callbacks, run.dist
    keras_flag = callbacks.uses_model_flag
    stop = callbacks.call("on_train_begin", {})
    try:
        for epoch in range(run.initial_epoch, run.config.epochs):
            if stop:
                break
            started = time.perf_counter()
            stop |= callbacks.call("on_epoch_begin", epoch, {})
            logs, stop_in_epoch = _train_epoch(run, epoch)
            stop |= stop_in_epoch
            if run.recalibrate_norms:  # statistics of the weights the epoch ended on
                recalibrate_batch_norm(model, run.train_batches.epoch(epoch), run.device, run.dtype)
            dist.sync_buffers(model)
            if run.ema is not None:  # validate, save and rank the averaged weights
                run.ema.swap_in()
                dist.sync_buffers(model)  # each rank averaged its own BatchNorm statistics
            logs.update(_validate(run))
            if steps_per_epoch_end(run.scheduler):
                run.scheduler.step(logs[run.config.monitor])
            logs["lr"] = run.current_lr()
            logs["epoch_seconds"] = time.perf_counter() - started
            run.history.append(epoch, logs)
            run.progress.end_epoch(epoch, logs)
            watch_epoch(run, epoch, logs, cut_short=stop_in_epoch)
            stop |= callbacks.call("on_epoch_end", epoch, logs)
            stop |= keras_flag and bool(getattr(model, "stop_training", False))
            stop = dist.broadcast_flag(stop, run.device)
            if stop and epoch + 1 < run.config.epochs:
                run.history.stopped_epoch = epoch
                # the run ends here: its last weights are judged as at a planned last epoch
                watch_epoch(run, epoch, logs, cut_short=stop_in_epoch, stopped_here=True)
    finally:
        run.progress.close()
    callbacks.call("on_train_end", {"history": run.history.history})
    dist.barrier()
    return run.history


def _train_epoch(run: Run, epoch: int) -> tuple[dict[str, float], bool]:
    """One pass over the training batches; the epoch's loss and accuracy over all ranks."""
    model, optimizer, scaler = run.train_model, run.optimizer, run.scaler
    callbacks, progress, device, dtype = run.callbacks, run.progress, run.device, run.dtype
    loss_fn, custom_loss = run.loss_fn, run.config.loss_fn is not None
    k = run.config.accumulate
    steps = len(run.train_batches)
    # The last group of an epoch may hold fewer than k batches: its loss is divided by its size.
    in_full_groups = steps - steps % k
    no_sync = getattr(model, "no_sync", None) if k > 1 and run.dist.enabled else None
    sync_every = max(1, steps // _SYNCS_PER_EPOCH)
    want_batch_begin, want_batch_logs = callbacks.wants_batch_begin, callbacks.wants_batch_logs
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    correct = torch.zeros((), dtype=torch.int64, device=device)
    first_bad = torch.full((), -1, dtype=torch.int64, device=device)
    seen = last_synced = 0
    stop = False
    mix = None if run.mix is None else run.mix.for_epoch(epoch)
    model.train()
    optimizer.zero_grad(set_to_none=True)
    progress.start_epoch(epoch, steps)
    for step, (x, y) in enumerate(run.train_batches.epoch(epoch)):
        assert y is not None, "training batches carry labels (resolved with need_labels)"
        if want_batch_begin:
            stop |= callbacks.call("on_batch_begin", step, {})
        steps_optimizer = k == 1 or (step + 1) % k == 0 or step + 1 == steps
        # Mixup/CutMix: soft targets for the loss; the accuracy below stays on the labels.
        x, targets = (x, y) if mix is None else mix(x, y)
        # DDP: gradients are all-reduced on the last batch of a group only.
        with contextlib.nullcontext() if no_sync is None or steps_optimizer else no_sync():
            with autocast(device, dtype):
                outputs = model(x)
            outputs = as_float(outputs)
            loss = loss_fn(outputs, targets)
            if custom_loss:
                check_loss(loss)
            scaled = loss if k == 1 else loss / (k if step < in_full_groups else steps % k)
            if scaler is not None:
                scaler.scale(scaled).backward()
            else:
                scaled.backward()
        if steps_optimizer:
            _optimizer_step(run)

        detached = loss.detach()
        loss_sum += detached.double() * len(y)
        correct += (main_logits(outputs).detach().argmax(1) == y).sum()
        first_bad = torch.where((first_bad < 0) & ~torch.isfinite(detached), step, first_bad)
        seen += len(y)
        if want_batch_logs:
            stop |= callbacks.call("on_batch_end", step, {"loss": float(detached)})
        if (step + 1) % sync_every == 0 or step + 1 == steps:
            _check_finite(run, first_bad, epoch, step)
            mean_loss = float(loss_sum) / seen
            if run.watch is not None and last_synced == 0:
                run.watch.note_start(mean_loss)  # first sync of an epoch; the first one counts
            progress.update(step + 1 - last_synced, mean_loss, float(correct) / seen)
            last_synced = step + 1
        if stop or getattr(run.model, "stop_training", False) is True:
            stop = True
            break
    count = torch.tensor(seen, dtype=torch.float64, device=device)
    totals = torch.stack([loss_sum, correct.double(), count])
    run.dist.all_reduce_sum(totals)
    loss_total, correct_total, count = totals.tolist()
    return {"loss": loss_total / count, "accuracy": correct_total / count}, stop


def _optimizer_step(run: Run) -> None:
    """Clip, step, clear the gradients, advance the schedule and the EMA: no host sync."""
    optimizer, scaler = run.optimizer, run.scaler
    if run.config.grad_clip is not None:
        if scaler is not None:
            scaler.unscale_(optimizer)  # clip the true gradients, not the scaled ones
        torch.nn.utils.clip_grad_norm_(_trainable(optimizer), run.config.grad_clip)
    if scaler is not None:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    run.steps_done += 1
    if run.scheduler is not None and not steps_per_epoch_end(run.scheduler):
        run.scheduler.step()
    if run.ema is not None:
        run.ema.update()


def _trainable(optimizer: torch.optim.Optimizer) -> list[torch.Tensor]:
    """The parameters the optimizer updates (those clipping bounds)."""
    return [p for group in optimizer.param_groups for p in group["params"]]


def _check_finite(run: Run, first_bad: torch.Tensor, epoch: int, step: int) -> None:
    """Raise when a loss since the last check was NaN or infinite (on any rank)."""
    flag = (first_bad >= 0).to(torch.int64)
    if run.dist.enabled:
        flag = run.dist.all_reduce_sum(flag.clone())
    if int(flag) == 0:
        return
    bad_step = int(first_bad) if int(first_bad) >= 0 else step
    lr = run.current_lr()
    raise FloatingPointError(
        f"the training loss became NaN or infinite at epoch {epoch + 1} (0-based {epoch}), "
        f"step {bad_step}; training stopped and the best checkpoint was left as it was. "
        f"Lower the learning rate (lr is {lr:.3g} now; try lr={lr / 10:.3g}), check the "
        "inputs for NaN, or use precision='fp32'."
    )


def _validate(run: Run) -> dict[str, float]:
    """Validation loss and accuracy over all ranks (none without validation data)."""
    if run.val_batches is None:
        return {}
    custom_loss = run.config.loss_fn  # validation sees the logits only (no auxiliary heads)
    loss_sum, confusion, _ = accumulate_metrics(
        run.model,
        run.val_batches,
        run.num_classes,
        run.dtype,
        run.config.label_smoothing,
        loss_fn=None if custom_loss is None else run.loss_fn,
    )
    run.dist.all_reduce_sum(loss_sum)
    run.dist.all_reduce_sum(confusion)
    metrics = summarize(loss_sum, confusion)
    return {"val_loss": metrics["loss"], "val_accuracy": metrics["accuracy"]}
