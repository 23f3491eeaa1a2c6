"""Hostile and careless inputs: each gets a clear error that names the problem and the fix.

One section per class of attack (resume, files that steer the code, names and formats, image
folders, poisoned numbers, edges of the schedule and the types, the CLI, file permissions, errors
that come too late). Besides the error type and message, the tests check that nothing on disk
was lost or left behind: old files intact, no temporary files. Every situation is constructed;
none depends on how training happens to go.
"""

from __future__ import annotations

import errno
import json
import os
import stat
import struct
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from _synthetic import stripes as synthetic_stripes
from _synthetic import tiny_net as synthetic_net
from PIL import Image
from safetensors.torch import load_file, save_file
from torch import nn
from torch.utils.data import Dataset

import cnnzoo
from cnnzoo.checkpoint import peek_training_state, save_training_state
from cnnzoo.checkpoint._io import write_json_atomic
from cnnzoo.cli import main
from cnnzoo.data import load_dataset
from cnnzoo.models import registry

QUICK = {"epochs": 2, "batch_size": 16, "lr": 0.02, "verbose": 0, "device": "cpu"}


def stripes(n: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    return synthetic_stripes(n)


def tiny_net() -> nn.Module:
    return synthetic_net(batch_norm=False, dropout=0.0)


def files(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` with its content: compared before and after an attack."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*.tmp"))


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def read_only(monkeypatch, folder: Path) -> None:
    """Make ``folder`` look read-only to ``os.access``, even for root (who may write anywhere)."""
    real_access = os.access
    monkeypatch.setattr(
        os, "access", lambda path, mode: Path(path) != folder and real_access(path, mode)
    )


class Untouchable(Dataset):
    """Data that fails the test if anything reads it: errors must come before the data."""

    def __len__(self) -> int:
        raise AssertionError("the data was read before the options were checked")

    def __getitem__(self, index: int):
        raise AssertionError("the data was read before the options were checked")


def image_folder(root: Path, layout: dict[str, list[str]], per_class: int = 6) -> Path:
    """An ImageFolder tree: ``{"train": ["dark", "bright"], "test": [...]}``; "" for no split."""
    for split, classes in layout.items():
        for name in classes:
            folder = root / split / name if split else root / name
            folder.mkdir(parents=True)
            shade = 40 if name == "dark" else 210
            for i in range(per_class):
                Image.new("RGB", (28, 28), (shade + i, shade, shade)).save(folder / f"{i}.png")
    return root


# == 1. resume that lies or crashes ==============================================================
def test_resume_with_more_epochs_follows_the_longer_schedule(tmp_path):
    state = tmp_path / "state"
    data = stripes()
    first = cnnzoo.fit(tiny_net(), data, val_data=0.25, checkpoint_dir=state, **QUICK)
    longer = {**QUICK, "epochs": 4}
    planned = cnnzoo.fit(tiny_net(), data, val_data=0.25, **longer)
    resumed = cnnzoo.fit(
        tiny_net(), data, val_data=0.25, checkpoint_dir=state, resume=True, **longer
    )
    assert resumed.epoch == [0, 1, 2, 3]
    assert resumed.history["lr"][:2] == first.history["lr"]  # the two epochs already done
    assert resumed.history["lr"][2:] == planned.history["lr"][2:]  # then the 4-epoch schedule
    assert peek_training_state(state).epoch == 3 and not leftovers(tmp_path)


@pytest.mark.parametrize(
    ("change", "listed"),
    [
        ({"lr": 0.05}, ["lr: 0.02 when saved, 0.05 now"]),
        ({"weight_decay": 0.1}, ["weight_decay: 0.0005 when saved, 0.1 now"]),
        ({"batch_size": 8}, ["batch_size: 16 when saved, 8 now", "steps_per_epoch"]),
        ({"seed": 1}, ["seed: 0 when saved, 1 now"]),
        ({"val_data": 0.5}, ["val_data: 0.25 when saved, 0.5 now", "train_samples"]),
        ({"optimizer": "sgd"}, ["optimizer: 'adamw' when saved, 'sgd' now"]),
        ({"schedule": "cosine"}, ["schedule: 'onecycle' when saved, 'cosine' now"]),
    ],
)
def test_resume_with_other_settings_is_refused_listing_each(tmp_path, change, listed):
    state = tmp_path / "state"
    options = {**QUICK, "val_data": 0.25, "checkpoint_dir": state}
    cnnzoo.fit(tiny_net(), stripes(), **options)
    before = files(tmp_path)
    model = tiny_net()
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError, match="settings differ") as caught:
        cnnzoo.fit(model, stripes(), **{**options, "epochs": 3, "resume": True, **change})
    message = str(caught.value)
    assert all(line in message for line in listed), message
    assert "only epochs may change" in message and f"delete {str(state)!r}" in message
    assert files(tmp_path) == before  # the state is intact
    assert all(torch.equal(v, weights[k]) for k, v in model.state_dict().items())  # untouched


def test_resume_with_fewer_epochs_than_done_is_refused(tmp_path):
    cnnzoo.fit(tiny_net(), stripes(), checkpoint_dir=tmp_path, **{**QUICK, "epochs": 3})
    with pytest.raises(ValueError, match=r"finished 3 epoch\(s\), more than epochs=2.*>= 3"):
        cnnzoo.fit(tiny_net(), stripes(), checkpoint_dir=tmp_path, resume=True, **QUICK)
    done = cnnzoo.fit(
        tiny_net(), stripes(), checkpoint_dir=tmp_path, resume=True, **{**QUICK, "epochs": 3}
    )
    assert done.epoch == [0, 1, 2]  # the finished run, nothing trained again


def test_tensors_without_their_manifest_are_refused_and_kept(tmp_path):
    cnnzoo.fit(tiny_net(), stripes(), checkpoint_dir=tmp_path, **QUICK)
    (tmp_path / "training_state.json").unlink()
    before = files(tmp_path)
    for resume in (True, False):
        with pytest.raises(ValueError, match=r"no training_state\.json.*will not guess.*delete"):
            cnnzoo.fit(tiny_net(), Untouchable(), checkpoint_dir=tmp_path, resume=resume, **QUICK)
    assert files(tmp_path) == before  # nothing started over, nothing deleted


def test_a_first_save_killed_before_its_manifest_starts_afresh(tmp_path, monkeypatch):
    from cnnzoo.checkpoint import _state

    real_write = _state.write_json_atomic
    writes = []

    def killed_at_commit(path, obj):
        writes.append(obj)
        if obj.get("tensors_file") is not None:  # the manifest that would commit the state
            raise KeyboardInterrupt
        real_write(path, obj)

    monkeypatch.setattr(_state, "write_json_atomic", killed_at_commit)
    with pytest.raises(KeyboardInterrupt):
        cnnzoo.fit(tiny_net(), stripes(), checkpoint_dir=tmp_path, **QUICK)
    monkeypatch.undo()
    assert len(list(tmp_path.glob("training_state-*.safetensors"))) == 1  # complete, uncommitted
    history = cnnzoo.fit(tiny_net(), stripes(), checkpoint_dir=tmp_path, resume=True, **QUICK)
    assert history.epoch == [0, 1]  # nothing was committed: a fresh start, not a refusal
    assert len(list(tmp_path.glob("training_state-*.safetensors"))) == 1  # orphan cleaned


def test_a_run_without_resume_refuses_another_runs_state(tmp_path):
    cnnzoo.fit(tiny_net(), stripes(), checkpoint_dir=tmp_path, **QUICK)
    before = files(tmp_path)
    with pytest.raises(ValueError, match=r"already holds the training state.*resume=True.*delete"):
        cnnzoo.fit(tiny_net(), Untouchable(), checkpoint_dir=tmp_path, **QUICK)
    assert files(tmp_path) == before


def test_cli_resume_adds_epochs_and_refuses_other_settings(capsys, tmp_path):
    data = image_folder(
        tmp_path / "data", {"train": ["dark", "bright"], "test": ["dark", "bright"]}
    )
    out = tmp_path / "run"
    base = ["train", "lenet5", "--data", data, "--out", out, "--batch-size", "4", "--val", "0.25"]
    code, _, err = run_cli(capsys, *base, "--epochs", "1")
    assert code == 0, err
    code, _, err = run_cli(capsys, *base, "--epochs", "1")
    assert code == 2 and "--resume" in err and "Traceback" not in err
    code, _, err = run_cli(capsys, *base, "--epochs", "3", "--resume")
    assert code == 0, err
    assert len(json.loads((out / "history.json").read_text())["loss"]) == 3
    before = files(out)
    code, _, err = run_cli(capsys, *base, "--epochs", "4", "--resume", "--lr", "0.5")
    assert code == 2 and "lr: 0.02 when saved, 0.5 now" in err and "Traceback" not in err
    assert files(out) == before and not leftovers(out)


# == 2. a file never steers the code =============================================================
BUILT_ON: list[str] = []


@pytest.fixture
def tiny_registered():
    """A registered model with a bool option; builds are recorded by device (meta or real)."""

    def hostile_tiny(num_classes: int = 3, in_channels: int = 1, wide: bool = False):
        BUILT_ON.append(torch.empty(0).device.type)
        width = 8 if wide else 4
        return nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
            nn.Linear(width, num_classes),
        )  # fmt: skip

    registry.register(family="test", overwrite=True)(hostile_tiny)
    BUILT_ON.clear()
    yield cnnzoo.get_model("hostile_tiny")
    del registry._REGISTRY["hostile_tiny"]
    registry.info.cache_clear()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"weights": "imagenet"}, "asks for weights='imagenet', which a file may not"),
        ({"weights": "/etc/passwd"}, "never downloads or reads another file"),
        ({"num_classes": 10_000_000}, r"num_classes=10000000 is beyond .* \(at most 100,000\)"),
        ({"in_channels": 100_000}, r"in_channels=100000 is beyond .* \(at most 4,096\)"),
        ({"num_classes": 50_000}, r"shape mismatch.*\(3, 4\) vs configuration \(50000, 4\)"),
        ({"num_classes": True}, "num_classes must be an integer"),
        ({"wide": "yes"}, "wide must be True or False"),
        ({"wide": [1]}, "must be a number, string, boolean or null"),
        ({"evil": 1}, "does not take 'evil'; its options are: num_classes, in_channels, wide"),
        ({"name": "no_such_model"}, "unknown model 'no_such_model'.*register"),
    ],
)
def test_a_config_read_from_a_file_is_checked_as_data(
    tiny_registered, tmp_path, monkeypatch, change, message
):
    def no_download(*args, **kwargs):
        raise AssertionError("a file made cnnzoo fetch weights")

    monkeypatch.setattr("cnnzoo.models.factory.load_pretrained", no_download)
    path = cnnzoo.save(tiny_registered, tmp_path / "m.safetensors")
    tensors = load_file(path)
    config = {"name": "hostile_tiny", "num_classes": 3, "in_channels": 1, "wide": False} | change
    save_file(tensors, path, metadata={"format": "pt", "cnnzoo.config": json.dumps(config)})
    # config.json in both layouts it is read in: the timm/Hub one and earlier versions' nested one.
    hub_folder = cnnzoo.save_pretrained(tiny_registered, tmp_path / "hub-layout")
    hub_json = json.loads((hub_folder / "config.json").read_text())
    options = {k: v for k, v in config.items() if k != "name"}
    hub_json |= {"architecture": config["name"], "model_args": options}
    hub_json["num_classes"] = config["num_classes"]
    (hub_folder / "config.json").write_text(json.dumps(hub_json))
    nested_folder = cnnzoo.save_pretrained(tiny_registered, tmp_path / "nested-layout")
    (nested_folder / "config.json").write_text(json.dumps({"model": config}))
    BUILT_ON.clear()
    loads = (
        lambda: cnnzoo.load(path),
        lambda: cnnzoo.from_pretrained(hub_folder),
        lambda: cnnzoo.from_pretrained(nested_folder),
    )
    for load in loads:
        with pytest.raises(ValueError, match=message) as caught:
            load()
        assert "nothing was built" in str(caught.value) or "register" in str(caught.value)
    assert "cpu" not in BUILT_ON  # at most a meta-device probe: nothing large allocated


def test_tensors_whose_dtype_contradicts_the_model_are_refused(tiny_registered, tmp_path):
    path = cnnzoo.save(tiny_registered, tmp_path / "m.safetensors")
    raw = path.read_bytes()
    length = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8 : 8 + length])
    header["3.weight"]["dtype"] = "I32"  # same bytes, read as integers: values around 1e9
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(struct.pack("<Q", len(text)) + text + raw[8 + length :])
    with pytest.raises(ValueError, match=r"dtype contradicts.*3\.weight: file torch\.int32"):
        cnnzoo.load(path)
    model = cnnzoo.get_model("hostile_tiny")
    with pytest.raises(ValueError, match=r"dtype contradicts.*strict=False"):
        cnnzoo.load_weights(model, path)
    skipped = cnnzoo.load_weights(model, path, strict=False)
    assert skipped.mismatched_keys == ["3.weight"]


# == 3. names and formats ========================================================================
@pytest.mark.parametrize("suffix", [".pt", ".pth", ".bin", ".ckpt", ".weights", ".safetensors"])
def test_files_are_read_by_content_not_by_suffix(tmp_path, suffix):
    model = cnnzoo.get_model("lenet5")
    saved = cnnzoo.save(model, tmp_path / f"m{suffix}")  # safetensors, whatever the name
    assert isinstance(cnnzoo.load(saved), nn.Module)
    cnnzoo.load_weights(cnnzoo.get_model("lenet5"), saved)
    torch.save(model.state_dict(), tmp_path / f"torch{suffix}")  # a PyTorch file, whatever the name
    cnnzoo.load_weights(cnnzoo.get_model("lenet5"), tmp_path / f"torch{suffix}")
    with pytest.raises(ValueError, match=r"is a PyTorch state dict.*cnnzoo\.load_weights"):
        cnnzoo.load(tmp_path / f"torch{suffix}")


def test_pickled_code_named_safetensors_is_never_executed(tmp_path):
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    torch.save({"weight": Exploit()}, tmp_path / "evil.safetensors")
    with pytest.raises(ValueError, match=r"evil\.safetensors.*weights_only=True"):
        cnnzoo.load_weights(nn.Linear(2, 2), tmp_path / "evil.safetensors")
    assert not marker.exists()


def test_fit_checkpoint_with_a_torch_suffix_is_written_and_read_back(tmp_path):
    model = tiny_net()
    history = cnnzoo.fit(
        model, stripes(), val_data=0.25, checkpoint=tmp_path / "best.pt", restore_best=True,
        monitor="val_loss", **QUICK,
    )  # fmt: skip
    assert len(history) == 2 and history.best_epoch is not None
    again = tiny_net()
    cnnzoo.load_weights(again, tmp_path / "best.pt")
    for name, tensor in again.state_dict().items():
        assert torch.equal(tensor, model.state_dict()[name])  # restore_best's weights


# == 4. image folders that mislead ===============================================================
@pytest.mark.parametrize(
    ("layout", "split", "error", "message"),
    [
        ({"": ["dark", "bright"]}, "test", FileNotFoundError, "no train/ and test/ folders, so"),
        ({"train": ["dark", "bright"]}, "test", FileNotFoundError, "has train/ but no test/"),
        ({"test": ["dark", "bright"]}, "train", FileNotFoundError, "has test/ but no train/"),
        (
            {"train": ["bright", "dark"], "test": ["dark", "emu"]},
            "test",
            ValueError,
            "class folder.*'emu' that the train split lacks",
        ),
    ],
)
def test_image_folders_that_would_mislead_are_refused(tmp_path, layout, split, error, message):
    data = image_folder(tmp_path / "data", layout, per_class=2)
    with pytest.raises(error, match=message):
        load_dataset(data, split)


def test_test_labels_follow_the_train_class_names(tmp_path):
    data = image_folder(tmp_path / "data", {"train": ["bright", "dark"], "test": ["dark"]}, 2)
    test = load_dataset(data, "test")
    assert test.classes == ["bright", "dark"] and test.labels.tolist() == [1, 1]


def test_cli_train_refuses_a_folder_without_a_test_split_before_reading_it(capsys, tmp_path):
    data = image_folder(tmp_path / "data", {"": ["dark", "bright"]}, per_class=2)
    out = tmp_path / "run"
    code, stdout, err = run_cli(capsys, "train", "lenet5", "--data", data, "--out", out)
    assert code == 2 and "no test split" in err and "train/" in err and "--val" in err
    assert "test accuracy" not in stdout and not out.exists()


@pytest.mark.parametrize("damage", ["garbage", "truncated", "bomb", "fifo"])
def test_unreadable_images_are_named(tmp_path, monkeypatch, capsys, damage):
    data = image_folder(tmp_path / "data", {"train": ["dark", "bright"], "test": ["dark"]}, 2)
    bad = data / "train" / "dark" / "bad.png"
    if damage == "garbage":
        bad.write_bytes(b"not an image at all")
    elif damage == "truncated":
        Image.new("RGB", (64, 64), (1, 2, 3)).save(tmp_path / "whole.jpg")
        bad = data / "train" / "dark" / "bad.jpg"
        bad.write_bytes((tmp_path / "whole.jpg").read_bytes()[:300])
    elif damage == "bomb":  # a small limit makes any image a "bomb": no gigapixel file needed
        bad = data / "train" / "dark" / "0.png"
        monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    else:
        os.mkfifo(bad)
    with pytest.raises(ValueError, match=rf"{bad.name}.*(remove|MAX_IMAGE_PIXELS)"):
        load_dataset(data, "train")
    code, _, err = run_cli(capsys, "train", "lenet5", "--data", data, "--out", tmp_path / "o")
    assert code == 2 and bad.name in err and "Traceback" not in err


# == 5. numbers that poison silently =============================================================
@pytest.mark.parametrize("value", [float("nan"), float("inf")])
@pytest.mark.parametrize("where", ["train_data", "held out", "val_data", "evaluate"])
def test_non_finite_images_are_named_before_anything_runs(value, where):
    images, labels = stripes()
    poisoned = images.clone()
    poisoned[13, 0, 4, 4] = value
    model = tiny_net()
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    train, val = (poisoned, labels), {"held out": 0.5, "train_data": None}.get(where)
    if where == "val_data":
        train, val = (images, labels), (poisoned, labels)
    with pytest.raises(ValueError, match=r"NaN or Inf in sample 13.*drop them"):
        if where == "evaluate":
            cnnzoo.evaluate(model, train)
        else:
            cnnzoo.fit(model, train, val_data=val, **QUICK)
    assert all(torch.equal(v, weights[k]) for k, v in model.state_dict().items())


# == 6. edges of the schedule and the types ======================================================
@pytest.mark.parametrize("schedule", ["onecycle", "cosine"])
@pytest.mark.parametrize("steps", [1, 2, 3, 4, 5, 7])
def test_runs_of_a_few_steps_work(schedule, steps):
    images, labels = stripes(8 * steps)
    options = {**QUICK, "epochs": 1, "batch_size": 8, "schedule": schedule}
    history = cnnzoo.fit(tiny_net(), (images, labels), **options)
    assert history.epoch == [0] and history.history["lr"][0] >= 0


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.bfloat16])
def test_images_of_any_float_dtype_convert(dtype):
    images, labels = stripes()
    model = tiny_net()
    cnnzoo.fit(model, (images.to(dtype), labels), **QUICK)
    assert cnnzoo.predict(model, images.to(dtype)).dtype == torch.float32
    assert 0 <= cnnzoo.evaluate(model, (images.to(dtype), labels))["accuracy"] <= 1


class FloatLabels(Dataset):
    """A custom Dataset yielding float64 images and float labels (1.0), as many do."""

    def __init__(self, fraction: float = 0.0) -> None:
        self.images, self.labels = stripes()
        self.fraction = fraction

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        return self.images[i].double(), float(self.labels[i]) + (self.fraction if i == 5 else 0)


def test_whole_float_labels_convert_and_fractional_ones_are_named():
    cnnzoo.fit(tiny_net(), FloatLabels(), num_workers=0, **QUICK)
    with pytest.raises(ValueError, match=r"float label 2\.5, which is not a whole number"):
        cnnzoo.fit(tiny_net(), FloatLabels(0.5), num_workers=0, **QUICK)


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: cnnzoo.fit(tiny_net(), stripes(), batch_size=True), ValueError, "batch_size"),
        (lambda: cnnzoo.fit(tiny_net(), stripes(), epochs=2.0), ValueError, "epochs"),
        (lambda: cnnzoo.fit(tiny_net(), stripes(), resume="yes"), ValueError, "True or False"),
        (lambda: cnnzoo.fit(tiny_net(), stripes(), lr=-1.0), ValueError, "lr must be"),
        (lambda: cnnzoo.get_model("resnet18", small_input="yes"), TypeError, "True or False"),
        (lambda: cnnzoo.get_model("alexnet", drop_rate="0.5"), TypeError, "must be a number"),
        (lambda: cnnzoo.get_model("alexnet", dropout="0.5"), TypeError, "must be a number"),
        (lambda: cnnzoo.models.register(42), TypeError, "the model's name"),
        (lambda: cnnzoo.models.register("x")(42), TypeError, "needs a model builder"),
        (lambda: cnnzoo.fit(tiny_net(), stripes(), device="meta"), ValueError, "'meta' holds"),
        (lambda: cnnzoo.evaluate(tiny_net(), stripes(), device="meta"), ValueError, "meta"),
    ],
)
def test_arguments_of_the_wrong_type_are_refused(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_bare_register_decorator_registers_under_the_function_name():
    @cnnzoo.models.register
    def hostile_bare(num_classes: int = 3, in_channels: int = 1) -> nn.Module:
        return tiny_net()

    try:
        assert cnnzoo.models.list_models("hostile_bare") == ["hostile_bare"]
    finally:
        del registry._REGISTRY["hostile_bare"]
        registry.info.cache_clear()


def test_load_onto_meta_is_refused(tmp_path):
    path = cnnzoo.save(cnnzoo.get_model("lenet5"), tmp_path / "m.safetensors")
    with pytest.raises(ValueError, match="'meta' holds shapes but no data"):
        cnnzoo.load(path, device="meta")


# == 7. the CLI never prints a traceback =========================================================
@pytest.mark.parametrize("argv", [["list"], ["summary", "resnet18"]])
def test_a_closed_pipe_ends_the_command_quietly(argv):
    reader, writer = os.pipe()
    os.close(reader)  # the reader (``head``) is gone before the first line is written
    code = "import sys; from cnnzoo.cli import main; sys.exit(main(sys.argv[1:]))"
    try:
        result = subprocess.run(
            [sys.executable, "-c", code, *argv], stdout=writer, stderr=subprocess.PIPE,
            cwd=Path(__file__).resolve().parent.parent, timeout=120,
        )  # fmt: skip
    finally:
        os.close(writer)
    assert result.returncode == 0 and result.stderr == b""


def test_a_full_disk_is_named_with_the_fix_and_leaves_nothing_behind(capsys, tmp_path, monkeypatch):
    import safetensors.torch

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(args[1]))

    data = image_folder(tmp_path / "data", {"train": ["dark", "bright"], "test": ["dark"]}, 4)
    monkeypatch.setattr(safetensors.torch, "serialize_file", full)
    out = tmp_path / "run"
    code, _, err = run_cli(capsys, "train", "lenet5", "--data", data, "--out", out, "--epochs", "1")
    assert code == 2 and "Traceback" not in err
    assert err.startswith("cnnzoo: error: no space left on device") and "free some space" in err
    assert not leftovers(out) and not list(out.rglob("*.safetensors"))


def test_an_unwritable_out_is_refused_before_the_data_is_read(capsys, tmp_path, monkeypatch):
    out = tmp_path / "locked" / "run"
    (tmp_path / "locked").mkdir()
    read_only(monkeypatch, tmp_path / "locked")
    monkeypatch.setattr("cnnzoo.data.load_dataset", lambda *a, **k: pytest.fail("data was read"))
    code, _, err = run_cli(capsys, "train", "lenet5", "--data", "mnist", "--out", out)
    assert code == 2 and "is not writable" in err and "choose a folder" in err
    assert "Traceback" not in err and not out.exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes to read-only folders")
def test_a_read_only_out_really_is_refused(capsys, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    code, _, err = run_cli(capsys, "train", "lenet5", "--data", "mnist", "--out", locked / "r")
    assert code == 2 and "is not writable" in err


@pytest.mark.parametrize(
    "record",
    ["{not json", '["a list"]', '{"classes": 3}', '{"classes": ["a"], "mean": [0], "std": [0]}'],
)
def test_bad_checkpoint_metadata_is_named(capsys, tmp_path, record):
    path = cnnzoo.save(
        cnnzoo.get_model("lenet5"), tmp_path / "m.safetensors", metadata={"cnnzoo_data": record}
    )
    Image.new("L", (28, 28)).save(tmp_path / "x.png")
    code, _, err = run_cli(capsys, "predict", path, tmp_path / "x.png")
    assert code == 2 and "corrupted cnnzoo_data record" in err and "Traceback" not in err


def test_eval_refuses_a_checkpoint_trained_on_other_classes(capsys, tmp_path):
    data = image_folder(tmp_path / "data", {"train": ["dark", "bright"], "test": ["dark"]}, 4)
    other = image_folder(tmp_path / "other", {"train": ["cat", "dog"], "test": ["dog"]}, 2)
    out = tmp_path / "run"
    assert run_cli(capsys, "train", "lenet5", "--data", data, "--out", out, "--epochs", "1")[0] == 0
    code, _, err = run_cli(capsys, "eval", out / "model.safetensors", "--data", other)
    assert code == 2 and "trained on the classes ['bright', 'dark']" in err


# == 8. files people can share ===================================================================
@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_written_files_follow_the_umask(tmp_path, umask):
    model = tiny_net()
    old = os.umask(umask)
    try:
        cnnzoo.save(model, tmp_path / "m.safetensors")
        write_json_atomic(tmp_path / "history.json", {"loss": [1.0]})
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        save_training_state(tmp_path / "s", model=model, optimizer=optimizer, epoch=0, history={})
    finally:
        os.umask(old)
    written = [tmp_path / "m.safetensors", tmp_path / "history.json"]
    written += [p for p in (tmp_path / "s").iterdir()]
    for path in written:
        assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask, path


def test_a_replaced_file_keeps_its_permissions(tmp_path):
    path = cnnzoo.save(tiny_net(), tmp_path / "m.safetensors")
    path.chmod(0o640)
    cnnzoo.save(tiny_net(), path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


def test_orphans_of_a_killed_write_are_removed_by_the_next_write(tmp_path):
    import fcntl

    orphan = tmp_path / ".m.safetensors.k1ll3d00.tmp"  # what a write killed midway leaves
    orphan.write_bytes(b"half a file")
    in_flight = tmp_path / ".m.safetensors.w0rk1ng0.tmp"  # another process writing right now
    in_flight.write_bytes(b"being written")
    other = tmp_path / ".n.safetensors.k1ll3d00.tmp"  # another file's: not ours to remove
    other.write_bytes(b"not ours")
    with open(in_flight, "rb") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        cnnzoo.save(tiny_net(), tmp_path / "m.safetensors")
        assert not orphan.exists() and in_flight.exists() and other.exists()
    cnnzoo.save(tiny_net(), tmp_path / "m.safetensors")
    assert not in_flight.exists() and other.exists()  # its writer is gone now


# == 9. errors that come too late or mislead =====================================================
@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"monitor": "val_acuracy", "patience": 2}, ValueError, "Did you mean 'val_accuracy'"),
        ({"monitor": "los", "checkpoint_dir": "{tmp}/s"}, ValueError, "Did you mean 'loss'"),
        ({"checkpoint": "{tmp}"}, ValueError, r"checkpoint=.* is a directory.*best\.safetensors"),
        ({"checkpoint_dir": "{tmp}/file"}, ValueError, "checkpoint_dir=.* is a file"),
        ({"checkpoint_dir": "{tmp}/file/sub"}, ValueError, "is a file, not a folder"),
        ({"checkpoint": "{tmp}/ro/best.safetensors"}, PermissionError, "is not writable"),
        ({"checkpoint_dir": "{tmp}/ro/state"}, PermissionError, "is not writable"),
    ],
)
def test_bad_outputs_are_refused_before_the_data_is_read(
    tmp_path, monkeypatch, options, error, message
):
    (tmp_path / "file").write_text("a file")
    (tmp_path / "ro").mkdir()
    read_only(monkeypatch, tmp_path / "ro")
    options = {k: v.format(tmp=tmp_path) if isinstance(v, str) else v for k, v in options.items()}
    before = files(tmp_path)
    with pytest.raises(error, match=message):
        cnnzoo.fit(tiny_net(), Untouchable(), **{**QUICK, **options})
    assert files(tmp_path) == before


def test_callbacks_used_directly_refuse_bad_paths_and_typos_before_the_first_epoch(tmp_path):
    started = []

    class Watch:
        def on_epoch_begin(self, epoch, logs):
            started.append(epoch)

    (tmp_path / "file").write_text("a file")
    for callback in (
        cnnzoo.ModelCheckpoint(tmp_path, monitor="loss"),
        cnnzoo.BackupAndRestore(tmp_path / "file"),
    ):
        with pytest.raises(ValueError, match=r"is a (directory|file)"):
            cnnzoo.fit(tiny_net(), stripes(), callbacks=[callback, Watch()], **QUICK)
    with pytest.raises(ValueError, match="a typo of 'val_accuracy'"):
        cnnzoo.EarlyStopping("val_acuracy")
    assert started == []


def test_cli_refuses_bad_numbers_before_loading_data(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr("cnnzoo.data.load_dataset", lambda *a, **k: pytest.fail("data was read"))
    for option, value in (("--epochs", "0"), ("--batch-size", "-2"), ("--val", "1.5")):
        with pytest.raises(SystemExit) as stopped:
            main(["train", "lenet5", "--data", "mnist", "--out", str(tmp_path), option, value])
        assert stopped.value.code == 2
        assert option in capsys.readouterr().err
    code, _, err = run_cli(capsys, "train", "lenet5", "--data", "mnist", "--out", tmp_path,
                           "--label-smoothing", "2")  # fmt: skip
    assert code == 2 and "label_smoothing must be in [0, 1)" in err


@pytest.mark.parametrize(
    ("name", "error", "message"),
    [
        ("./no/such/folder", FileNotFoundError, "no such directory: 'no/such/folder'"),
        ("~/no-such-cnnzoo-folder", FileNotFoundError, "no such directory"),
        ("svhn", ValueError, "unknown dataset 'svhn'"),
    ],
)
def test_a_missing_folder_is_not_an_unknown_dataset(name, error, message):
    with pytest.raises(error, match=message):
        load_dataset(name)


def test_a_fifo_is_not_a_regular_file(tmp_path):
    fifo = tmp_path / "weights.safetensors"
    os.mkfifo(fifo)
    for call in (
        lambda: cnnzoo.load_weights(tiny_net(), fifo),
        lambda: cnnzoo.load(fifo),
    ):
        with pytest.raises(ValueError, match=r"is a FIFO \(named pipe\), not a"):
            call()
    folder = cnnzoo.save_pretrained(cnnzoo.get_model("lenet5"), tmp_path / "pretrained")
    (folder / "config.json").unlink()
    os.mkfifo(folder / "config.json")
    with pytest.raises(ValueError, match=r"is a FIFO \(named pipe\), not a"):
        cnnzoo.from_pretrained(folder)


def test_a_negative_label_gets_the_right_hint():
    images, labels = stripes()
    labels[3] = -1
    with pytest.raises(ValueError, match=r"label -1.*class indices start at 0") as caught:
        cnnzoo.fit(tiny_net(), (images, labels), **QUICK)
    assert "num_classes=" not in str(caught.value)
