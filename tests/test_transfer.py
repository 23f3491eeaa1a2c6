"""Pretrained weights (torchvision's real state dicts), channel adaptation, freezing, the docs."""

from __future__ import annotations

import contextlib
import io
import re
import urllib.error
from pathlib import Path

import pytest
import torch
import torchvision
from torch import nn

import cnnzoo
from cnnzoo.transfer import adapt_first_conv

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def resnet18_file(tmp_path_factory):
    """torchvision's own resnet18 state dict, saved as torchvision's .pth files are."""
    torch.manual_seed(0)
    reference = torchvision.models.resnet18().eval()
    path = tmp_path_factory.mktemp("weights") / "resnet18-f37072fd.pth"
    torch.save(reference.state_dict(), path)
    return reference, path


def _torchvision_features(reference: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return torch.flatten(reference.avgpool(nn.Sequential(*list(reference.children())[:-2])(x)), 1)


def test_resnet18_with_a_new_head_keeps_the_backbone(resnet18_file):
    reference, path = resnet18_file
    model = cnnzoo.get_model("resnet18", num_classes=2, weights=path).eval()
    assert model.num_classes == 2 and model.fc.out_features == 2
    reference_state = reference.state_dict()
    for key, value in model.state_dict().items():
        if not key.startswith("fc."):
            assert torch.equal(value, reference_state[key]), key
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        features = model.forward_head(model.forward_features(x), pre_logits=True)
        torch.testing.assert_close(features, _torchvision_features(reference, x))


def test_one_channel_sums_the_rgb_filters(resnet18_file):
    reference, path = resnet18_file
    model = cnnzoo.get_model("resnet18", num_classes=1000, in_channels=1, weights=path).eval()
    assert model.in_channels == 1 and model.input_size[0] == 1
    grey = torch.rand(2, 1, 64, 64)
    with torch.no_grad():  # a grey image is three equal RGB planes to the original network
        torch.testing.assert_close(model(grey), reference(grey.repeat(1, 3, 1, 1)))


def test_more_channels_repeat_and_rescale(resnet18_file):
    reference, path = resnet18_file
    model = cnnzoo.get_model("resnet18", num_classes=5, in_channels=4, weights=path)
    weight, rgb = model.conv1.weight, reference.conv1.weight
    assert weight.shape == (64, 4, 7, 7)
    torch.testing.assert_close(weight[:, :3], rgb * 3 / 4)
    torch.testing.assert_close(weight[:, 3], rgb[:, 0] * 3 / 4)
    assert model(torch.randn(1, 4, 64, 64)).shape == (1, 5)


def test_an_adapted_model_saves_and_loads(resnet18_file, tmp_path):
    _, path = resnet18_file
    model = cnnzoo.get_model("resnet18", num_classes=2, in_channels=1, weights=path)
    loaded = cnnzoo.load(cnnzoo.save(model, tmp_path / "adapted.safetensors"))
    torch.testing.assert_close(loaded.state_dict(), model.state_dict(), rtol=0, atol=0)


@pytest.mark.parametrize(
    ("name", "head"), [("densenet121", "classifier"), ("alexnet", "classifier.6")]
)
def test_other_families_load_torchvision_state_dicts(name, head, tmp_path):
    reference = torchvision.models.get_model(name)
    path = tmp_path / f"{name}.pth"
    torch.save(reference.state_dict(), path)
    model = cnnzoo.get_model(name, num_classes=2, weights=path)
    assert model.get_submodule(head).out_features == 2
    state = reference.state_dict()
    for key, value in model.state_dict().items():
        if not key.startswith(head + "."):
            assert torch.equal(value, state[key]), key


def test_imagenet_goes_through_torchvisions_weights_api(resnet18_file, tmp_path):
    """weights="imagenet" finds torchvision's file in the torch hub cache, as after a download."""
    reference, path = resnet18_file
    checkpoints = tmp_path / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    (checkpoints / path.name).write_bytes(path.read_bytes())
    previous = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path / "hub"))
    try:
        model = cnnzoo.get_model("resnet18", num_classes=3, weights="imagenet")
    finally:
        torch.hub.set_dir(previous)
    assert torch.equal(model.conv1.weight, reference.conv1.weight)
    assert model.num_classes == 3


def test_failed_download_explains_how_to_work_offline(tmp_path, monkeypatch):
    def no_network(url, dst, *args, **kwargs):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    previous = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path / "hub"))
    try:
        with pytest.raises(ConnectionError) as caught:
            cnnzoo.get_model("resnet18", weights="imagenet")
    finally:
        torch.hub.set_dir(previous)
    message = str(caught.value)
    assert "resnet18-f37072fd.pth" in message and "weights='/path/to/" in message
    assert str(tmp_path / "hub" / "checkpoints") in message


