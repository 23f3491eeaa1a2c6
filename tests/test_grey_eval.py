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


def test_eval_matches_a_folders_class_names_to_the_checkpoints(tmp_path, capsys):
    # Fashion-MNIST's "T-shirt/top" cannot name a folder, and a folder sorts its classes
    generator = torch.Generator().manual_seed(2)
    for label, level, count in (("T-shirt_top", 40, 4), ("Trouser", 200, 2)):
        for split in ("train", "test"):
            (tmp_path / "data" / split / label).mkdir(parents=True)
            for i in range(count):
                noise = torch.randint(-20, 21, (28, 28), generator=generator)
                pixels = (level + noise).clamp(0, 255).to(torch.uint8).numpy()
                Image.fromarray(pixels, "L").save(tmp_path / "data" / split / label / f"{i}.png")
    torch.manual_seed(0)
    model = cnnzoo.get_model("lenet5", num_classes=2)
    model.pretrained_cfg = model.pretrained_cfg.replace(label_names=("Trouser", "T-shirt/top"))
    head = [m for m in model.modules() if isinstance(m, torch.nn.Linear)][-1]
    with torch.no_grad():  # it answers "Trouser" (its class 0) for every image
        head.weight.zero_()
        head.bias.copy_(torch.tensor([5.0, 0.0]))
    checkpoint = cnnzoo.save(model, tmp_path / "m.safetensors")
    test = as_grey(load_dataset(tmp_path / "data", "test", in_memory=True, verbose=0))
    swapped = 1 - test.labels  # the folder's 0 (T-shirt_top) is the checkpoint's 1
    expected = cnnzoo.evaluate(model, (test.images, swapped))["accuracy"]
    code = main(["eval", str(checkpoint), "--data", str(tmp_path / "data"), "--device", "cpu"])
    out, err = capsys.readouterr()
    assert code == 0, err
    # 2 of the 6 test images are trousers; matched by position it would score 4 of 6
    assert expected == pytest.approx(2 / 6)
    assert "matched to" in out and f"test accuracy: {expected:.4f}" in out
