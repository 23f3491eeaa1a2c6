"""fit / evaluate / predict / History: behaviour on small synthetic data and on Fashion-MNIST."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from _synthetic import stripes, tiny_net
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

import cnnzoo
from cnnzoo.training import History, StopTraining

FASHION = Path("/usr/share/datasets/fashion-mnist")


QUICK = {"epochs": 4, "batch_size": 32, "lr": 0.02, "verbose": 0}


# The learning tests use a rate at which every seed tried (16 inits and data draws) reaches full
# accuracy: the assertions must not hang on one lucky trajectory or one CPU's float path.
LEARNS = {**QUICK, "lr": 0.05}


def test_fit_learns_and_history_has_keras_shape():
    model = tiny_net()
    history = cnnzoo.fit(model, stripes(), val_data=0.25, **LEARNS)
    assert isinstance(history, History)
    assert history.epoch == [0, 1, 2, 3]
    for key in ("loss", "accuracy", "val_loss", "val_accuracy", "lr", "epoch_seconds"):
        assert len(history.history[key]) == 4, key
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert history.history["val_accuracy"][-1] >= 0.9
    result = cnnzoo.evaluate(model, stripes(90, seed=1))
    assert result["accuracy"] >= 0.9


def test_seeded_cpu_runs_repeat_exactly():
    runs = []
    for _ in range(2):
        model = tiny_net()
        history = cnnzoo.fit(model, stripes(), val_data=0.25, augment="flip+crop", seed=3, **QUICK)
        history.history.pop("epoch_seconds")
        runs.append((history.history, [p.detach().clone() for p in model.parameters()]))
    assert runs[0][0] == runs[1][0]
    for a, b in zip(runs[0][1], runs[1][1], strict=True):
        assert torch.equal(a, b)


def test_evaluate_agrees_with_predict_and_restores_mode():
    model = tiny_net()
    cnnzoo.fit(model, stripes(), **{**QUICK, "epochs": 2})
    images, labels = stripes(90, seed=2)
    for mode in (True, False):
        model.train(mode)
        result = cnnzoo.evaluate(model, (images, labels), batch_size=16)
        logits = cnnzoo.predict(model, images, batch_size=16)
        assert model.training is mode
    predicted = logits.argmax(1)
    assert logits.shape == (90, 3) and logits.dtype == torch.float32
    assert result["accuracy"] == pytest.approx((predicted == labels).double().mean().item())
    expected_loss = nn.functional.cross_entropy(logits, labels).item()
    assert result["loss"] == pytest.approx(expected_loss, rel=1e-4)
    matrix = result["confusion_matrix"]
    assert matrix.shape == (3, 3) and int(matrix.sum()) == 90
    for true_class in range(3):
        hits = (predicted[labels == true_class] == true_class).double().mean().item()
        assert result["per_class_accuracy"][true_class].item() == pytest.approx(hits)
        for guess in range(3):
            count = int(((labels == true_class) & (predicted == guess)).sum())
            assert int(matrix[true_class, guess]) == count


class PairDataset(Dataset):
    """A plain (non-tensor) Dataset, read through a DataLoader."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.images[i], int(self.labels[i])


def test_all_input_kinds_give_the_same_predictions_and_metrics():
    model = tiny_net().eval()
    images, labels = stripes(70, seed=4)
    reference = cnnzoo.predict(model, images)
    kinds = [
        (images, labels),
        TensorDataset(images, labels),
        PairDataset(images, labels),
        DataLoader(PairDataset(images, labels), batch_size=9),
    ]
    metrics = []
    for data in kinds:
        torch.testing.assert_close(cnnzoo.predict(model, data, num_workers=0), reference)
        metrics.append(cnnzoo.evaluate(model, data, num_workers=0)["accuracy"])
    assert len(set(metrics)) == 1


def test_fit_from_a_dataset_through_a_dataloader():
    model = tiny_net()
    images, labels = stripes()
    history = cnnzoo.fit(model, PairDataset(images, labels), num_workers=0, **LEARNS)
    assert history.history["accuracy"][-1] > 0.8


