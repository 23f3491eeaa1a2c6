"""ModelCheckpoint, EarlyStopping, BackupAndRestore and Monitor: used directly, and as shortcuts.

Every situation is constructed (a callback spoils the weights on purpose, lr=0 freezes them), so
no test depends on how training happens to go on one CPU.
"""

from __future__ import annotations

import math

import pytest
import torch
from _synthetic import stripes, tiny_net

import cnnzoo
from cnnzoo.training import (
    BackupAndRestore,
    EarlyStopping,
    History,
    ModelCheckpoint,
    Monitor,
    StopTraining,
)
from cnnzoo.training.arguments import FitConfig
from cnnzoo.training.callbacks import in_call_order
from cnnzoo.training.shortcuts import shortcut_callbacks

QUICK = {"epochs": 4, "batch_size": 32, "lr": 0.02, "verbose": 0, "val_data": 0.25}


class SpoilFrom:
    """From epoch ``epoch`` on, every epoch is worse than all before it, by construction."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def set_run(self, run):
        self.model = run.model

    def on_epoch_begin(self, epoch, logs):
        if epoch == self.epoch:
            with torch.no_grad():  # confidently wrong: the few small steps left cannot undo it
                self.model[-1].weight.mul_(-50.0)


class Snapshots:
    """The model's weights at the end of every epoch."""

    def __init__(self) -> None:
        self.weights: dict[int, dict[str, torch.Tensor]] = {}

    def set_run(self, run):
        self.model = run.model

    def on_epoch_end(self, epoch, logs):
        self.weights[epoch] = {k: v.clone() for k, v in self.model.state_dict().items()}


def assert_same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def best_epoch_of(history: History, metric: str = "val_loss") -> int:
    values = history.history[metric]
    return min(range(len(values)), key=values.__getitem__)


# -- Monitor ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "mode"),
    [
        ("loss", "min"),
        ("val_loss", "min"),
        ("accuracy", "max"),
        ("val_accuracy", "max"),
        ("acc", "max"),
        ("val_acc", "max"),
    ],
)
def test_monitor_auto_knows_losses_and_accuracies(name, mode):
    assert Monitor(name).mode == mode
    assert Monitor(name, mode="auto") == Monitor(name, mode=mode)


@pytest.mark.parametrize("name", ["val_f1", "inaccuracy", "error_rate", "lr", "accuracy_drop"])
def test_monitor_auto_refuses_a_metric_of_unknown_direction(name):
    with pytest.raises(ValueError, match=rf"{name}.*pass mode='min' or mode='max'"):
        Monitor(name)
    assert Monitor(name, mode="max").mode == "max"
    assert Monitor(name, mode="min").mode == "min"


def test_monitor_rejects_a_bad_mode():
    with pytest.raises(ValueError, match="mode must be one of"):
        Monitor("loss", mode="down")


def test_monitor_improvement_rules():
    loss, accuracy = Monitor("loss"), Monitor("accuracy")
    assert loss.improved(0.5, best=math.nan) and accuracy.improved(0.5, best=math.nan)
    assert not loss.improved(math.nan, best=1.0) and not loss.improved(math.nan, best=math.nan)
    assert loss.improved(0.9, best=1.0) and not loss.improved(1.0, best=1.0)
    assert accuracy.improved(0.6, best=0.5) and not accuracy.improved(0.4, best=0.5)
    assert not loss.improved(0.95, best=1.0, min_delta=0.1)  # better, but not by min_delta
    assert loss.improved(0.85, best=1.0, min_delta=0.1)
    assert not accuracy.improved(0.55, best=0.5, min_delta=0.1)
    assert accuracy.improved(0.65, best=0.5, min_delta=0.1)


def test_history_best_follows_the_monitor_rule():
    history = History()
    for epoch, (loss, acc, lr) in enumerate([(3.0, 0.2, 0.1), (1.0, 0.9, 0.3), (2.0, 0.5, 0.2)]):
        history.append(epoch, {"loss": loss, "val_accuracy": acc, "lr": lr, "nan": math.nan})
    assert history.best("loss") == 1.0
    assert history.best() == 0.9  # val_accuracy: higher is better
    with pytest.raises(ValueError, match="pass mode="):
        history.best("lr")
    assert history.best("lr", mode="max") == 0.3
    with pytest.raises(KeyError, match="no values"):
        history.best("nan", mode="min")


