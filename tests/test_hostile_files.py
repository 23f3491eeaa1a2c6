"""The run's own files as hostile input: the manifest, a folder written in pieces, two writers.

A training-state manifest decodes only what its format defines and checks every field; a
``save_pretrained`` folder whose files come from two saves is refused rather than loaded; two
writers of one checkpoint directory or one CSV log are refused with the other's process named,
and a lock left by a killed process never blocks. Each test checks the error, its message, and
that nothing on disk was lost.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from _synthetic import stripes as synthetic_stripes
from _synthetic import tiny_net as synthetic_net
from torch import nn

import cnnzoo
from cnnzoo.checkpoint import FolderInUseError, exclusive_lock, save_training_state
from cnnzoo.cli import main
from cnnzoo.training import CSVLogger

QUICK = {"epochs": 2, "batch_size": 16, "lr": 0.02, "verbose": 0, "device": "cpu"}
ROOT = Path(__file__).resolve().parents[1]


def stripes() -> tuple[torch.Tensor, torch.Tensor]:
    return synthetic_stripes(48)


def tiny_net() -> nn.Module:
    return synthetic_net(batch_norm=False, dropout=0.0)


def files(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` but the (empty when free) lock file, with its content."""
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in folder.rglob("*")
        if p.is_file() and p.name != ".cnnzoo.lock"
    }


# -- 3. the manifest decodes only what the format defines ------------------------------------------
def saved_state(tmp_path: Path) -> tuple[Path, dict]:
    model = tiny_net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 2)
    save_training_state(tmp_path, model=model, optimizer=optimizer, scheduler=scheduler,
                        epoch=1, history={"loss": [1.0, 0.5]})  # fmt: skip
    manifest = tmp_path / "training_state.json"
    return manifest, json.loads(manifest.read_text())


def resume(tmp_path: Path):
    from cnnzoo.checkpoint import load_training_state

    model = tiny_net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 2)
    return load_training_state(tmp_path, model=model, optimizer=optimizer, scheduler=scheduler)


@pytest.mark.parametrize(
    ("poison", "message"),
    [
        (lambda m: m["scheduler"]["state"].update(gamma={"__dtype__": "load"}), r"dtype 'load'"),
        (lambda m: m["scheduler"]["state"].update(x={"__dtype__": "os"}), r"dtype 'os'"),
        (lambda m: m["scheduler"]["state"].update(last_epoch={"__device__": "x;y"}), "device"),
        (lambda m: m["scheduler"]["state"].update(base_lrs={"__tuple__": 3}), r"tag '__tuple__'"),
        (lambda m: m["scheduler"]["state"].update(step={"__tensor__": "nope"}), "lacks"),
        (lambda m: m["scheduler"]["state"].update(optimizer=True), r"keys \['optimizer'\]"),
        (lambda m: m["optimizer"]["state"]["param_groups"][0].update(evil=1), r"keys \['evil'\]"),
        (lambda m: m.update(epoch=-5), r"its epoch is -5, not an epoch number"),
        (lambda m: m.update(epoch="3"), r"its epoch is '3'"),
        (lambda m: m.update(epoch=True), r"its epoch is True"),
        (lambda m: m.update(history={"loss": [1.0, "x"]}), r"history of 'loss' is not a list"),
        (lambda m: m.update(history={"loss": [1.0] * 9}), r"one value per epoch"),
        (lambda m: m.update(optimizer=[]), r"optimizer record is not"),
        (lambda m: m.update(rng={"torch": 1, "python": 2}), r"(torch|RNG) .*state"),
        (lambda m: m.update(format_version="1"), r"not a valid cnnzoo training-state"),
    ],
)
def test_a_manifest_that_steers_the_code_is_refused_and_kept(
    tmp_path, monkeypatch, poison, message
):
    manifest, content = saved_state(tmp_path)
    poison(content)
    manifest.write_text(json.dumps(content))
    before = files(tmp_path)
    monkeypatch.setattr(torch, "load", lambda *a, **k: pytest.fail("torch.load was called"))
    rng = torch.get_rng_state()
    with pytest.raises(ValueError, match=message) as caught:
        resume(tmp_path)
    assert "start over" in str(caught.value).lower() or "not a valid" in str(caught.value)
    assert files(tmp_path) == before
    assert torch.equal(torch.get_rng_state(), rng)  # refused before anything was restored


