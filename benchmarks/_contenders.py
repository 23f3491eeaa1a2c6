"""The five ways of training a model that ``benchmarks/peers.py`` compares, and their recipes.

Every contender trains the same architecture from the same initial weights (the registered
model built right after ``torch.manual_seed(0)``; the Keras twin gets those weights copied in)
on the same Fashion-MNIST images, and exposes two operations:

* ``train(recipe, images, epochs, clock)``: train on the first ``images`` training images;
  ``clock`` is told when each training step starts (:class:`StepClock`, for images/s) or when
  each epoch ends (:class:`EpochClock`, for the time to a test-accuracy target);
* ``test_accuracy()``: top-1 accuracy of the model just trained on the 10,000 test images.

The contenders:

* ``fit``: ``cnnzoo.fit`` with ``uint8`` data (``load_dataset``), as the README shows;
* ``eager``: a hand-written in-memory loop, the practical eager limit: the normalised images as
  one channels-last float tensor, a channels-last model, batches gathered by a random
  permutation, no host sync per step;
* ``dataloader``: the loop tutorials write: a ``DataLoader(TensorDataset, shuffle=True)`` over
  the normalised float images, ``loss.item()`` every step;
* ``lightning``: a ``LightningModule`` around the model (``training_step`` logs the loss, as
  Lightning's docs show) and ``Trainer(max_epochs=...)`` with its defaults, less the progress
  bar and the model summary;
* ``keras``: Keras 3 on its PyTorch backend, the same net written in Keras
  (:mod:`benchmarks._keras_ports`), ``compile(optimizer, loss, metrics=["accuracy"])`` and
  ``fit(x, y, batch_size, epochs)``.

The displays are off for every contender (``verbose=0``, no progress bar).
"""

from __future__ import annotations

import inspect
import logging
import os
import tempfile
import time
import warnings
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import cnnzoo
from cnnzoo.data import ImageTensorDataset, load_dataset
from cnnzoo.training.budget import DEFAULT_BATCH_SIZE
from cnnzoo.training.optimizers import DEFAULT_WEIGHT_DECAY, make_optimizer, make_scheduler
from cnnzoo.training.precision import resolve_precision
from cnnzoo.training.recipes import default_rate

CONTENDERS = ("fit", "eager", "dataloader", "lightning", "keras")
# The frameworks a contender needs beyond torch (import names): missing ones are skipped.
REQUIRES = {"lightning": "lightning", "keras": "keras"}
# Fashion-MNIST: 10 classes, 1 channel; resnet18 with its small-image stem.
MODEL_OPTIONS = {"resnet18": {"small_input": True, "num_classes": 10, "in_channels": 1}}


@dataclass(frozen=True)
class Recipe:
    """An optimizer, a learning-rate schedule and a batch size.

    Attributes:
        optimizer: "adamw" (decay on weights, not biases: fit's groups) or "adam".
        lr: Peak (one-cycle) or constant learning rate.
        weight_decay: AdamW's decoupled decay.
        batch_size: Images per step.
        schedule: "onecycle" (fit's: warm-up then linear decay over ``epochs``) or None.
        epochs: Length of the schedule; for a constant rate, the most epochs a run may take.
        label_smoothing: Cross-entropy label smoothing.
        precision: "fp32", or "bf16" for bf16 autocast (fit's default on CPUs with native bf16
            and on CUDA: the same recipe gives it to everyone).
        source: Where the recipe comes from, for the table.
    """

    optimizer: str
    lr: float
    weight_decay: float
    batch_size: int
    schedule: str | None
    epochs: int
    label_smoothing: float = 0.0
    precision: str = "fp32"
    source: str = ""


