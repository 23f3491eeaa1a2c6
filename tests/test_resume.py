"""Training state for resume: exact, pickle-free, atomic; and fit survives SIGKILL."""

from __future__ import annotations

import json
import math
import random
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from cnnzoo.checkpoint import load_training_state, save_training_state

ROOT = Path(__file__).resolve().parent.parent


def _net() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
        nn.Dropout(0.3), nn.Linear(4 * 6 * 6, 3),
    )  # fmt: skip


def _parts(seed: int = 0):
    torch.manual_seed(seed)
    model = _net()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, betas=(0.8, 0.95))
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=1e-2, total_steps=40)
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
    return model, optimizer, scheduler, scaler


def _epoch(model, optimizer, scheduler) -> None:
    """A few steps whose result depends on the global RNG (dropout, random data)."""
    model.train()
    for _ in range(4):
        x, y = torch.randn(8, 1, 8, 8), torch.randint(0, 3, (8,))
        loss = nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()


def test_state_round_trip_restores_everything(tmp_path):
    import numpy as np

    model, optimizer, scheduler, scaler = _parts()
    _epoch(model, optimizer, scheduler)
    extra = {
        "best": 0.5, "nan": math.nan, "inf": -math.inf, "betas": (0.9, 0.99),
        "by_class": {0: 1.0, 7: [1, 2]}, "__tensor__": "not a tensor", "dtype": torch.bfloat16,
        "generator": torch.Generator().manual_seed(3).get_state(), "order": torch.arange(5),
    }  # fmt: skip
    history = {"loss": [1.5, 1.2], "val_accuracy": [0.25, 0.5]}
    random.seed(5)
    np.random.seed(6)
    save_training_state(tmp_path, model=model, optimizer=optimizer, scheduler=scheduler,
                        scaler=scaler, epoch=1, history=history, extra=extra)  # fmt: skip
    expected_draws = (torch.rand(3), random.random(), np.random.rand())

    fresh, fresh_opt, fresh_sched, fresh_scaler = _parts(seed=99)
    torch.manual_seed(123)
    random.seed(123)
    np.random.seed(123)
    state = load_training_state(tmp_path, model=fresh, optimizer=fresh_opt,
                                scheduler=fresh_sched, scaler=fresh_scaler)  # fmt: skip
    assert state.epoch == 1 and state.history == history
    assert math.isnan(state.extra.pop("nan")) and math.isnan(extra.pop("nan"))
    for key, value in extra.items():
        if isinstance(value, torch.Tensor):
            assert torch.equal(state.extra[key], value), key
        else:
            assert state.extra[key] == value and type(state.extra[key]) is type(value), key

    torch.testing.assert_close(fresh.state_dict(), model.state_dict(), rtol=0, atol=0)
    torch.testing.assert_close(fresh_opt.state_dict(), optimizer.state_dict(), rtol=0, atol=0)
    assert fresh_sched.state_dict() == scheduler.state_dict()
    assert fresh_scaler.state_dict() == scaler.state_dict()
    assert torch.equal(torch.rand(3), expected_draws[0])
    assert random.random() == expected_draws[1]
    assert np.random.rand() == expected_draws[2]


def test_resumed_training_matches_uninterrupted_training(tmp_path):
    model, optimizer, scheduler, _ = _parts()
    for epoch in range(3):
        _epoch(model, optimizer, scheduler)
        if epoch == 0:
            save_training_state(tmp_path, model=model, optimizer=optimizer,
                                scheduler=scheduler, epoch=0, history={})  # fmt: skip

    resumed, res_opt, res_sched, _ = _parts(seed=7)
    state = load_training_state(tmp_path, model=resumed, optimizer=res_opt, scheduler=res_sched)
    for _ in range(state.epoch + 1, 3):
        _epoch(resumed, res_opt, res_sched)
    torch.testing.assert_close(resumed.state_dict(), model.state_dict())


def test_no_state_gives_none(tmp_path):
    model, optimizer, *_ = _parts()
    assert load_training_state(tmp_path / "absent", model=model, optimizer=optimizer) is None
    assert load_training_state(tmp_path, model=model, optimizer=optimizer) is None