def test_clear_errors_for_weights_that_cannot_be(resnet18_file, tmp_path):
    _, path = resnet18_file
    with pytest.raises(ValueError, match=r"googlenet has no weights named .imagenet..*5x5"):
        cnnzoo.get_model("googlenet", weights="imagenet")
    with pytest.raises(ValueError, match=r"unknown weights 'imagenet22k'.*IMAGENET1K_V1"):
        cnnzoo.get_model("resnet18", weights="imagenet22k")
    with pytest.raises(FileNotFoundError, match=r"missing\.pth"):
        cnnzoo.get_model("resnet18", weights=tmp_path / "missing.pth")
    with pytest.raises(ValueError, match=r"conv1\.weight.*small_input=True changes the stem"):
        cnnzoo.get_model("resnet18", num_classes=10, small_input=True, weights=path)
    with pytest.raises(ValueError, match="different architecture"):
        cnnzoo.get_model("vgg11", weights=path)


def test_local_cnnzoo_file_for_any_model(tmp_path):
    torch.manual_seed(0)
    source = cnnzoo.get_model("lenet5", num_classes=10)
    path = cnnzoo.save(source, tmp_path / "lenet5.safetensors")
    model = cnnzoo.get_model("lenet5", num_classes=3, weights=path)
    assert model.num_classes == 3
    head = model.classifier_path
    for key, value in source.state_dict().items():
        if not key.startswith(head):
            assert torch.equal(model.state_dict()[key], value)


def test_adapt_first_conv_refuses_models_without_a_conv():
    with pytest.raises(ValueError, match="no Conv2d"):
        adapt_first_conv(nn.Sequential(nn.Linear(2, 2)), 1)


# -- freeze / unfreeze ----------------------------------------------------------------------------
def test_freeze_trains_only_the_head_and_keeps_batchnorm_statistics():
    model = cnnzoo.get_model("resnet18", num_classes=2)
    assert cnnzoo.freeze(model) is model
    trainable = [name for name, p in model.named_parameters() if p.requires_grad]
    assert trainable == ["fc.weight", "fc.bias"]
    assert cnnzoo.count_parameters(model, trainable_only=True) == 512 * 2 + 2

    model.train()
    before = model.bn1.running_mean.clone()
    model(torch.randn(4, 3, 64, 64))
    assert torch.equal(model.bn1.running_mean, before)  # frozen BN uses and keeps its statistics

    cnnzoo.unfreeze(model)
    assert all(p.requires_grad for p in model.parameters())
    model.train()
    model(torch.randn(4, 3, 64, 64))
    assert not torch.equal(model.bn1.running_mean, before)


def test_freeze_everything_and_own_modules():
    own = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2))
    with pytest.raises(ValueError, match="train_head=False"):
        cnnzoo.freeze(own)
    cnnzoo.freeze(own, train_head=False, freeze_batchnorm=False)
    assert not any(p.requires_grad for p in own.parameters())
    own.train()
    own(torch.randn(2, 1, 5, 5))
    assert own[1].num_batches_tracked.item() == 1  # BN statistics were left free


# -- the docs example -----------------------------------------------------------------------------
def _write_image_folder(root: Path) -> None:
    """Two colour classes, seed 004's train/ and test/ layout."""
    from PIL import Image

    generator = torch.Generator().manual_seed(0)
    for split, count in (("train", 6), ("test", 3)):
        for label, channel in (("ants", 0), ("bees", 2)):
            folder = root / split / label
            folder.mkdir(parents=True)
            for i in range(count):
                pixels = torch.rand(48, 48, 3, generator=generator) * 0.4
                pixels[..., channel] += 0.6
                Image.fromarray((pixels * 255).byte().numpy()).save(folder / f"{i}.png")


@pytest.mark.slow
def test_docs_example_runs(resnet18_file, tmp_path, monkeypatch):
    _, weights = resnet18_file
    text = (ROOT / "docs" / "transfer-learning.md").read_text(encoding="utf-8")
    code = re.findall(r"```python\n(.*?)```", text, flags=re.S)[0]
    assert 'WEIGHTS = "imagenet"' in code and "EPOCHS = 5" in code
    code = code.replace('WEIGHTS = "imagenet"', f"WEIGHTS = {str(weights)!r}")
    code = code.replace("EPOCHS = 5", "EPOCHS = 2")
    _write_image_folder(tmp_path / "data")
    monkeypatch.chdir(tmp_path)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(code, "transfer-learning.md", "exec"), {"__name__": "__docs__"})
    output = printed.getvalue()
    assert "trainable parameters: 1026" in output  # the figure the page quotes
    accuracy = float(re.search(r"test accuracy: ([0-9.]+)", output).group(1))
    assert 0.0 <= accuracy <= 1.0
    reloaded = cnnzoo.from_pretrained(tmp_path / "resnet18-finetuned")
    assert reloaded.num_classes == 2


def test_pretrained_loads_at_the_shape_of_the_weights_and_leaves_adapting_to_the_factory(
    resnet18_file,
):
    from cnnzoo.models.registry import lookup
    from cnnzoo.pretrained import load_pretrained

    reference, path = resnet18_file
    builder = lookup("resnet18")[1].builder
    loaded = load_pretrained("resnet18", builder, {}, path)
    assert (loaded.num_classes, loaded.in_channels) == (1000, 3)
    assert loaded.model.fc.out_features == 1000 and loaded.model.model_name == "resnet18"
    assert torch.equal(loaded.model.conv1.weight, reference.conv1.weight)
