"""fit's defaults follow the run's budget: the batch size a small or short run gets, the rate a
model with no recipe gets, and the warning a short run that learned nothing gives.

The choices are pure functions of the data's size, the epochs and the model, so every test
asserts them on constructed cases; the warnings are built from situations no training can
escape (images that carry no information), never from how a run happens to go on one CPU."""

from __future__ import annotations

import dataclasses
import json
import re
import warnings

import pytest
import torch
from _synthetic import RECIPE_LR, stripes, stripes_oracle, tiny_net
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import cnnzoo
from cnnzoo.models import ShortRunRecipe, TrainingRecipe
from cnnzoo.models import registry as registry_module
from cnnzoo.training.budget import (
    DEFAULT_BATCH_SIZE,
    MIN_STEPS,
    SMALLEST_BATCH_SIZE,
    choose,
    run_steps,
)
from cnnzoo.training.collapse import CollapseWatch, TrainingCollapseWarning, majority_share
from cnnzoo.training.recipes import FALLBACK_LR


@pytest.mark.parametrize(
    ("samples", "epochs", "expected"),
    [
        (60_000, 4, 128),  # the full Fashion-MNIST: 1,872 steps
        (54_000, 1, 128),  # one epoch of a large set: 421 steps
        (10_000, 1, 64),  # 78 steps at 128, 156 at 64
        (2_000, 1, 32),  # the monkeypox tutorial's size, one epoch: 62 steps at 32
        (500, 5, 32),  # fewer images over more epochs
        (5_120, 2, 128),  # exactly 80 steps at 128
        (5_119, 2, 64),  # one image short of it
        (2_700, 4, 128),  # the zoo benchmark's task, where the recipes were measured: 84 steps
        (10, 3, 32),  # fewer images than a batch: one batch an epoch
    ],
)
def test_the_batch_size_leaves_the_run_enough_steps(samples, epochs, expected):
    choice = choose(samples, epochs)
    assert choice.size == expected
    steps = run_steps(samples, choice.size, epochs)
    assert steps >= MIN_STEPS or choice.size == SMALLEST_BATCH_SIZE
    if choice.size < DEFAULT_BATCH_SIZE:  # the reason names the budget and both step counts
        assert f"{samples} images x {epochs} epoch(s)" in choice.source
        assert f"{steps} at {choice.size}" in choice.source


SHORT = ShortRunRecipe(1e-3, min_steps=200, smallest_batch=16, source="a test")


@pytest.mark.parametrize(
    ("samples", "epochs", "expected"),
    [
        (500, 5, 16),  # 75 steps at 32, 155 at 16: the smallest batch it allows
        (2_000, 4, 32),  # 124 steps at 64, 248 at 32
        (10_000, 1, 32),  # 78 steps at 128: short; 312 at 32
        (2_700, 4, 128),  # 84 steps at 128: not a short run, the main recipe's batch
    ],
)
def test_a_short_run_recipe_sizes_the_batch_by_its_own_steps(samples, epochs, expected):
    choice = choose(samples, epochs, short_runs=SHORT)
    assert choice.size == expected
    assert choice.short_run == (expected < DEFAULT_BATCH_SIZE)
    if choice.short_run:
        assert "short-run recipe" in choice.source and "it wants 200" in choice.source


def test_a_short_run_trains_at_the_short_run_rate(recipe_model, monkeypatch):
    entry = registry_module._REGISTRY[recipe_model]
    recipe = TrainingRecipe(RECIPE_LR, "a test", short_runs=SHORT)
    monkeypatch.setitem(
        registry_module._REGISTRY, recipe_model, dataclasses.replace(entry, recipe=recipe)
    )
    short = _fit(cnnzoo.get_model(recipe_model), stripes(480), epochs=1)
    assert short.params["batch_size"] == 16 and short.params["lr"] == pytest.approx(1e-3)
    assert short.params["lr_source"].startswith(f"{recipe_model}'s short-run recipe (a test")
    # a batch the user gives is not a short-run batch: the main recipe's rate goes with it
    given = _fit(cnnzoo.get_model(recipe_model), stripes(480), epochs=1, batch_size=16)
    assert given.params["lr"] == pytest.approx(RECIPE_LR)
    # and a rate the user gives wins over both
    assert _fit(cnnzoo.get_model(recipe_model), stripes(480), lr=0.05).params["lr"] == 0.05


