"""cnnzoo.save / load / load_weights: exact round trips, no pickle, clear errors, atomic writes."""

from __future__ import annotations

import ast
import json
import os
import random
import struct
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from torch import nn

import cnnzoo
from cnnzoo.checkpoint import LoadResult

ROOT = Path(__file__).resolve().parent.parent


def _assert_same_state(a: nn.Module, b: nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key


def _header(path: Path) -> dict:
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8 : 8 + n])


@pytest.fixture
def lenet_file(tmp_path):
    torch.manual_seed(0)
    model = cnnzoo.get_model("lenet5", num_classes=10)
    return model, cnnzoo.save(model, tmp_path / "lenet5.safetensors")


# -- round trips ----------------------------------------------------------------------------------
def test_save_load_round_trip_is_exact(lenet_file):
    model, path = lenet_file
    loaded = cnnzoo.load(path)
    _assert_same_state(model, loaded)
    assert not loaded.training
    x = torch.randn(4, 1, 28, 28)
    model.eval()
    assert torch.equal(model(x), loaded(x))
    with safe_open(str(path), "pt") as f:
        metadata = f.metadata()
    assert json.loads(metadata["cnnzoo.config"]) == {
        "name": "lenet5", "num_classes": 10, "in_channels": 1,
    }  # fmt: skip
    assert metadata["cnnzoo.version"] == cnnzoo.__version__


def test_options_round_trip(tmp_path):
    model = cnnzoo.get_model("resnet18", num_classes=5, in_channels=1, small_input=True)
    loaded = cnnzoo.load(cnnzoo.save(model, tmp_path / "r.safetensors"))
    assert loaded.cnnzoo_config == model.cnnzoo_config
    assert loaded.small_input and loaded.in_channels == 1 and loaded.num_classes == 5
    _assert_same_state(model, loaded)


def test_save_records_the_current_head_not_the_stale_config(tmp_path):
    model = cnnzoo.get_model("lenet5", num_classes=10)
    model.reset_classifier(3)
    loaded = cnnzoo.load(cnnzoo.save(model, tmp_path / "m.safetensors"))
    assert loaded.num_classes == 3
    assert loaded(torch.randn(2, 1, 28, 28)).shape == (2, 3)
    _assert_same_state(model, loaded)


def test_devices_are_accepted_in_every_spelling(lenet_file):
    _, path = lenet_file
    for device in ("cpu", torch.device("cpu")):
        loaded = cnnzoo.load(path, device=device)
        assert next(loaded.parameters()).device.type == "cpu"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_load_onto_cuda(lenet_file):
    model, path = lenet_file
    loaded = cnnzoo.load(path, device="cuda")
    assert next(loaded.parameters()).is_cuda
    torch.testing.assert_close(loaded.cpu().state_dict(), model.state_dict())


@pytest.mark.skipif(
    torch.cuda.is_available(), reason="checks the message on a machine without CUDA"
)
def test_cuda_device_without_cuda_is_a_clear_error(lenet_file):
    _, path = lenet_file
    with pytest.raises(ValueError, match=r"'cuda:1'.*CUDA is not available.*device='cpu'"):
        cnnzoo.load(path, device="cuda:1")
    with pytest.raises(ValueError, match="CUDA is not available"):
        cnnzoo.load_weights(cnnzoo.get_model("lenet5"), path, device=torch.device("cuda"))


def test_invalid_device_name(lenet_file):
    with pytest.raises(ValueError, match="invalid device 'gpu0'"):
        cnnzoo.load(lenet_file[1], device="gpu0")