def fit_defaults(device: torch.device, model: str) -> Recipe:
    """The recipe ``cnnzoo.fit`` uses for ``model`` on ``device`` when given no options.

    Read from fit: its signature's defaults, and the peak rate fit picks for that model (its
    registered training recipe).
    """
    parameters = inspect.signature(cnnzoo.fit).parameters
    autocast = resolve_precision(parameters["precision"].default, device)
    optimizer = parameters["optimizer"].default
    with torch.device("meta"):
        rate = default_rate(cnnzoo.get_model(model), optimizer)
    return Recipe(
        optimizer=optimizer,
        lr=rate.lr,
        weight_decay=DEFAULT_WEIGHT_DECAY[parameters["optimizer"].default],
        batch_size=DEFAULT_BATCH_SIZE,
        schedule=parameters["schedule"].default,
        epochs=parameters["epochs"].default,
        label_smoothing=parameters["label_smoothing"].default,
        precision="bf16" if autocast == torch.bfloat16 else "fp32",
        source="cnnzoo.fit's defaults",
    )


# What each framework's documentation gives a user who does not choose: Adam at 1e-3 with a
# constant rate everywhere; batch 32 from the LeNet-5 tutorial's DataLoader and Keras's
# model.fit default (Lightning leaves the batch to the DataLoader: given the same 32).
_TUTORIAL = Recipe("adam", 1e-3, 0.0, 32, None, 30)
OWN_DEFAULTS = {
    "dataloader": replace(
        _TUTORIAL, source="the LeNet-5 and AlexNet Fashion-MNIST tutorial: Adam 1e-3, batch 32"
    ),
    "lightning": replace(
        _TUTORIAL, source="Lightning's docs: Adam 1e-3 in configure_optimizers; batch 32"
    ),
    "keras": replace(_TUTORIAL, source="Keras: Adam() (1e-3), model.fit batch_size=32"),
}


def recipes(contender: str, model: str, max_epochs: int, device: torch.device) -> dict[str, Recipe]:
    """The contender's recipes: "same" (fit's defaults) and "own" (its documented defaults).

    fit's own defaults are the same recipe, and the hand-written loop has no defaults of its
    own: both have "same" only. ``max_epochs`` caps the constant-rate recipes.
    """
    same = replace(fit_defaults(device, model), source="fit's defaults, for everyone")
    chosen = {"same": same}
    if contender in OWN_DEFAULTS:
        chosen["own"] = replace(OWN_DEFAULTS[contender], epochs=max_epochs)
    return chosen


