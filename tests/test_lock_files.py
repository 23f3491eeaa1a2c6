"""No lock file outlives its holder: a clean run leaves none behind, and a writer that opened a
lock file just as its holder removed it takes the lock again on the file the name leads to."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from torch import nn

import cnnzoo
from cnnzoo.checkpoint import _lock
from cnnzoo.training import CSVLogger


def _locks(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*.lock"))


def test_a_clean_fit_leaves_no_lock_file(tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 2))
    data = (torch.rand(16, 1, 4, 4), torch.arange(16) % 2)
    cnnzoo.fit(
        model, data, epochs=1, batch_size=8, verbose=0, device="cpu",
        callbacks=[CSVLogger(tmp_path / "log.csv")], checkpoint_dir=tmp_path / "state",
    )  # fmt: skip
    assert (tmp_path / "log.csv").is_file() and (tmp_path / "state").is_dir()
    assert _locks(tmp_path) == []


def test_the_lock_is_held_while_in_use_and_refuses_a_second_writer(tmp_path):
    target = tmp_path / "log.csv"
    with _lock.exclusive_lock(target, "a CSV log", folder=False):
        assert _locks(tmp_path) == [".log.csv.lock"]
        with (
            pytest.raises(_lock.FolderInUseError, match="is in use"),
            _lock.exclusive_lock(target, "a CSV log", folder=False),
        ):
            pass
        assert _locks(tmp_path) == [".log.csv.lock"]  # the refused writer took nothing away
    assert _locks(tmp_path) == []


def test_a_lock_file_removed_as_it_was_opened_is_taken_again(tmp_path, monkeypatch):
    target = tmp_path / "state"
    real_flock = _lock._flock
    removed = []

    def holder_lets_go(fd):
        if not removed:  # the previous holder removes the file this writer has just opened
            removed.append(True)
            _lock.lock_path_for(target, folder=True).unlink()
        return real_flock(fd)

    monkeypatch.setattr(_lock, "_flock", holder_lets_go)
    with _lock.exclusive_lock(target, "the training state", folder=True):
        path = _lock.lock_path_for(target, folder=True)
        assert removed and path.is_file() and path.read_text().startswith(str(os.getpid()))
    assert not path.exists()