# -- users' own modules, tied and overlapping tensors ---------------------------------------------
class _Tied(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Linear(6, 6, bias=False)
        self.decode = nn.Linear(6, 6, bias=False)
        self.decode.weight = self.embed.weight  # one tensor, two names
        base = torch.arange(12.0)
        self.register_buffer("first_half", base[:6])  # views of one storage (not a tie)
        self.register_buffer("second_half", base[6:])


def test_own_module_round_trip_with_tied_and_overlapping_tensors(tmp_path):
    torch.manual_seed(1)
    model = _Tied()
    path = cnnzoo.save(model, tmp_path / "tied.safetensors")
    header = _header(path)
    assert "cnnzoo.config" not in header["__metadata__"]
    stored = set(header) - {"__metadata__"}
    assert len(stored & {"embed.weight", "decode.weight"}) == 1  # the tie is stored once

    fresh = _Tied()
    result = cnnzoo.load_weights(fresh, path)
    assert result == LoadResult([], [], [])
    _assert_same_state(model, fresh)
    assert fresh.decode.weight is fresh.embed.weight  # the tie survives


def test_load_refuses_a_file_without_config_and_points_at_load_weights(tmp_path):
    path = cnnzoo.save(nn.Sequential(nn.Linear(3, 2)), tmp_path / "plain.safetensors")
    with pytest.raises(
        ValueError, match=r"plain\.safetensors.*no cnnzoo model configuration.*load_weights"
    ):
        cnnzoo.load(path)


def test_load_weights_reads_torch_state_dicts(tmp_path):
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2))
    torch.save(model.state_dict(), tmp_path / "w.pth")
    torch.save({"state_dict": model.state_dict(), "epoch": 3}, tmp_path / "ckpt.pt")
    for name in ("w.pth", "ckpt.pt"):
        fresh = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2))
        cnnzoo.load_weights(fresh, tmp_path / name)
        _assert_same_state(model, fresh)


class _Exploit:
    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_pickled_code_is_never_executed(tmp_path):
    marker = tmp_path / "pwned"
    payload = _Exploit()
    payload.marker = marker
    torch.save({"weight": payload}, tmp_path / "evil.pth")
    with pytest.raises(ValueError, match=r"evil\.pth.*weights_only=True"):
        cnnzoo.load_weights(nn.Linear(2, 2), tmp_path / "evil.pth")
    assert not marker.exists()


def test_every_torch_load_in_the_package_is_weights_only():
    calls = 0
    for path in (ROOT / "cnnzoo").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            is_torch_load = (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "load"
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "torch"
            )
            if is_torch_load:
                calls += 1
                flags = {k.arg: k.value for k in node.keywords}
                assert isinstance(flags.get("weights_only"), ast.Constant), path
                assert flags["weights_only"].value is True, path
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
                assert not any(n.split(".")[0] in ("pickle", "dill") for n in names), path
    assert calls >= 1  # the .pth reader


# -- errors ---------------------------------------------------------------------------------------
def test_wrong_architecture(lenet_file):
    _, path = lenet_file
    with pytest.raises(
        ValueError,
        match=r"lenet5\.safetensors.*does not fit mini_resnet.*different architecture.*lenet5",
    ):
        cnnzoo.load_weights(cnnzoo.get_model("mini_resnet"), path)


def test_wrong_num_classes_and_non_strict_loading(lenet_file):
    model, path = lenet_file
    target = cnnzoo.get_model("lenet5", num_classes=3)
    with pytest.raises(
        ValueError, match=r"shape mismatch.*\(10, 84\) vs model \(3, 84\).*num_classes=10"
    ):
        cnnzoo.load_weights(target, path)
    result = cnnzoo.load_weights(target, path, strict=False)
    head = target.classifier_path
    assert sorted(result.mismatched_keys) == [f"{head}.bias", f"{head}.weight"]
    assert result.missing_keys == [] and result.unexpected_keys == []
    backbone = {k: v for k, v in model.state_dict().items() if not k.startswith(head)}
    for key, value in backbone.items():
        assert torch.equal(target.state_dict()[key], value)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope\.safetensors"):
        cnnzoo.load(tmp_path / "nope.safetensors")
    with pytest.raises(FileNotFoundError, match=r"nope\.pth"):
        cnnzoo.load_weights(nn.Linear(1, 1), tmp_path / "nope.pth")
    with pytest.raises(IsADirectoryError, match="is a directory"):
        cnnzoo.load(tmp_path)


def test_truncated_file(lenet_file, tmp_path):
    _, path = lenet_file
    data = path.read_bytes()
    for cut, words in ((len(data) - 100, "truncated"), (20, "truncated"), (5, "truncated")):
        broken = tmp_path / f"cut{cut}.safetensors"
        broken.write_bytes(data[:cut])
        with pytest.raises(ValueError, match=rf"cut{cut}\.safetensors.*{words}"):
            cnnzoo.load(broken)


def test_random_bytes_and_empty_file(tmp_path):
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(random.Random(0).randbytes(4096))
    with pytest.raises(ValueError, match=r"junk\.safetensors.*not a safetensors file"):
        cnnzoo.load(junk)
    empty = tmp_path / "empty.safetensors"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match=r"empty\.safetensors.*empty or truncated"):
        cnnzoo.load_weights(nn.Linear(1, 1), empty)
    text = tmp_path / "notes.pth"
    text.write_text("not a checkpoint")
    with pytest.raises(ValueError, match=r"notes\.pth.*not a readable PyTorch state dict"):
        cnnzoo.load_weights(nn.Linear(1, 1), text)


