"""fit's step options, each checked for its effect: loss_fn (auxiliary heads too), grad_clip,
accumulate, ema, schedule="plateau" and warmup."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F
from _synthetic import stripes, tiny_net
from safetensors.torch import load_file
from torch import nn

import cnnzoo
from cnnzoo.training import CrossEntropy, ModelCheckpoint, StopTraining
from cnnzoo.training.ema import ExponentialMovingAverage

# fp32: these tests compare exact arithmetic, whatever autocast a CPU would get by default.
OMIT = {"verbose": 0, "device": "cpu", "precision": "fp32"}


def plain_net(batch_norm: bool = False) -> nn.Module:
    """No dropout (and, unless asked, no BatchNorm): its steps depend on the batches only."""
    return tiny_net(batch_norm=batch_norm, dropout=0.0)


def copy_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


class RecordingSGD(torch.optim.SGD):
    """SGD that records, at each step, the gradients' global norm and the learning rate."""

    def __init__(self, params, lr: float = 0.1) -> None:
        super().__init__(params, lr=lr)
        self.norms: list[float] = []
        self.lrs: list[float] = []
        self.biases: list[torch.Tensor] = []

    def step(self, closure=None):
        grads = [p.grad for group in self.param_groups for p in group["params"]]
        self.norms.append(float(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads]))))
        self.lrs.append(self.param_groups[0]["lr"])
        self.biases.append(grads[-1].clone())  # the last layer's bias
        return super().step(closure)


def recording(lr: float = 0.1):
    built: list[RecordingSGD] = []

    def make(params):
        built.append(RecordingSGD(params, lr=lr))
        return built[-1]

    return make, built


# -- loss_fn ---------------------------------------------------------------------------------
def test_custom_loss_is_what_fit_minimises():
    # Trained to predict the next class, the model must get the true labels wrong.
    def shifted(outputs, labels):
        return F.cross_entropy(outputs, (labels + 1) % 3)

    history = cnnzoo.fit(
        plain_net(), stripes(96), epochs=6, batch_size=16, lr=0.05, loss_fn=shifted, **OMIT
    )
    default = cnnzoo.fit(plain_net(), stripes(96), epochs=6, batch_size=16, lr=0.05, **OMIT)
    assert history.history["accuracy"][-1] < 0.2
    assert default.history["accuracy"][-1] > 0.8


def test_label_smoothing_keeps_working_for_the_default_loss():
    # lr=0: the weights never move, so the recorded loss is the smoothed loss of the model.
    model = plain_net()
    images, labels = stripes(96)
    history = cnnzoo.fit(
        model,
        (images, labels),
        epochs=1,
        batch_size=16,
        lr=0.0,
        schedule=None,
        label_smoothing=0.4,
        **OMIT,
    )
    with torch.no_grad():
        expected = F.cross_entropy(model(images), labels, label_smoothing=0.4)
        unsmoothed = float(F.cross_entropy(model(images), labels))
    assert history.history["loss"][0] == pytest.approx(float(expected), rel=1e-5)
    assert abs(unsmoothed - float(expected)) > 1e-3


def test_loss_fn_sees_float_logits_and_validation_the_logits_alone():
    seen = []

    def loss_fn(outputs, labels):
        seen.append((type(outputs), outputs.dtype, tuple(outputs.shape), torch.is_grad_enabled()))
        return F.cross_entropy(outputs, labels)

    cnnzoo.fit(
        plain_net(),
        stripes(96),
        val_data=stripes(32, seed=1),
        epochs=1,
        batch_size=32,
        loss_fn=loss_fn,
        **OMIT,
    )
    training = [s for s in seen if s[3]]
    validation = [s for s in seen if not s[3]]
    assert len(training) == 3 and len(validation) == 1
    assert all(s[:3] == (torch.Tensor, torch.float32, (32, 3)) for s in training + validation)


def test_bad_loss_functions_are_refused_clearly():
    with pytest.raises(TypeError, match="loss_fn must be a callable"):
        cnnzoo.fit(plain_net(), stripes(96), loss_fn="mse", **OMIT)
    with pytest.raises(ValueError, match="label_smoothing applies to the default loss"):
        cnnzoo.fit(plain_net(), stripes(96), loss_fn=F.cross_entropy, label_smoothing=0.1, **OMIT)
    per_sample = lambda outputs, labels: F.cross_entropy(outputs, labels, reduction="none")  # noqa: E731
    with pytest.raises(ValueError, match="scalar tensor"):
        cnnzoo.fit(plain_net(), stripes(96), loss_fn=per_sample, **OMIT)
    detached = lambda outputs, labels: F.cross_entropy(outputs, labels).detach()  # noqa: E731
    with pytest.raises(ValueError, match="without gradient"):
        cnnzoo.fit(plain_net(), stripes(96), loss_fn=detached, **OMIT)


