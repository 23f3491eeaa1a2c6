"""The same weights give the same bytes: files cnnzoo writes can carry a reproducible sha256."""

from __future__ import annotations

import hashlib
import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import torch

import cnnzoo
from cnnzoo.checkpoint._layout import canonical_header, canonicalise_header

ROOT = Path(__file__).resolve().parent.parent

# Saves one seeded model of each kind (plain and with batch norm's integer counters) both ways.
_SAVE_SCRIPT = """
import sys, torch, cnnzoo
out = sys.argv[1]
for name in ("lenet5", "mini_resnet"):
    torch.manual_seed(0)
    model = cnnzoo.get_model(name)
    cnnzoo.save(model, f"{out}/{name}.safetensors", metadata={"b": "2", "a": "1", "z": "0"})
    cnnzoo.save_pretrained(model, f"{out}/{name}-pretrained", metrics={"accuracy": 0.5})
"""


def _digests(folder: Path) -> dict[str, str]:
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def _header_bytes(path: Path) -> bytes:
    raw = path.read_bytes()
    (length,) = struct.unpack("<Q", raw[:8])
    return raw[8 : 8 + length]


def test_two_processes_write_identical_bytes(tmp_path):
    # Each process gets its own hash seed, as separate runs do (Python's, and the Rust
    # HashMap inside safetensors that used to order the metadata differently every time).
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    for run, seed in (("first", "1"), ("second", "2")):
        (tmp_path / run / "saved").mkdir(parents=True)
        subprocess.run(
            [sys.executable, "-c", _SAVE_SCRIPT, "saved"],  # the card quotes this folder name
            cwd=tmp_path / run,
            env=env | {"PYTHONHASHSEED": seed},
            check=True,
            timeout=300,
        )
    first, second = _digests(tmp_path / "first"), _digests(tmp_path / "second")
    assert len(first) == 8  # 2 x (one weights file + model.safetensors, config.json, README.md)
    assert first == second


def test_header_has_one_fixed_layout(tmp_path):
    torch.manual_seed(0)
    model = cnnzoo.get_model("mini_resnet")
    path = cnnzoo.save(model, tmp_path / "m.safetensors", metadata={"z": "0", "a": "1"})
    header = json.loads(_header_bytes(path))
    keys = list(header)
    assert keys[0] == "__metadata__"
    assert list(header["__metadata__"]) == sorted(header["__metadata__"])
    offsets = [header[name]["data_offsets"][0] for name in keys[1:]]
    assert offsets == sorted(offsets)
    # The file stays a valid safetensors file holding exactly the model's weights.
    again = cnnzoo.load(path)
    for name, tensor in model.state_dict().items():
        assert torch.equal(again.state_dict()[name], tensor), name


def test_canonical_header_is_independent_of_the_order_written(tmp_path):
    entries = {
        "b": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
        "a": {"shape": [2], "dtype": "F32", "data_offsets": [4, 12]},
    }
    one = {"__metadata__": {"y": "1", "x": "2"}, **entries}
    other = {"a": entries["a"], "__metadata__": {"x": "2", "y": "1"}, "b": entries["b"]}
    assert canonical_header(json.dumps(one).encode()) == canonical_header(
        json.dumps(other).encode()
    )
    order = list(json.loads(canonical_header(json.dumps(one).encode())))
    assert order == ["__metadata__", "b", "a"]


def test_a_shorter_header_is_padded_in_place(tmp_path):
    # An escaped character written back unescaped shortens the header: it is padded with
    # spaces to its old length, so the data stays where the offsets say.
    header = b'{"t":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},'
    header += b'"__metadata__":{"k":"\\u00e9"}}'
    header += b" " * (-len(header) % 8)
    data = struct.pack("<f", 1.5)
    path = tmp_path / "escaped.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header + data)
    canonicalise_header(path)
    raw = path.read_bytes()
    assert raw[:8] == struct.pack("<Q", len(header)) and raw[8 + len(header) :] == data
    assert raw[8:].startswith(b'{"__metadata__":{"k":"\xc3\xa9"}')
    tensors, metadata = cnnzoo.checkpoint.read_state_dict(path)
    assert metadata == {"k": "\u00e9"} and tensors["t"].item() == 1.5
