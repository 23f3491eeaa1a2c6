"""Each model's training recipe: registered, shown by info and the CLI, and what fit trains with
when no lr is given; an explicit lr wins; unknown models get the rule their layers imply."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from _synthetic import RECIPE_LR, stripes, tiny_net
from PIL import Image
from torch import nn

import cnnzoo
from cnnzoo.cli import main
from cnnzoo.cli.browse import _recipe
from cnnzoo.models import ShortRunRecipe, TrainingRecipe, info, list_models, register
from cnnzoo.training import recipes
from cnnzoo.training.optimizers import DEFAULT_LR


def fit_params(model: nn.Module, **options) -> dict:
    images, labels = stripes(48)
    return cnnzoo.fit(model, (images, labels), epochs=1, verbose=0, **options).params


def test_every_registered_model_has_a_recipe_with_its_source():
    for name in list_models():
        recipe = info(name).recipe
        assert isinstance(recipe, TrainingRecipe), name
        assert 0 < recipe.lr <= 2e-2, name
        assert "benchmarks/zoo_defaults.py" not in recipe.source  # users read names, not files
        assert len(recipe.source) > 20, name


def test_the_nets_that_collapsed_at_the_single_default_get_lower_rates():
    # The nets fit's one earlier default (2e-2) broke: mini_inception, AlexNet, the plain VGGs.
    for name in ("mini_inception", "alexnet", "alexnet_original", "vgg11", "vgg19", "network_bn"):
        assert info(name).recipe.lr < 2e-2, name
    assert info("lenet5").recipe.lr == 2e-2  # the headline's rate, measured on all 60,000 images


def test_the_registered_recipe_reaches_fit(recipe_model):
    params = fit_params(cnnzoo.get_model(recipe_model))
    assert params["lr"] == pytest.approx(RECIPE_LR)
    assert recipe_model in params["lr_source"] and "a test" in params["lr_source"]


def test_an_explicit_lr_overrides_the_recipe(recipe_model):
    params = fit_params(cnnzoo.get_model(recipe_model), lr=0.03)
    assert params["lr"] == pytest.approx(0.03)
    assert params["lr_source"] == "given by lr="


def test_other_named_optimizers_are_scaled_by_the_recipes_factor(recipe_model):
    params = fit_params(cnnzoo.get_model(recipe_model), optimizer="sgd")
    assert params["lr"] == pytest.approx(DEFAULT_LR["sgd"] * RECIPE_LR / DEFAULT_LR["adamw"])
    assert "scaled" in params["lr_source"]


def test_a_built_optimizer_keeps_its_own_rate(recipe_model):
    model = cnnzoo.get_model(recipe_model)
    params = fit_params(model, optimizer=torch.optim.SGD(model.parameters(), lr=0.123))
    assert params["lr"] == pytest.approx(0.123)
    assert params["lr_source"] == "the optimizer's own"


def test_the_recipe_follows_a_saved_and_loaded_model(recipe_model, tmp_path):
    path = cnnzoo.save(cnnzoo.get_model(recipe_model), tmp_path / "m.safetensors")
    assert fit_params(cnnzoo.load(path))["lr"] == pytest.approx(RECIPE_LR)


def test_unknown_models_get_the_fallback_rate():
    for model in (tiny_net(batch_norm=True, dropout=0.0), tiny_net(batch_norm=False, dropout=0.0)):
        params = fit_params(model)
        assert params["lr"] == pytest.approx(recipes.FALLBACK_LR)
        assert params["lr_source"] == "fit's rate for a model with no registered recipe"


def test_a_recipe_must_be_valid():
    with pytest.raises(ValueError, match="lr must be a number"):
        TrainingRecipe(0.0, "x")
    with pytest.raises(ValueError, match="needs its source"):
        TrainingRecipe(1e-3, " ")
    with pytest.raises(TypeError, match="TrainingRecipe"):
        register("bad_recipe_net", recipe={"lr": 1e-3})


def test_a_short_run_recipe_must_be_valid():
    with pytest.raises(ValueError, match="short-run recipe's lr"):
        ShortRunRecipe(20.0, 200, 16, "x")
    for min_steps, smallest in ((0, 16), (200, 0), (200, 256), (200, 16.0)):
        with pytest.raises(ValueError, match="must be an integer"):
            ShortRunRecipe(1e-3, min_steps, smallest, "x")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="power of two"):
        ShortRunRecipe(1e-3, 200, 20, "x")
    with pytest.raises(ValueError, match="needs its source"):
        ShortRunRecipe(1e-3, 200, 16, "")
    with pytest.raises(TypeError, match="ShortRunRecipe or None"):
        TrainingRecipe(1e-3, "x", short_runs={"lr": 1e-3})  # type: ignore[arg-type]


def test_info_shows_the_fallback_and_the_short_run_recipe(capsys):
    assert main(["info", "cifar_cnn"]) == 0
    short = info("cifar_cnn").recipe.short_runs
    assert f"peak lr {short.lr:g}, the batch halved towards {short.min_steps} steps" in (
        capsys.readouterr().out
    )
    assert "peak lr 0.003 at batch 32" in _recipe(None)  # a model with no recipe


def test_info_and_the_cli_show_the_recipe(capsys):
    assert main(["info", "vgg11"]) == 0
    out = capsys.readouterr().out
    assert f"peak lr {info('vgg11').recipe.lr:g}" in out


def test_cnnzoo_train_follows_the_recipe(recipe_model, tmp_path, capsys):
    root = tmp_path / "data"
    generator = torch.Generator().manual_seed(0)
    for split, count in (("train", 12), ("test", 4)):
        for label in range(3):
            folder = root / split / f"class{label}"
            folder.mkdir(parents=True)
            for i in range(count):
                pixels = torch.randint(0, 255, (8, 8), generator=generator, dtype=torch.uint8)
                Image.fromarray(pixels.numpy()).save(folder / f"{i}.png")
    out = tmp_path / "run"
    argv = ["train", recipe_model, "--data", str(root), "--epochs", "1", "--out", str(out)]
    assert main([*argv, "--device", "cpu", "--batch-size", "8"]) == 0
    metrics = json.loads(Path(out / "metrics.json").read_text())
    assert metrics["lr"] == pytest.approx(RECIPE_LR)
    assert recipe_model in metrics["lr_source"]
    assert metrics["alerts"] == []
    capsys.readouterr()
