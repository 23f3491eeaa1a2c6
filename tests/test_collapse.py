"""A run that goes wrong without a NaN is never silent: blow-ups, collapses and stalls are
warned once, with the figures and the fix, and recorded in the History; healthy runs are not.

Every situation is constructed (hand-set weights, a rate of 0 so nothing learns by chance, a
callback that breaks the model at a chosen epoch), so no test depends on how a training run
happens to go on one CPU."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from _synthetic import stripes, stripes_oracle
from torch import nn

import cnnzoo
from cnnzoo.training.collapse import (
    BLOWUP_FACTOR,
    STALL_MIN_STEPS,
    CollapseWatch,
    TrainingCollapseWarning,
    label_entropy,
    majority_share,
)

N = 240  # stripes: three balanced classes


class BreakAt:
    """At the start of ``epoch``, replace the model's last layer's weights by ``how``."""

    def __init__(self, epoch: int, how: str) -> None:
        self.epoch, self.how = epoch, how

    def set_model(self, model: nn.Module) -> None:
        self.model = model

    def on_epoch_begin(self, epoch: int, logs: dict) -> None:
        if epoch != self.epoch:
            return
        layer = self.model[1]
        with torch.no_grad():
            if self.how == "constant":  # one class for every image: accuracy at chance
                layer.weight.zero_()
                layer.bias.copy_(torch.tensor([1.0, 0.0, 0.0]))
            else:  # confidently wrong: a finite loss far above where the run started
                layer.weight.mul_(-500.0)


def train(model: nn.Module, epochs: int = 3, **options) -> tuple[cnnzoo.History, list]:
    images, labels = stripes(N)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = cnnzoo.fit(
            model,
            (images, labels),
            epochs=epochs,
            verbose=0,
            precision="fp32",
            lr=0.0,  # nothing changes but what the test does
            **options,
        )
    return history, [w for w in caught if issubclass(w.category, TrainingCollapseWarning)]


def test_a_healthy_run_raises_no_alarm():
    history, warned = train(stripes_oracle(), val_data=0.25)
    assert history.history["val_accuracy"][-1] == 1.0
    assert warned == [] and history.alerts == []


def test_a_blow_up_is_warned_once_with_the_figures_and_the_fix():
    history, warned = train(
        stripes_oracle(), epochs=4, val_data=0.25, callbacks=[BreakAt(1, "wrong")]
    )
    assert len(warned) == 1 and len(history.alerts) == 1
    alert = history.alerts[0]
    assert alert["kind"] == "blow-up" and alert["epoch"] == 1
    assert alert["loss"] > BLOWUP_FACTOR * alert["start_loss"]
    message = str(warned[0].message)
    assert "at epoch 2" in message and "blew up" in message
    assert f"{alert['loss']:.4g}" in message  # the figure itself
    assert "lr=" in message and "cnnzoo.lr_find" in message  # the fix
    assert warned[0].filename == __file__  # points at the user's fit() call


def test_a_collapse_to_chance_after_learning_is_warned():
    history, warned = train(stripes_oracle(), val_data=0.25, callbacks=[BreakAt(1, "constant")])
    assert [a["kind"] for a in history.alerts] == ["collapse"]
    alert = history.alerts[0]
    assert alert["best_accuracy"] == 1.0
    assert alert["accuracy"] == pytest.approx(alert["chance"], abs=0.05)
    assert "validation accuracy fell to" in str(warned[0].message)


def test_without_validation_the_training_accuracy_is_watched():
    history, _ = train(stripes_oracle(), callbacks=[BreakAt(1, "constant")])
    assert [a["kind"] for a in history.alerts] == ["collapse"]
    assert "training accuracy" in history.alerts[0]["message"]


def test_a_run_stuck_at_a_uniform_guess_is_called_a_stall():
    model = stripes_oracle()
    with torch.no_grad():
        model[1].weight.zero_()  # every class scores 0: the loss is exactly ln(3)
    history, warned = train(model, epochs=2, batch_size=4)  # 60 steps an epoch
    assert [a["kind"] for a in history.alerts] == ["stall"]
    assert history.alerts[0]["epoch"] == 1  # after STALL_MIN_STEPS steps, not before
    assert STALL_MIN_STEPS <= 2 * N // 4
    assert f"{math.log(3):.4g}" in str(warned[0].message)


def test_a_short_run_that_learned_nothing_is_told_so_at_its_end():
    model = stripes_oracle()
    with torch.no_grad():
        model[1].weight.zero_()
    history, warned = train(model, epochs=2, batch_size=16)  # 15 steps an epoch
    assert [(a["kind"], a["epoch"]) for a in history.alerts] == [("stall", 1)]
    assert "learned nothing" in str(warned[0].message) and "train longer" in str(warned[0].message)
    # 4 steps: too few for the loss rule, but the weights it ends with answer one class for
    # every image, and a run of any length that ends so is told (on 240 images: enough to judge)
    _, short = train(model, epochs=1, batch_size=64)
    assert len(short) == 1 and "the weights it ends with score" in str(short[0].message)


def test_an_absurd_rate_on_a_tiny_net_is_warned_with_the_rate():
    # AdamW moves each weight by about the rate per step, so at lr=1e4 the logits of a linear
    # model grow to ~1e5 within a few steps: a finite loss thousands of times the start.
    torch.manual_seed(0)
    images = torch.rand(256, 1, 4, 4)
    labels = torch.randint(0, 4, (256,))
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 4))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = cnnzoo.fit(model, (images, labels), epochs=2, lr=1e4, verbose=0, precision="fp32")
    assert history.alerts and history.alerts[0]["kind"] == "blow-up"
    message = str(next(w for w in caught if w.category is TrainingCollapseWarning).message)
    assert "1e+04" in message and "lr=1e+03" in message


def test_the_watch_warns_only_once_per_run():
    watch = CollapseWatch(3, 1 / 3, None, True, "a test")
    watch.note_start(1.1)
    assert watch.check(0, {"loss": 50.0, "accuracy": 0.3}, 0.1, 10)["kind"] == "blow-up"
    assert watch.check(1, {"loss": 90.0, "accuracy": 0.3}, 0.1, 20) is None


def test_a_custom_loss_is_judged_against_its_own_start():
    watch = CollapseWatch(10, 0.1, None, False, "a test")
    watch.note_start(0.01)  # a loss on another scale than cross-entropy's ln(10)
    assert watch.check(0, {"loss": 0.02, "accuracy": 0.5}, 0.1, 10) is None
    assert watch.check(1, {"loss": 0.5, "accuracy": 0.5}, 0.1, 20)["kind"] == "blow-up"


def test_chance_is_the_most_frequent_class():
    assert majority_share(torch.tensor([0, 0, 0, 1]), 2) == 0.75
    assert majority_share(None, 4) == 0.25


def test_a_custom_loss_that_starts_below_zero_is_never_called_a_blow_up():
    watch = CollapseWatch(10, 0.1, None, False, "a test")
    watch.note_start(-2.69)
    assert watch.check(0, {"loss": -2.75, "accuracy": 0.5}, 0.1, 10) is None


def test_a_model_that_learned_only_the_class_frequencies_stalls():
    # 90% of the labels are class 0: predicting the frequencies gives a loss of their entropy,
    # below ln(2), and an accuracy equal to chance.
    labels = torch.tensor([0] * 90 + [1] * 10)
    entropy = -(0.9 * math.log(0.9) + 0.1 * math.log(0.1))
    watch = CollapseWatch(
        2, majority_share(labels, 2), None, True, "a test", label_entropy(labels, 2)
    )
    assert watch.label_entropy == pytest.approx(entropy)
    alert = watch.check(3, {"loss": entropy, "accuracy": 0.9}, 0.01, 200)
    assert alert is not None and alert["kind"] == "stall"


def test_a_resumed_run_keeps_its_alert_and_is_not_warned_again(tmp_path):
    # The alert fires at epoch 2 of 2; the state saved with it is resumed for 2 more epochs.
    # With lr=0 the broken weights stay broken, so a watch that forgot would warn again.
    state = tmp_path / "state"
    first, warned = train(
        stripes_oracle(),
        epochs=2,
        val_data=0.25,
        callbacks=[BreakAt(1, "wrong")],
        checkpoint_dir=state,
    )
    assert [a["kind"] for a in first.alerts] == ["blow-up"] and len(warned) == 1
    resumed, again = train(
        stripes_oracle(), epochs=4, val_data=0.25, checkpoint_dir=state, resume=True
    )
    assert again == []
    assert resumed.alerts == first.alerts  # the figures and the message, as warned
    assert len(resumed.history["loss"]) == 4


def test_a_tampered_alert_in_a_saved_state_is_refused_clearly(tmp_path):
    import json

    state = tmp_path / "state"
    train(
        stripes_oracle(),
        epochs=2,
        val_data=0.25,
        callbacks=[BreakAt(1, "wrong")],
        checkpoint_dir=state,
    )
    manifest = state / "training_state.json"
    original = json.loads(manifest.read_text())
    alert = original["extra"]["watch"]["alerts"][0]
    in_alert = {
        "an unknown kind": {"kind": "meltdown"},
        "a message over two lines": {"message": alert["message"] + "\nrm -rf ~"},
        "a message of the file's own": {"message": "fit: all went well."},
        "a message of another kind": {"kind": "stall"},
        "an epoch the run never had": {"epoch": 7},
        "an epoch its message does not name": {"epoch": 0},
        "a figure that is text": {"loss": "3.0"},
        "a figure that is not finite": {"loss": float("nan")},
        "an accuracy above 1": {"accuracy": 7.0},
        "a negative rate": {"lr": -1.0},
    }
    in_watch = {
        "one alert, but never warned": {"warned": False},
        "more steps than any run": {"steps_done": 10**13},  # (longer integers: not JSON read)
        "a start that is not finite": {"start_loss": float("inf")},
        "a field of its own": {"evil": "x" * 10_000},
        "an alert with a key that is no name": {"alerts": [{"__dict__": [[1, 2], ["epoch", 1]]}]},
    }
    changes = [("alert", c) for c in in_alert.values()] + [("watch", c) for c in in_watch.values()]
    for where, change in changes:
        saved = json.loads(json.dumps(original))
        watch = saved["extra"]["watch"]
        (watch["alerts"][0] if where == "alert" else watch).update(change)
        manifest.write_text(json.dumps(saved))
        with pytest.raises(ValueError, match=r"corrupted.*collapse watch") as error:
            train(stripes_oracle(), epochs=3, val_data=0.25, checkpoint_dir=state, resume=True)
        assert "delete" in str(error.value) and len(str(error.value)) < 1000, change
    text = json.dumps(original)
    huge = text.replace(f'"loss": {alert["loss"]}', '"loss": 1' + "0" * 400)  # overflows float
    assert huge != text
    manifest.write_text(huge)
    # The bounded JSON reader refuses a 400-digit integer while parsing: the whole manifest.
    with pytest.raises(ValueError, match=r"not a valid cnnzoo training-state manifest.*delete"):
        train(stripes_oracle(), epochs=3, val_data=0.25, checkpoint_dir=state, resume=True)
