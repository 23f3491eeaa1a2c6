"""CSVLogger and TensorBoardLogger: every epoch's metrics on disk, continued on resume."""

from __future__ import annotations

import csv
import importlib.util

import pytest
import torch
from torch import nn

import cnnzoo
from cnnzoo.training import CSVLogger, StopTraining, TensorBoardLogger

QUICK = {"epochs": 3, "batch_size": 16, "verbose": 0, "device": "cpu"}


def stripes(n: int = 96) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    labels = torch.arange(n) % 3
    images = torch.rand(n, 1, 8, 8, generator=generator) * 0.5
    for k in range(3):
        images[labels == k, :, 2 * k : 2 * k + 3, :] += 1.0
    return images, labels


def net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 3))


def read_rows(path) -> list[dict[str, str]]:
    with open(path, newline="") as file:
        return list(csv.DictReader(file))


def test_csv_logger_writes_a_row_per_epoch_with_every_metric(tmp_path):
    path = tmp_path / "logs" / "train.csv"
    history = cnnzoo.fit(net(), stripes(), val_data=0.25, callbacks=[CSVLogger(path)], **QUICK)
    rows = read_rows(path)
    assert [int(r["epoch"]) for r in rows] == history.epoch == [0, 1, 2]
    assert list(rows[0]) == ["epoch", *history.history]
    for key, values in history.history.items():
        assert [float(r[key]) for r in rows] == pytest.approx(values), key


def test_csv_logger_starts_afresh_or_appends_as_asked(tmp_path):
    path = tmp_path / "log.csv"
    cnnzoo.fit(net(), stripes(), callbacks=[CSVLogger(path)], **QUICK)
    cnnzoo.fit(net(), stripes(), callbacks=[CSVLogger(path)], **QUICK)
    assert len(read_rows(path)) == 3  # Keras: append=False starts the file again
    cnnzoo.fit(net(), stripes(), callbacks=[CSVLogger(path, append=True)], **QUICK)
    assert [r["epoch"] for r in read_rows(path)] == ["0", "1", "2"] * 2


def test_csv_logger_continues_a_resumed_run_without_duplicates(tmp_path):
    path, state = tmp_path / "log.csv", tmp_path / "state"

    class StopAfterSecond:
        def on_epoch_end(self, epoch, logs):
            if epoch == 1:
                raise StopTraining

    whole = cnnzoo.fit(net(), stripes(), val_data=0.25, **{**QUICK, "epochs": 4})
    cnnzoo.fit(
        net(),
        stripes(),
        val_data=0.25,
        checkpoint_dir=state,
        callbacks=[CSVLogger(path), StopAfterSecond()],
        **{**QUICK, "epochs": 4},
    )
    with open(path, "a", newline="") as file:  # killed after the row of epoch 2, before its state
        file.write("2,9,9,9,9,9,9\n")
    cnnzoo.fit(
        net(),
        stripes(),
        val_data=0.25,
        checkpoint_dir=state,
        resume=True,
        callbacks=[CSVLogger(path)],
        **{**QUICK, "epochs": 4},
    )
    rows = read_rows(path)
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2, 3]
    assert [float(r["val_loss"]) for r in rows] == pytest.approx(whole.history["val_loss"])


tensorboard = pytest.importorskip("tensorboard")


def read_scalars(log_dir) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(log_dir))
    events.Reload()
    return {
        tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]
    }


def test_tensorboard_logger_holds_every_epochs_metrics(tmp_path):
    history = cnnzoo.fit(
        net(), stripes(), val_data=0.25, callbacks=[TensorBoardLogger(tmp_path / "tb")], **QUICK
    )
    scalars = read_scalars(tmp_path / "tb")
    assert set(scalars) == set(history.history)
    for key, values in history.history.items():
        assert [step for step, _ in scalars[key]] == [0, 1, 2]
        assert [value for _, value in scalars[key]] == pytest.approx(values, rel=1e-6), key


def test_tensorboard_logger_replaces_the_epochs_a_resumed_run_repeats(tmp_path):
    log_dir, state = tmp_path / "tb", tmp_path / "state"

    class StopAfterSecond:
        def on_epoch_end(self, epoch, logs):
            if epoch == 1:
                raise StopTraining

    cnnzoo.fit(
        net(),
        stripes(),
        checkpoint_dir=state,
        callbacks=[TensorBoardLogger(log_dir), StopAfterSecond()],
        **{**QUICK, "epochs": 4},
    )
    from torch.utils.tensorboard import SummaryWriter

    with SummaryWriter(str(log_dir)) as writer:  # killed after epoch 2's events, before its state
        writer.add_scalar("loss", 99.0, global_step=2)
    cnnzoo.fit(
        net(),
        stripes(),
        checkpoint_dir=state,
        resume=True,
        callbacks=[TensorBoardLogger(log_dir)],
        **{**QUICK, "epochs": 4},
    )
    losses = read_scalars(log_dir)["loss"]
    assert [step for step, _ in losses] == [0, 1, 2, 3]
    assert 99.0 not in [value for _, value in losses]


def test_without_tensorboard_the_logger_says_how_to_install_it(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "tensorboard" else real(name)
    )
    with pytest.raises(ImportError, match=r"pip install 'cnnzoo\[tensorboard\]'"):
        TensorBoardLogger("runs")