def test_steps_count_as_fit_counts_them():
    assert run_steps(2_000, 32, 1) == 62  # the last partial batch is dropped
    assert run_steps(20, 32, 3) == 3  # but never the only one
    assert run_steps(2_000, 32, 2, accumulate=4) == 2 * 16  # 62 batches, 16 optimizer steps


def test_accumulation_counts_optimizer_steps():
    assert choose(6_000, 2).size == 128  # 92 steps
    assert choose(6_000, 2, accumulate=4).size == 32  # 24 steps at 128, 94 at 32


def test_an_unknown_size_keeps_the_default():
    assert choose(None, 1).size == DEFAULT_BATCH_SIZE


def _fit(model: nn.Module, data, **options) -> cnnzoo.History:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TrainingCollapseWarning)
        return cnnzoo.fit(model, data, verbose=0, precision="fp32", **options)


def test_fit_records_the_batch_size_it_chose_and_why(recipe_model):
    history = _fit(cnnzoo.get_model(recipe_model), stripes(240), epochs=1)
    assert history.params["batch_size"] == 32
    assert history.params["steps"] == 240 // 32
    assert "small budget" in history.params["batch_size_source"]
    large = _fit(cnnzoo.get_model(recipe_model), stripes(2_560), epochs=4)  # 80 steps at 128
    assert large.params["batch_size"] == 128 and large.params["steps"] == 20
    assert large.params["batch_size_source"] == "fit's default (80 optimizer steps)"


def test_a_model_without_a_recipe_trains_at_the_tutorials_batch_and_a_higher_rate():
    # No recipe was measured at batch 128 for a net fit does not know: 32 at any budget.
    assert choose(60_000, 4, has_recipe=False).size == SMALLEST_BATCH_SIZE
    for epochs in (1, 4):  # a short run and one long enough for batch 128 with a recipe
        history = _fit(tiny_net(dropout=0.0), stripes(2_560), epochs=epochs)
        assert history.params["batch_size"] == SMALLEST_BATCH_SIZE
        assert "no registered recipe" in history.params["batch_size_source"]
        assert history.params["lr"] == pytest.approx(FALLBACK_LR) == 3e-3
        assert history.params["lr_source"] == "fit's rate for a model with no registered recipe"
    given = _fit(tiny_net(dropout=0.0), stripes(240), epochs=1, batch_size=16, lr=1e-3)
    assert (given.params["batch_size"], given.params["lr"]) == (16, 1e-3)


def test_an_explicit_batch_size_wins():
    history = _fit(tiny_net(), stripes(240), epochs=1, batch_size=120)
    assert history.params["batch_size"] == 120 and history.params["steps"] == 2
    assert history.params["batch_size_source"] == "given by batch_size="


def test_a_dataloader_keeps_its_own_batch_size():
    images, labels = stripes(240)
    loader = DataLoader(TensorDataset(images, labels), batch_size=40, shuffle=True)
    with pytest.warns(UserWarning, match="batch_size=7 does not re-batch a DataLoader"):
        history = _fit(tiny_net(), loader, epochs=1, batch_size=7)
    assert history.params["batch_size"] == 40
    assert history.params["batch_size_source"] == "the DataLoader's own"
    sampler = torch.utils.data.BatchSampler(
        torch.utils.data.RandomSampler(range(240)), batch_size=48, drop_last=False
    )
    by_sampler = DataLoader(TensorDataset(images, labels), batch_sampler=sampler)
    history = _fit(tiny_net(), by_sampler, epochs=1)
    assert history.params["batch_size"] == 48
    assert history.params["batch_size_source"] == "the DataLoader's batch sampler"


def test_a_validation_split_is_not_counted_as_training_images(recipe_model):
    # 5,120 images for 2 epochs are 80 steps at 128; with a quarter held out, 3,840 are 60
    history = _fit(cnnzoo.get_model(recipe_model), stripes(5_120), val_data=0.25, epochs=2)
    assert history.params["batch_size"] == 64 and history.params["steps"] == 3_840 // 64