def test_cross_entropy_adds_auxiliary_losses_with_googlenets_weight():
    generator = torch.Generator().manual_seed(0)
    logits, aux1, aux2 = (torch.randn(6, 4, generator=generator) for _ in range(3))
    labels = torch.tensor([0, 1, 2, 3, 0, 1])
    loss = CrossEntropy()((logits, aux1, aux2), labels)
    expected = F.cross_entropy(logits, labels) + 0.3 * (
        F.cross_entropy(aux1, labels) + F.cross_entropy(aux2, labels)
    )
    torch.testing.assert_close(loss, expected)
    torch.testing.assert_close(
        CrossEntropy(aux_weight=0.0)((logits, aux1, None), labels), F.cross_entropy(logits, labels)
    )
    smoothed = CrossEntropy(label_smoothing=0.2)(logits, labels)
    torch.testing.assert_close(smoothed, F.cross_entropy(logits, labels, label_smoothing=0.2))


@pytest.mark.parametrize("outputs", [(None, "aux"), ()], ids=["none-first", "empty"])
def test_cross_entropy_refuses_a_tuple_without_logits_first(outputs):
    aux = torch.randn(6, 4)
    outputs = tuple(aux if o == "aux" else o for o in outputs)
    with pytest.raises(TypeError, match="first output is not a logits tensor"):
        CrossEntropy()(outputs, torch.zeros(6, dtype=torch.long))


def _googlenet_with_aux():
    torch.manual_seed(0)
    return cnnzoo.get_model(
        "googlenet", num_classes=3, in_channels=1, small_input=True, aux_logits=True
    )


def test_googlenet_with_aux_heads_trains_its_aux_heads_with_fit():
    model = _googlenet_with_aux()
    images, labels = stripes(8)
    images = F.interpolate(images, size=32)
    before = copy_state(model)
    seen = []

    def loss_fn(outputs, targets):
        if torch.is_grad_enabled():
            seen.append(len(outputs))
        return CrossEntropy()(outputs, targets)

    cnnzoo.fit(
        model,
        (images, labels),
        val_data=(images[:4], labels[:4]),
        epochs=1,
        batch_size=4,
        optimizer="sgd",
        schedule=None,
        loss_fn=loss_fn,
        **OMIT,
    )
    assert seen == [3, 3]  # (logits, aux1, aux2) on both training steps
    after = model.state_dict()
    # SGD skips parameters without gradient: the auxiliary heads moved, so their loss counted.
    for key in ("aux1.fc2.weight", "aux2.fc1.weight", "aux1.conv.conv.weight", "fc.weight"):
        assert not torch.equal(before[key], after[key]), key


# -- grad_clip -------------------------------------------------------------------------------
def test_grad_clip_bounds_the_gradient_norm():
    free, free_optimizers = recording(lr=0.5)
    cnnzoo.fit(plain_net(), stripes(96), epochs=2, batch_size=16, optimizer=free, **OMIT)
    clipped, clipped_optimizers = recording(lr=0.5)
    cnnzoo.fit(
        plain_net(), stripes(96), epochs=2, batch_size=16, optimizer=clipped, grad_clip=0.05, **OMIT
    )
    assert max(free_optimizers[0].norms) > 0.2  # unclipped, the norms go past the bound
    assert max(clipped_optimizers[0].norms) <= 0.05 * (1 + 1e-4)


def test_grad_clip_must_be_positive():
    for bad in (0, -1.0, math.inf, True, "1"):
        with pytest.raises(ValueError, match="grad_clip"):
            cnnzoo.fit(plain_net(), stripes(96), grad_clip=bad, **OMIT)


# -- accumulate ------------------------------------------------------------------------------
@pytest.mark.parametrize("optimizer", ["sgd", "adamw"])
@pytest.mark.parametrize("k", [2, 4])
def test_accumulating_k_batches_equals_one_batch_k_times_larger(optimizer, k):
    data = stripes(96)
    small, big = plain_net(), plain_net()
    options = {"epochs": 2, "optimizer": optimizer, "lr": 0.05, **OMIT}
    a = cnnzoo.fit(small, data, batch_size=8, accumulate=k, **options)
    b = cnnzoo.fit(big, data, batch_size=8 * k, **options)
    torch.testing.assert_close(small.state_dict(), big.state_dict(), rtol=1e-4, atol=1e-6)
    assert a.history["lr"] == pytest.approx(b.history["lr"])  # the schedule counts steps
    assert a.params["accumulate"] == k


