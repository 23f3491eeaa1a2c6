"""The model's data contract: one rule for every form of the same images, recorded by fit,
carried by every checkpoint, applied by evaluate, predict and classify."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset, TensorDataset

import cnnzoo
from cnnzoo.data import DataConfig, ImageTensorDataset, Normalized, channel_stats

ROOT = Path(__file__).resolve().parent.parent
CLASSES = ("top band", "middle band", "bottom band")
MEAN, STD = (0.3,), (0.25,)


def bands(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 28x28 grey images, three classes: a bright band of rows whose place is the class."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 3
    images = torch.randint(0, 120, (n, 1, 28, 28), generator=generator)
    for k in range(3):
        images[labels == k, :, 4 + 8 * k : 10 + 8 * k, :] += 130
    return images.to(torch.uint8), labels


class PairDataset(Dataset):
    """A plain Dataset: whatever it is given, item by item (tensors, PIL images, arrays)."""

    def __init__(self, images, labels) -> None:
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        return self.images[i], int(self.labels[i])


def pil_images(images: torch.Tensor) -> list[Image.Image]:
    return [Image.fromarray(image[0].numpy()) for image in images]


def image_files(images: torch.Tensor, folder: Path) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, image in enumerate(pil_images(images)):
        image.save(folder / f"{i}.png")
        paths.append(str(folder / f"{i}.png"))
    return paths


def every_form(images: torch.Tensor, labels: torch.Tensor, folder: Path) -> dict[str, object]:
    """The same labelled images in each form fit, evaluate and predict accept."""
    n = len(labels)
    return {
        "uint8 tensors": (images, labels),
        "float tensors": (images.float() / 255, labels),
        "TensorDataset": TensorDataset(images, labels),
        "custom Dataset of uint8": PairDataset(images, labels),
        "custom Dataset of floats": PairDataset(images.float() / 255, labels),
        "DataLoader": DataLoader(PairDataset(images, labels), batch_size=n),
        "Dataset of PIL images": PairDataset(pil_images(images), labels),
        "PIL images": (pil_images(images), labels),
        "image files": (image_files(images, folder), labels),
        "NumPy NHWC": (images.permute(0, 2, 3, 1).numpy(), labels.numpy()),
        "NumPy NCHW": (images.numpy(), labels.numpy()),
        "load_dataset object": ImageTensorDataset(images, labels, CLASSES, MEAN, STD),
    }


def train(form: object) -> torch.nn.Module:
    torch.manual_seed(0)
    model = cnnzoo.get_model("mini_resnet", num_classes=3)
    cnnzoo.fit(model, form, epochs=3, batch_size=32, lr=0.02, verbose=0, num_workers=0)
    return model


# -- one rule, every form --------------------------------------------------------------------
@pytest.mark.parametrize(
    "trained_on", ["uint8 tensors", "custom Dataset of floats", "load_dataset object", "PIL images"]
)
def test_every_form_of_the_same_images_gives_the_same_answer(tmp_path, trained_on):
    train_forms = every_form(*bands(96, seed=0), tmp_path / "train")
    model = train(train_forms[trained_on])
    test_images, test_labels = bands(60, seed=1)
    forms = every_form(test_images, test_labels, tmp_path / "test")
    reference = cnnzoo.predict(model, test_images)
    accuracy = cnnzoo.evaluate(model, (test_images, test_labels))["accuracy"]
    assert accuracy > 0.5  # a model that learned something, so agreement means something
    for name, form in forms.items():
        logits = cnnzoo.predict(model, form, num_workers=0)
        assert torch.equal(logits, reference), name  # bit-identical inputs, not just close
        assert cnnzoo.evaluate(model, form, num_workers=0)["accuracy"] == accuracy, name
    images_only = [test_images.float() / 255, pil_images(test_images), test_images.numpy()]
    for form in images_only:
        assert torch.equal(cnnzoo.predict(model, form), reference)


def test_the_bug_that_started_it_tensors_and_the_dataset_object_agree():
    """Mean and std once lived only in the dataset object: plain tensors lost them."""
    images, labels = bands(96, seed=0)
    model = train(ImageTensorDataset(images, labels, CLASSES, MEAN, STD))
    assert model.pretrained_cfg.mean == MEAN and model.pretrained_cfg.std == STD
    test = ImageTensorDataset(*bands(60, seed=1), CLASSES, MEAN, STD)
    on_object = cnnzoo.evaluate(model, test)["accuracy"]
    assert cnnzoo.evaluate(model, (test.images, test.labels))["accuracy"] == on_object
    assert cnnzoo.evaluate(model, (test.images.float() / 255, test.labels))["accuracy"] == on_object
    through_its_loader = cnnzoo.predict(model, DataLoader(test, batch_size=60), num_workers=0)
    assert torch.equal(through_its_loader, cnnzoo.predict(model, test))  # its items: normalised


def test_torchvision_normalize_pil_items_and_tensors_agree():
    from torchvision import transforms
    from torchvision.datasets import FakeData

    normalize = transforms.Compose([transforms.ToTensor(), transforms.Normalize(MEAN, STD)])
    options = {"size": 40, "image_size": (1, 28, 28), "num_classes": 3, "random_offset": 7}
    normalised = FakeData(**options, transform=normalize)
    model = cnnzoo.get_model("lenet5", num_classes=3)
    cnnzoo.fit(model, normalised, epochs=1, batch_size=20, verbose=0, num_workers=0)
    assert model.pretrained_cfg.mean == MEAN and model.pretrained_cfg.std == STD
    pil = FakeData(**options)  # the same images as PIL, no transform: cnnzoo reads them
    as_tensors = torch.stack([transforms.PILToTensor()(pil[i][0]) for i in range(40)])
    reference = cnnzoo.predict(model, as_tensors)
    assert torch.equal(cnnzoo.predict(model, normalised, num_workers=0), reference)
    assert torch.equal(cnnzoo.predict(model, pil, num_workers=0), reference)


# -- never normalised twice, never not at all, without being told -----------------------------
def test_an_already_normalised_batch_is_refused_then_accepted_when_declared():
    images, labels = bands(96, seed=0)
    model = train(ImageTensorDataset(images, labels, CLASSES, MEAN, STD))
    test_images, _ = bands(30, seed=1)
    normalised = (test_images.float() / 255 - MEAN[0]) / STD[0]
    with pytest.raises(ValueError, match=r"look normalised already.*cnnzoo\.data\.Normalized"):
        cnnzoo.predict(model, normalised)
    with pytest.raises(ValueError, match="look normalised already"):  # the DataLoader path too
        cnnzoo.predict(model, DataLoader(PairDataset(normalised, torch.zeros(30)), batch_size=8))
    declared = cnnzoo.predict(model, Normalized(normalised, mean=MEAN, std=STD))
    assert torch.equal(declared, cnnzoo.predict(model, test_images))  # not normalised again
    as_is = cnnzoo.predict(model, Normalized(normalised))  # "model inputs, hands off"
    assert torch.equal(as_is, declared)
    # normalised with other statistics: converted to the model's, not fed as they are
    other = (test_images.float() / 255 - 0.5) / 0.5
    converted = cnnzoo.predict(model, Normalized(other, mean=(0.5,), std=(0.5,)))
    torch.testing.assert_close(converted, declared, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    ("images", "message"),
    [
        (torch.full((4, 1, 28, 28), 200.0), "look like 0-255 pixels stored as floats"),
        (torch.full((4, 1, 28, 28), 1.8), r"Scale them to \[0, 1\]"),
        (torch.full((4, 1, 28, 28), 7, dtype=torch.int64), "int64 have no known range"),
        (torch.full((4, 1, 28, 28), 7, dtype=torch.uint8), "declared normalised but holds"),
    ],
)
def test_values_that_contradict_the_rule_are_refused_with_the_fix(images, message):
    model = cnnzoo.get_model("lenet5", num_classes=3)
    data = Normalized(images) if "declared" in message else images
    with pytest.raises(ValueError, match=message):
        cnnzoo.predict(model, data)


def test_float_pixels_may_overshoot_a_little_as_resizing_does():
    model = cnnzoo.get_model("lenet5", num_classes=3)
    pixels = torch.rand(4, 1, 28, 28) * 1.2 - 0.1  # bicubic overshoot around sharp edges
    assert cnnzoo.predict(model, pixels).shape == (4, 3)


# -- fit records the contract; evaluate and predict apply it ----------------------------------
def test_fit_records_what_it_trained_with():
    images, labels = bands(96, seed=0)
    model = train((images, labels))
    config = model.pretrained_cfg
    assert isinstance(config, DataConfig)
    assert config.mean == (0.0,) and config.std == (1.0,)  # pixels in [0, 1], as they are
    assert config.input_size == (1, 28, 28) and config.num_classes == 3
    assert config.label_names is None
    named = train(ImageTensorDataset(images, labels, CLASSES, MEAN, STD))
    assert named.pretrained_cfg.label_names == CLASSES
    assert named.pretrained_cfg["mean"] == MEAN  # timm-style access
    # a model that knows its normalisation keeps it: the data's only fills a gap
    cnnzoo.fit(named, (images, labels), epochs=1, verbose=0)
    assert named.pretrained_cfg.mean == MEAN and named.pretrained_cfg.label_names == CLASSES


def test_a_users_own_normalisation_is_used_by_fit_and_recorded():
    images, labels = bands(96, seed=0)
    model = cnnzoo.get_model("lenet5", num_classes=3)
    mean, std = channel_stats(images)
    model.pretrained_cfg = {"mean": mean, "std": std, "label_names": list(CLASSES)}  # a dict
    cnnzoo.fit(model, (images, labels), epochs=1, verbose=0)
    assert model.pretrained_cfg.mean == pytest.approx(mean)
    assert model.pretrained_cfg.label_names == CLASSES
    expected = (images.double() / 255).mean().item()
    assert mean[0] == pytest.approx(expected)
    model.pretrained_cfg = {"maen": [0.5]}
    with pytest.raises(ValueError, match=r"model\.pretrained_cfg has unknown key"):
        cnnzoo.predict(model, images)


def test_a_model_without_normalisation_uses_the_datas_own_and_says_so():
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(28 * 28, 3))
    test = ImageTensorDataset(*bands(20, seed=1), CLASSES, MEAN, STD)
    with pytest.warns(UserWarning, match=r"no normalisation.*the data's own mean \(0\.3,\)"):
        from_object = cnnzoo.predict(model, test, precision="fp32")
    expected = model((test.images.float() / 255 - MEAN[0]) / STD[0])
    torch.testing.assert_close(from_object, expected)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # tensors carry no statistics: nothing to warn about
        cnnzoo.predict(model, test.images)


def test_classify_names_the_classes_with_probabilities(tmp_path):
    images, labels = bands(96, seed=0)
    model = train(ImageTensorDataset(images, labels, CLASSES, MEAN, STD))
    test_images, _ = bands(6, seed=1)
    files = image_files(test_images, tmp_path)
    ranked = cnnzoo.classify(model, files, top_k=2)
    assert len(ranked) == 6 and all(len(r) == 2 for r in ranked)
    probabilities = cnnzoo.predict(model, test_images).softmax(1)
    for row, p in zip(ranked, probabilities, strict=True):
        assert row[0]["score"] >= row[1]["score"]
        assert row[0]["label"] == CLASSES[row[0]["index"]]
        assert row[0]["score"] == pytest.approx(p.max().item())
    single = cnnzoo.classify(model, files[0], top_k=5)  # one image: just its list
    assert [c["index"] for c in single] == probabilities[0].argsort(descending=True).tolist()
    unnamed = cnnzoo.get_model("lenet5", num_classes=3)
    assert cnnzoo.classify(unnamed, pil_images(test_images)[0], top_k=1)[0]["label"] in "012"
    with pytest.raises(ValueError, match="top_k"):
        cnnzoo.classify(model, files, top_k=0)


# -- the contract survives every checkpoint --------------------------------------------------
def named_model() -> torch.nn.Module:
    images, labels = bands(96, seed=0)
    return train(ImageTensorDataset(images, labels, CLASSES, MEAN, STD))


def test_save_and_load_keep_the_data_configuration(tmp_path):
    model = named_model()
    loaded = cnnzoo.load(cnnzoo.save(model, tmp_path / "m.safetensors"))
    assert loaded.pretrained_cfg == model.pretrained_cfg
    test_images, _ = bands(20, seed=1)
    # fit left the model channels-last, the loaded copy is not: equal up to float rounding
    expected = cnnzoo.predict(model, test_images)
    torch.testing.assert_close(cnnzoo.predict(loaded, test_images), expected)


def test_save_pretrained_and_from_pretrained_keep_it_in_the_hub_layout(tmp_path):
    model = named_model()
    folder = cnnzoo.save_pretrained(model, tmp_path / "hub")
    config = json.loads((folder / "config.json").read_text())
    assert config["architecture"] == "mini_resnet" and config["num_classes"] == 3
    assert config["label_names"] == list(CLASSES)
    assert config["pretrained_cfg"]["mean"] == list(MEAN)
    assert config["pretrained_cfg"]["input_size"] == [1, 28, 28]
    loaded = cnnzoo.from_pretrained(folder)
    assert loaded.pretrained_cfg == model.pretrained_cfg
    # the Hub convention: config.json is what people edit, and it wins over the weights file
    config["label_names"] = ["a", "b", "c"]
    (folder / "config.json").write_text(json.dumps(config))
    assert cnnzoo.from_pretrained(folder).pretrained_cfg.label_names == ("a", "b", "c")


def test_a_folder_in_the_earlier_nested_layout_still_loads():
    folder = ROOT / "tests" / "data" / "nested-layout-mini-resnet"  # written by cnnzoo 0.1.0
    assert "model" in json.loads((folder / "config.json").read_text())
    model = cnnzoo.from_pretrained(folder)
    assert model.model_name == "mini_resnet" and model.num_classes == 3
    assert model.pretrained_cfg.input_size == (1, 28, 28) and model.pretrained_cfg.mean is None
    assert cnnzoo.predict(model, bands(4, seed=1)[0]).shape == (4, 3)


def test_best_checkpoint_and_training_state_record_it(tmp_path):
    images, labels = bands(96, seed=0)
    data = ImageTensorDataset(images, labels, CLASSES, MEAN, STD)
    torch.manual_seed(0)
    model = cnnzoo.get_model("lenet5", num_classes=3)
    best_path = tmp_path / "best.safetensors"
    cnnzoo.fit(model, data, val_data=0.25, epochs=1, verbose=0, checkpoint=best_path)
    cnnzoo.fit(model, data, val_data=0.25, epochs=1, verbose=0, checkpoint_dir=tmp_path / "run")
    for best in (best_path, tmp_path / "run" / "best.safetensors"):
        assert cnnzoo.load(best).pretrained_cfg == model.pretrained_cfg
    manifest = json.loads((tmp_path / "run" / "training_state.json").read_text())
    recorded = manifest["model"]["data_config"]
    assert DataConfig.from_dict(recorded) == model.pretrained_cfg


def test_resuming_with_another_normalisation_is_refused(tmp_path):
    images, labels = bands(96, seed=0)
    torch.manual_seed(0)
    model = cnnzoo.get_model("lenet5", num_classes=3)
    cnnzoo.fit(model, (images, labels), epochs=1, verbose=0, checkpoint_dir=tmp_path / "run")
    other = cnnzoo.get_model("lenet5", num_classes=3)
    other.pretrained_cfg = other.pretrained_cfg.replace(mean=(0.5,), std=(0.5,))
    resumed = {"epochs": 2, "verbose": 0, "checkpoint_dir": tmp_path / "run", "resume": True}
    with pytest.raises(ValueError, match=r"normalised with mean \[0\.0\].*start over"):
        cnnzoo.fit(other, (images, labels), **resumed)


# -- DataConfig ------------------------------------------------------------------------------
def test_data_config_validates_and_reads_timm_configs():
    config = DataConfig(input_size=(3, 32, 32), mean=(0.5,), std=[0.25])
    assert config.mean == (0.5, 0.5, 0.5) and config.std == (0.25, 0.25, 0.25)
    assert dict(config)["input_size"] == (3, 32, 32) and len(config) == 7
    timm = {
        "url": "",
        "input_size": (3, 224, 224),
        "mean": (0.485, 0.456, 0.406),
        "std": (0.229, 0.224, 0.225),
        "crop_pct": 0.875,
        "first_conv": "conv1",
        "interpolation": "bicubic",
        "num_classes": 1000,
    }
    read = DataConfig.from_dict(timm)
    assert read.crop_pct == 0.875 and read.interpolation == "bicubic"
    assert read.for_channels(1).mean == (pytest.approx((0.485 + 0.456 + 0.406) / 3),)
    assert read.for_channels(1).input_size == (1, 224, 224)
    for bad, message in [
        ({"mean": (0.5,)}, "mean and std together"),
        ({"mean": (0.5,), "std": (0.0,)}, "std values must be > 0"),
        ({"input_size": (3, 8, 8), "mean": (0.1, 0.2), "std": (1, 1)}, "one per channel"),
        ({"num_classes": 2, "label_names": ("a",)}, "one name per class"),
        ({"interpolation": "lanczos"}, "interpolation must be one of"),
        ({"crop_pct": 1.5}, "crop_pct"),
    ]:
        with pytest.raises(ValueError, match=message):
            DataConfig(**bad)


def test_imagenet_weights_bring_torchvisions_preprocessing(tmp_path):
    import torchvision

    from cnnzoo.data.images import resize_pixels
    from cnnzoo.training.feed import DataFacts, ModelInput

    torch.manual_seed(0)
    checkpoints = tmp_path / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    torch.save(torchvision.models.resnet18().state_dict(), checkpoints / "resnet18-f37072fd.pth")
    previous = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path / "hub"))
    try:
        imagenet = cnnzoo.get_model("resnet18", weights="imagenet")
        grey = cnnzoo.get_model("resnet18", num_classes=2, in_channels=1, weights="imagenet")
    finally:
        torch.hub.set_dir(previous)
    config = imagenet.pretrained_cfg
    assert config.input_size == (3, 224, 224) and config.crop_pct == 0.875
    assert config.mean == (0.485, 0.456, 0.406) and config.std == (0.229, 0.224, 0.225)
    assert len(config.label_names) == 1000 and config.label_names[0] == "tench"
    assert grey.pretrained_cfg.label_names is None and grey.pretrained_cfg.num_classes == 2
    assert grey.pretrained_cfg.input_size == (1, 224, 224) and len(grey.pretrained_cfg.mean) == 1
    # an image read for this model matches torchvision's own preprocessing of the weights
    photo = torch.randint(0, 256, (3, 300, 400), dtype=torch.uint8)
    ours = ModelInput(DataFacts(), (config.mean, config.std), "image")(
        resize_pixels(photo, (224, 224), config.interpolation, config.crop_pct)[None]
    )
    theirs = torchvision.models.ResNet18_Weights.IMAGENET1K_V1.transforms()(photo)[None]
    assert ours.shape == theirs.shape == (1, 3, 224, 224)
    torch.testing.assert_close(ours, theirs, atol=2 / 255 / 0.224, rtol=0)


# -- image files and arrays -------------------------------------------------------------------
def test_every_image_mode_reads_scaled_not_clipped(tmp_path):
    from cnnzoo.data import read_image

    ramp = np.arange(0, 65536, 257, dtype=np.uint16).reshape(16, 16)  # 256 grey levels, 16 bits
    Image.fromarray(ramp).save(tmp_path / "deep.png")
    assert Image.open(tmp_path / "deep.png").mode in ("I;16", "I")
    deep = read_image(tmp_path / "deep.png")
    assert deep.dtype == torch.uint8 and deep.shape == (1, 16, 16)
    assert torch.equal(deep.flatten(), torch.arange(256, dtype=torch.uint8))  # every level kept
    wide = Image.fromarray(ramp.astype(np.int32))  # mode I
    assert torch.equal(read_image(wide, channels=3), deep.expand(3, 16, 16))
    grey = Image.fromarray(np.arange(256, dtype=np.uint8).reshape(16, 16))
    rgba = Image.merge("RGBA", [grey, grey, grey, Image.new("L", (16, 16), 128)])
    for image in (grey, grey.convert("RGB"), rgba, grey.convert("P"), grey.convert("LA")):
        assert torch.equal(read_image(image, channels=1), deep), image.mode
        assert torch.equal(read_image(image, channels=3), deep.expand(3, 16, 16)), image.mode
    floats = Image.fromarray(np.linspace(0, 1, 256, dtype=np.float32).reshape(16, 16))
    assert torch.equal(read_image(floats), deep)
    with pytest.raises(ValueError, match="values from 70000 to 70000"):
        read_image(Image.fromarray(np.full((4, 4), 70000, dtype=np.int32)))
    (tmp_path / "notes.png").write_text("not an image")
    with pytest.raises(ValueError, match=r"notes\.png is not an image file"):
        read_image(tmp_path / "notes.png")
    with pytest.raises(FileNotFoundError, match="no image file"):
        read_image(tmp_path / "absent.png")


def test_an_image_folder_of_mixed_modes_and_16_bit_pngs(tmp_path):
    from cnnzoo.data import load_dataset

    level = np.full((8, 8), 40000, dtype=np.uint16)  # 40000 / 65535 of full brightness
    for split in ("train", "test"):
        folder = tmp_path / split / "a"
        folder.mkdir(parents=True)
        Image.fromarray(level).save(folder / "deep.png")
        Image.fromarray(np.full((8, 8), 156, dtype=np.uint8)).convert("P").save(folder / "p.png")
        Image.new("RGBA", (8, 8), (156, 156, 156, 0)).save(folder / "rgba.png")
    data = load_dataset(tmp_path, "test")
    assert data.images.shape == (3, 3, 8, 8)
    assert set(data.images.unique().tolist()) == {round(40000 * 255 / 65535)} == {156}


def test_numpy_arrays_in_any_layout():
    images, _ = bands(5, seed=0)
    model = cnnzoo.get_model("lenet5", num_classes=3).eval()
    reference = cnnzoo.predict(model, images)
    single = cnnzoo.predict(model, images[:1])  # one image: compared with a batch of one
    one = images[0, 0].numpy()
    assert torch.equal(cnnzoo.predict(model, one), single)  # (H, W)
    assert torch.equal(cnnzoo.predict(model, one[:, :, None]), single)  # (H, W, 1)
    assert torch.equal(cnnzoo.predict(model, images[:, 0].numpy()), reference)  # (N, H, W)
    rgb = cnnzoo.get_model("cifar_cnn", num_classes=3).eval()
    colour = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8)
    expected, first = cnnzoo.predict(rgb, colour), cnnzoo.predict(rgb, colour[:1])
    assert torch.equal(cnnzoo.predict(rgb, colour.permute(0, 2, 3, 1).numpy()), expected)
    assert torch.equal(cnnzoo.predict(rgb, colour[0].permute(1, 2, 0).numpy()), first)
    assert torch.equal(cnnzoo.predict(rgb, colour[0].numpy()), first)  # (C, H, W)
    sixteen = (colour.numpy().astype(np.uint16) * 257).transpose(0, 2, 3, 1)  # 16-bit pixels
    torch.testing.assert_close(cnnzoo.predict(rgb, sixteen), expected)


def test_files_of_another_size_are_resized_to_the_models_input(tmp_path):
    model = cnnzoo.get_model("lenet5", num_classes=3)
    big = torch.randint(0, 256, (56, 56), dtype=torch.uint8)
    Image.fromarray(big.numpy()).save(tmp_path / "big.png")
    from cnnzoo.data.images import resize_pixels

    expected = cnnzoo.predict(model, resize_pixels(big[None, None], (28, 28)))
    assert torch.equal(cnnzoo.predict(model, str(tmp_path / "big.png")), expected)


def test_adapting_the_first_convolution_adapts_the_statistics():
    from cnnzoo.transfer import adapt_first_conv

    model = cnnzoo.get_model("cifar_cnn", num_classes=2)
    model.pretrained_cfg = model.pretrained_cfg.replace(mean=(0.4, 0.5, 0.6), std=(0.2,) * 3)
    adapt_first_conv(model, 1)
    assert model.pretrained_cfg.input_size == (1, 32, 32)
    assert model.pretrained_cfg.mean == (pytest.approx(0.5),)
    grey = torch.randint(0, 256, (2, 1, 32, 32), dtype=torch.uint8)
    assert cnnzoo.predict(model, grey).shape == (2, 2)


def test_a_path_given_to_fit_points_at_load_dataset():
    model = cnnzoo.get_model("lenet5", num_classes=3)
    with pytest.raises(TypeError, match=r"load_dataset\('fashion-mnist'\)"):
        cnnzoo.fit(model, "fashion-mnist", verbose=0)
    with pytest.raises(TypeError, match="images without labels"):
        cnnzoo.evaluate(model, bands(3, seed=0)[0])
