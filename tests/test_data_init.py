"""The data-dependent start of the small-input VGGs without BatchNorm.

Built with He initialisation and fed 8x8 images, their signal all but vanishes before the head;
``fit`` rescales their layers on the first training batch, once, and only while the weights are
the ones the model was built with. Every check is of scales measured on fixed data, at lr=0
(nothing is learned), so none depends on how a training run goes.
"""

from __future__ import annotations

import pytest
import torch
from _synthetic import stripes
from torch import nn

import cnnzoo
from cnnzoo.models.data_init import (
    orthonormalise,
    rescale_to_unit_variance,
    weights_signature,
)

FIT = {"epochs": 1, "lr": 0.0, "batch_size": 64, "verbose": 0, "precision": "fp32"}


def features_std(model: nn.Module, images: torch.Tensor) -> float:
    """Standard deviation of the last convolution block's output, in eval mode."""
    model.eval()
    with torch.no_grad():
        return float(model.forward_features(images).std())


def vgg(name: str = "vgg19") -> nn.Module:
    torch.manual_seed(0)
    return cnnzoo.get_model(name, num_classes=3, in_channels=1, small_input=True)


def test_rescaling_gives_each_layer_unit_output_variance_on_the_batch():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU())
    model[0].weight.data.mul_(0.01)  # a signal shrunk 100x at the first layer
    x = torch.randn(256, 16)
    rescale_to_unit_variance(model, [model[0], model[2]], x)
    with torch.no_grad():
        first = model[0](x)
        second = model[2](model[1](first))
    assert float(first.std()) == pytest.approx(1.0, rel=1e-4)
    assert float(second.std()) == pytest.approx(1.0, rel=1e-4)
    assert model.training  # the mode it was in


def test_orthonormalise_makes_every_weight_orthonormal_from_itself():
    torch.manual_seed(0)
    tall, wide = nn.Conv2d(2, 64, 3), nn.Linear(512, 10)  # 64 x 18 and 10 x 512
    twin = nn.Linear(512, 10)
    twin.load_state_dict(wide.state_dict())
    rng = torch.get_rng_state()
    assert orthonormalise([tall, wide, twin]) == 3
    assert torch.equal(torch.get_rng_state(), rng)  # no random number drawn
    columns = tall.weight.reshape(64, -1)
    assert torch.allclose(columns.T @ columns, torch.eye(18), atol=1e-5)
    assert torch.allclose(wide.weight @ wide.weight.T, torch.eye(10), atol=1e-5)
    assert torch.equal(wide.weight, twin.weight)  # the same weights give the same start
    frozen = nn.Linear(4, 4).requires_grad_(False)
    before = frozen.weight.clone()
    assert orthonormalise([frozen]) == 0 and torch.equal(frozen.weight, before)


def test_every_layer_of_a_plain_small_vgg_starts_at_unit_variance_logits_included():
    torch.manual_seed(1)
    images = torch.randn(64, 1, 8, 8)
    model = vgg("vgg11")
    assert model.init_from_data(images)
    model.eval()
    with torch.no_grad():
        assert float(model(images).std()) == pytest.approx(1.0, rel=1e-3)
    head = model.classifier[6].weight
    rows = head / head.norm(dim=1, keepdim=True)  # orthogonal rows, rescaled as one
    assert torch.allclose(rows @ rows.T, torch.eye(3), atol=1e-5)


def test_fit_rescales_a_fresh_plain_small_vgg_before_its_first_step():
    images, labels = stripes(128)
    model = vgg()
    normalised = (images - images.mean()) / images.std()
    built = features_std(model, normalised)
    history = cnnzoo.fit(model, (images, labels), **FIT)
    assert built < 1e-3  # the vanishing signal the rescaling is for
    assert 0.1 < features_std(model, normalised) < 10
    assert "unit output variance" in history.params["data_init"]
    # Once: the weights are no longer the ones it was built with, so a second fit keeps them.
    rescaled = weights_signature(model)
    assert cnnzoo.fit(model, (images, labels), **FIT).params["data_init"] is None
    assert weights_signature(model) == pytest.approx(rescaled, rel=1e-12)


def assert_fit_leaves_the_weights(model: nn.Module, images: torch.Tensor) -> None:
    """fit (at lr=0) neither rescales ``model`` nor says it did."""
    signature = weights_signature(model)
    labels = torch.arange(len(images)) % 3
    assert cnnzoo.fit(model, (images, labels), **FIT).params["data_init"] is None
    assert weights_signature(model) == pytest.approx(signature, rel=1e-12)


def test_weights_changed_since_the_build_are_never_rescaled():
    model = vgg()
    with torch.no_grad():
        model.features[0].weight.mul_(1.5)  # edited, as loading or training would
    assert_fit_leaves_the_weights(model, stripes(128)[0])