# -- data ------------------------------------------------------------------------------------
@dataclass
class Data:
    """Fashion-MNIST as every contender starts from: ``uint8`` images and the normalisation."""

    train: ImageTensorDataset
    test: ImageTensorDataset

    @classmethod
    def load(cls, max_train_images: int | None = None, max_test_images: int | None = None):
        train, test = load_dataset("fashion-mnist"), load_dataset("fashion-mnist", "test")
        return cls(_head(train, max_train_images), _head(test, max_test_images))

    def normalised(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Float32 ``(x/255 - mean)/std`` images and labels: what the peers are given."""
        data = self.train if split == "train" else self.test
        mean = torch.tensor(data.mean).view(1, -1, 1, 1)
        std = torch.tensor(data.std).view(1, -1, 1, 1)
        return (data.images.float() / 255 - mean) / std, data.labels


def _head(data: ImageTensorDataset, count: int | None) -> ImageTensorDataset:
    if count is None or count >= len(data):
        return data
    return ImageTensorDataset(
        data.images[:count], data.labels[:count], data.classes, data.mean, data.std
    )


def initial_model(name: str) -> nn.Module:
    """The registered model with the benchmark's initial weights (seed 0)."""
    torch.manual_seed(0)
    return cnnzoo.get_model(name, **MODEL_OPTIONS.get(name, {}))


# -- clocks ----------------------------------------------------------------------------------
def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class StepClock:
    """Times training steps ``warmup + 1`` to ``warmup + steps``: told when each step starts.

    A step starts at its model's training forward (or Keras's ``on_train_batch_begin``), so the
    time between two starts is everything the loop does per step: fetching the batch, forward,
    backward, optimizer, schedule, logging, hooks.
    """

    def __init__(self, warmup: int, steps: int, device: torch.device) -> None:
        self.warmup, self.steps, self.device = warmup, steps, device
        self.started = 0
        self.marks: list[float] = []

    @property
    def steps_needed(self) -> int:
        return self.warmup + self.steps + 1

    def step_started(self) -> None:
        self.started += 1
        if self.started in (self.warmup + 1, self.warmup + self.steps + 1):
            synchronize(self.device)
            self.marks.append(time.perf_counter())

    def epoch_ended(self, epoch: int) -> bool:
        return False

    @property
    def seconds(self) -> float:
        if len(self.marks) != 2:
            raise RuntimeError(
                f"the run took {self.started} steps; the clock needs {self.steps_needed}"
            )
        return self.marks[1] - self.marks[0]


class EpochClock:
    """Wall time of a run to a test-accuracy target, paused while the test set is evaluated.

    ``start()`` is called right before the contender's training code; after every epoch the
    clock stops, the test accuracy is measured, and the run is asked to stop at the first
    epoch at or above ``target`` (or after ``max_epochs``).
    """

    def __init__(self, target: float, max_epochs: int, evaluate: Any, device: torch.device):
        self.target, self.max_epochs, self.evaluate, self.device = (
            target,
            max_epochs,
            evaluate,
            device,
        )
        self.begun = self.paused = 0.0
        self.curve: list[dict[str, float]] = []

    def start(self) -> None:
        synchronize(self.device)
        self.begun = time.perf_counter()

    def step_started(self) -> None:
        pass

    def epoch_ended(self, epoch: int) -> bool:
        synchronize(self.device)
        now = time.perf_counter()
        accuracy = float(self.evaluate())
        self.curve.append(
            {
                "epoch": epoch + 1,
                "seconds": round(now - self.begun - self.paused, 3),
                "test_accuracy": round(accuracy, 4),
            }
        )
        self.paused += time.perf_counter() - now
        return accuracy >= self.target or epoch + 1 >= self.max_epochs

    def result(self) -> dict[str, Any]:
        reached = next((p for p in self.curve if p["test_accuracy"] >= self.target), None)
        return {
            "reached": reached is not None,
            "epochs": reached["epoch"] if reached else None,
            "seconds": reached["seconds"] if reached else None,
            "seconds_run": self.curve[-1]["seconds"] if self.curve else 0.0,
            "curve": self.curve,
        }


def autocast(recipe: Recipe, device: torch.device) -> Any:
    """bf16 autocast when the recipe asks for it (as fit does), else nothing."""
    return torch.autocast(device.type, torch.bfloat16, enabled=recipe.precision == "bf16")


def _count_steps(model: nn.Module, clock: Any) -> Any:
    """Tell ``clock`` whenever ``model`` starts a training forward; returns the hook handle."""

    def hook(module: nn.Module, args: Any) -> None:
        if module.training:
            clock.step_started()

    return model.register_forward_pre_hook(hook)


def _torch_accuracy(
    model: nn.Module, images: torch.Tensor, labels: torch.Tensor, recipe: Recipe
) -> float:
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    correct = 0
    with torch.inference_mode(), autocast(recipe, device):
        for x, y in zip(images.split(500), labels.split(500), strict=True):
            correct += int((model(x.to(device)).argmax(1).cpu() == y).sum())
    model.train(was_training)
    return correct / len(labels)


# -- the contenders --------------------------------------------------------------------------
class Contender:
    """One way of training; subclasses implement :meth:`train` and :meth:`test_accuracy`."""

    name = ""

    def __init__(self, model_name: str, data: Data, device: torch.device) -> None:
        self.model_name, self.data, self.device = model_name, data, device
        self.model: Any = None
        self.recipe: Recipe | None = None

    def prepare(self) -> None:
        """Import the framework (before memory is measured: its import is part of its cost)."""

    def train(self, recipe: Recipe, images: int, epochs: int, clock: Any) -> None:
        """Train a fresh copy of the initial model on the first ``images`` training images."""
        self.recipe = recipe
        self._train(recipe, images, epochs, clock)

    def _train(self, recipe: Recipe, images: int, epochs: int, clock: Any) -> None:
        raise NotImplementedError

    def test_accuracy(self) -> float:
        """Test accuracy of the model last trained, computed in its recipe's precision."""
        raise NotImplementedError


class _TorchPeer(Contender):
    """The peers that take the normalised float tensors (all but fit)."""

    def __init__(self, model_name: str, data: Data, device: torch.device) -> None:
        super().__init__(model_name, data, device)
        self.train_x, self.train_y = data.normalised("train")
        self.test_x, self.test_y = data.normalised("test")

    def test_accuracy(self) -> float:
        return _torch_accuracy(self.model, self.test_x, self.test_y, self.recipe)

    def optimizer_and_schedule(self, recipe: Recipe, model: nn.Module, steps: int):
        """The recipe's optimizer (fit's parameter groups for AdamW) and per-step schedule."""
        if recipe.optimizer == "adam":
            optimizer = torch.optim.Adam(model.parameters(), lr=recipe.lr)
        else:
            optimizer = make_optimizer(recipe.optimizer, model, recipe.lr, recipe.weight_decay)
        schedule = None
        if recipe.schedule is not None:
            schedule = make_scheduler(recipe.schedule, optimizer, steps)
        return optimizer, schedule


class FitContender(Contender):
    name = "fit"

    def _train(self, recipe: Recipe, images: int, epochs: int, clock: Any) -> None:
        model = self.model = initial_model(self.model_name)
        data = _head(self.data.train, images)
        handle = _count_steps(model, clock)

        class EpochEnd:
            def on_epoch_end(self, epoch: int, logs: dict) -> None:
                if clock.epoch_ended(epoch):
                    raise cnnzoo.training.StopTraining

        options: dict[str, Any] = {}
        defaults = fit_defaults(self.device, self.model_name)
        if replace(recipe, source="") != replace(defaults, epochs=recipe.epochs, source=""):
            raise ValueError("the fit contender trains with fit's defaults only")
        if epochs != defaults.epochs:
            options["epochs"] = epochs  # the images/s rounds: one short epoch
        try:
            if isinstance(clock, EpochClock):
                clock.start()
            cnnzoo.fit(
                model,
                data,
                device=self.device,
                verbose=0,
                callbacks=[EpochEnd()],
                **options,
            )
        finally:
            handle.remove()

    def test_accuracy(self) -> float:
        return cnnzoo.evaluate(self.model, self.data.test)["accuracy"]


class EagerContender(_TorchPeer):
    name = "eager"

    def __init__(self, model_name: str, data: Data, device: torch.device) -> None:
        super().__init__(model_name, data, device)
        self.train_x = self.train_x.to(device).contiguous(memory_format=torch.channels_last)
        self.train_y = self.train_y.to(device)

    def _train(self, recipe: Recipe, images: int, epochs: int, clock: Any) -> None:
        model = initial_model(self.model_name).to(self.device, memory_format=torch.channels_last)
        self.model = model
        x, y = self.train_x[:images], self.train_y[:images]
        steps = len(x) // recipe.batch_size
        handle = _count_steps(model, clock)
        if isinstance(clock, EpochClock):
            clock.start()
        optimizer, schedule = self.optimizer_and_schedule(recipe, model, epochs * steps)
        model.train()
        try:
            for epoch in range(epochs):
                order = torch.randperm(len(x), device=self.device)
                for step in range(steps):
                    index = order[step * recipe.batch_size : (step + 1) * recipe.batch_size]
                    with autocast(recipe, self.device):
                        logits = model(x[index])
                    loss = F.cross_entropy(
                        logits.float(), y[index], label_smoothing=recipe.label_smoothing
                    )
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    if schedule is not None:
                        schedule.step()
                if clock.epoch_ended(epoch):
                    break
        finally:
            handle.remove()


class DataLoaderContender(_TorchPeer):
    name = "dataloader"

    def _train(self, recipe: Recipe, images: int, epochs: int, clock: Any) -> None:
        model = self.model = initial_model(self.model_name).to(self.device)
        handle = _count_steps(model, clock)
        if isinstance(clock, EpochClock):
            clock.start()
        dataset = TensorDataset(self.train_x[:images], self.train_y[:images])
        loader = DataLoader(dataset, batch_size=recipe.batch_size, shuffle=True)
        optimizer, schedule = self.optimizer_and_schedule(recipe, model, epochs * len(loader))
        criterion = nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing)
        try:
            for epoch in range(epochs):
                model.train()
                running_loss = 0.0
                for inputs, labels in loader:
                    inputs, labels = inputs.to(self.device), labels.to(self.device)
                    optimizer.zero_grad()
                    with autocast(recipe, self.device):
                        outputs = model(inputs)
                    loss = criterion(outputs.float(), labels)
                    loss.backward()
                    optimizer.step()
                    if schedule is not None:
                        schedule.step()
                    running_loss += loss.item()
                if clock.epoch_ended(epoch):
                    break
        finally:
            handle.remove()