# -- ModelCheckpoint -------------------------------------------------------------------------
def test_model_checkpoint_writes_the_best_epochs_weights(tmp_path):
    path = tmp_path / "best.safetensors"
    snapshots = Snapshots()
    checkpoint = ModelCheckpoint(path, monitor="val_loss")
    history = cnnzoo.fit(
        tiny_net(), stripes(), callbacks=[SpoilFrom(3), snapshots, checkpoint], **QUICK
    )
    best = best_epoch_of(history)
    assert best < 3  # the spoiled last epoch is not the best
    assert checkpoint.best_epoch == history.best_epoch == best
    assert checkpoint.best == history.history["val_loss"][best]
    saved = tiny_net()
    cnnzoo.load_weights(saved, path)
    assert_same_weights(saved.state_dict(), snapshots.weights[best])
    assert not list(tmp_path.glob("*.tmp"))


def test_model_checkpoint_every_epoch_fills_keras_fields(tmp_path):
    snapshots = Snapshots()
    checkpoint = ModelCheckpoint(
        tmp_path / "epoch{epoch:02d}-{val_loss:.2f}.safetensors", save_best_only=False
    )
    history = cnnzoo.fit(tiny_net(), stripes(), callbacks=[snapshots, checkpoint], **QUICK)
    files = sorted(tmp_path.glob("epoch*.safetensors"))
    assert [f.name[:7] for f in files] == ["epoch01", "epoch02", "epoch03", "epoch04"]
    assert files[0].name == f"epoch01-{history.history['val_loss'][0]:.2f}.safetensors"
    saved = tiny_net()
    cnnzoo.load_weights(saved, files[2])
    assert_same_weights(saved.state_dict(), snapshots.weights[2])


def test_model_checkpoint_refuses_a_validation_metric_without_validation_data(tmp_path):
    started = []

    class Watch:
        def on_epoch_begin(self, epoch, logs):
            started.append(epoch)

    options = {**QUICK, "val_data": None}
    with pytest.raises(ValueError, match=r"ModelCheckpoint monitors 'val_accuracy'.*val_data"):
        cnnzoo.fit(
            tiny_net(), stripes(), callbacks=[ModelCheckpoint(tmp_path / "m"), Watch()], **options
        )
    assert started == []  # refused before the first epoch


def test_a_monitor_nobody_records_is_named(tmp_path):
    checkpoint = ModelCheckpoint(tmp_path / "m.safetensors", monitor="val_f1", mode="max")
    with pytest.raises(ValueError, match=r"monitor='val_f1' is not a recorded metric.*val_loss"):
        cnnzoo.fit(tiny_net(), stripes(), callbacks=[checkpoint], **QUICK)


def test_a_metric_added_by_an_earlier_callback_can_be_monitored(tmp_path):
    class Gap:
        def on_epoch_end(self, epoch, logs):
            logs["gap"] = logs["val_loss"] - logs["loss"]

    checkpoint = ModelCheckpoint(tmp_path / "m.safetensors", monitor="gap", mode="min")
    history = cnnzoo.fit(tiny_net(), stripes(), callbacks=[Gap(), checkpoint], **QUICK)
    gaps = [
        v - t for v, t in zip(history.history["val_loss"], history.history["loss"], strict=True)
    ]
    assert checkpoint.best == min(gaps) and checkpoint.best_epoch == gaps.index(min(gaps))


# -- EarlyStopping ---------------------------------------------------------------------------
@pytest.mark.parametrize(("patience", "epochs_run"), [(0, 2), (2, 3), (None, 8)])
def test_early_stopping_stops_after_patience_epochs_without_improvement(patience, epochs_run):
    # lr=0 and no BatchNorm statistics: nothing changes, so val_loss never improves again.
    stopper = EarlyStopping("val_loss", patience=patience)
    history = cnnzoo.fit(
        tiny_net(batch_norm=False),
        stripes(),
        callbacks=[stopper],
        **{**QUICK, "epochs": 8, "lr": 0.0},
    )
    assert len(history) == epochs_run
    assert history.best_epoch == stopper.best_epoch == 0
    if patience is None:
        assert history.stopped_epoch is None and stopper.stopped_epoch is None
        assert stopper.wait == 7
    else:
        assert history.stopped_epoch == stopper.stopped_epoch == epochs_run - 1


@pytest.mark.parametrize("restore", [True, False])
def test_early_stopping_restores_the_best_weights_when_asked(restore):
    snapshots = Snapshots()
    model = tiny_net()
    stopper = EarlyStopping("val_loss", patience=None, restore_best_weights=restore)
    history = cnnzoo.fit(model, stripes(), callbacks=[SpoilFrom(3), snapshots, stopper], **QUICK)
    best = best_epoch_of(history)
    assert best < 3 and stopper.best_epoch == best
    expected = snapshots.weights[best if restore else 3]
    assert_same_weights(model.state_dict(), expected)