def test_a_sound_manifest_still_resumes(tmp_path):
    saved_state(tmp_path)
    state = resume(tmp_path)
    assert state.epoch == 1 and state.history == {"loss": [1.0, 0.5]}


def test_a_fit_run_refuses_a_negative_epoch_before_training(tmp_path):
    cnnzoo.fit(tiny_net(), stripes(), checkpoint_dir=tmp_path, **QUICK)
    manifest = tmp_path / "training_state.json"
    manifest.write_text(json.dumps(json.loads(manifest.read_text()) | {"epoch": -5}))
    before = files(tmp_path)
    with pytest.raises(ValueError, match=r"epoch is -5"):
        cnnzoo.fit(tiny_net(), stripes(), checkpoint_dir=tmp_path, resume=True, **QUICK)
    assert files(tmp_path) == before


# -- 4. a folder written in pieces -----------------------------------------------------------------
def test_a_failed_save_pretrained_leaves_the_old_folder_whole(tmp_path, monkeypatch):
    folder = cnnzoo.save_pretrained(cnnzoo.get_model("lenet5"), tmp_path / "m")
    before = files(folder)
    real_write = Path.write_text

    def fail_on_the_card(self, *args, **kwargs):
        if self.name.startswith(".README.md."):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self))
        return real_write(self, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", fail_on_the_card)
    with pytest.raises(OSError, match="No space left"):
        cnnzoo.save_pretrained(cnnzoo.get_model("lenet5", num_classes=3), folder)
    assert files(folder) == before  # every old file, and no temporary one


def test_a_kill_between_the_renames_is_detected_not_loaded(tmp_path, monkeypatch):
    import cnnzoo.checkpoint._io as io

    folder = cnnzoo.save_pretrained(cnnzoo.get_model("lenet5"), tmp_path / "m")
    real_replace, renamed = os.replace, []

    def killed_after_the_weights(src, dst):
        if renamed:
            raise KeyboardInterrupt  # the process dies between two renames
        renamed.append(dst)
        real_replace(src, dst)

    monkeypatch.setattr(io.os, "replace", killed_after_the_weights)
    with pytest.raises(KeyboardInterrupt):
        cnnzoo.save_pretrained(cnnzoo.get_model("lenet5", num_classes=3), folder)
    monkeypatch.undo()
    assert Path(renamed[0]).name == "model.safetensors"  # new weights, old config.json
    with pytest.raises(ValueError, match=r"come from two different saves.*Save the model again"):
        cnnzoo.from_pretrained(folder)
    fixed = cnnzoo.save_pretrained(cnnzoo.get_model("lenet5", num_classes=3), folder)
    assert cnnzoo.from_pretrained(fixed).num_classes == 3


def test_a_folder_from_before_save_ids_still_loads(tmp_path):
    folder = cnnzoo.save_pretrained(cnnzoo.get_model("lenet5"), tmp_path / "m")
    config = json.loads((folder / "config.json").read_text())
    del config["cnnzoo_save_id"]
    (folder / "config.json").write_text(json.dumps(config))
    cnnzoo.save(cnnzoo.get_model("lenet5"), folder / "model.safetensors")  # no save id either
    assert cnnzoo.from_pretrained(folder).num_classes == 10


def test_a_real_full_disk_from_safetensors_is_an_os_error(tmp_path, monkeypatch, capsys):
    import safetensors.torch
    from safetensors import SafetensorError

    def full(*args, **kwargs):
        raise SafetensorError("Error while serializing: I/O error: No space left on device "
                              "(os error 28)")  # fmt: skip

    monkeypatch.setattr(safetensors.torch, "save_file", full)
    with pytest.raises(OSError, match="No space left") as caught:
        cnnzoo.save(tiny_net(), tmp_path / "m.safetensors")
    assert caught.value.errno == errno.ENOSPC
    assert list(tmp_path.iterdir()) == []


# -- 5. two writers --------------------------------------------------------------------------------
HOLDER = """
import sys, time
from cnnzoo.checkpoint import exclusive_lock
with exclusive_lock(sys.argv[1], "a test", folder=True):
    print("held", flush=True)
    time.sleep(60)
"""


def test_a_second_run_on_a_checkpoint_dir_is_refused_and_a_dead_ones_lock_is_not(tmp_path):
    cnnzoo.fit(tiny_net(), stripes(), checkpoint_dir=tmp_path, **QUICK)
    before = files(tmp_path)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")])}
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path)], env=env,
                              stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(FolderInUseError, match=rf"in use: process {holder.pid} .*another"):
            cnnzoo.fit(tiny_net(), stripes(), checkpoint_dir=tmp_path, resume=True, **QUICK)
        assert files(tmp_path) == before
    finally:
        holder.send_signal(signal.SIGKILL)  # kill -9: no clean-up runs
        holder.wait()
    history = cnnzoo.fit(tiny_net(), stripes(), checkpoint_dir=tmp_path, resume=True,
                         **(QUICK | {"epochs": 3}))  # fmt: skip
    assert history.epoch == [0, 1, 2]


