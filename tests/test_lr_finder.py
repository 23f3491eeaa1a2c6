"""lr_find: the range test's curve and suggestion; the model and the random state untouched."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from _synthetic import stripes, tiny_net
from torch import nn

import cnnzoo
from cnnzoo.training import LRFinderResult, lr_find

OMIT = {"device": "cpu"}


def bn_net() -> nn.Module:
    return tiny_net(dropout=0.2)


class Scripted:
    """A loss whose value per call is scripted (its gradient is zero): a known curve."""

    def __init__(self, values) -> None:
        self.values = values
        self.calls = 0

    def __call__(self, outputs, labels):
        value = self.values(self.calls)
        self.calls += 1
        return outputs.sum() * 0.0 + value


def test_lr_find_leaves_the_model_and_the_random_state_as_they_were():
    model = bn_net()
    model.eval()
    model[1].train()  # a mixed mode must come back as it was, module by module
    before = {k: v.clone() for k, v in model.state_dict().items()}
    modes = [m.training for m in model.modules()]
    rng = torch.get_rng_state()
    result = lr_find(model, stripes(96), batch_size=16, num_steps=30, **OMIT)
    assert isinstance(result, LRFinderResult)
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert [m.training for m in model.modules()] == modes
    assert torch.equal(torch.get_rng_state(), rng)
    assert next(model.parameters()).device.type == "cpu"


def test_the_curve_ramps_exponentially_and_cycles_the_data():
    result = lr_find(
        bn_net(), stripes(32), batch_size=16, start_lr=1e-5, end_lr=1e-1, num_steps=9, **OMIT
    )
    assert len(result.lrs) == len(result.losses) == len(result.raw_losses) == 9  # 2 batches/pass
    expected = [1e-5 * 10 ** (k / 2) for k in range(9)]
    assert result.lrs == pytest.approx(expected)
    assert not result.diverged
    assert result.suggestion in result.lrs and result.min_loss_lr in result.lrs


def test_the_smoothed_loss_is_fastais_debiased_moving_average():
    values = [3.0, 1.0, 2.0, 0.5, 1.5, 1.0]
    result = lr_find(
        bn_net(),
        stripes(96),
        batch_size=16,
        num_steps=6,
        loss_fn=Scripted(values.__getitem__),
        **OMIT,
    )
    assert result.raw_losses == pytest.approx(values)
    average = 0.0
    for step, value in enumerate(values):
        average = 0.98 * average + 0.02 * value
        assert result.losses[step] == pytest.approx(average / (1 - 0.98 ** (step + 1)))


def test_the_suggestion_is_where_the_smoothed_loss_falls_fastest():
    # A drop from 2 to 1 at step 40: the smoothed loss falls fastest right there.
    result = lr_find(
        bn_net(),
        stripes(96),
        batch_size=16,
        num_steps=80,
        loss_fn=Scripted(lambda step: 2.0 if step < 40 else 1.0),
        **OMIT,
    )
    assert result.suggestion in result.lrs[39:42]
    assert result.min_loss_lr == result.lrs[-1]  # still falling at the end


def test_the_test_stops_when_the_loss_diverges():
    # The loss jumps 10x at step 20: more than 4x the best smoothed loss within a few steps.
    result = lr_find(
        bn_net(),
        stripes(96),
        batch_size=16,
        num_steps=100,
        loss_fn=Scripted(lambda step: 1.0 if step < 20 else 500.0),
        **OMIT,
    )
    assert result.diverged
    assert 20 < len(result.lrs) < 30
    nan_loss = Scripted(lambda step: 1.0 if step < 15 else math.nan)
    result = lr_find(bn_net(), stripes(96), batch_size=16, num_steps=100, loss_fn=nan_loss, **OMIT)
    assert result.diverged and len(result.lrs) == 15
    assert all(math.isfinite(v) for v in result.losses)


def test_a_real_network_gets_a_plausible_suggestion_and_a_plot(tmp_path):
    result = lr_find(bn_net(), stripes(96), batch_size=16, num_steps=60, **OMIT)
    assert 1e-7 <= result.suggestion <= 10
    assert result.losses[-1] > min(result.losses) or result.diverged
    result.plot(tmp_path / "lr.png", title="range test")
    assert (tmp_path / "lr.png").read_bytes()[:4] == b"\x89PNG"
    assert "suggestion=" in repr(result)


def test_bad_arguments_are_refused_clearly():
    model, data = bn_net(), stripes(96)
    with pytest.raises(ValueError, match="start_lr < end_lr"):
        lr_find(model, data, start_lr=1.0, end_lr=0.1, **OMIT)
    with pytest.raises(ValueError, match="num_steps"):
        lr_find(model, data, num_steps=2, **OMIT)
    with pytest.raises(ValueError, match="pass a name"):
        lr_find(model, data, optimizer=torch.optim.SGD(model.parameters(), lr=0.1), **OMIT)
    with pytest.raises(ValueError, match="lower start_lr"):
        lr_find(model, data, loss_fn=Scripted(lambda step: math.nan), **OMIT)
    with pytest.raises(ValueError, match="label"):
        lr_find(model, (data[0], data[1] + 5), **OMIT)


def test_lr_find_is_exported_lazily_and_takes_aux_models():
    assert cnnzoo.lr_find is lr_find
    torch.manual_seed(0)
    model = cnnzoo.get_model(
        "googlenet", num_classes=3, in_channels=1, small_input=True, aux_logits=True
    )
    images, labels = stripes(8)
    seen = []

    def loss_fn(outputs, targets):
        seen.append(len(outputs))
        return F.cross_entropy(outputs[0], targets)

    lr_find(
        model,
        (F.interpolate(images, size=32), labels),
        batch_size=4,
        num_steps=5,
        loss_fn=loss_fn,
        **OMIT,
    )
    assert seen == [3] * 5


def test_lr_find_measures_at_the_batch_size_fit_trains_the_model_with(recipe_model):
    from torch.utils.data import DataLoader, TensorDataset

    steps = {"num_steps": 12, "start_lr": 1e-4, "end_lr": 1e-1, **OMIT}
    # fit trains a model with no recipe at 32 whatever the budget, a zoo model at 128
    assert lr_find(bn_net(), stripes(96), **steps).batch_size == 32
    assert lr_find(cnnzoo.get_model(recipe_model), stripes(256), **steps).batch_size == 128
    assert lr_find(bn_net(), stripes(96), batch_size=8, **steps).batch_size == 8
    loader = DataLoader(TensorDataset(*stripes(96)), batch_size=24)
    assert lr_find(bn_net(), loader, **steps).batch_size == 24