class LightningContender(_TorchPeer):
    name = "lightning"

    def prepare(self) -> None:
        import lightning  # noqa: F401

    def _train(self, recipe: Recipe, images: int, epochs: int, clock: Any) -> None:
        import lightning as L

        for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
            logging.getLogger(name).setLevel(logging.ERROR)
        model = self.model = initial_model(self.model_name)
        handle = _count_steps(model, clock)
        peer = self

        class Classifier(L.LightningModule):
            def __init__(self) -> None:
                super().__init__()
                self.model = model

            def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
                inputs, labels = batch
                loss = F.cross_entropy(
                    self.model(inputs), labels, label_smoothing=recipe.label_smoothing
                )
                self.log("train_loss", loss)
                return loss

            def configure_optimizers(self) -> Any:
                steps = self.trainer.estimated_stepping_batches
                optimizer, schedule = peer.optimizer_and_schedule(recipe, self.model, steps)
                if schedule is None:
                    return optimizer
                return {
                    "optimizer": optimizer,
                    "lr_scheduler": {"scheduler": schedule, "interval": "step"},
                }

        class EpochEnd(L.Callback):
            def on_train_epoch_end(self, trainer: Any, module: Any) -> None:
                if clock.epoch_ended(trainer.current_epoch):
                    trainer.should_stop = True

        with tempfile.TemporaryDirectory() as root, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "few DataLoader workers" and similar advice
            if isinstance(clock, EpochClock):
                clock.start()
            dataset = TensorDataset(self.train_x[:images], self.train_y[:images])
            loader = DataLoader(dataset, batch_size=recipe.batch_size, shuffle=True)
            trainer = L.Trainer(
                max_epochs=epochs,
                accelerator="gpu" if self.device.type == "cuda" else "cpu",
                devices=1,
                default_root_dir=root,
                callbacks=[EpochEnd()],
                enable_progress_bar=False,
                enable_model_summary=False,
                precision="bf16-mixed" if recipe.precision == "bf16" else "32-true",
            )
            try:
                trainer.fit(Classifier(), loader)
            finally:
                handle.remove()