def test_a_short_last_group_is_averaged_over_its_own_batches():
    # The mean of the outputs has gradient 1/3 on each bias of the last layer, whatever the
    # batch: an average over the batches of a group keeps it, a sum or a wrong divisor would not.
    make, built = recording()
    mean_output = lambda outputs, labels: outputs.mean()  # noqa: E731
    cnnzoo.fit(
        plain_net(),
        stripes(96),
        epochs=1,
        batch_size=8,
        accumulate=5,
        optimizer=make,
        loss_fn=mean_output,
        **OMIT,
    )
    assert len(built[0].biases) == 3  # 12 batches: groups of 5, 5 and 2
    for bias_grad in built[0].biases:
        torch.testing.assert_close(bias_grad, torch.full((3,), 1 / 3))


def test_accumulate_must_be_a_positive_integer():
    for bad in (0, 2.0, True):
        with pytest.raises(ValueError, match="accumulate"):
            cnnzoo.fit(plain_net(), stripes(96), accumulate=bad, **OMIT)


# -- ema -------------------------------------------------------------------------------------
class Snapshots:
    """At each epoch's end: the model's weights, the average's, and the training weights."""

    def __init__(self) -> None:
        self.model, self.average, self.raw = [], [], []

    def set_run(self, run) -> None:
        self.run = run

    def on_epoch_end(self, epoch, logs) -> None:
        ema = self.run.ema
        self.model.append(copy_state(self.run.model))
        self.average.append(copy_state(ema.averaged.module))
        self.raw.append(ema.state_dict()["raw"])


def test_ema_weights_are_validated_saved_and_kept(tmp_path):
    model, snapshots = plain_net(batch_norm=True), Snapshots()
    path = tmp_path / "ema-{epoch}.safetensors"
    history = cnnzoo.fit(
        model,
        stripes(96),
        val_data=stripes(30, seed=1),
        epochs=3,
        batch_size=16,
        ema=0.9,
        **OMIT,
        callbacks=[snapshots, ModelCheckpoint(path, save_best_only=False)],
    )
    for epoch in range(3):
        average, raw = snapshots.average[epoch], snapshots.raw[epoch]
        assert not torch.equal(average["5.weight"], raw["5.weight"])  # the average differs
        assert not torch.equal(average["1.running_mean"], raw["1.running_mean"])
        torch.testing.assert_close(snapshots.model[epoch], average, rtol=0, atol=0)
        saved = load_file(tmp_path / f"ema-{epoch + 1}.safetensors")
        assert saved.keys() == average.keys()
        for key, value in saved.items():
            assert torch.equal(value, average[key]), key  # the file holds the average
    torch.testing.assert_close(model.state_dict(), snapshots.average[-1], rtol=0, atol=0)
    # val_accuracy is the average's
    images, labels = stripes(30, seed=1)
    assert cnnzoo.evaluate(model, (images, labels))["accuracy"] == pytest.approx(
        history.history["val_accuracy"][-1]
    )
    assert history.params["ema"] == 0.9


def test_ema_leaves_the_training_trajectory_alone():
    with_ema, snapshots = plain_net(batch_norm=True), Snapshots()
    cnnzoo.fit(
        with_ema,
        stripes(96),
        val_data=0.25,
        epochs=3,
        batch_size=16,
        ema=True,
        callbacks=[snapshots],
        **OMIT,
    )
    without = plain_net(batch_norm=True)
    cnnzoo.fit(without, stripes(96), val_data=0.25, epochs=3, batch_size=16, **OMIT)
    # The weights follow the same steps; the BatchNorm statistics differ by design: a run without
    # an EMA re-measures them at each epoch's end, the EMA keeps its own average.
    weights = {name for name, _ in without.named_parameters()}
    trained = {k: v for k, v in snapshots.raw[-1].items() if k in weights}
    torch.testing.assert_close(trained, dict(without.named_parameters()), rtol=0, atol=0)


