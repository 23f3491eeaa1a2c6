"""The benchmark scripts' logic: input adaptation, model selection, the torchvision reference."""

import importlib
import sys
from pathlib import Path

import pytest
import torch

import cnnzoo
from cnnzoo.data import ImageTensorDataset

ROOT = Path(__file__).resolve().parents[1]


def _load(name: str):
    if str(ROOT) not in sys.path:  # the scripts live in benchmarks/, outside the package
        sys.path.insert(0, str(ROOT))
    return importlib.import_module(f"benchmarks.{name}")


reproduce = _load("reproduce")
model_speed = _load("model_speed")


def _dataset(count: int = 6, side: int = 28) -> ImageTensorDataset:
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (count, 1, side, side), dtype=torch.uint8, generator=generator)
    return ImageTensorDataset(images, torch.arange(count) % 10, list("abcdefghij"), (0.5,), (0.5,))


def test_every_registered_model_has_a_recipe():
    assert set(reproduce.RECIPES) == set(cnnzoo.models.list_models())


def test_select_models_expands_patterns_and_rejects_unknown_names():
    assert reproduce.select_models(["resnet1*", "lenet5"]) == [
        "resnet18",
        "resnet101",
        "resnet152",
        "lenet5",
    ]
    assert reproduce.select_models(["all"]) == list(reproduce.RECIPES)
    with pytest.raises(ValueError, match="no model with a recipe matches 'nope'"):
        reproduce.select_models(["nope"])


@pytest.mark.parametrize(
    ("name", "options", "side"),
    [
        ("lenet5", {}, 28),
        ("cifar_cnn", {}, 32),
        ("alexnet_original", {}, 227),
        ("network_bn", {}, 224),
        ("vgg11", {"small_input": True}, 28),
        ("resnet18", {"small_input": True}, 28),
    ],
)
def test_input_side(name, options, side):
    assert reproduce.input_side(name, options) == side


def test_adapt_pads_with_black_and_keeps_the_image_centred():
    data = _dataset()
    padded = reproduce.adapt(data, 32)
    assert padded.shape == (6, 1, 32, 32) and padded.dtype == torch.uint8
    assert torch.equal(padded[:, :, 2:30, 2:30], data.images)
    assert padded[:, :, :2].sum() == 0 and padded[:, :, :, 30:].sum() == 0


def test_adapt_resizes_as_uint8_like_float_interpolation():
    data = _dataset()
    resized = reproduce.adapt(data, 56, chunk=4)  # chunks of unequal size
    expected = torch.nn.functional.interpolate(data.images.float(), size=(56, 56), mode="bilinear")
    assert resized.dtype == torch.uint8
    assert (resized.float() - expected).abs().max() <= 0.5


def test_channel_stats_match_torch():
    images = _dataset(10).images
    mean, std = reproduce.channel_stats(images, chunk=3)
    pixels = images.double() / 255
    assert mean[0] == pytest.approx(pixels.mean().item(), abs=1e-4)
    assert std[0] == pytest.approx(pixels.std(unbiased=False).item(), abs=1e-4)


def test_reproduce_smoke_run_writes_a_row():
    result = reproduce.main(
        ["--models", "lenet5", "--epochs", "1", "--max-train-images", "256", "--device", "cpu",
         "--no-save"]
    )  # fmt: skip
    (row,) = result["rows"]
    assert row["model"] == "lenet5" and row["train_images"] == 256
    assert row["parameters"] == 61_706 and 0.0 <= row["test_accuracy"] <= 1.0
    assert "| lenet5 | 61,706 |" in reproduce.markdown_table(result["rows"])


@pytest.mark.parametrize("name", ["resnet18", "vgg11_bn", "densenet121", "alexnet"])
def test_torchvision_reference_computes_the_same_function(name):
    model = cnnzoo.get_model(name, num_classes=10, small_input=True)
    reference = model_speed.torchvision_reference(model, name)
    assert type(reference).__module__.startswith("torchvision.models")
    assert model_speed.same_function(model, reference, torch.randn(2, 3, 32, 32))


def test_models_without_a_torchvision_twin_have_no_reference():
    assert model_speed.torchvision_reference(cnnzoo.get_model("lenet5"), "lenet5") is None


def test_model_speed_smoke_run():
    result = model_speed.main(["mini_resnet", "--batch-size", "2", "--steps", "1", "--no-save"])
    (row,) = result["rows"]
    assert row["model"] == "mini_resnet" and row["train_images_per_s"] > 0
    assert "train_ratio" not in row


def test_model_options_give_small_input_only_where_the_model_takes_it():
    assert model_speed.model_options("resnet18", small=True) == {"small_input": True}
    assert model_speed.model_options("alexnet_original", small=True) == {}
    assert model_speed.model_options("resnet18", small=False) == {}
    assert (
        model_speed.torchvision_reference(cnnzoo.get_model("alexnet_original"), "alexnet_original")
        is None
    )