def test_a_resumed_run_keeps_its_first_batch_size(recipe_model, tmp_path):
    data, state = stripes(2_560), tmp_path / "state"
    first = _fit(cnnzoo.get_model(recipe_model), data, epochs=1, checkpoint_dir=state)
    assert first.params["batch_size"] == 32  # 20 steps at 128
    # 4 epochs would choose 128 anew; the resumed run keeps the saved 32 instead of refusing
    more = _fit(cnnzoo.get_model(recipe_model), data, epochs=4, checkpoint_dir=state, resume=True)
    assert more.params["batch_size"] == 32
    assert more.params["batch_size_source"] == "the resumed run's own"
    assert len(more.history["loss"]) == 4


def test_a_model_with_lazy_layers_trains():
    # LazyLinear has no shape until the first forward: fit's probe gives it one before the
    # channels-last conversion, which would otherwise fail deep inside torch.
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.LazyLinear(3))
    history = _fit(model, stripes(96), epochs=1, channels_last=True)
    assert len(history.history["loss"]) == 1
    assert not any(isinstance(p, nn.parameter.UninitializedParameter) for p in model.parameters())


# -- the short run that learned nothing ------------------------------------------------------
def _blank(n: int, classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Identical images with balanced labels: no model can tell the classes apart."""
    return torch.full((n, 1, 8, 8), 0.5), torch.arange(n) % classes


def _warned(model: nn.Module, data, **options) -> tuple[cnnzoo.History, list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = cnnzoo.fit(model, data, verbose=0, precision="fp32", **options)
    return history, [str(w.message) for w in caught if w.category is TrainingCollapseWarning]


@pytest.mark.parametrize("val_data", [None, 0.25])
def test_a_one_epoch_run_on_images_without_information_is_warned(val_data):
    # Whatever the weights, every image gets the same answer: one class of two, chance.
    history, messages = _warned(
        tiny_net(2, dropout=0.0), _blank(512, 2), epochs=1, val_data=val_data
    )
    assert [a["kind"] for a in history.alerts] == ["stall"]
    (message,) = messages
    which = "validation" if val_data else "training"
    # a sample of balanced labels is not exactly balanced: the answer may sit a little above
    assert re.search(rf"on the {which} images, (no better than|within 5 points of) always", message)
    assert "learned nothing" in message and "train longer" in message
    alert = history.alerts[0]
    assert 0.5 <= alert["chance"] < 1 and alert["accuracy"] <= alert["chance"] + 0.05


def test_a_short_run_that_learned_is_not_warned():
    history, messages = _warned(stripes_oracle(), stripes(96), epochs=1, lr=0.0)
    assert messages == [] and history.alerts == []


def test_labels_of_a_single_class_are_never_a_stall():
    # loss 0 and accuracy 1 from the first step: there was nothing to learn, nothing wrong
    images, _ = stripes(96)
    history, messages = _warned(tiny_net(3), (images, torch.zeros(96, dtype=torch.long)), epochs=2)
    assert messages == [] and history.alerts == []


def test_the_watch_judges_a_short_run_by_where_it_ended():
    watch = CollapseWatch(2, 0.5, None, True, "a test", label_entropy=0.6931)
    logs = {"loss": 0.69, "accuracy": 0.5}
    assert watch.wants_end_accuracy(logs)
    assert watch.check(0, logs, 1e-3, 3, last=True, end_accuracy=0.9) is None  # it learned
    alert = watch.check(0, logs, 1e-3, 3, last=True, end_accuracy=0.52)
    assert alert is not None and alert["kind"] == "stall"
    one_class = CollapseWatch(2, 1.0, None, True, "a test", label_entropy=0.0)
    assert not one_class.wants_end_accuracy(logs)


def test_an_alert_records_the_figures_its_message_quotes():
    # Too few validation images to judge the end on (80), so the loss rule judges the epoch's
    # validation accuracy: the alert records that and its chance, not the training sample's.
    watch = CollapseWatch(10, 0.12, 0.175, True, "a test", label_entropy=2.3, val_images=80)
    logs = {"loss": 2.3, "accuracy": 0.1, "val_accuracy": 0.05}
    alert = watch.check(0, logs, 1e-3, 25, last=True, end_accuracy=0.094)
    assert alert is not None and alert["kind"] == "stall"
    assert (alert["accuracy"], alert["chance"]) == (0.05, 0.175)
    assert (
        "validation accuracy 0.0500 is no better than the chance level 0.1750" in alert["message"]
    )


def test_a_stall_above_chance_says_how_far_above():
    # 0.52 against 0.50 is within the 5-point margin: "no better than" would misstate it
    watch = CollapseWatch(2, 0.5, None, True, "a test", label_entropy=0.6931)
    alert = watch.check(0, {"loss": 0.69, "accuracy": 0.5}, 1e-3, 3, last=True, end_accuracy=0.52)
    assert alert is not None and (alert["accuracy"], alert["chance"]) == (0.52, 0.5)
    assert (
        "score 0.5200 on the training images, within 5 points of always answering"
        in (alert["message"])
    )


def test_a_resumed_run_keeps_its_rate(tmp_path):
    data = stripes(240)
    _fit(tiny_net(), data, epochs=1, checkpoint_dir=tmp_path / "state", lr=0.05)
    more = _fit(tiny_net(), data, epochs=2, checkpoint_dir=tmp_path / "state", resume=True)
    assert more.params["lr"] == pytest.approx(0.05)
    assert more.params["lr_source"] == "the resumed run's own"


def test_a_state_of_an_older_cnnzoo_resumes_at_its_batch_size(tmp_path):
    # states written before fit sized its batch record no batch size: they trained at 128
    state = tmp_path / "state"
    _fit(tiny_net(), stripes(300), epochs=1, batch_size=128, checkpoint_dir=state)
    manifest = state / "training_state.json"
    saved = json.loads(manifest.read_text())
    saved["settings"] = {}  # as an older cnnzoo wrote it: resumed unchecked
    manifest.write_text(json.dumps(saved))
    again = _fit(tiny_net(), stripes(300), epochs=1, checkpoint_dir=state, resume=True)
    assert again.params["batch_size"] == 128  # not the 32 a fresh 1-epoch run would choose
    assert again.params["batch_size_source"] == "the resumed run's own"


def test_too_few_validation_images_fall_back_to_the_training_images():
    # 16 validation images cannot tell chance from a little learning: the end is judged on
    # (at least 100) training images instead
    history, messages = _warned(tiny_net(2, dropout=0.0), _blank(160, 2), epochs=1, val_data=0.1)
    assert [a["kind"] for a in history.alerts] == ["stall"]
    assert "on the training images" in messages[0]


def test_small_batches_are_scored_until_enough_images():
    history, _ = _warned(tiny_net(2, dropout=0.0), _blank(200, 2), epochs=1, batch_size=8)
    assert [a["kind"] for a in history.alerts] == ["stall"]  # 8 batches of 8 would be 64 images


def test_a_run_that_learned_is_never_called_a_stall_however_skewed_its_labels():
    # over 95% of the images of one class, and the oracle answers every image right
    images, labels = stripes(420)
    keep = (labels == 0) | (torch.arange(420) % 60 == 1)
    assert majority_share(labels[keep], 3) > 0.95
    history, messages = _warned(stripes_oracle(), (images[keep], labels[keep]), epochs=1, lr=0.0)
    assert messages == [] and history.alerts == []
    watch = CollapseWatch(2, 1.0, 1.0, True, "a test", label_entropy=0.5, val_images=120)
    # validation labels of one class, answered all right: not a stall either
    assert (
        watch.check(0, {"loss": 0.1, "accuracy": 0.9, "val_accuracy": 1.0}, 1e-3, 9, True) is None
    )


def test_a_run_a_callback_stopped_mid_epoch_is_not_judged():
    class StopAfterTwoSteps:
        def on_batch_end(self, batch, logs):
            if batch == 1:
                raise cnnzoo.training.StopTraining()

    history, messages = _warned(
        tiny_net(2), _blank(512, 2), epochs=1, callbacks=[StopAfterTwoSteps()]
    )
    assert messages == [] and history.alerts == []


def test_a_run_early_stopping_ends_is_judged_where_it_ended():
    class StopAtFirstEpochEnd:  # as EarlyStopping does, at an epoch's end
        def on_epoch_end(self, epoch, logs):
            raise cnnzoo.training.StopTraining()

    history, messages = _warned(
        tiny_net(2, dropout=0.0), _blank(512, 2), epochs=5, callbacks=[StopAtFirstEpochEnd()]
    )
    assert history.stopped_epoch == 0 and len(history.history["loss"]) == 1
    assert [alert["kind"] for alert in history.alerts] == ["stall"]
    (message,) = messages
    assert "at epoch 1 the training learned nothing" in message
