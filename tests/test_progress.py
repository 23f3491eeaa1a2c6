"""fit's progress, as Keras's: a bar during the epoch (terminal, notebook), then one full line
per epoch; timed lines within long epochs when the output is not a terminal."""

from __future__ import annotations

import sys
import types

import pytest
import torch
from torch import nn

import cnnzoo
from cnnzoo import _progress
from cnnzoo.training import progress
from cnnzoo.training.progress import ProgressBar

KEYS = ("loss=", "accuracy=", "val_loss=", "val_accuracy=", "lr=", "time=")


def run_fit(verbose: int, epochs: int = 2):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    images, labels = torch.rand(120, 1, 4, 4), torch.arange(120) % 3
    return cnnzoo.fit(
        model,
        (images, labels),
        val_data=0.2,
        epochs=epochs,
        batch_size=8,
        verbose=verbose,
        device="cpu",
    )


def test_each_epoch_ends_with_one_full_line_of_every_metric(capsys):
    run_fit(verbose=2)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2
    for epoch, line in enumerate(lines, start=1):
        assert line.startswith(f"epoch {epoch}/2  ")
        assert all(key in line for key in KEYS), line
        assert len(line) > 80  # printed whole, not cut to a terminal's width


def test_without_a_terminal_long_epochs_print_timed_lines(capsys, monkeypatch):
    monkeypatch.setattr(progress, "LINE_INTERVAL_SECONDS", 0.0)
    run_fit(verbose=1)
    lines = capsys.readouterr().out.strip().splitlines()
    within = [line for line in lines if " step " in line]
    ends = [line for line in lines if " step " not in line]
    assert len(ends) == 2 and all(all(key in line for key in KEYS) for line in ends)
    assert within[0].startswith("epoch 1/2  step 1/12  loss=")
    assert len(within) == 2 * 11  # every sync but the epoch's last, which the full line reports


def test_without_a_terminal_short_epochs_print_their_line_only(capsys):
    run_fit(verbose=1)  # 10 seconds never pass here
    assert len(capsys.readouterr().out.strip().splitlines()) == 2


def test_on_a_terminal_a_bar_runs_then_the_line_replaces_it(capsys, monkeypatch):
    monkeypatch.setattr(_progress, "_is_terminal", lambda: True)
    run_fit(verbose=1)
    captured = capsys.readouterr()
    assert "epoch 1/2" in captured.err and "step" in captured.err  # tqdm's bar, on stderr
    assert len(captured.out.strip().splitlines()) == 2


def test_a_jupyter_kernel_gets_the_bar_though_its_output_is_no_terminal(monkeypatch):
    shell = types.SimpleNamespace(config={"IPKernelApp": {}})
    fake = types.SimpleNamespace(get_ipython=lambda: shell)
    monkeypatch.setitem(sys.modules, "IPython", fake)
    monkeypatch.setattr(_progress, "_is_terminal", lambda: False)
    assert ProgressBar(verbose=1, epochs=3).use_bar
    plain_shell = types.SimpleNamespace(config={})  # IPython in a terminal, not a kernel
    monkeypatch.setitem(
        sys.modules, "IPython", types.SimpleNamespace(get_ipython=lambda: plain_shell)
    )
    assert not ProgressBar(verbose=1, epochs=3).use_bar


@pytest.mark.parametrize("verbose", [0, 2])
def test_no_bar_when_silent_or_asked_for_lines(monkeypatch, verbose):
    monkeypatch.setattr(_progress, "_is_terminal", lambda: True)
    assert not ProgressBar(verbose=verbose, epochs=3).use_bar
