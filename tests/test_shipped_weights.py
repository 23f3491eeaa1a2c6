"""cnnzoo's own Fashion-MNIST weights: shipped, verified, listed, and as accurate as stated."""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
from pathlib import Path

import pytest

import cnnzoo
from cnnzoo.cli import main
from cnnzoo.weights import find, shipped, verified_path

FASHION = Path("/usr/share/datasets/fashion-mnist")
CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat"]  # the first five
# The test subset is the first 2,000 test images: its accuracy estimates the whole split's
# within about 3 standard errors (sqrt(0.9 * 0.1 / 2000) ~ 0.007) of this margin.
SUBSET, MARGIN = 2000, 0.02


def test_the_index_lists_lenet5_and_every_file_matches_its_sha256():
    names = {w.model for w in shipped()}
    assert "lenet5" in names
    for weights in shipped():
        size = verified_path(weights).stat().st_size
        if weights.num_params * 4 < 900_000:  # under 1 MB wherever float32 weights fit in it
            assert size < 1_000_000
        else:  # a larger net (cifar_cnn): its float32 weights, the header and nothing more
            assert size < weights.num_params * 4 + 64_000
        assert weights.tag == "fashion-mnist" and weights.epochs == weights.recipe["epochs"]


@pytest.mark.parametrize("weights", shipped(), ids=lambda w: w.model)
def test_shipped_weights_load_with_their_data_contract_and_reach_their_accuracy(weights):
    if not (FASHION / "t10k-images-idx3-ubyte.gz").is_file():
        if os.environ.get("CI"):
            pytest.fail(f"CI must install dataset-fashion-mnist ({FASHION} is missing)")
        pytest.skip(f"Fashion-MNIST not installed at {FASHION}")
    from cnnzoo.data import load_dataset
    from cnnzoo.data.images import resize_pixels

    model = cnnzoo.get_model(weights.model, weights="fashion-mnist")
    contract = model.pretrained_cfg
    assert list(contract.label_names[:5]) == CLASSES
    assert contract.mean is not None and contract.std is not None
    assert sum(p.numel() for p in model.parameters()) == weights.num_params
    test = load_dataset("fashion-mnist", "test")
    # the 28x28 images as predict gives them to the net (cifar_cnn's 32x32: resized, as a file)
    images = resize_pixels(
        test.images[:SUBSET], model.input_size[1:], contract.interpolation, contract.crop_pct
    )
    accuracy = cnnzoo.evaluate(model, (images, test.labels[:SUBSET]))["accuracy"]
    assert accuracy >= weights.test_accuracy - MARGIN


def test_the_cli_scores_the_32_pixel_net_on_fashion_mnist_resized_by_image_size(capsys):
    if not (FASHION / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"Fashion-MNIST not installed at {FASHION}")
    weights = find("cifar_cnn", "fashion-mnist")
    args = ["eval", str(weights.file), "--data", "fashion-mnist", "--device", "cpu"]
    assert main([*args, "--image-size", "32"]) in (0, None)
    accuracy = float(re.search(r"test accuracy: ([0-9.]+)", capsys.readouterr().out)[1])
    assert accuracy == pytest.approx(weights.test_accuracy, abs=0.002)  # the whole test split


def test_a_damaged_file_is_named_not_loaded(tmp_path):
    weights = find("lenet5", "fashion-mnist")
    copy = tmp_path / weights.file.name
    shutil.copyfile(weights.file, copy)
    data = bytearray(copy.read_bytes())
    data[-1] ^= 0xFF
    copy.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"do not match their published sha256.*reinstall"):
        verified_path(dataclasses.replace(weights, file=copy))
    with pytest.raises(ValueError, match="missing from the installed package"):
        verified_path(dataclasses.replace(weights, file=tmp_path / "gone.safetensors"))


def test_info_and_the_cli_list_the_weights(capsys):
    assert [w.tag for w in cnnzoo.models.info("lenet5").weights] == ["fashion-mnist"]
    assert cnnzoo.models.info("vgg11").weights == ()
    assert main(["list", "--weights"]) in (0, None)
    out = capsys.readouterr().out
    entry = find("lenet5", "fashion-mnist")
    assert f"{entry.test_accuracy:.4f}" in out and entry.sha256[:12] in out
    for weights in shipped():  # the longest name too keeps a gap before its tag
        assert re.search(rf"^{weights.model} +{weights.tag} ", out, re.MULTILINE)
    assert main(["info", "lenet5"]) in (0, None)
    assert "'fashion-mnist': test accuracy" in capsys.readouterr().out


def test_weights_a_model_lacks_are_refused_naming_the_ones_it_has():
    with pytest.raises(ValueError, match="lenet5 has cnnzoo's own weights 'fashion-mnist'"):
        cnnzoo.get_model("lenet5", weights="imagenet")