def test_early_stopping_checks_its_arguments():
    with pytest.raises(ValueError, match="patience"):
        EarlyStopping(patience=-1)
    with pytest.raises(ValueError, match="min_delta"):
        EarlyStopping(min_delta=-0.1)
    with pytest.raises(ValueError, match="pass mode="):
        EarlyStopping("val_f1")


def test_an_early_stopping_reused_by_a_second_fit_starts_afresh():
    stopper = EarlyStopping("val_loss", patience=1)
    options = {**QUICK, "epochs": 5, "lr": 0.0}
    first = cnnzoo.fit(tiny_net(batch_norm=False), stripes(), callbacks=[stopper], **options)
    second = cnnzoo.fit(tiny_net(batch_norm=False), stripes(), callbacks=[stopper], **options)
    assert len(first) == len(second) == 2


# -- BackupAndRestore ------------------------------------------------------------------------
class EpochCounter:
    """A user's stateful callback: BackupAndRestore keeps its state too."""

    def __init__(self) -> None:
        self.seen = 0

    def on_epoch_end(self, epoch, logs):
        self.seen += 1

    def state_dict(self):
        return {"seen": self.seen}

    def load_state_dict(self, state):
        self.seen = state["seen"]


class StopAfter:
    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs):
        if epoch == self.epoch:
            raise StopTraining


def test_backup_and_restore_resumes_bit_identical_to_the_uninterrupted_run(tmp_path):
    options = {**QUICK, "epochs": 5, "augment": "flip+crop", "seed": 5}

    def callbacks(best_file, extra=()):
        return [
            SpoilFrom(2),  # the best epoch (0 or 1) comes before the interruption
            EarlyStopping("val_loss", patience=None, restore_best_weights=True),
            ModelCheckpoint(best_file, monitor="val_loss"),
            EpochCounter(),
            *extra,
        ]

    full = tiny_net()
    reference = callbacks(tmp_path / "full.safetensors")
    expected = cnnzoo.fit(full, stripes(), callbacks=reference, **options)
    assert expected.best_epoch < 2

    state = tmp_path / "state"
    # Listed first on purpose: fit runs it after the callbacks whose state it keeps.
    interrupted = [BackupAndRestore(state), *callbacks(tmp_path / "resumed.safetensors")]
    cnnzoo.fit(tiny_net(), stripes(), callbacks=[*interrupted, StopAfter(1)], **options)

    resumed_model = tiny_net()
    torch.manual_seed(123)  # the backup restores the RNG itself
    resumed = callbacks(tmp_path / "resumed.safetensors", extra=[BackupAndRestore(state)])
    history = cnnzoo.fit(resumed_model, stripes(), callbacks=resumed, **options)

    assert history.epoch == expected.epoch == [0, 1, 2, 3, 4]
    for key in ("loss", "accuracy", "val_loss", "val_accuracy", "lr"):
        assert history.history[key] == expected.history[key], key
    assert history.best_epoch == expected.best_epoch
    assert_same_weights(resumed_model.state_dict(), full.state_dict())  # the restored best
    assert resumed[1].wait == reference[1].wait == 4 - expected.best_epoch
    assert resumed[2].best == reference[2].best
    assert resumed[3].seen == reference[3].seen == 5
    a, b = tiny_net(), tiny_net()
    cnnzoo.load_weights(a, tmp_path / "full.safetensors")
    cnnzoo.load_weights(b, tmp_path / "resumed.safetensors")
    assert_same_weights(a.state_dict(), b.state_dict())


def test_backup_and_restore_without_resume_starts_afresh_but_never_over_a_state(tmp_path):
    history = cnnzoo.fit(
        tiny_net(), stripes(), callbacks=[BackupAndRestore(tmp_path, resume=False)], **QUICK
    )
    assert history.epoch == [0, 1, 2, 3]
    saved = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(ValueError, match=r"already holds the training state.*resume=True"):
        cnnzoo.fit(
            tiny_net(), stripes(), callbacks=[BackupAndRestore(tmp_path, resume=False)], **QUICK
        )
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == saved  # nothing lost


def test_backup_runs_after_every_callback_with_state():
    backup = BackupAndRestore("unused")
    plain, counter, stopper, later = StopAfter(9), EpochCounter(), EarlyStopping(), StopAfter(9)
    order = in_call_order([backup, plain, counter, stopper, later])
    assert order == [plain, counter, stopper, backup, later]
    assert in_call_order([backup, plain]) == [backup, plain]