def test_callbacks_see_hooks_and_val_metrics_and_can_stop():
    events = []

    class Recorder:
        def on_train_begin(self, logs):
            events.append("train_begin")

        def on_epoch_begin(self, epoch, logs):
            events.append(f"epoch_begin {epoch}")

        def on_epoch_end(self, epoch, logs):
            events.append(f"epoch_end {epoch}")
            assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(logs)
            if epoch == 1:
                raise StopTraining

        def on_train_end(self, logs):
            events.append("train_end")

    history = cnnzoo.fit(tiny_net(), stripes(), val_data=0.25, callbacks=[Recorder()], **QUICK)
    assert events == [
        "train_begin", "epoch_begin 0", "epoch_end 0", "epoch_begin 1", "epoch_end 1", "train_end"
    ]  # fmt: skip
    assert len(history) == 2 and history.stopped_epoch == 1


def test_keras_style_stop_training_flag_and_batch_logs():
    class StopAfterFiveBatches:
        def set_model(self, model):
            self.model, self.losses = model, []

        def on_batch_end(self, batch, logs):
            self.losses.append(logs["loss"])
            if len(self.losses) == 5:
                self.model.stop_training = True

    callback = StopAfterFiveBatches()
    history = cnnzoo.fit(tiny_net(), stripes(), callbacks=[callback], **QUICK)
    assert len(callback.losses) == 5 and len(history) == 1


def test_best_checkpoint_restore_best_and_patience(tmp_path):
    path = tmp_path / "best.safetensors"
    model = tiny_net()
    history = cnnzoo.fit(
        model, stripes(), val_data=0.25, checkpoint=path, restore_best=True, patience=2,
        monitor="val_loss", **{**QUICK, "epochs": 6, "lr": 0.05},
    )  # fmt: skip
    losses = history.history["val_loss"]
    best = min(range(len(losses)), key=losses.__getitem__)
    assert history.best_epoch == best
    assert path.is_file() and not list(tmp_path.glob("*.tmp"))
    # restore_best loaded the best epoch's weights: its validation loss comes back.
    reloaded = tiny_net()
    cnnzoo.load_weights(reloaded, path)
    for a, b in zip(reloaded.state_dict().values(), model.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b)


def test_checkpoint_dir_alone_keeps_the_best_weights(tmp_path):
    snapshots = []

    class Snapshot:
        def on_epoch_end(self, epoch, logs):
            snapshots.append({k: v.clone() for k, v in model.state_dict().items()})

    class SpoilLastEpoch:
        """Make the last epoch the worst by construction, not by a diverging learning rate."""

        def on_epoch_begin(self, epoch, logs):
            if epoch == 3:
                with torch.no_grad():  # confidently wrong: the few small steps left cannot undo it
                    model[-1].weight.mul_(-50.0)

    model = tiny_net()
    history = cnnzoo.fit(
        model, stripes(), val_data=0.25, checkpoint_dir=tmp_path, monitor="val_loss",
        callbacks=[SpoilLastEpoch(), Snapshot()], **{**QUICK, "epochs": 4},
    )  # fmt: skip
    losses = history.history["val_loss"]
    best_epoch = min(range(len(losses)), key=losses.__getitem__)
    assert best_epoch < 3 and losses[3] > 2 * max(losses[:3])
    saved = tiny_net()
    cnnzoo.load_weights(saved, tmp_path / "best.safetensors")
    for name, tensor in saved.state_dict().items():
        torch.testing.assert_close(tensor, snapshots[best_epoch][name])


def test_early_stopping_stops_when_the_metric_stalls():
    # lr=0 and no BatchNorm statistics: nothing changes, so val_loss never improves again.
    history = cnnzoo.fit(
        tiny_net(batch_norm=False), stripes(), val_data=0.25, patience=2, monitor="val_loss",
        **{**QUICK, "epochs": 10, "lr": 0.0},
    )  # fmt: skip
    assert len(history) == 3 and history.stopped_epoch == 2


