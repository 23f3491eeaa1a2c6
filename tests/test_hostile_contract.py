"""Hostile data contracts and models that give no class scores (the sibling of test_hostile.py).

A model's data configuration (``pretrained_cfg``) comes from config.json, from a safetensors
file's metadata, or from Python; each field is bounded wherever it comes from, checked in the
dtype it is used in, and checked against the model it describes. Models that would train
nothing, or train on features as if they were classes, are refused before any data is read.
Each test asserts the error, its message (the problem and the fix), and that nothing on disk
changed.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from _synthetic import stripes
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch.utils.data import Dataset

import cnnzoo
from cnnzoo.data import DataConfig

QUICK = {"epochs": 1, "batch_size": 8, "lr": 0.01, "verbose": 0, "device": "cpu"}


def files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def digits(n: int = 16, size: int = 28) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return torch.rand(n, 1, size, size, generator=generator), torch.arange(n) % 10


def metadata_of(path: Path) -> dict[str, str]:
    with safe_open(str(path), "pt") as opened:
        return opened.metadata()


class Untouchable(Dataset):
    """Data that fails the test if anything reads it: the refusal must come first."""

    def __len__(self) -> int:
        raise AssertionError("the data was read before the model was checked")

    def __getitem__(self, index: int):
        raise AssertionError("the data was read before the model was checked")


# -- 1. every field of the contract is bounded, wherever it comes from ---------------------------
HOSTILE_FIELDS = [
    ({"input_size": [1, 100000, 100000]}, r"input_size .* beyond what cnnzoo reads.*trained at"),
    ({"input_size": [1, 28, 28], "crop_pct": 0.001}, r"crop_pct must be in \[0.1, 1\]"),
    ({"input_size": [1, 8000, 8000], "crop_pct": 0.5}, r"resizes images to 16000 pixels"),
    ({"mean": [0.5], "std": [1e-40]}, r"std values must be in \[1e-06, 1e\+06\].*float32"),
    ({"mean": [1e39], "std": [0.5]}, r"mean values must be within.*float32"),
    ({"num_classes": 10, "label_names": ["ok"] * 9 + ["\x1b[2Jspoof"]}, r"not a class name"),
    ({"num_classes": 10, "label_names": ["x" * 300] * 10}, r"at most 256 characters"),
    ({"num_classes": 10**9}, r"num_classes.*100,000"),
    ({"interpolation": "lanczos9"}, r"interpolation must be one of"),
]


@pytest.mark.parametrize(("field", "message"), HOSTILE_FIELDS)
def test_a_contract_out_of_bounds_is_refused_from_python(field, message):
    with pytest.raises(ValueError, match=message):
        DataConfig.from_dict(field)
    model = cnnzoo.get_model("lenet5")
    model.pretrained_cfg = {**model.pretrained_cfg.to_dict(), **field}
    with pytest.raises(ValueError, match=message):
        cnnzoo.predict(model, digits()[0])


@pytest.mark.parametrize(("field", "message"), HOSTILE_FIELDS)
def test_a_contract_out_of_bounds_is_refused_from_config_json(tmp_path, field, message):
    folder = cnnzoo.save_pretrained(cnnzoo.get_model("lenet5"), tmp_path / "m")
    config = json.loads((folder / "config.json").read_text())
    config["pretrained_cfg"].update({k: v for k, v in field.items() if k != "label_names"})
    if "label_names" in field:
        config["label_names"] = field["label_names"]
    if "num_classes" in field:
        config["num_classes"] = field["num_classes"]
    (folder / "config.json").write_text(json.dumps(config))
    before = files(folder)
    with pytest.raises(ValueError, match=message):
        cnnzoo.from_pretrained(folder)
    assert files(folder) == before


@pytest.mark.parametrize(("field", "message"), HOSTILE_FIELDS[:5])
def test_a_contract_out_of_bounds_is_refused_from_safetensors_metadata(tmp_path, field, message):
    path = cnnzoo.save(cnnzoo.get_model("lenet5"), tmp_path / "m.safetensors")
    metadata = metadata_of(path)
    recorded = json.loads(metadata["cnnzoo.pretrained_cfg"]) | field
    metadata["cnnzoo.pretrained_cfg"] = json.dumps(recorded)
    save_file(load_file(str(path)), str(path), metadata=metadata)
    before = path.read_bytes()
    with pytest.raises(ValueError, match=message):
        cnnzoo.load(path)
    assert path.read_bytes() == before


def test_sound_contracts_still_pass():
    cfg = DataConfig(input_size=(3, 224, 224), crop_pct=0.875, mean=(0.485,), std=(0.229,))
    assert cfg.mean == (0.485,) * 3 and cfg.crop_pct == 0.875
    assert DataConfig(mean=(0.5,), std=(1e-6,)).std == (1e-6,)  # channel_stats' own floor


# -- 2. the contract is checked against the model ------------------------------------------------
def test_a_contract_that_contradicts_the_model_is_refused_and_not_saved(tmp_path):
    model = cnnzoo.get_model("lenet5")  # 10 outputs
    model.pretrained_cfg = {"num_classes": 5}
    with pytest.raises(ValueError, match=r"num_classes=5 but the model has 10 outputs.*replace"):
        cnnzoo.save(model, tmp_path / "m.safetensors")
    with pytest.raises(ValueError, match=r"num_classes=5 but the model has 10 outputs"):
        cnnzoo.save_pretrained(model, tmp_path / "folder")
    with pytest.raises(ValueError, match=r"num_classes=5 but the model has 10 outputs"):
        cnnzoo.predict(model, digits()[0])
    assert list(tmp_path.iterdir()) == []  # nothing written, not even a partial folder
    model.pretrained_cfg = DataConfig(input_size=(3, 28, 28))
    with pytest.raises(ValueError, match=r"takes 1 channels.*for_channels\(1\)"):
        cnnzoo.save(model, tmp_path / "m.safetensors")


def test_reset_classifier_drops_the_old_class_names(tmp_path):
    model = cnnzoo.get_model("lenet5")
    names = tuple("abcdefghij")
    model.pretrained_cfg = model.pretrained_cfg.replace(num_classes=10, label_names=names)
    model.reset_classifier(3)
    assert model.pretrained_cfg.num_classes == 3 and model.pretrained_cfg.label_names is None
    loaded = cnnzoo.load(cnnzoo.save(model, tmp_path / "m.safetensors"))
    labels = [r["label"] for r in cnnzoo.classify(loaded, digits(1)[0], top_k=3)[0]]
    assert sorted(labels) == ["0", "1", "2"]  # indices, never the old head's names


def test_a_file_whose_contract_contradicts_its_weights_is_refused(tmp_path):
    path = cnnzoo.save(cnnzoo.get_model("lenet5"), tmp_path / "m.safetensors")
    metadata = metadata_of(path)
    recorded = json.loads(metadata["cnnzoo.pretrained_cfg"]) | {"num_classes": 4}
    metadata["cnnzoo.pretrained_cfg"] = json.dumps(recorded)
    save_file(load_file(str(path)), str(path), metadata=metadata)
    with pytest.raises(ValueError, match=r"num_classes=4 but the model has 10.*save the model"):
        cnnzoo.load(path)


def test_tensors_of_another_size_than_files_would_get_are_refused_with_both_fixes():
    model = cnnzoo.get_model("resnet18", num_classes=10, small_input=True)
    model.pretrained_cfg = model.pretrained_cfg.replace(input_size=(3, 32, 32))
    images = torch.rand(2, 3, 28, 28)
    with pytest.raises(ValueError, match=r"28x28 but .* says 32x32.*resize_pixels.*replace") as e:
        cnnzoo.predict(model, images)
    assert "input_size=(3, 28, 28)" in str(e.value)
    # the resize the message names gives the answers the same images give as PIL images
    from PIL import Image

    pixels = (images * 255).round().to(torch.uint8)
    model.eval()
    as_pil = [Image.fromarray(image.permute(1, 2, 0).numpy()) for image in pixels]
    resized = cnnzoo.data.resize_pixels(pixels, (32, 32))
    assert torch.allclose(cnnzoo.predict(model, resized), cnnzoo.predict(model, as_pil))
    model.pretrained_cfg = model.pretrained_cfg.replace(input_size=(3, 28, 28))
    assert cnnzoo.predict(model, images).shape == (2, 10)  # the size the user chose


# -- 6. models that would train nothing, or train on features --------------------------------------
def test_an_optimizer_over_another_models_parameters_is_refused():
    model, other = cnnzoo.get_model("lenet5"), cnnzoo.get_model("lenet5")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError, match=r"none of them the model's.*SGD\(model.parameters"):
        cnnzoo.fit(model, Untouchable(), optimizer=torch.optim.SGD(other.parameters(), lr=0.1))
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_a_model_without_classes_is_not_trained_or_evaluated_as_a_classifier():
    model = cnnzoo.get_model("lenet5", num_classes=0)
    for call in (lambda: cnnzoo.fit(model, Untouchable(), **QUICK),
                 lambda: cnnzoo.evaluate(model, Untouchable())):  # fmt: skip
        with pytest.raises(ValueError, match=r"num_classes=0: it returns its 84 pooled.*reset_"):
            call()
    assert cnnzoo.predict(model, digits(2)[0]).shape == (2, 84)  # feature extraction is fine


@pytest.mark.parametrize("call", ["fit", "evaluate", "predict", "classify"])
def test_a_backbone_is_refused_as_a_classifier(call):
    backbone = cnnzoo.get_model("resnet18", features_only=True, small_input=True)
    run = {
        "fit": lambda: cnnzoo.fit(backbone, Untouchable(), **QUICK),
        "evaluate": lambda: cnnzoo.evaluate(backbone, Untouchable()),
        "predict": lambda: cnnzoo.predict(backbone, Untouchable()),
        "classify": lambda: cnnzoo.classify(backbone, torch.rand(1, 3, 32, 32)),
    }[call]
    with pytest.raises(ValueError, match=r"features_only backbone.*without features_only=True"):
        run()


# -- 7. inputs that used to get raw errors or bad advice -------------------------------------------
@pytest.mark.parametrize("shape", [(4, 28, 28, 1), (28, 28, 1)])
def test_channels_last_tensors_get_the_permute_advice(shape):
    with pytest.raises(ValueError, match=r"looks .*channels-last.*permute\(0, 3, 1, 2\)") as e:
        cnnzoo.predict(cnnzoo.get_model("lenet5"), torch.rand(*shape))
    assert "in_channels=28" not in str(e.value)


def test_uint16_images_holding_8_bit_values_are_refused():
    images = (torch.rand(4, 1, 28, 28) * 255).to(torch.uint16)
    with pytest.raises(ValueError, match=r"uint16 .* largest value is \d+: 8-bit.*torch.uint8"):
        cnnzoo.predict(cnnzoo.get_model("lenet5"), images)
    sixteen_bit = (torch.rand(4, 1, 28, 28) * 65535).to(torch.uint16)
    assert cnnzoo.predict(cnnzoo.get_model("lenet5"), sixteen_bit).shape == (4, 10)
    numpy_8_bit = (np.random.default_rng(0).random((2, 28, 28, 1)) * 255).astype("uint16")
    with pytest.raises(ValueError, match=r"8-bit pixels stored as 16-bit"):
        cnnzoo.predict(cnnzoo.get_model("lenet5"), numpy_8_bit)


@pytest.mark.parametrize(("size", "fix"), [("28", "image_size=28"), ((28,), ""), (0, "")])
def test_an_image_size_that_is_not_a_size_is_refused_before_reading(tmp_path, size, fix):
    with pytest.raises(ValueError, match=r"image_size must be an integer side") as e:
        cnnzoo.data.load_dataset(tmp_path / "nowhere", image_size=size)
    assert fix in str(e.value)


def test_stripes_still_train_with_the_checks_in_place():
    images, labels = stripes(24)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 3))
    assert len(cnnzoo.fit(model, (images, labels), **QUICK).epoch) == 1