def test_files_are_pickle_free_and_old_states_are_replaced(tmp_path):
    model, optimizer, scheduler, _ = _parts()
    for epoch in range(3):
        save_training_state(tmp_path, model=model, optimizer=optimizer, scheduler=scheduler,
                            epoch=epoch, history={"loss": [0.0] * (epoch + 1)})  # fmt: skip
    files = sorted(p.name for p in tmp_path.iterdir())
    assert len(files) == 2 and files[1] == "training_state.json"
    manifest = json.loads((tmp_path / "training_state.json").read_text())
    assert manifest["epoch"] == 2 and manifest["tensors_file"] == files[0]
    tensors = load_file(tmp_path / files[0])  # plain safetensors: no pickle anywhere
    assert {k for k in tensors if k.startswith("model/")} == {
        f"model/{k}" for k in model.state_dict()
    }


def test_a_kill_before_the_manifest_keeps_the_previous_state(tmp_path, monkeypatch):
    from cnnzoo.checkpoint import _state

    model, optimizer, *_ = _parts()
    save_training_state(tmp_path, model=model, optimizer=optimizer, epoch=0, history={"a": [1]})
    saved = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)

    def killed(*args, **kwargs):
        raise KeyboardInterrupt  # dies between the tensor file and the manifest

    monkeypatch.setattr(_state, "write_json_atomic", killed)
    with pytest.raises(KeyboardInterrupt):
        save_training_state(tmp_path, model=model, optimizer=optimizer, epoch=1, history={})
    monkeypatch.undo()

    fresh, fresh_opt, *_ = _parts(seed=3)
    state = load_training_state(tmp_path, model=fresh, optimizer=fresh_opt)
    assert state.epoch == 0 and state.history == {"a": [1]}
    torch.testing.assert_close(fresh.state_dict(), saved, rtol=0, atol=0)
    save_training_state(tmp_path, model=model, optimizer=optimizer, epoch=1, history={})
    assert len(list(tmp_path.iterdir())) == 2  # the orphaned tensor file was cleaned up


def test_state_that_does_not_match_is_refused_clearly(tmp_path):
    model, optimizer, scheduler, _ = _parts()
    save_training_state(tmp_path, model=model, optimizer=optimizer, scheduler=scheduler,
                        epoch=0, history={})  # fmt: skip
    other = nn.Sequential(nn.Linear(2, 2))
    with pytest.raises(ValueError, match=r"training state in .* does not fit.*start over"):
        load_training_state(tmp_path, model=other, optimizer=torch.optim.SGD(other.parameters()))
    fresh, _, _, _ = _parts()
    sgd = torch.optim.SGD(fresh.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="holds a AdamW optimizer state but a SGD was given"):
        load_training_state(tmp_path, model=fresh, optimizer=sgd)
    fresh, adamw, _, _ = _parts()
    with pytest.raises(ValueError, match="has scheduler state but none was given"):
        load_training_state(tmp_path, model=fresh, optimizer=adamw)


def test_corrupted_state_is_refused_clearly(tmp_path):
    model, optimizer, *_ = _parts()
    save_training_state(tmp_path, model=model, optimizer=optimizer, epoch=0, history={})
    (tmp_path / "training_state.json").write_text("{ not json")
    with pytest.raises(ValueError, match="not a valid cnnzoo training-state manifest"):
        load_training_state(tmp_path, model=model, optimizer=optimizer)
    for size in (4 * 2**30, 2**20):  # sparse: refused by its size (bounded), never read whole
        save_training_state(tmp_path, model=model, optimizer=optimizer, epoch=0, history={})
        manifest = tmp_path / "training_state.json"
        with open(manifest, "r+") as f:  # a valid start, then gigabytes (or a nesting) after it
            f.seek(0, 2)
            f.write("[" * 10_000 if size < 2**30 else "")
            f.truncate(max(size, f.tell()))
        with pytest.raises(ValueError, match="not a valid cnnzoo training-state manifest"):
            load_training_state(tmp_path, model=model, optimizer=optimizer)
    save_training_state(tmp_path, model=model, optimizer=optimizer, epoch=0, history={})
    next(tmp_path.glob("*.safetensors")).write_bytes(b"\0" * 10)
    with pytest.raises(ValueError, match=r"truncated|not a safetensors"):
        load_training_state(tmp_path, model=model, optimizer=optimizer)


def test_unstorable_extra_is_named(tmp_path):
    model, optimizer, *_ = _parts()
    with pytest.raises(ValueError, match=r"extra\.hook.*without pickle"):
        save_training_state(tmp_path, model=model, optimizer=optimizer, epoch=0, history={},
                            extra={"hook": lambda: None})  # fmt: skip
    assert not (tmp_path / "training_state.json").exists()


