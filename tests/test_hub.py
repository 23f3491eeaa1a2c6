"""save_pretrained / from_pretrained / push_to_hub: strict loading, the real Hub cache, offline."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from huggingface_hub import HfApi, ModelCard, constants
from torch import nn

import cnnzoo

ROOT = Path(__file__).resolve().parent.parent
COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    """No test may reach the network: huggingface_hub works from its cache only."""
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "default-cache"))


@pytest.fixture
def model():
    torch.manual_seed(0)
    return cnnzoo.get_model("lenet5", num_classes=4)


def _same(a: nn.Module, b: nn.Module) -> None:
    torch.testing.assert_close(a.state_dict(), b.state_dict(), rtol=0, atol=0)


def _cache_repo(cache: Path, repo_id: str, folder: Path, branch: str = "main") -> Path:
    """Lay a snapshot out in the Hub cache exactly as huggingface_hub's downloads do."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / branch).write_text(COMMIT)
    shutil.copytree(folder, repo / "snapshots" / COMMIT, dirs_exist_ok=True)
    return repo


def test_save_pretrained_writes_config_weights_and_card(model, tmp_path):
    directory = cnnzoo.save_pretrained(model, tmp_path / "out", metrics={"accuracy": 0.875})
    assert sorted(p.name for p in directory.iterdir()) == [
        "README.md", "config.json", "model.safetensors",
    ]  # fmt: skip
    config = json.loads((directory / "config.json").read_text())
    assert config["architecture"] == "lenet5" and config["num_classes"] == 4
    assert config["num_features"] == 84 and config["model_args"] == {"in_channels": 1}
    assert config["num_parameters"] == sum(p.numel() for p in model.parameters())
    assert config["pretrained_cfg"]["input_size"] == [1, 28, 28]
    assert config["metrics"] == {"accuracy": 0.875}
    card = ModelCard.load(directory / "README.md")
    assert card.data.library_name == "cnnzoo"
    assert "image-classification" in card.data.tags
    assert f"{config['num_parameters']:,}" in card.text and "0.875" in card.text


def test_local_directory_round_trip(model, tmp_path):
    cnnzoo.save_pretrained(model, tmp_path / "out")
    loaded = cnnzoo.from_pretrained(tmp_path / "out", device="cpu")
    _same(model, loaded)
    assert not loaded.training and loaded.num_classes == 4


def test_loading_is_strict_unlike_the_hub_mixin(model, tmp_path):
    directory = cnnzoo.save_pretrained(model, tmp_path / "out")
    config_path = directory / "config.json"
    config = json.loads(config_path.read_text())
    config["num_classes"] = 10  # the weights are for 4 classes
    config_path.write_text(json.dumps(config))
    with pytest.raises(ValueError, match=r"model\.safetensors.*shape mismatch.*\(4, 84\)"):
        cnnzoo.from_pretrained(directory)
    config |= {"architecture": "mini_resnet", "num_classes": 4}
    config_path.write_text(json.dumps(config))
    with pytest.raises(ValueError, match="different architecture"):
        cnnzoo.from_pretrained(directory)


def test_bad_directories_and_ids(model, tmp_path):
    directory = cnnzoo.save_pretrained(model, tmp_path / "out")
    (directory / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match=r"model\.safetensors is missing"):
        cnnzoo.from_pretrained(directory)
    with pytest.raises(ValueError, match="is a file"):
        cnnzoo.from_pretrained(directory / "config.json")
    with pytest.raises(ValueError, match="neither an existing directory nor a valid Hub repo id"):
        cnnzoo.from_pretrained(str(tmp_path / "no" / "such" / "dir"))
    (directory / "config.json").write_text('{"name": "lenet5"}')
    cnnzoo.save(model, directory / "model.safetensors")
    with pytest.raises(ValueError, match='needs an "architecture"'):
        cnnzoo.from_pretrained(directory)


def test_save_pretrained_needs_a_registry_model(tmp_path):
    with pytest.raises(ValueError, match=r"built by cnnzoo\.models\.get.*cnnzoo\.save"):
        cnnzoo.save_pretrained(nn.Linear(2, 2), tmp_path)
    with pytest.raises(ValueError, match="must be a number"):
        cnnzoo.save_pretrained(cnnzoo.get_model("lenet5"), tmp_path, metrics={"acc": "high"})


def test_repo_id_through_the_real_hub_cache(model, tmp_path):
    cache = tmp_path / "hub-cache"
    _cache_repo(cache, "someone/lenet5-fashion", cnnzoo.save_pretrained(model, tmp_path / "s"))
    for revision in (None, "main", COMMIT):
        loaded = cnnzoo.from_pretrained(
            "someone/lenet5-fashion", revision=revision, cache_dir=cache
        )
        _same(model, loaded)
    with pytest.raises(FileNotFoundError, match=r"revision 'v2'.*not in the Hugging Face cache"):
        cnnzoo.from_pretrained("someone/lenet5-fashion", revision="v2", cache_dir=cache)


def test_offline_and_not_cached_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"'someone/absent'.*HF_HUB_OFFLINE=1"):
        cnnzoo.from_pretrained("someone/absent", cache_dir=tmp_path)