def test_the_lock_is_released_when_a_run_fails(tmp_path):
    class Fails:
        def on_epoch_end(self, epoch, logs):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        cnnzoo.fit(tiny_net(), stripes(), checkpoint_dir=tmp_path, callbacks=[Fails()], **QUICK)
    with exclusive_lock(tmp_path, "a test", folder=True):  # free again
        pass


def test_two_csv_loggers_on_one_file_are_refused(tmp_path):
    log = tmp_path / "log.csv"
    with pytest.raises(FolderInUseError, match=r"in use: this process .*CSV log"):
        cnnzoo.fit(tiny_net(), stripes(), callbacks=[CSVLogger(log), CSVLogger(log)], **QUICK)
    cnnzoo.fit(tiny_net(), stripes(), callbacks=[CSVLogger(log)], **QUICK)
    assert log.read_text().splitlines()[0].startswith("epoch,")
    assert len(log.read_text().splitlines()) == 3  # a header and one row per epoch


def test_a_csv_logger_never_overwrites_a_file_that_is_not_a_log(tmp_path):
    precious = tmp_path / "results.csv"
    precious.write_text("name,score\nalice,3\n")
    with pytest.raises(ValueError, match=r"is not a CSV log.*not overwritten"):
        cnnzoo.fit(tiny_net(), stripes(), callbacks=[CSVLogger(precious)], **QUICK)
    assert precious.read_text() == "name,score\nalice,3\n"
    directory = tmp_path / "a-folder.csv"
    directory.mkdir()
    with pytest.raises(ValueError, match=r"is a directory"):
        cnnzoo.fit(tiny_net(), stripes(), callbacks=[CSVLogger(directory)], **QUICK)


# -- 7. errors that came after an epoch, or raw ---------------------------------------------------
def test_a_bad_log_dir_is_refused_before_the_first_epoch(tmp_path, capsys):
    pytest.importorskip("tensorboard")
    from cnnzoo.training import TensorBoardLogger

    (tmp_path / "file").write_text("not a folder")
    epochs = []

    class Count:
        def on_epoch_end(self, epoch, logs):
            epochs.append(epoch)

    logger = TensorBoardLogger(tmp_path / "file" / "tb")
    with pytest.raises(ValueError, match=r"is a file, not a folder"):
        cnnzoo.fit(tiny_net(), stripes(), callbacks=[Count(), logger], **QUICK)
    assert epochs == []


def test_a_directory_is_called_a_directory(tmp_path, capsys):
    (tmp_path / "weights.safetensors").mkdir()
    with pytest.raises(IsADirectoryError, match="is a directory"):
        cnnzoo.load(tmp_path / "weights.safetensors")
    folder = cnnzoo.save_pretrained(cnnzoo.get_model("lenet5"), tmp_path / "m")
    (folder / "config.json").unlink()
    (folder / "config.json").mkdir()
    with pytest.raises(ValueError, match=r"is a directory, not a config.json"):
        cnnzoo.from_pretrained(folder)
    code = main(["predict", str(tmp_path / "weights.safetensors"), str(tmp_path)])
    assert code == 2 and "Traceback" not in capsys.readouterr().err


