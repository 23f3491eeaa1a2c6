"""Every long step shows it is alive: lr_find, the decoding of an image folder, each model of a
comparison (with the comparison's elapsed time and an estimate of the rest); none under
verbose=0, and in a log a line every few seconds at most rather than one per step."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image
from torch import nn

import cnnzoo
from cnnzoo import _progress
from cnnzoo.comparison import progress as compare_progress
from cnnzoo.comparison.progress import WholeClock
from cnnzoo.training import progress as fit_progress
from cnnzoo.training.progress import format_duration, stage


@pytest.fixture
def every_step(monkeypatch):
    """No terminal, and no interval between the timed lines: every update prints."""
    monkeypatch.setattr(_progress, "_is_terminal", lambda: False)
    monkeypatch.setattr(_progress, "LINE_INTERVAL_SECONDS", 0.0)


def test_a_counter_prints_timed_lines_and_a_closing_line_only_when_asked(capsys, every_step):
    with _progress.Counter("reading", 3, unit="image") as counter:
        for _ in range(3):
            counter.update(1, "note")
    lines = capsys.readouterr().out.splitlines()
    # two timed lines, then the closing one (the last update is the closing line's to tell)
    assert len(lines) == 3 and lines[0].startswith("reading: 1/3 images  ")
    assert lines[0].endswith("note") and lines[2].startswith("reading: 3 images in ")
    with _progress.Counter("reading", 3, verbose=0) as counter:
        counter.update(3)
    assert capsys.readouterr().out == ""


def test_a_quick_job_in_a_log_prints_nothing(capsys, monkeypatch):
    monkeypatch.setattr(_progress, "_is_terminal", lambda: False)
    with _progress.Counter("reading", 3) as counter:  # 10 seconds never pass here
        counter.update(3)
    assert capsys.readouterr().out == ""


def _data() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return torch.rand(32, 1, 4, 4, generator=generator), torch.arange(32) % 2


@pytest.mark.parametrize("verbose", [0, 1])
def test_lr_find_shows_its_steps_with_the_rate_and_loss(capsys, every_step, verbose):
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 2))
    cnnzoo.lr_find(model, _data(), num_steps=12, batch_size=8, device="cpu", verbose=verbose)
    lines = capsys.readouterr().out.splitlines()
    if not verbose:
        assert lines == []
        return
    steps = [line for line in lines if " steps  " in line]
    assert steps[0].startswith("lr_find: 1/12 steps  ") and "lr=" in steps[0]
    assert "loss=" in steps[0] and lines[-1].startswith("lr_find: ")


def _folder(root: Path) -> Path:
    for split in ("train", "test"):
        for label in ("a", "b"):
            (root / split / label).mkdir(parents=True)
            for i in range(3):
                Image.new("RGB", (8, 8), (40 * i, 0, 0)).save(root / split / label / f"{i}.png")
    return root


@pytest.mark.parametrize("verbose", [0, 1])
def test_decoding_an_image_folder_shows_its_progress(
    capsys, tmp_path, monkeypatch, every_step, verbose
):
    from cnnzoo.data import streamed

    monkeypatch.setattr(streamed, "STATS_CHUNK", 2)  # three chunks: lines between them
    folder = _folder(tmp_path / "data")
    data = cnnzoo.data.load_dataset(folder, "train", in_memory=True, verbose=verbose)
    assert len(data) == 6
    lines = capsys.readouterr().out.splitlines()
    decoding = [line for line in lines if line.startswith("decoding the images in ")]
    assert bool(decoding) == bool(verbose)
    if verbose:
        assert decoding[0].endswith("data/train: 2/6 images  0s")
        assert decoding[-1].startswith(f"decoding the images in {folder}/train: 6 images in ")


def test_fit_inside_a_stage_names_it_and_the_whole_job(capsys):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 2))
    with stage("[2/3] tiny", lambda share: f"whole {share:.2f}"):
        cnnzoo.fit(model, _data(), epochs=2, batch_size=8, verbose=2, device="cpu")
    lines = capsys.readouterr().out.splitlines()
    heads = [line.split("  ")[:2] for line in lines]
    assert heads == [["[2/3] tiny", "epoch 1/2"], ["[2/3] tiny", "epoch 2/2"]]
    assert lines[0].endswith("whole 0.50") and lines[1].endswith("whole 1.00")
    cnnzoo.fit(model, _data(), epochs=1, batch_size=8, verbose=2, device="cpu")
    assert capsys.readouterr().out.startswith("epoch 1/1  ")  # outside the block: plain


def test_the_comparison_estimate_weighs_models_by_their_cost(monkeypatch):
    now = [100.0]
    monkeypatch.setattr(compare_progress.time, "monotonic", lambda: now[0])
    # the median cost (5) adds a fixed tenth to each: small 1.5, large 5.5, kept 9.5
    clock = WholeClock({"small": 1.0, "large": 5.0, "kept": 9.0})
    clock.kept("kept")  # finished by an earlier run: costs nothing now
    now[0] += 15.0  # "small" took 15 s: 10 s per unit of work
    clock.finished("small")
    whole = clock.describe("large")
    assert whole(0.0) == "comparison 15s, ~55s left"  # 5.5 units at 10 s
    now[0] += 27.0  # half of "large" done at 42 s: 4.25 units, 2.75 left at 42/4.25 s each
    assert whole(0.5) == "comparison 42s, ~27s left"
    assert whole(1.0).endswith("s") and "left" not in whole(1.0)
    assert format_duration(3725) == "1h02m" and format_duration(65) == "1m05s"


@pytest.mark.parametrize("verbose", [0, 1])
def test_compare_names_each_model_in_its_progress_and_is_silent_at_verbose_0(
    capsys, tmp_path, monkeypatch, every_step, verbose
):
    from cnnzoo.data import streamed

    monkeypatch.setattr(streamed, "STATS_CHUNK", 2)  # the folder's decoding has lines too
    monkeypatch.setattr(fit_progress, "LINE_INTERVAL_SECONDS", 0.0)  # and fit's every step
    folder = tmp_path / "data"
    for split in ("train", "test"):
        for label in ("a", "b"):
            (folder / split / label).mkdir(parents=True)
            for i in range(4):
                Image.new("RGB", (28, 28), (60 * i, 200 * (label == "a"), 0)).save(
                    folder / split / label / f"{i}.png"
                )
    cnnzoo.compare(["lenet5"], str(folder), epochs=1, batch_size=2, val_data=0.25, seed=0,
                   device="cpu", verbose=verbose)  # fmt: skip
    out = capsys.readouterr().out
    if not verbose:
        assert out == ""
        return
    assert "decoding the images in " in out
    epoch = [line for line in out.splitlines() if line.startswith("[1/1] lenet5  epoch 1/1  ")]
    assert epoch and all("comparison " in line for line in epoch)
    assert any(" step " in line for line in epoch)  # fit's timed lines within the epoch
