"""Compiled, DataParallel and DDP models save and load as the model inside them; files written
with a wrapper's name prefix (earlier versions, other tools) load into the plain model.
"""

from __future__ import annotations

import json
from collections import OrderedDict

import pytest
import torch
import torch.distributed as dist
from safetensors.torch import save_file
from torch import nn

import cnnzoo
from cnnzoo.checkpoint import load_training_state, save_training_state
from cnnzoo.checkpoint._weights import CONFIG_KEY, unwrap_model


def _lenet() -> nn.Module:
    torch.manual_seed(0)
    return cnnzoo.get_model("lenet5").eval()


def _images() -> torch.Tensor:
    return torch.randn(2, 1, 28, 28, generator=torch.Generator().manual_seed(1))


def _keys(path) -> list[str]:
    from safetensors import safe_open

    with safe_open(str(path), "pt") as handle:
        return list(handle.keys())


@pytest.fixture
def process_group(tmp_path):
    """A one-process gloo group, so DistributedDataParallel can be built in this process."""
    dist.init_process_group(
        "gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1
    )
    yield
    dist.destroy_process_group()


WRAPPERS = {
    "compile": lambda m: torch.compile(m),
    "DataParallel": nn.DataParallel,
    "compiled DataParallel": lambda m: torch.compile(nn.DataParallel(m)),
}


@pytest.mark.parametrize("wrap", WRAPPERS.values(), ids=WRAPPERS.keys())
def test_save_unwraps_and_load_rebuilds(wrap, tmp_path):
    model = _lenet()
    wrapped = wrap(model)
    assert unwrap_model(wrapped) is model
    path = cnnzoo.save(wrapped, tmp_path / "m.safetensors")
    assert _keys(path) and set(_keys(path)) == set(model.state_dict())  # no prefixes
    loaded = cnnzoo.load(path)
    torch.testing.assert_close(loaded(_images()), model(_images()))


def test_ddp_model_saves_and_loads(tmp_path, process_group):
    model = _lenet()
    path = cnnzoo.save(nn.parallel.DistributedDataParallel(model), tmp_path / "ddp.safetensors")
    assert set(_keys(path)) == set(model.state_dict())
    torch.testing.assert_close(cnnzoo.load(path)(_images()), model(_images()))


def test_save_pretrained_and_training_state_unwrap(tmp_path):
    model = _lenet()
    cnnzoo.save_pretrained(nn.DataParallel(model), tmp_path / "pretrained")
    config = json.loads((tmp_path / "pretrained" / "config.json").read_text())
    assert config["architecture"] == "lenet5"
    assert config["pretrained_cfg"]["input_size"] == [1, 28, 28]
    loaded = cnnzoo.from_pretrained(tmp_path / "pretrained")
    torch.testing.assert_close(loaded(_images()), model(_images()))

    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    state = tmp_path / "state"
    save_training_state(state, model=torch.compile(model), optimizer=optimizer, epoch=0, history={})
    fresh = cnnzoo.get_model("lenet5").eval()
    load_training_state(
        state, model=nn.DataParallel(fresh), optimizer=torch.optim.SGD(fresh.parameters(), lr=0.1)
    )
    torch.testing.assert_close(fresh(_images()), model(_images()))


def test_fit_checkpoint_of_a_wrapped_model(tmp_path):
    torch.manual_seed(0)
    model = cnnzoo.get_model("lenet5", num_classes=3)
    images, labels = torch.rand(24, 1, 28, 28), torch.arange(24) % 3
    path = tmp_path / "best.safetensors"
    cnnzoo.fit(
        nn.DataParallel(model),
        (images, labels),
        epochs=1,
        batch_size=8,
        device="cpu",
        verbose=0,
        checkpoint=path,
        val_data=0.25,
    )
    loaded = cnnzoo.load(path)
    assert loaded.num_classes == 3
    torch.testing.assert_close(loaded(_images()), model.eval()(_images()))


@pytest.mark.parametrize("prefix", ["_orig_mod.", "module.", "module._orig_mod."])
def test_files_with_a_wrapper_prefix_load(prefix, tmp_path):
    model = _lenet()
    tensors = {prefix + k: v.contiguous() for k, v in model.state_dict().items()}
    config = json.dumps(model.cnnzoo_config)
    path = tmp_path / "old.safetensors"
    save_file(tensors, str(path), metadata={"format": "pt", CONFIG_KEY: config})
    torch.testing.assert_close(cnnzoo.load(path)(_images()), model(_images()))

    plain = cnnzoo.get_model("lenet5").eval()
    cnnzoo.load_weights(torch.compile(plain), path)  # into a wrapped model as well
    torch.testing.assert_close(plain(_images()), model(_images()))

    pth = tmp_path / "old.pth"  # a DDP-trained torch.save state dict
    torch.save(tensors, pth)
    plain = cnnzoo.get_model("lenet5").eval()
    cnnzoo.load_weights(plain, pth)
    torch.testing.assert_close(plain(_images()), model(_images()))


def test_a_prefix_is_kept_when_it_belongs_to_the_names(tmp_path):
    # A model whose own submodule is called "module": its names start with "module." already.
    def build() -> nn.Module:
        return nn.Sequential(OrderedDict(module=nn.Linear(3, 2)))

    source, target = build(), build()
    path = cnnzoo.save(source, tmp_path / "own.safetensors")
    assert _keys(path) == ["module.bias", "module.weight"]
    cnnzoo.load_weights(target, path)
    torch.testing.assert_close(target[0].weight, source[0].weight)


def test_a_prefix_that_does_not_make_the_names_match_is_reported(tmp_path):
    other = nn.Sequential(nn.Linear(3, 2))
    tensors = {"module." + k: v for k, v in other.state_dict().items()}
    path = tmp_path / "other.safetensors"
    save_file(tensors, str(path))
    with pytest.raises(ValueError, match=r"no parameter names in common.*different architecture"):
        cnnzoo.load_weights(cnnzoo.get_model("lenet5"), path)