def test_data_init_false_keeps_the_start_as_built():
    model = vgg()
    model.data_init = False
    assert_fit_leaves_the_weights(model, stripes(128)[0])


@pytest.mark.parametrize("name", ["vgg11_bn", "lenet5"])
def test_models_that_need_no_data_dependent_start_are_left_as_built(name):
    images = stripes(128)[0]
    if name == "lenet5":
        model = cnnzoo.get_model(name, num_classes=3)
        images = torch.nn.functional.interpolate(images, size=(28, 28))
    else:
        model = vgg(name)
    assert_fit_leaves_the_weights(model, images)


def test_only_small_input_vggs_without_batchnorm_ask_for_it():
    with torch.device("meta"):
        assert cnnzoo.get_model("vgg11", small_input=True).data_init
        assert not cnnzoo.get_model("vgg11").data_init  # torchvision's, as built
        assert not cnnzoo.get_model("vgg11_bn", small_input=True).data_init
        assert cnnzoo.get_model("vgg11", small_input=True)._built_weights == 0.0  # on meta


def test_a_refused_fit_leaves_the_model_new():
    images, labels = stripes(128)
    model = vgg()
    signature = weights_signature(model)
    with pytest.raises(ValueError, match="optimizer"):
        cnnzoo.fit(model, (images, labels), **{**FIT, "optimizer": "nosuch"})
    assert weights_signature(model) == signature
    assert "unit output variance" in cnnzoo.fit(model, (images, labels), **FIT).params["data_init"]


def test_frozen_layers_are_never_rescaled():
    images, labels = stripes(128)
    model = vgg()
    cnnzoo.freeze(model, "features")
    frozen = weights_signature(model.features)
    cnnzoo.fit(model, (images, labels), **FIT)
    assert weights_signature(model.features) == pytest.approx(frozen, rel=1e-12)


def test_images_with_nothing_to_measure_do_not_use_up_the_start():
    model = vgg()
    signature = weights_signature(model)
    assert not model.init_from_data(torch.zeros(4, 1, 8, 8))  # constant: no spread anywhere
    assert weights_signature(model) == signature
    nan = torch.randn(4, 1, 8, 8)
    nan[0, 0, 0, 0] = float("nan")
    assert not model.init_from_data(nan)
    assert model.init_from_data(torch.randn(4, 1, 8, 8))  # real images still get it


def test_lr_find_measures_the_start_fit_gives_without_touching_the_model(monkeypatch):
    images, labels = stripes(128)
    model = vgg()
    signature = weights_signature(model)
    original, rescaled = type(model).init_from_data, []

    def spy(self, x):
        done = original(self, x)
        rescaled.append((self is model, done))
        return done

    monkeypatch.setattr(type(model), "init_from_data", spy)
    cnnzoo.lr_find(model, (images, labels), num_steps=20, batch_size=32)
    assert rescaled == [(False, True)]  # its copy was rescaled, once
    assert weights_signature(model) == signature  # and the model is as built


def test_a_resumed_run_reports_no_new_start(tmp_path):
    images, labels = stripes(128)
    state = tmp_path / "state"
    first = cnnzoo.fit(vgg(), (images, labels), **FIT, checkpoint_dir=state)
    assert first.params["data_init"] is not None
    options = {**FIT, "epochs": 2}
    resumed = cnnzoo.fit(vgg(), (images, labels), **options, checkpoint_dir=state, resume=True)
    assert resumed.params["data_init"] is None  # the weights came from the state


def test_a_start_that_fails_or_has_nothing_to_measure_leaves_every_weight_as_built():
    model = vgg("vgg11")
    signature = weights_signature(model)
    with pytest.raises(ValueError, match="channel"):
        model.init_from_data(torch.randn(4, 3, 8, 8))  # the wrong channels: the forward fails
    flat = torch.ones(4, 1, 8, 8) * torch.tensor([0.1, 0.5, 0.9, 2.0]).view(4, 1, 1, 1)
    assert not model.init_from_data(flat)  # each image flat: only the padding would vary
    assert weights_signature(model) == signature
    assert model.wants_data_init() and model.init_from_data(torch.randn(4, 1, 8, 8))


def test_a_layer_frozen_in_part_is_left_alone():
    model = vgg("vgg11")
    model.features[3].weight.requires_grad_(False)  # its bias still trains
    before = [p.clone() for p in model.features[3].parameters()]
    assert model.init_from_data(torch.randn(16, 1, 8, 8))
    after = list(model.features[3].parameters())
    assert all(torch.equal(a, b) for a, b in zip(after, before, strict=True))