def test_ema_update_warms_up_and_copies_integer_buffers():
    model = nn.BatchNorm1d(2)
    ema = ExponentialMovingAverage(model, decay=0.99)
    with torch.no_grad():
        model.weight.fill_(2.0)  # the average starts from 1.0
        model.num_batches_tracked.fill_(7)
    ema.update()  # decay min(0.99, 1/10) = 0.1
    average = ema.averaged.module
    torch.testing.assert_close(average.weight, torch.full((2,), 1.9))
    assert int(average.num_batches_tracked) == 7
    ema.update()  # decay 2/11
    torch.testing.assert_close(average.weight, torch.full((2,), 1.9 + (0.1 * 9 / 11)))
    assert ema.decay_at(10_000) == 0.99 and ema.updates == 2


def test_ema_resumes_exactly(tmp_path):
    def run(model, checkpoint_dir, callbacks=(), resume=False):
        return cnnzoo.fit(
            model,
            stripes(96),
            val_data=0.25,
            epochs=3,
            batch_size=16,
            ema=0.8,
            checkpoint_dir=checkpoint_dir,
            resume=resume,
            callbacks=list(callbacks),
            **OMIT,
        )

    class StopAfterSecond:
        def on_epoch_end(self, epoch, logs):
            if epoch == 1:
                raise StopTraining

    whole = plain_net(batch_norm=True)
    run(whole, tmp_path / "whole")
    interrupted = plain_net(batch_norm=True)
    run(interrupted, tmp_path / "cut", [StopAfterSecond()])
    torch.manual_seed(5)
    resumed = plain_net(batch_norm=True)
    with torch.no_grad():
        for p in resumed.parameters():
            p.add_(1.0)  # different weights: the state must bring them back
    history = run(resumed, tmp_path / "cut", resume=True)
    assert history.epoch == [0, 1, 2]
    torch.testing.assert_close(resumed.state_dict(), whole.state_dict(), rtol=0, atol=0)


def test_ema_must_be_a_decay():
    for bad in (1.0, 0.0, 1, "yes", -0.5):
        with pytest.raises(ValueError, match="ema must be"):
            cnnzoo.fit(plain_net(), stripes(96), ema=bad, **OMIT)


# -- schedules -------------------------------------------------------------------------------
def test_plateau_divides_the_rate_after_epochs_without_improvement():
    # lr 1e-6: the loss does not move, so it never improves after the first epoch.
    history = cnnzoo.fit(
        plain_net(),
        stripes(96),
        epochs=5,
        batch_size=16,
        lr=1e-6,
        optimizer="sgd",
        schedule="plateau",
        monitor="loss",
        **OMIT,
    )
    assert history.history["lr"] == pytest.approx([1e-6, 1e-6, 1e-6, 1e-7, 1e-7])


def test_plateau_needs_a_recorded_monitor_and_no_warmup():
    with pytest.raises(ValueError, match="pass val_data"):
        cnnzoo.fit(plain_net(), stripes(96), schedule="plateau", **OMIT)  # val_accuracy, no val
    with pytest.raises(ValueError, match="takes no warmup"):
        cnnzoo.fit(plain_net(), stripes(96), schedule="plateau", monitor="loss", warmup=0.1, **OMIT)


def test_cosine_with_warmup_ramps_up_then_decays():
    make, built = recording(lr=1.0)
    cnnzoo.fit(
        plain_net(),
        stripes(96),
        epochs=2,
        batch_size=8,
        optimizer=make,
        schedule="cosine",
        warmup=6,
        **OMIT,
    )
    lrs = built[0].lrs  # 24 steps
    assert lrs[:6] == pytest.approx([k / 7 for k in range(1, 7)])
    assert lrs[6] == pytest.approx(1.0)
    assert all(a > b for a, b in itertools.pairwise(lrs[6:]))
    assert lrs[-1] < 0.05


def test_warmup_fraction_for_onecycle_and_bad_values():
    make, built = recording(lr=1.0)
    cnnzoo.fit(plain_net(), stripes(96), epochs=2, batch_size=8, optimizer=make, warmup=0.5, **OMIT)
    lrs = built[0].lrs
    peak = lrs.index(max(lrs))
    assert 11 <= peak <= 13  # half of the 25 scheduled steps, not the default quarter
    for bad in (1.0, -1, True, "5"):
        with pytest.raises(ValueError, match="warmup"):
            cnnzoo.fit(plain_net(), stripes(96), schedule="cosine", warmup=bad, **OMIT)
    with pytest.raises(ValueError, match="not shorter than the run"):
        cnnzoo.fit(
            plain_net(), stripes(96), epochs=1, batch_size=32, schedule="cosine", warmup=3, **OMIT
        )