def test_resume_replays_the_uninterrupted_run(tmp_path):
    options = {**QUICK, "epochs": 3, "augment": "flip+crop", "seed": 5, "val_data": 0.25}
    full = tiny_net()
    expected = cnnzoo.fit(full, stripes(), **options)

    class Crash:
        def on_epoch_end(self, epoch, logs):
            if epoch == 0:
                raise StopTraining

    cnnzoo.fit(tiny_net(), stripes(), checkpoint_dir=tmp_path, callbacks=[Crash()], **options)
    resumed = tiny_net()
    torch.manual_seed(123)  # resume must restore the RNG itself
    history = cnnzoo.fit(resumed, stripes(), checkpoint_dir=tmp_path, resume=True, **options)
    for key in ("loss", "accuracy", "val_loss", "val_accuracy", "lr"):
        assert history.history[key] == pytest.approx(expected.history[key]), key
    for a, b in zip(resumed.state_dict().values(), full.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b)


def test_verbose_lines_and_silence(capsys):
    cnnzoo.fit(tiny_net(), stripes(), **{**QUICK, "epochs": 2, "verbose": 2})
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("epoch")]
    assert len(lines) == 2 and "loss=" in lines[0] and "accuracy=" in lines[0]
    cnnzoo.fit(tiny_net(), stripes(), **{**QUICK, "epochs": 2, "verbose": 0})
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_history_plot_writes_png(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    import matplotlib.pyplot as plt

    history = cnnzoo.fit(tiny_net(), stripes(), val_data=0.25, **{**QUICK, "epochs": 2})
    path = tmp_path / "curves.png"
    drawn = []
    monkeypatch.setattr(plt, "close", drawn.append)  # keep the figure to look at it
    history.plot(path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    (figure,) = drawn
    axes = figure.axes
    assert [axis.get_ylabel() for axis in axes] == ["loss", "accuracy", "learning rate"]
    assert [line.get_label() for line in axes[0].lines] == ["train", "val"]
    assert list(axes[2].lines[0].get_ydata()) == history.history["lr"]
    for axis in axes:  # whole epochs only: no 1.25, 1.5 ticks on a two-epoch run
        assert all(float(tick).is_integer() for tick in axis.get_xticks())
    monkeypatch.undo()
    plt.close(figure)


def test_pictures_of_the_confusion_matrix_and_the_mistakes(tmp_path):
    pytest.importorskip("matplotlib")
    from cnnzoo.training.figures import plot_confusion_matrix, plot_misclassified

    matrix = torch.tensor([[5, 1, 0], [0, 6, 0], [2, 0, 4]])
    plot_confusion_matrix(matrix, ["a", "b", "c"], tmp_path / "matrix.png")
    assert (tmp_path / "matrix.png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ValueError, match="C class names"):
        plot_confusion_matrix(matrix, ["a", "b"], tmp_path / "bad.png")
    images = torch.randint(0, 256, (40, 1, 8, 8), dtype=torch.uint8)
    true = torch.arange(40) % 3
    predicted = true.clone()
    predicted[::4] = (predicted[::4] + 1) % 3  # 10 mistakes
    shown = plot_misclassified(images, predicted, true, ["a", "b", "c"], tmp_path / "wrong.png")
    assert shown == 10 and (tmp_path / "wrong.png").read_bytes()[:4] == b"\x89PNG"
    assert plot_misclassified(images, true, true, ["a", "b", "c"], tmp_path / "none.png") == 0
    assert not (tmp_path / "none.png").exists()


# -- bad input -------------------------------------------------------------------------------
def test_label_out_of_range_is_named_before_training():
    images, labels = stripes()
    labels[7] = 5
    model = tiny_net()
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(ValueError, match=r"label 5.*\[0, 3\)"):
        cnnzoo.fit(model, (images, labels), **QUICK)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    with pytest.raises(ValueError, match="label -1"):
        cnnzoo.fit(model, (images, labels.clamp(max=2) - 1), **QUICK)


def test_label_out_of_range_in_a_dataloader_is_named():
    images, labels = stripes()
    labels[100] = 9
    loader = DataLoader(PairDataset(images, labels), batch_size=32)
    with pytest.raises(ValueError, match=r"label 9.*\[0, 3\)"):
        cnnzoo.fit(tiny_net(), loader, **QUICK)


@pytest.mark.parametrize(
    "data",
    [
        (torch.zeros(0, 1, 8, 8), torch.zeros(0, dtype=torch.long)),
        TensorDataset(torch.zeros(0, 1, 8, 8), torch.zeros(0, dtype=torch.long)),
        PairDataset(torch.zeros(0, 1, 8, 8), torch.zeros(0, dtype=torch.long)),
    ],
)
def test_empty_data_is_refused(data):
    with pytest.raises(ValueError, match="empty"):
        cnnzoo.fit(tiny_net(), data, **QUICK)


def test_images_the_model_cannot_take_fail_before_the_first_epoch():
    model = cnnzoo.get_model("lenet5")
    started = []

    class Watch:
        def on_epoch_begin(self, epoch, logs):
            started.append(epoch)

    images = torch.rand(64, 3, 28, 28)
    with pytest.raises(ValueError, match="input channel"):
        cnnzoo.fit(model, (images, torch.zeros(64, dtype=torch.long)), callbacks=[Watch()], **QUICK)
    assert started == []


def test_nan_loss_names_epoch_and_step_and_keeps_the_best_checkpoint(tmp_path):
    path = tmp_path / "best.safetensors"

    class Poison:
        def set_model(self, model):
            self.model = model

        def on_epoch_begin(self, epoch, logs):
            if epoch == 1:
                with torch.no_grad():
                    self.model[-1].weight.fill_(float("nan"))

    model = tiny_net()
    with pytest.raises(FloatingPointError, match=r"epoch 2 .*step 0.*[Ll]ower the learning rate"):
        cnnzoo.fit(model, stripes(), val_data=0.25, checkpoint=path, callbacks=[Poison()], **QUICK)
    saved = tiny_net()
    cnnzoo.load_weights(saved, path)
    assert all(torch.isfinite(p).all() for p in saved.parameters())


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"optimizer": "lion"}, "unknown optimizer"),
        ({"schedule": "step"}, "unknown schedule"),
        ({"augment": "rotate"}, "unknown augmentation"),
        ({"epochs": 0}, "epochs"),
        ({"precision": "fp8"}, "precision"),
        ({"patience": 2}, "validation data"),
        ({"val_data": 1.5}, "fraction"),
        ({"resume": True}, "checkpoint_dir"),
    ],
)
def test_bad_options_are_refused_with_the_fix(options, message):
    with pytest.raises(ValueError, match=message):
        cnnzoo.fit(tiny_net(), stripes(), **{**QUICK, **options})


