"""BatchNorm statistics are re-measured at each epoch's end with the weights it ended on, from
the first training batches (an exact average), and left to the EMA when there is one."""

from __future__ import annotations

import torch
from _synthetic import stripes
from torch import nn

import cnnzoo
from cnnzoo.training.norm_stats import RECALIBRATION_BATCHES, has_batch_norm


def bn_first(momentum: float = 0.1) -> nn.Module:
    """BatchNorm straight on the (normalised) images, so its statistics are the pixels'."""
    torch.manual_seed(0)
    return nn.Sequential(nn.BatchNorm2d(1, momentum=momentum), nn.Flatten(), nn.Linear(64, 3))


def first_batches_mean(images: torch.Tensor, model: nn.Module, batch_size: int, epoch: int):
    """The exact average of the per-batch means of the first batches of ``epoch``."""
    from cnnzoo.training.feed.batches import Shard, epoch_order

    order = epoch_order(len(images), 0, epoch, shuffle=True, shard=Shard(), pad=True)
    cfg = model.pretrained_cfg
    x = (images - torch.tensor(cfg.mean).view(1, -1, 1, 1)) / torch.tensor(cfg.std).view(
        1, -1, 1, 1
    )
    means = [
        x[order[i * batch_size : (i + 1) * batch_size]].mean() for i in range(RECALIBRATION_BATCHES)
    ]
    return torch.stack(means).mean()


def test_statistics_are_measured_with_the_final_weights():
    images, labels = stripes(40 * RECALIBRATION_BATCHES)
    model = bn_first(momentum=0.9)  # a fast-moving running mean: the last batch's, mostly
    history = cnnzoo.fit(
        model, (images, labels), epochs=2, batch_size=8, lr=0.0, verbose=0, precision="fp32"
    )
    assert history.params["steps"] > RECALIBRATION_BATCHES
    expected = first_batches_mean(images, model, 8, epoch=1)
    assert torch.allclose(model[0].running_mean, expected.view(1), atol=1e-5)
    assert model[0].momentum == 0.9  # restored


def test_models_without_batch_norm_and_ema_runs_are_left_alone():
    assert not has_batch_norm(nn.Sequential(nn.Flatten(), nn.Linear(64, 3)))
    images, labels = stripes(64)
    model = bn_first()
    history = cnnzoo.fit(model, (images, labels), epochs=1, lr=0.0, ema=0.5, verbose=0)
    assert history.params["ema"] == 0.5
    assert int(model[0].num_batches_tracked) > 0  # the EMA's statistics, not an exact average


def test_frozen_batch_norm_layers_keep_their_statistics():
    torch.manual_seed(0)
    model = cnnzoo.get_model("cifar_cnn", num_classes=3, in_channels=1)
    layers = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    with torch.no_grad():
        for layer in layers:  # as pretrained statistics would be
            layer.running_mean.fill_(0.5)
            layer.running_var.fill_(2.0)
    cnnzoo.freeze(model)  # the head trains; the frozen BatchNorm layers stay in eval mode
    images = torch.rand(64, 1, 32, 32)
    labels = torch.arange(64) % 3
    cnnzoo.fit(model, (images, labels), epochs=1, batch_size=16, verbose=0, precision="fp32")
    for layer in layers:
        assert torch.equal(layer.running_var, torch.full_like(layer.running_var, 2.0))
        assert torch.equal(layer.running_mean, torch.full_like(layer.running_mean, 0.5))