# -- fit's shortcuts -------------------------------------------------------------------------
def test_shortcuts_build_the_callbacks_they_stand_for(tmp_path):
    config = FitConfig(
        checkpoint=tmp_path / "c.safetensors",
        monitor="val_loss",
        patience=3,
        restore_best=True,
        checkpoint_dir=tmp_path / "s",
        resume=True,
    )
    checkpoint, stopper, backup = shortcut_callbacks(config, has_validation=True)
    assert isinstance(checkpoint, ModelCheckpoint) and checkpoint.filepath == config.checkpoint
    assert checkpoint.monitor == Monitor("val_loss", "min") and checkpoint.save_best_only
    assert isinstance(stopper, EarlyStopping) and stopper.monitor == Monitor("val_loss")
    assert stopper.patience == 3 and stopper.restore_best_weights and stopper.min_delta == 0
    assert isinstance(backup, BackupAndRestore) and backup.backup_dir == tmp_path / "s"
    assert backup.resume

    # checkpoint_dir alone also keeps the best weights, when the run records the monitor.
    alone = FitConfig(checkpoint_dir=tmp_path / "s")
    best, backup = shortcut_callbacks(alone, has_validation=True)
    assert best.filepath == tmp_path / "s" / "best.safetensors" and not backup.resume
    assert [type(c) for c in shortcut_callbacks(alone, has_validation=False)] == [BackupAndRestore]
    restore_only = shortcut_callbacks(FitConfig(restore_best=True), has_validation=True)
    assert [(type(c), c.patience) for c in restore_only] == [(EarlyStopping, None)]
    assert shortcut_callbacks(FitConfig(), has_validation=True) == []


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"patience": 2, "val_data": None}, "patience monitor 'val_accuracy', which needs val"),
        ({"restore_best": True, "monitor": "lr"}, r"monitor='lr' is not a metric fit records"),
        ({"checkpoint": "x.safetensors", "monitor": "val_f1"}, "mode='min' or 'max'"),
    ],
)
def test_shortcuts_refuse_a_monitor_they_cannot_rank(options, message):
    with pytest.raises(ValueError, match=message):
        cnnzoo.fit(tiny_net(), stripes(), **{**QUICK, **options})


def test_shortcuts_train_exactly_like_the_callbacks_they_build(tmp_path):
    options = {**QUICK, "epochs": 5}
    shortcut_model, shortcut_snaps = tiny_net(), Snapshots()
    by_shortcut = cnnzoo.fit(
        shortcut_model,
        stripes(),
        checkpoint=tmp_path / "a.safetensors",
        monitor="val_loss",
        patience=2,
        restore_best=True,
        checkpoint_dir=tmp_path / "a",
        callbacks=[SpoilFrom(2), shortcut_snaps],
        **options,
    )
    explicit_model, explicit_snaps = tiny_net(), Snapshots()
    by_hand = cnnzoo.fit(
        explicit_model,
        stripes(),
        **options,
        callbacks=[
            ModelCheckpoint(tmp_path / "b.safetensors", monitor="val_loss"),
            EarlyStopping("val_loss", patience=2, restore_best_weights=True),
            BackupAndRestore(tmp_path / "b", resume=False),
            SpoilFrom(2),
            explicit_snaps,
        ],
    )
    assert len(by_shortcut) == len(by_hand) == 4  # epochs 2 and 3 bring nothing better: stop
    assert by_shortcut.stopped_epoch == by_hand.stopped_epoch == 3
    assert by_shortcut.best_epoch == by_hand.best_epoch == best_epoch_of(by_hand) < 2
    for key in ("loss", "accuracy", "val_loss", "val_accuracy", "lr"):
        assert by_shortcut.history[key] == by_hand.history[key], key
    assert_same_weights(shortcut_model.state_dict(), explicit_model.state_dict())
    assert_same_weights(
        explicit_model.state_dict(), explicit_snaps.weights[by_hand.best_epoch]
    )  # restored
    a, b = tiny_net(), tiny_net()
    cnnzoo.load_weights(a, tmp_path / "a.safetensors")
    cnnzoo.load_weights(b, tmp_path / "b.safetensors")
    assert_same_weights(a.state_dict(), b.state_dict())
    assert (tmp_path / "a" / "training_state.json").is_file()
    assert not (tmp_path / "a" / "best.safetensors").exists()  # checkpoint= took the best


def test_the_callbacks_are_public_names():
    assert cnnzoo.ModelCheckpoint is cnnzoo.training.ModelCheckpoint
    assert cnnzoo.EarlyStopping is cnnzoo.training.EarlyStopping
    assert cnnzoo.BackupAndRestore is cnnzoo.training.BackupAndRestore


def test_a_callback_with_only_on_batch_begin_is_called_every_step():
    class Counter:
        calls = 0

        def on_batch_begin(self, batch, logs):
            Counter.calls += 1

    cnnzoo.fit(tiny_net(), stripes(64), epochs=2, batch_size=16, verbose=0, callbacks=[Counter()])
    assert Counter.calls == 2 * 4  # 64 samples in batches of 16, twice