class KerasContender(_TorchPeer):
    name = "keras"

    def __init__(self, model_name: str, data: Data, device: torch.device) -> None:
        super().__init__(model_name, data, device)
        # Keras's default layout: (N, H, W, C) arrays.
        self.train_x = self.train_x.permute(0, 2, 3, 1).contiguous().numpy()
        self.test_x = self.test_x.permute(0, 2, 3, 1).contiguous()
        self.train_y = self.train_y.numpy()

    def prepare(self) -> None:
        import_keras()

    def _train(self, recipe: Recipe, images: int, epochs: int, clock: Any) -> None:
        keras = import_keras()
        from benchmarks._keras_ports import port

        # Keras's mixed precision is a global policy, read when the layers are built.
        policy = "mixed_bfloat16" if recipe.precision == "bf16" else "float32"
        keras.mixed_precision.set_global_policy(policy)
        self.model = net = port(self.model_name, initial_model(self.model_name))

        class Hooks(keras.callbacks.Callback):
            def on_train_batch_begin(self, batch: int, logs: Any = None) -> None:
                clock.step_started()

            def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
                if clock.epoch_ended(epoch):
                    self.model.stop_training = True

        if isinstance(clock, EpochClock):
            clock.start()
        steps_per_epoch = -(-images // recipe.batch_size)
        labels = self.train_y[:images]
        if recipe.label_smoothing:  # Keras smooths one-hot labels only
            labels = np.eye(10, dtype="float32")[labels]
            loss = keras.losses.CategoricalCrossentropy(
                from_logits=True, label_smoothing=recipe.label_smoothing
            )
        else:
            loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        net.compile(
            optimizer=self._optimizer(keras, recipe, epochs * steps_per_epoch),
            loss=loss,
            metrics=["accuracy"],
        )
        net.fit(
            self.train_x[:images],
            labels,
            batch_size=recipe.batch_size,
            epochs=epochs,
            shuffle=True,
            verbose=0,
            callbacks=[Hooks()],
        )

    def _optimizer(self, keras: Any, recipe: Recipe, total_steps: int) -> Any:
        if recipe.optimizer == "adam":
            return keras.optimizers.Adam(learning_rate=recipe.lr)
        # fit's one-cycle, step by step, read off the very scheduler fit builds.
        rates = one_cycle_rates(recipe, total_steps)

        class Table(keras.optimizers.schedules.LearningRateSchedule):
            def __call__(self, step: Any) -> Any:
                index = keras.ops.minimum(keras.ops.cast(step, "int32"), len(rates) - 1)
                return keras.ops.take(keras.ops.convert_to_tensor(rates), index)

            def get_config(self) -> dict:
                return {}

        optimizer = keras.optimizers.AdamW(
            learning_rate=Table(), weight_decay=recipe.weight_decay, epsilon=1e-8
        )
        optimizer.exclude_from_weight_decay(var_names=["bias"])  # fit decays weights only
        return optimizer

    def test_accuracy(self) -> float:
        correct = 0
        for x, y in zip(self.test_x.split(500), self.test_y.split(500), strict=True):
            logits = self.model(x.to(self.device), training=False)
            correct += int((torch.as_tensor(logits).argmax(1).cpu() == y).sum())
        return correct / len(self.test_y)


def one_cycle_rates(recipe: Recipe, total_steps: int) -> list[float]:
    """The learning rate of every step of fit's schedule for ``recipe`` (Keras reads it)."""
    parameter = nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.AdamW([parameter], lr=recipe.lr)
    schedule = make_scheduler(recipe.schedule, optimizer, total_steps)
    rates = []
    for _ in range(total_steps + 1):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    return rates


def import_keras() -> Any:
    """Keras on its PyTorch backend (the backend is chosen once, at Keras's first import)."""
    os.environ.setdefault("KERAS_BACKEND", "torch")
    import keras

    if keras.backend.backend() != "torch":
        raise RuntimeError(
            f"Keras was imported with the {keras.backend.backend()!r} backend; set "
            "KERAS_BACKEND=torch before anything imports keras"
        )
    return keras


CLASSES = {
    cls.name: cls
    for cls in (
        FitContender,
        EagerContender,
        DataLoaderContender,
        LightningContender,
        KerasContender,
    )
}


def make(name: str, model_name: str, data: Data, device: torch.device) -> Contender:
    """Build the contender ``name`` for ``model_name``."""
    return CLASSES[name](model_name, data, device)