# -- fit, killed with SIGKILL, then resumed ----------------------------------------------------
_WORKER = textwrap.dedent(
    """
    import json, os, signal, sys
    import torch
    from torch import nn
    import cnnzoo

    checkpoint_dir, out, kill_after = sys.argv[1], sys.argv[2], int(sys.argv[3])
    torch.set_num_threads(1)

    class KillAfter:
        def on_epoch_end(self, epoch, logs):
            if epoch == kill_after:
                os.kill(os.getpid(), signal.SIGKILL)

    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 6, 3), nn.BatchNorm2d(6), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Dropout(0.25), nn.Linear(6 * 5 * 5, 4),
    )
    generator = torch.Generator().manual_seed(1)
    x = torch.rand(320, 1, 12, 12, generator=generator)
    y = (x.mean(dim=(1, 2, 3)) * 40).long() % 4
    history = cnnzoo.fit(
        model, (x, y), val_data=0.2, epochs=5, batch_size=32, seed=3, verbose=0,
        augment="flip", checkpoint_dir=checkpoint_dir or None, resume=bool(checkpoint_dir),
        callbacks=[KillAfter()], device="cpu",
    )
    cnnzoo.save(model, out + ".safetensors")
    with open(out + ".json", "w") as f:
        json.dump({"history": history.history, "epoch": history.epoch}, f)
    """
)


def _run_worker(tmp_path: Path, checkpoint_dir: str, out: str, kill_after: int):
    script = tmp_path / "worker.py"
    script.write_text(_WORKER)
    return subprocess.run(
        [sys.executable, str(script), checkpoint_dir, str(tmp_path / out), str(kill_after)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"},
    )  # fmt: skip


@pytest.mark.slow
def test_fit_killed_with_sigkill_resumes_to_the_same_result(tmp_path):
    reference = _run_worker(tmp_path, "", "reference", kill_after=-1)
    assert reference.returncode == 0, reference.stderr

    state_dir = str(tmp_path / "state")
    killed = _run_worker(tmp_path, state_dir, "killed", kill_after=1)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert not (tmp_path / "killed.json").exists()
    assert json.loads((tmp_path / "state" / "training_state.json").read_text())["epoch"] == 1

    resumed = _run_worker(tmp_path, state_dir, "resumed", kill_after=-1)
    assert resumed.returncode == 0, resumed.stderr

    expected = load_file(tmp_path / "reference.safetensors")
    got = load_file(tmp_path / "resumed.safetensors")
    torch.testing.assert_close(got, expected)
    want = json.loads((tmp_path / "reference.json").read_text())
    have = json.loads((tmp_path / "resumed.json").read_text())
    assert have["epoch"] == want["epoch"] == [0, 1, 2, 3, 4]
    want["history"].pop("epoch_seconds")
    have["history"].pop("epoch_seconds")
    assert have["history"].keys() == want["history"].keys()
    for key, values in want["history"].items():
        assert have["history"][key] == pytest.approx(values, rel=1e-6, abs=1e-9), key


def test_numbers_and_keys_no_state_holds_are_refused_as_corruption(tmp_path):
    import cnnzoo

    images, labels = torch.rand(32, 1, 8, 8), torch.arange(32) % 3
    options = {"epochs": 1, "verbose": 0, "checkpoint_dir": tmp_path}
    cnnzoo.fit(_net(), (images, labels), **options)
    manifest = tmp_path / "training_state.json"
    text = manifest.read_text()
    saved = json.loads(text)
    first_loss = saved["history"]["loss"][0]
    broken = {
        # json refuses integers of 4,300+ digits with a ValueError of its own
        "a 5,000-digit integer": text.replace('"epoch": 0', '"epoch": 1' + "0" * 5000, 1),
        "a loss that overflows a float": text.replace(str(first_loss), "1" + "0" * 400, 1),
        "a key that cannot be one": text.replace(
            '"extra": {', '"extra": {"bad": {"__dict__": [[[[1]], 2]]}, ', 1
        ),
    }
    for what, content in broken.items():
        assert content != text, what
        manifest.write_text(content)
        with pytest.raises(ValueError, match=r"start over|not a valid|corrupted") as error:
            cnnzoo.fit(_net(), (images, labels), **{**options, "epochs": 2}, resume=True)
        assert "delete" in str(error.value), what
