"""One writer per file: pictures and logs replace their file (never write through a planted
link), and a lock held by a run is not kept by the processes it forks (DataLoader workers)."""

from __future__ import annotations

import os

import pytest
import torch

from cnnzoo.checkpoint import FolderInUseError, exclusive_lock
from cnnzoo.comparison import Leaderboard, Row
from cnnzoo.training import CSVLogger, History


def _plant_link(path, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    path.symlink_to(victim)
    return victim


def test_pictures_replace_a_planted_link_rather_than_write_through_it(tmp_path):
    pytest.importorskip("matplotlib")
    board = Leaderboard([Row("a", accuracy=0.9, train_seconds=3.0, params=100)])
    history = History()
    history.append(0, {"loss": 1.0, "accuracy": 0.5})
    history.append(1, {"loss": 0.5, "accuracy": 0.8})
    for name, draw in (("pareto.png", board.plot), ("curves.png", history.plot)):
        target = tmp_path / name
        victim = _plant_link(target, tmp_path)
        draw(target)
        assert victim.read_text() == "precious", name  # the file the link pointed to is intact
        assert not target.is_symlink() and target.read_bytes()[:4] == b"\x89PNG", name
        victim.unlink()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["curves.png", "pareto.png"]  # no tmp


def test_a_picture_that_fails_to_draw_leaves_the_old_one_whole(tmp_path, monkeypatch):
    matplotlib = pytest.importorskip("matplotlib")
    board = Leaderboard([Row("a", accuracy=0.9, train_seconds=3.0, params=100)])
    board.plot(tmp_path / "p.png")
    before = (tmp_path / "p.png").read_bytes()

    def broken(self, fname, *args, **kwargs):
        fname.write(b"half a picture")
        raise OSError("disk full")

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", broken)
    with pytest.raises(OSError, match="disk full"):
        board.plot(tmp_path / "p.png")
    assert (tmp_path / "p.png").read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["p.png"]


def test_a_csv_log_is_never_written_through_a_link(tmp_path):
    log = tmp_path / "log.csv"
    victim = _plant_link(log, tmp_path)
    logger = CSVLogger(log)
    with pytest.raises(ValueError, match="symbolic link"):
        logger.on_train_begin({})
    assert victim.read_text() == "precious"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork: POSIX only")
def test_a_dead_runs_forked_worker_does_not_keep_its_lock(tmp_path):
    """A run killed with its lock held (no release: as kill -9) while a worker it forked lives
    on for a while: the next run gets the lock at once."""
    go_r, go_w = os.pipe()  # the worker lives until the test writes here
    told_r, told_w = os.pipe()
    run = os.fork()
    if run == 0:  # the run: takes the lock, forks its worker, dies without letting go
        try:
            held = exclusive_lock(tmp_path, "the training state", folder=True)
            held.__enter__()  # kept referenced: never closed, as by kill -9
            if os.fork() == 0:  # the worker, outliving the run
                os.read(go_r, 1)
                os._exit(0)
            os.write(told_w, b"ready")
        finally:
            os._exit(0)
    try:
        assert os.read(told_r, 5) == b"ready"
        os.waitpid(run, 0)  # the run is dead; its worker is alive
        assert (tmp_path / ".cnnzoo.lock").read_text().startswith(f"{run} ")  # never released
        with exclusive_lock(tmp_path, "the training state", folder=True):
            pass
    finally:
        os.write(go_w, b"x")  # the worker ends
        for fd in (go_r, go_w, told_r, told_w):
            os.close(fd)


def test_the_state_of_a_forked_dataloader_worker_is_not_the_lock(tmp_path):
    """A real fork-based DataLoader under a held lock: workers start and end, lock intact."""
    if "fork" not in torch.multiprocessing.get_all_start_methods():
        pytest.skip("fork start method unavailable")
    data = torch.utils.data.TensorDataset(torch.arange(4.0))
    with exclusive_lock(tmp_path, "the training state", folder=True):
        loader = torch.utils.data.DataLoader(
            data, batch_size=2, num_workers=1, multiprocessing_context="fork"
        )
        assert sum(len(b[0]) for b in loader) == 4
        with (
            pytest.raises(FolderInUseError),
            exclusive_lock(tmp_path, "x", folder=True),
        ):
            pass  # the parent's lock survived its worker closing its copy
    with exclusive_lock(tmp_path, "x", folder=True):
        pass


def test_a_sparse_multi_gigabyte_csv_log_is_not_read_back_on_append(tmp_path):
    log = tmp_path / "log.csv"
    with open(log, "w") as f:
        f.write("epoch,loss\n0,1.0\n")
        f.truncate(4 * 2**30)  # sparse: no disk used, and never read whole
    logger = CSVLogger(log, append=True)
    logger.on_train_begin({})
    with pytest.raises(ValueError, match="bytes long"):
        logger.on_epoch_end(1, {"loss": 0.5})
    logger.on_train_end({})
