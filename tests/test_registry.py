"""The registry API: get, list_models, info, register, and its errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from torch import nn

import cnnzoo
from cnnzoo import models
from cnnzoo.models import ZooModel


def test_get_model_is_models_get():
    assert cnnzoo.get_model is models.get is models.get_model


def test_names_are_case_insensitive():
    model = models.get("LeNet5")
    assert model.cnnzoo_config["name"] == "lenet5"
    assert models.info("LENET5").name == "lenet5"


def test_unknown_name_lists_close_matches():
    with pytest.raises(ValueError, match=r"unknown model 'resnet19'.*resnet18"):
        models.get("resnet19")
    with pytest.raises(ValueError, match=r"unknown model 'vgg16bn'.*vgg16_bn"):
        models.info("vgg16bn")


def test_unknown_option_names_the_accepted_ones():
    with pytest.raises(ValueError, match=r"resnet18 does not take 'smallinput'.*small_input"):
        models.get("resnet18", smallinput=True)


@pytest.mark.parametrize("bad", [-1, 2.5, "10", True])
def test_bad_num_classes_is_refused(bad):
    with pytest.raises(ValueError, match="num_classes must be an integer"):
        models.get("lenet5", num_classes=bad)


def test_list_models_fnmatch_sorted():
    resnets = models.list_models("resnet*")
    assert resnets == sorted(resnets)
    assert set(resnets) == {f"resnet{d}" for d in (18, 34, 50, 101, 152)}
    assert models.list_models("VGG*_BN") == ["vgg11_bn", "vgg13_bn", "vgg16_bn", "vgg19_bn"]
    assert models.list_models("no-such-*") == []
    assert models.list_models() == sorted(models.list_models())


def test_info_of_lenet5():
    meta = models.info("lenet5")
    assert meta.input_size == (1, 28, 28)
    assert meta.min_input_size == (28, 28)
    assert meta.fixed_input_size
    assert (meta.num_classes, meta.in_channels, meta.num_params) == (10, 1, 61_706)


def test_config_records_defaults_and_rebuilds_the_same_model():
    model = models.get("resnet18", num_classes=7, in_channels=1, small_input=True)
    config = model.cnnzoo_config
    assert config["name"] == "resnet18"
    assert (config["num_classes"], config["in_channels"], config["small_input"]) == (7, 1, True)
    json.dumps(config)  # checkpoints store it as JSON
    rebuilt = models.get(**config)
    assert [p.shape for p in rebuilt.parameters()] == [p.shape for p in model.parameters()]


class _TinyNet(ZooModel):
    def __init__(self, num_classes: int = 4, in_channels: int = 1) -> None:
        super().__init__()
        self.num_classes, self.in_channels, self.num_features = num_classes, in_channels, 8
        self.input_size, self.min_input_size = (in_channels, 8, 8), (4, 4)
        self.classifier_path = "fc"
        self.conv = nn.Conv2d(in_channels, 8, 3, padding=1)
        self.fc = nn.Linear(8, num_classes)

    def forward_features(self, x):
        return torch.relu(self.conv(x))

    def pre_logits(self, x):
        return x.mean((2, 3))


def test_users_can_register_their_own_model():
    @models.register("user_tiny_net", family="custom", source="tests", paper="none")
    def user_tiny_net(num_classes: int = 4, in_channels: int = 1) -> _TinyNet:
        """A tiny test network."""
        return _TinyNet(num_classes, in_channels)

    assert "user_tiny_net" in models.list_models("user_*")
    model = cnnzoo.get_model("user_tiny_net", num_classes=3)
    assert model(torch.zeros(2, 1, 8, 8)).shape == (2, 3)
    meta = models.info("user_tiny_net")
    assert (meta.num_classes, meta.min_input_size, meta.description) == (
        4,
        (4, 4),
        "A tiny test network.",
    )
    with pytest.raises(ValueError, match=r"user_tiny_net.*at least 4x4; got 3x8"):
        model(torch.zeros(1, 1, 3, 8))
    with pytest.raises(ValueError, match="already registered"):
        models.register("user_tiny_net")(user_tiny_net)
    models.register("user_tiny_net", overwrite=True)(user_tiny_net)


def test_three_dimensional_input_suggests_unsqueeze():
    with pytest.raises(ValueError, match=r"unsqueeze\(0\)"):
        models.get("lenet5")(torch.zeros(1, 28, 28))


def test_import_is_light_and_silent():
    code = (
        "import sys, cnnzoo; "
        "heavy = ('matplotlib', 'huggingface_hub', 'torchvision', 'safetensors', 'tqdm'); "
        "print([m for m in heavy if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    assert out.stderr == ""