def test_hf_hub_offline_environment_variable(tmp_path):
    """The real switch, in a fresh interpreter: HF_HUB_OFFLINE=1 set before import."""
    code = (
        "import cnnzoo\n"
        "try:\n"
        f"    cnnzoo.from_pretrained('someone/absent', cache_dir={str(tmp_path)!r})\n"
        "except FileNotFoundError as err:\n"
        "    print('CLEAR', err)\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "home")}
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("CLEAR") and "HF_HUB_OFFLINE=1" in done.stdout


def test_push_to_hub_uploads_what_from_pretrained_reads(model, tmp_path, monkeypatch):
    calls = {}

    def create_repo(self, repo_id, **kwargs):
        calls["create_repo"] = (repo_id, kwargs)

    def upload_folder(self, *, repo_id, folder_path, **kwargs):
        calls["upload_folder"] = (repo_id, kwargs)
        shutil.copytree(folder_path, tmp_path / "uploaded")
        return "commit-info"

    monkeypatch.setattr(HfApi, "create_repo", create_repo)
    monkeypatch.setattr(HfApi, "upload_folder", upload_folder)
    result = cnnzoo.push_to_hub(
        model, "someone/lenet5", private=True, token="hf_x", metrics={"accuracy": 0.9}
    )
    assert result == "commit-info"
    repo_id, kwargs = calls["create_repo"]
    assert repo_id == "someone/lenet5" and kwargs["private"] is True and kwargs["exist_ok"]
    repo_id, kwargs = calls["upload_folder"]
    assert repo_id == "someone/lenet5" and kwargs["token"] == "hf_x"
    assert "lenet5" in kwargs["commit_message"]
    card = (tmp_path / "uploaded" / "README.md").read_text()
    assert 'from_pretrained("someone/lenet5")' in card
    _same(model, cnnzoo.from_pretrained(tmp_path / "uploaded"))


def test_push_to_hub_fails_before_contacting_the_hub(model, monkeypatch):
    def must_not_run(*args, **kwargs):
        raise AssertionError("the Hub was contacted")

    monkeypatch.setattr(HfApi, "create_repo", must_not_run)
    with pytest.raises(ValueError, match="invalid Hub repo id"):
        cnnzoo.push_to_hub(model, "not a//valid id")
    with pytest.raises(ValueError, match=r"built by cnnzoo\.models\.get"):
        cnnzoo.push_to_hub(nn.Linear(2, 2), "someone/linear")


def test_push_to_hub_without_a_network_is_one_cnnzoo_error(model, monkeypatch):
    import importlib

    transport = None
    for name in ("httpx2", "httpx"):  # the HTTP client huggingface_hub raises from
        try:
            transport = importlib.import_module(name)
            break
        except ImportError:
            continue

    def unreachable(self, *args, **kwargs):
        raise transport.ConnectError("[Errno -2] Name or service not known")

    if transport is not None:
        monkeypatch.setattr(HfApi, "create_repo", unreachable)
        with pytest.raises(ConnectionError, match=r"cannot reach the Hugging Face Hub") as err:
            cnnzoo.push_to_hub(model, "someone/lenet5", token="hf_x")
        assert "Name or service not known" in str(err.value) and "nothing was uploaded" in str(
            err.value
        )
    monkeypatch.undo()
    from huggingface_hub.errors import OfflineModeIsEnabled

    def offline(self, *args, **kwargs):
        raise OfflineModeIsEnabled("Cannot reach https://huggingface.co: offline mode is enabled")

    monkeypatch.setattr(HfApi, "create_repo", offline)
    with pytest.raises(ConnectionError, match=r"cannot reach the Hugging Face Hub.*HF_HUB_OFFLINE"):
        cnnzoo.push_to_hub(model, "someone/lenet5", token="hf_x")


def test_load_and_from_pretrained_rebuild_through_the_one_factory(model, tmp_path, monkeypatch):
    from cnnzoo.models import factory

    file = cnnzoo.save(model, tmp_path / "lenet5.safetensors")
    folder = cnnzoo.save_pretrained(model, tmp_path / "lenet5")
    calls = []
    real_rebuild = factory.rebuild

    def recording_rebuild(config, tensors, **options):
        calls.append((config["name"], options["source"]))
        return real_rebuild(config, tensors, **options)

    monkeypatch.setattr(factory, "rebuild", recording_rebuild)
    from_file, from_folder = cnnzoo.load(file), cnnzoo.from_pretrained(folder)
    assert calls == [
        ("lenet5", repr(str(file))),
        ("lenet5", repr(str(folder / "model.safetensors"))),
    ]
    for loaded in (from_file, from_folder):
        assert not loaded.training
        _same(loaded, model)


def test_a_config_json_is_read_bounded_as_every_json_file_read_back(model, tmp_path):
    directory = cnnzoo.save_pretrained(model, tmp_path / "out")
    config_path = directory / "config.json"
    text = config_path.read_text()
    for bad, message in (
        (text.replace('"num_classes": 4', '"num_classes": ' + "4" * 400), "integer of 400 digits"),
        ('{"a": ' + "[" * 100 + "]" * 100 + "}", "nested deeper"),
        (text.replace('"num_classes": 4', '"num_classes": 1e999'), "not a finite number"),
        (None, "bytes long"),
    ):
        if bad is None:
            with open(config_path, "w") as f:
                f.truncate(4 * 2**30)  # sparse: refused by its size, never read
        else:
            assert bad != text or message == "nested deeper"
            config_path.write_text(bad)
        with pytest.raises(ValueError, match=message):
            cnnzoo.from_pretrained(directory)
