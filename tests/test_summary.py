"""summary() and count_parameters()."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cnnzoo import count_parameters, summary
from cnnzoo.models import get


def test_count_parameters_total_and_trainable():
    model = nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 2))
    assert count_parameters(model) == 4 * 3 + 3 + 3 * 2 + 2
    model[0].requires_grad_(False)
    assert count_parameters(model, trainable_only=True) == 3 * 2 + 2


def test_count_parameters_counts_shared_weights_once():
    shared = nn.Linear(3, 3)
    assert count_parameters(nn.Sequential(shared, shared)) == 12


def test_summary_of_lenet5_lists_layers_and_totals():
    model = get("lenet5")
    model.train()
    table = summary(model, (1, 28, 28))
    assert model.training  # mode restored
    assert "[-1, 6, 28, 28]" in table  # first conv keeps 28x28 (padding 2)
    assert "[-1, 16, 10, 10]" in table
    assert "[-1, 10]" in table
    assert "Total params: 61,706" in table
    assert "Trainable params: 61,706" in table
    conv_rows = [line for line in table.splitlines() if "(Conv2d)" in line]
    assert len(conv_rows) == 2
    assert conv_rows[0].split()[-1] == "156"  # 6*1*5*5 + 6


def test_summary_reports_frozen_parameters_and_defaults_to_model_input_size():
    model = get("mini_resnet")
    for p in model.parameters():
        p.requires_grad_(False)
    model.get_classifier().requires_grad_(True)
    table = summary(model)
    assert "Trainable params: 9,810" in table  # the 980 -> 10 head
    assert "Non-trainable params: 4,760" in table


def test_summary_rejects_bad_input_size_clearly():
    with pytest.raises(ValueError, match=r"\(C, H, W\)"):
        summary(get("lenet5"), (28, 28))
    with pytest.raises(ValueError, match="lenet5 takes exactly 28x28"):
        summary(get("lenet5"), (1, 32, 32))
    with pytest.raises(ValueError, match="needs input_size"):
        summary(nn.Linear(2, 2))


def test_summary_handles_tuple_outputs():
    class TwoHeads(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 2, 3)

        def forward(self, x):
            y = self.conv(x)
            return y, y.mean()

    table = summary(TwoHeads(), (1, 5, 5))
    assert "[-1, 2, 3, 3]" in table
    assert torch.__version__  # torch imported for the module under test
