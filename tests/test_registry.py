"""The registry API: get, list_models, info, register, and its errors."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

import cnnzoo
from cnnzoo import models
from cnnzoo.models import ZooModel, registry

ROOT = Path(__file__).resolve().parent.parent


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


def test_list_models_fnmatch_in_natural_order():
    resnets = models.list_models("resnet*")
    assert resnets == ["resnet18", "resnet34", "resnet50", "resnet101", "resnet152"]
    assert models.list_models("VGG*_BN") == ["vgg11_bn", "vgg13_bn", "vgg16_bn", "vgg19_bn"]
    assert models.list_models("no-such-*") == []
    names = models.list_models()
    assert names == sorted(names, key=models.registry.natural_key)
    assert names.index("densenet121") < names.index("googlenet") < names.index("vgg11")


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
        super().__init__(num_classes, in_channels)
        self.num_features = 8
        self.input_size, self.min_input_size = (in_channels, 8, 8), (4, 4)
        self.classifier_path = "fc"
        self.conv = nn.Conv2d(in_channels, 8, 3, padding=1)
        self.fc = nn.Linear(8, num_classes)

    def forward_features(self, x):
        return torch.relu(self.conv(x))

    def pre_logits(self, x):
        return x.mean((2, 3))


@pytest.fixture
def scratch_registry():
    """Let a test register models without leaving them behind (the README table lists all)."""
    saved = dict(registry._REGISTRY)
    yield
    registry._REGISTRY.clear()
    registry._REGISTRY.update(saved)
    registry.info.cache_clear()


def test_zoo_model_validates_and_records_the_sizes():
    net = _TinyNet(num_classes=3, in_channels=2)
    assert (net.num_classes, net.in_channels, net.model_name) == (3, 2, "_tinynet")
    for bad in ({"num_classes": -1}, {"in_channels": 0}, {"in_channels": True}):
        with pytest.raises(ValueError, match=r"must be an integer >= \d for _tinynet, got"):
            _TinyNet(**bad)


def test_users_can_register_their_own_model(scratch_registry):
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


def _cnnzoo_imports(path: Path) -> set[str]:
    """The cnnzoo modules a source file imports, at any depth (inside functions too)."""
    package = path.relative_to(ROOT).with_suffix("").parts[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[: len(package) - node.level + 1]
            found.add(".".join((*base, *([node.module] if node.module else []))))
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("cnnzoo"):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("cnnzoo"))
    return found


def test_registry_is_a_leaf_and_the_lower_layers_do_not_import_the_models():
    # the one import: the leaf that words errors for the command line too
    assert _cnnzoo_imports(ROOT / "cnnzoo" / "models" / "registry.py") == {"cnnzoo._advice"}
    assert _cnnzoo_imports(ROOT / "cnnzoo" / "_advice.py") == set()
    above = ("cnnzoo.models", "cnnzoo.training", "cnnzoo.hub", "cnnzoo.cli")
    lower = [ROOT / "cnnzoo" / "pretrained.py", ROOT / "cnnzoo" / "transfer.py"]
    for path in [*lower, *sorted((ROOT / "cnnzoo" / "checkpoint").glob("*.py"))]:
        bad = sorted(m for m in _cnnzoo_imports(path) if m.startswith(above))
        assert not bad, f"{path.relative_to(ROOT)} imports {bad}"
    # the two siblings under the factory do not lean on each other either
    assert not any(m.startswith("cnnzoo.transfer") for m in _cnnzoo_imports(lower[0]))
    assert not any(m.startswith("cnnzoo.pretrained") for m in _cnnzoo_imports(lower[1]))


# -- the builder contract, checked by register ----------------------------------------------------
def test_register_refuses_what_is_not_a_builder(scratch_registry):
    with pytest.raises(TypeError, match=r"register takes the model's name \(a str\).*got 42"):
        models.register(42)
    with pytest.raises(TypeError, match=r"register\('x'\) needs a model builder.*got 42"):
        models.register("x")(42)
    with pytest.raises(ValueError, match="non-empty model name"):
        models.register(" ")
    with pytest.raises(TypeError, match="does not take num_classes and in_channels as keyword"):
        models.register("x")(lambda classes=10: nn.Linear(2, classes))
    with pytest.raises(TypeError, match="does not take num_classes as keyword"):
        models.register("x")(lambda num_classes=10, /, in_channels=1: nn.Linear(2, 2))
    with pytest.raises(TypeError, match="num_classes has no default"):
        models.register("x")(lambda num_classes, in_channels=1: nn.Linear(2, num_classes))
    assert "x" not in models.list_models()


def test_register_bare_and_with_keyword_catch_all(scratch_registry):
    @models.register
    def bare_net(**options) -> nn.Module:
        """A builder taking any keyword."""
        return nn.Sequential(nn.Flatten(), nn.LazyLinear(options.get("num_classes", 2)))

    assert models.list_models("bare_net") == ["bare_net"]
    assert cnnzoo.get_model("bare_net", num_classes=4)(torch.zeros(1, 1, 3, 3)).shape == (1, 4)
    meta = models.info("bare_net")  # a lazy layer: its size is unknown until the first batch
    assert (meta.num_classes, meta.in_channels, meta.input_size) == (None, None, None)
    assert meta.num_params is None


def test_a_plain_sequential_gets_unknown_sizes_not_zeros(scratch_registry, capsys):
    @models.register("plain_mlp", family="custom")
    def plain_mlp(num_classes: int = 10, in_channels: int = 1) -> nn.Module:
        """Logistic regression on 28x28 pixels."""
        return nn.Sequential(nn.Flatten(), nn.Linear(in_channels * 28 * 28, num_classes))

    meta = models.info("plain_mlp")
    assert (meta.input_size, meta.min_input_size, meta.fixed_input_size) == (None, None, False)
    assert (meta.num_classes, meta.in_channels, meta.num_params) == (10, 1, 7850)

    from cnnzoo.cli import main

    main(["info", "plain_mlp"])
    out = capsys.readouterr().out
    assert "input size:    unknown" in out and "minimum input: unknown" in out


def test_info_refuses_a_builder_that_returns_no_module(scratch_registry):
    models.register("not_a_module")(lambda num_classes=1, in_channels=1: "a string")
    with pytest.raises(TypeError, match=r"returned str, not an nn\.Module"):
        models.info("not_a_module")