# -- real data -------------------------------------------------------------------------------
def fashion_mnist_or_skip() -> None:
    if not (FASHION / "train-images-idx3-ubyte.gz").is_file():
        if os.environ.get("CI"):
            pytest.fail(f"CI must install dataset-fashion-mnist ({FASHION} is missing)")
        pytest.skip(
            f"Fashion-MNIST not installed at {FASHION} (apt-get install dataset-fashion-mnist)"
        )


@pytest.mark.slow
def test_short_fit_of_a_zoo_net_on_fashion_mnist():
    fashion_mnist_or_skip()
    from cnnzoo.data import load_dataset

    train, test = load_dataset("fashion-mnist"), load_dataset("fashion-mnist", "test")
    subset = torch.Generator().manual_seed(0)
    keep = torch.randperm(len(train), generator=subset)[:12000]
    torch.manual_seed(0)
    model = cnnzoo.get_model("mini_resnet")
    history = cnnzoo.fit(model, (train.images[keep], train.labels[keep]), epochs=2, verbose=0)
    assert history.history["accuracy"][-1] > 0.7
    # uint8 pairs are only scaled to [0, 1]: evaluate the same way, on the untouched test set.
    result = cnnzoo.evaluate(model, (test.images, test.labels))
    assert result["accuracy"] >= 0.80  # 10 classes: chance is 0.10; a broken loop stays far below
    assert result["confusion_matrix"].sum() == 10000