def test_metadata_and_its_validation(tmp_path):
    model = cnnzoo.get_model("lenet5")
    path = cnnzoo.save(model, tmp_path / "m.safetensors", metadata={"accuracy": "0.91"})
    assert _header(path)["__metadata__"]["accuracy"] == "0.91"
    with pytest.raises(ValueError, match="strings to strings"):
        cnnzoo.save(model, tmp_path / "x.safetensors", metadata={"accuracy": 0.91})
    with pytest.raises(ValueError, match="reserved"):
        cnnzoo.save(model, tmp_path / "x.safetensors", metadata={"cnnzoo.config": "{}"})


def test_unstorable_option_names_itself(tmp_path):
    model = cnnzoo.get_model("lenet5")
    model.cnnzoo_config = {**model.cnnzoo_config, "activation": nn.ReLU}
    with pytest.raises(ValueError, match=r"activation=.*include_config=False"):
        cnnzoo.save(model, tmp_path / "m.safetensors")
    path = cnnzoo.save(model, tmp_path / "m.safetensors", include_config=False)
    cnnzoo.load_weights(cnnzoo.get_model("lenet5"), path)


# -- atomic writes --------------------------------------------------------------------------------
def test_a_failed_write_leaves_the_old_file_intact(lenet_file, monkeypatch):
    import safetensors.torch

    model, path = lenet_file
    before = path.read_bytes()

    def crash_half_way(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(safetensors.torch, "save_file", crash_half_way)
    with torch.no_grad():
        model.f7.weight.zero_()
    with pytest.raises(OSError, match="disk full"):
        cnnzoo.save(model, path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no temp file left


# -- fuzzing --------------------------------------------------------------------------------------
def _mutations(data: bytes, rng: random.Random):
    """Byte flips, truncations, insertions, and semantic edits of the JSON header."""
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    body = data[8 + n :]
    for _ in range(150):  # random bytes anywhere, mostly in the header
        mutated = bytearray(data)
        for _ in range(rng.randint(1, 4)):
            hi = 8 + n if rng.random() < 0.8 else len(data)
            mutated[rng.randrange(hi)] = rng.randrange(256)
        yield bytes(mutated)
    for _ in range(60):
        yield data[: rng.randrange(len(data))]
    for _ in range(30):
        at = rng.randrange(len(data))
        yield data[:at] + rng.randbytes(rng.randint(1, 16)) + data[at:]
    tensor_names = [k for k in header if k != "__metadata__"]
    edits = [
        lambda e: e.update(dtype=rng.choice(["F16", "I64", "F64", "U8", "XX", 3, None])),
        lambda e: e.update(shape=rng.choice([[], [-1], [10**12], ["2"], e["shape"][::-1], None])),
        lambda e: e.update(data_offsets=[rng.randint(-5, 10**6), rng.randint(-5, 10**6)]),
        lambda e: e.update(data_offsets=e["data_offsets"][:1]),
        lambda e: e.pop(rng.choice(["dtype", "shape", "data_offsets"])),
    ]
    for _ in range(120):
        edited = json.loads(json.dumps(header))
        rng.choice(edits)(edited[rng.choice(tensor_names)])
        if rng.random() < 0.2:
            edited["__metadata__"] = rng.choice([{"cnnzoo.config": "{bad"}, {"x": 1}, [], None])
        raw = json.dumps(edited).encode()
        yield struct.pack("<Q", len(raw)) + raw + body


def test_fuzzed_files_fail_only_with_clear_errors(tmp_path):
    torch.manual_seed(0)
    model = cnnzoo.get_model("mini_resnet")
    data = cnnzoo.save(model, tmp_path / "good.safetensors").read_bytes()
    target = tmp_path / "fuzzed.safetensors"
    outcomes = {"loaded": 0, "refused": 0}
    for mutated in _mutations(data, random.Random(1234)):
        target.write_bytes(mutated)
        for attempt in (
            lambda: cnnzoo.load(target),
            lambda: cnnzoo.load_weights(cnnzoo.get_model("mini_resnet"), target),
        ):
            try:
                attempt()
                outcomes["loaded"] += 1
            except (ValueError, FileNotFoundError) as err:
                assert "fuzzed.safetensors" in str(err)
                outcomes["refused"] += 1
    assert outcomes["refused"] > 300 and outcomes["loaded"] > 0  # both kinds were exercised