def test_an_unreadable_image_is_a_permission_error_not_a_corrupted_one(tmp_path, monkeypatch):
    from PIL import Image

    path = tmp_path / "x.png"
    Image.new("L", (28, 28)).save(path)

    def refused(*args, **kwargs):  # root reads every file, so the refusal is staged
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    monkeypatch.setattr(Image, "open", refused)
    with pytest.raises(PermissionError, match="Permission denied") as caught:
        cnnzoo.predict(cnnzoo.get_model("lenet5"), str(path))
    assert "corrupted" not in str(caught.value)


def test_a_planted_lock_file_is_never_followed_or_truncated(tmp_path):
    victim = tmp_path / "bashrc"
    victim.write_text("precious")
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / ".cnnzoo.lock").symlink_to(victim)
    with pytest.raises(ValueError, match=r"is not a lock file cnnzoo wrote.*Remove it"):
        cnnzoo.fit(tiny_net(), stripes(), checkpoint_dir=folder, **QUICK)
    assert victim.read_text() == "precious"


def test_a_file_where_a_folder_should_be_is_named(tmp_path):
    (tmp_path / "file").write_text("kept")
    lenet = cnnzoo.get_model("lenet5")
    for call in (lambda: cnnzoo.save(tiny_net(), tmp_path / "file" / "m.safetensors"),
                 lambda: cnnzoo.save_pretrained(lenet, tmp_path / "file")):  # fmt: skip
        with pytest.raises(ValueError, match=r"'.*file' is a regular file, not a folder"):
            call()
    assert (tmp_path / "file").read_text() == "kept"


@pytest.mark.parametrize(
    ("poison", "message"),
    [
        (lambda m: m["scheduler"]["state"].update(base_lrs="abc"), r"'base_lrs' is 'abc'"),
        (lambda m: m["optimizer"]["state"]["param_groups"][0].update(lr="x"), r"'lr' is 'x'"),
    ],
)
def test_saved_values_of_the_wrong_kind_are_refused(tmp_path, poison, message):
    manifest, content = saved_state(tmp_path)
    poison(content)
    manifest.write_text(json.dumps(content))
    with pytest.raises(ValueError, match=message):
        resume(tmp_path)


def test_optimizer_moments_of_another_shape_are_refused(tmp_path):
    from safetensors.torch import load_file, save_file

    model = tiny_net()
    optimizer = torch.optim.Adam(model.parameters())
    model(torch.rand(2, 1, 8, 8)).sum().backward()
    optimizer.step()
    save_training_state(tmp_path, model=model, optimizer=optimizer, epoch=0, history={})
    tensor_file = next(tmp_path.glob("training_state-*.safetensors"))
    tensors = load_file(str(tensor_file))
    name = next(k for k in tensors if k.startswith("optimizer/") and tensors[k].dim() > 1)
    tensors[name] = torch.zeros(7, 7)
    save_file(tensors, str(tensor_file), metadata={"format": "pt"})
    fresh = tiny_net()
    from cnnzoo.checkpoint import load_training_state

    with pytest.raises(ValueError, match=r"has shape \(7, 7\), its parameter"):
        load_training_state(tmp_path, model=fresh, optimizer=torch.optim.Adam(fresh.parameters()))


def test_a_callback_state_that_does_not_fit_is_named_as_corruption(tmp_path):
    cnnzoo.fit(tiny_net(), stripes(), checkpoint_dir=tmp_path, patience=3, val_data=0.25, **QUICK)
    manifest = tmp_path / "training_state.json"
    content = json.loads(manifest.read_text())
    content["extra"]["callbacks"]["EarlyStopping"]["wait"] = "x"
    manifest.write_text(json.dumps(content))
    with pytest.raises(ValueError, match=r"corrupted: the saved state of the EarlyStopping"):
        cnnzoo.fit(tiny_net(), stripes(), checkpoint_dir=tmp_path, resume=True, patience=3,
                   val_data=0.25, **QUICK)  # fmt: skip
