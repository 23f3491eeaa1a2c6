"""A grey model scored on a folder, which reads as RGB: its images made grey as PIL does."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

import cnnzoo
from cnnzoo.cli import main
from cnnzoo.data import ImageTensorDataset, as_grey, load_dataset


def test_as_grey_gives_pils_own_grey_pixels():
    generator = torch.Generator().manual_seed(0)
    rgb = torch.randint(0, 256, (6, 3, 5, 7), generator=generator, dtype=torch.uint8)
    data = ImageTensorDataset(rgb, torch.arange(6) % 2, ["a", "b"], [0.5] * 3, [0.25] * 3)
    grey = as_grey(data)
    for image, made in zip(rgb, grey.images, strict=True):
        pil = Image.fromarray(image.permute(1, 2, 0).numpy(), "RGB").convert("L")
        assert torch.equal(made[0], torch.from_numpy(__import__("numpy").asarray(pil)))
    assert grey.images.shape == (6, 1, 5, 7) and torch.equal(grey.labels, data.labels)
    assert grey.classes == ["a", "b"] and len(grey.mean) == len(grey.std) == 1
    with pytest.raises(ValueError, match="only RGB images can be made grey"):
        as_grey(grey)


@pytest.fixture
def grey_folder(tmp_path):
    """Two classes told apart by brightness, written as grey PNGs (a folder reads them as RGB)."""
    generator = torch.Generator().manual_seed(1)
    for split in ("train", "test"):
        for label, level in (("dark", 40), ("light", 200)):
            (tmp_path / split / label).mkdir(parents=True)
            for i in range(6):
                noise = torch.randint(-20, 21, (28, 28), generator=generator)
                pixels = (level + noise).clamp(0, 255).to(torch.uint8).numpy()
                Image.fromarray(pixels, "L").save(tmp_path / split / label / f"{i}.png")
    return tmp_path


def test_eval_scores_a_grey_checkpoint_on_a_folder_as_predict_reads_it(
    grey_folder, tmp_path, capsys
):
    torch.manual_seed(0)
    model = cnnzoo.get_model("lenet5", num_classes=2)  # one channel, 28x28
    test = load_dataset(grey_folder, "test", in_memory=True, verbose=0)
    expected = cnnzoo.evaluate(model, as_grey(test))["accuracy"]
    checkpoint = cnnzoo.save(model, tmp_path / "m.safetensors")
    code = main(["eval", str(checkpoint), "--data", str(grey_folder), "--device", "cpu"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "made grey" in out and f"test accuracy: {expected:.4f}" in out
    # the same pixels predict reads from the files for this model
    predicted = cnnzoo.predict(
        model, [str(p) for p in sorted((grey_folder / "test").rglob("*.png"))]
    )
    in_memory = cnnzoo.predict(model, as_grey(test).images)
    assert torch.allclose(predicted, in_memory)


def test_a_streamed_folder_for_a_grey_checkpoint_names_the_flag(grey_folder, tmp_path, capsys):
    checkpoint = cnnzoo.save(cnnzoo.get_model("lenet5", num_classes=2), tmp_path / "m.safetensors")
    argv = ["eval", str(checkpoint), "--data", str(grey_folder), "--in-memory", "no"]
    code = main([*argv, "--device", "cpu"])
    _, err = capsys.readouterr()
    assert code == 2 and "takes grey images" in err and "--in-memory yes" in err


def test_export_calibrates_a_grey_checkpoint_on_a_folder(grey_folder, tmp_path, capsys):
    # export --int8 --calibration/--test read the folder as eval does: made grey for the model
    from argparse import Namespace

    from cnnzoo.cli.export import _data

    model = cnnzoo.get_model("lenet5", num_classes=2)
    args = Namespace(data_root=None, checkpoint=tmp_path / "m.safetensors")
    calibration = _data(model, str(grey_folder), "train", args)
    assert calibration.images.shape == (12, 1, 28, 28)
    assert "train images of" in capsys.readouterr().out


@pytest.fixture
def fashion_folder(tmp_path):
    """Two Fashion-MNIST classes as folders spell them: 4 dark "T-shirt_top", 2 light "Trouser"."""
    generator = torch.Generator().manual_seed(2)
    for label, level, count in (("T-shirt_top", 40, 4), ("Trouser", 200, 2)):
        for split in ("train", "test"):
            (tmp_path / "data" / split / label).mkdir(parents=True)
            for i in range(count):
                noise = torch.randint(-20, 21, (28, 28), generator=generator)
                pixels = (level + noise).clamp(0, 255).to(torch.uint8).numpy()
                Image.fromarray(pixels, "L").save(tmp_path / "data" / split / label / f"{i}.png")
    return tmp_path / "data"


def _always_first(label_names: tuple[str, str]) -> torch.nn.Module:
    """A 2-class grey LeNet-5 that answers its class 0 for every image."""
    model = cnnzoo.get_model("lenet5", num_classes=2)
    model.pretrained_cfg = model.pretrained_cfg.replace(label_names=label_names)
    head = [m for m in model.modules() if isinstance(m, torch.nn.Linear)][-1]
    with torch.no_grad():
        head.weight.zero_()
        head.bias.copy_(torch.tensor([5.0, 0.0]))
    return model


def test_eval_matches_a_folders_class_names_to_the_checkpoints(fashion_folder, tmp_path, capsys):
    # Fashion-MNIST's "T-shirt/top" cannot name a folder, and a folder sorts its classes; the
    # model answers "Trouser" (its class 0): right on 2 of the 6 test images, and on 4 of them
    # if the folder's labels were taken by position
    checkpoint = cnnzoo.save(_always_first(("Trouser", "T-shirt/top")), tmp_path / "m.safetensors")
    code = main(["eval", str(checkpoint), "--data", str(fashion_folder), "--device", "cpu"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "matched to" in out and f"test accuracy: {2 / 6:.4f}" in out


def test_eval_refuses_other_classes_and_export_scores_matched_ones(
    fashion_folder, tmp_path, capsys
):
    from argparse import Namespace

    from cnnzoo.cli.export import _data

    other = cnnzoo.save(_always_first(("cat", "dog")), tmp_path / "other.safetensors")
    code = main(["eval", str(other), "--data", str(fashion_folder), "--device", "cpu"])
    assert code == 2 and "not the same classes" in capsys.readouterr().err
    model = _always_first(("Trouser", "T-shirt/top"))
    args = Namespace(data_root=None, checkpoint=tmp_path / "m.safetensors")
    test = _data(model, str(fashion_folder), "test", args)  # export --int8 --test scores this
    assert test.classes == ["Trouser", "T-shirt/top"]
    assert cnnzoo.evaluate(model, test)["accuracy"] == pytest.approx(2 / 6)
