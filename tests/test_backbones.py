"""Backbones and heads the timm way: features_only, forward_intermediates, reset_classifier's
global_pool, gradient checkpointing and drop_rate. (Every model's stage shapes and its tracing
are in test_interop.py.)
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import cnnzoo
from cnnzoo.models import get
from cnnzoo.models.base import FeatureInfo
from cnnzoo.models.densenet import DenseNet
from cnnzoo.models.features import FeatureListNet


def _images(batch: int = 2, channels: int = 3, side: int = 32, seed: int = 0) -> torch.Tensor:
    return torch.randn(batch, channels, side, side, generator=torch.Generator().manual_seed(seed))


# -- features_only --------------------------------------------------------------------------------
def test_features_only_selects_stages_and_records_them():
    backbone = get("resnet18", features_only=True, out_indices=(1, -1), small_input=True)
    assert isinstance(backbone, FeatureListNet)
    assert backbone.out_indices == (1, 4)
    info = backbone.feature_info
    assert isinstance(info, FeatureInfo)
    assert (info.channels(), info.reduction(), info.module_name()) == (
        [64, 512],
        [1, 8],
        ["layer1", "layer4"],
    )
    assert info.channels(0) == 64 and len(info) == 5  # every stage stays described
    assert info[2] == {"num_chs": 128, "reduction": 2, "module": "layer2", "index": 2}
    maps = backbone.eval()(_images())
    assert [tuple(m.shape) for m in maps] == [(2, 64, 32, 32), (2, 512, 4, 4)]
    assert backbone.cnnzoo_config["features_only"] is True
    assert backbone.cnnzoo_config["out_indices"] == [1, 4]


def test_features_only_keeps_the_trunk_up_to_the_deepest_stage():
    backbone = get("vgg11_bn", features_only=True, out_indices=2, small_input=True)
    assert backbone.out_indices == (3, 4)
    full = get("vgg11_bn", features_only=True, out_indices=[0, 1], small_input=True)
    # the features Sequential is cut after the second stage, keeping torchvision's indices
    assert list(full.state_dict())[-1].startswith("features.5.")
    assert not any(k.startswith("classifier") for k in backbone.state_dict())


def test_features_only_saves_and_loads(tmp_path):
    torch.manual_seed(0)
    backbone = get("densenet121", features_only=True, out_indices=(0, 2), small_input=True).eval()
    path = cnnzoo.save(backbone, tmp_path / "backbone.safetensors")
    loaded = cnnzoo.load(path)
    assert isinstance(loaded, FeatureListNet) and loaded.out_indices == (0, 2)
    x = _images()
    with torch.no_grad():
        for ours, theirs in zip(backbone(x), loaded(x), strict=True):
            torch.testing.assert_close(ours, theirs)


def test_classifier_weights_load_into_a_backbone(tmp_path):
    classifier = get("resnet18", num_classes=7, small_input=True).eval()
    path = cnnzoo.save(classifier, tmp_path / "classifier.safetensors")
    backbone = get("resnet18", features_only=True, small_input=True).eval()
    skipped = cnnzoo.load_weights(backbone, path, strict=False)
    assert sorted(skipped.unexpected_keys) == ["fc.bias", "fc.weight"]
    assert not skipped.missing_keys
    x = _images()
    with torch.no_grad():
        torch.testing.assert_close(backbone(x)[-1], classifier.forward_features(x))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"out_indices": (1,)}, "out_indices selects the stages of a backbone"),
        ({"features_only": "yes"}, "features_only must be True or False"),
        ({"features_only": True, "out_indices": (5,)}, r"resnet18 has 5 stages .* got index 5"),
        ({"features_only": True, "out_indices": 0}, r"last n, 1 <= n <= 5; got 0"),
        ({"features_only": True, "out_indices": (1.0,)}, "stage indices must be integers"),
    ],
)
def test_features_only_refuses_bad_arguments(kwargs, message):
    with torch.device("meta"), pytest.raises(ValueError, match=message):
        get("resnet18", **kwargs)


def test_models_without_stages_refuse_clearly():
    with pytest.raises(ValueError, match=r"lenet5 has no stages for features_only.*forward_feat"):
        get("lenet5", features_only=True)
    model = get("cifar_cnn")
    with pytest.raises(ValueError, match="cifar_cnn has no stages for forward_intermediates"):
        model.forward_intermediates(torch.randn(1, 3, 32, 32))
    with pytest.raises(ValueError, match="cifar_cnn has no stages for gradient checkpointing"):
        model.set_grad_checkpointing()


def test_backbone_keeps_the_eager_input_checks():
    backbone = get("resnet18", features_only=True)
    with pytest.raises(ValueError, match=r"resnet18 expects 3 input channel\(s\), got 1"):
        backbone(torch.randn(1, 1, 64, 64))
    with pytest.raises(TypeError, match="floating-point images"):
        backbone(torch.zeros(1, 3, 64, 64, dtype=torch.uint8))


# -- forward_intermediates ------------------------------------------------------------------------
def test_forward_intermediates_follows_timm():
    model = get("resnet18", small_input=True).eval()
    x = _images()
    with torch.no_grad():
        final, maps = model.forward_intermediates(x)
        torch.testing.assert_close(final, model.forward_features(x))
        assert [m.shape[1] for m in maps] == [64, 64, 128, 256, 512]

        last_two = model.forward_intermediates(x, indices=2, intermediates_only=True)
        assert [m.shape[1] for m in last_two] == [256, 512]
        torch.testing.assert_close(last_two[0], maps[3])

        stopped, early = model.forward_intermediates(x, indices=[0, 2], stop_early=True)
        torch.testing.assert_close(stopped, maps[2])  # stop_early: the final map is stage 2's
        assert len(early) == 2

        (nhwc,) = model.forward_intermediates(x, indices=[-1], output_fmt="NHWC")[1]
        torch.testing.assert_close(nhwc, maps[4].permute(0, 2, 3, 1))
    with pytest.raises(ValueError, match="output_fmt must be 'NCHW' or 'NHWC'"):
        model.forward_intermediates(x, output_fmt="NDHWC")
    with pytest.raises(ValueError, match="resnet18 has 5 stages"):
        model.forward_intermediates(x, indices=[7])


# -- reset_classifier(num_classes, global_pool) ---------------------------------------------------
@pytest.mark.parametrize("name", ["resnet18", "densenet121", "googlenet"])
def test_global_pool_max_and_unpooled(name):
    model = get(name, small_input=True).eval()
    x = _images()
    with torch.no_grad():
        features = model.forward_features(x)
        model.reset_classifier(0, global_pool="max")
        torch.testing.assert_close(model(x), features.amax(dim=(2, 3)))
        model.reset_classifier(0, global_pool="")
        torch.testing.assert_close(model(x), features)  # the unpooled map
    with pytest.raises(ValueError, match=r"global_pool='' keeps .* num_classes=0 \(got 3\)"):
        model.reset_classifier(3)  # still unpooled: a Linear head cannot read it
    model.reset_classifier(3, global_pool="avg")
    assert model(x).shape == (2, 3)


def test_global_pool_is_a_build_option_and_is_saved(tmp_path):
    model = get("resnet18", num_classes=4, small_input=True, global_pool="max").eval()
    assert model.cnnzoo_config["global_pool"] == "max"
    model.reset_classifier(0, global_pool="")
    loaded = cnnzoo.load(cnnzoo.save(model, tmp_path / "m.safetensors"))
    assert (loaded.global_pool, loaded.num_classes) == ("", 0)
    x = _images()
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x))


def test_vgg_and_alexnet_pool_type_changes_but_never_goes_away():
    model = get("vgg11", small_input=True, num_classes=3)
    model.reset_classifier(3, global_pool="max")
    assert isinstance(model.avgpool, nn.AdaptiveMaxPool2d)
    assert model(_images()).shape == (2, 3)
    with pytest.raises(ValueError, match="hidden classifier layers read a pooled map"):
        model.reset_classifier(0, global_pool="")
    with pytest.raises(ValueError, match="global_pool must be one of 'avg', 'max' for alexnet"):
        get("alexnet", global_pool="")


@pytest.mark.parametrize("name", ["lenet5", "alexnet_original", "mini_resnet"])
def test_fixed_heads_refuse_a_global_pool(name):
    model = get(name)
    with pytest.raises(ValueError, match=rf"{name} has no pooling layer to change"):
        model.reset_classifier(2, global_pool="avg")
    model.reset_classifier(2)  # without global_pool, as ever
    assert model.num_classes == 2


def test_reset_classifier_refuses_bad_num_classes():
    with pytest.raises(ValueError, match="num_classes must be an integer >= 0 for resnet18"):
        get("resnet18").reset_classifier(-1)


# -- gradient checkpointing -----------------------------------------------------------------------
def _loss_and_grads(model: nn.Module, x: torch.Tensor, forward=None) -> tuple:
    torch.manual_seed(3)  # the same dropout masks for both runs
    out = (forward or model)(x)
    outs = out if isinstance(out, tuple) else (out,)
    loss = sum(F.cross_entropy(o, torch.tensor([0, 1])) for o in outs)
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    stats = {n: b.clone() for n, b in model.named_buffers()}
    return loss.detach(), grads, stats


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("resnet18", {}),
        ("vgg11_bn", {}),
        ("googlenet", {}),
        ("densenet", {}),  # a small DenseNet: densenet121's blocks at a fraction of the cost
    ],
)
def test_grad_checkpointing_gives_the_same_gradients_and_statistics(name, options):
    def build() -> nn.Module:
        torch.manual_seed(0)
        if name == "densenet":
            return DenseNet(8, (2, 2, 2), 16, num_classes=2, small_input=True)
        return get(name, num_classes=2, small_input=True, **options)

    x = _images(side=16)
    plain, checkpointed = build().train(), build().train()
    checkpointed.set_grad_checkpointing(True)
    assert checkpointed.grad_checkpointing
    loss, grads, stats = _loss_and_grads(plain, x)
    loss_ckpt, grads_ckpt, stats_ckpt = _loss_and_grads(checkpointed, x)
    torch.testing.assert_close(loss_ckpt, loss)
    torch.testing.assert_close(grads_ckpt, grads)
    # BatchNorm took the batch into its statistics once, not again during the recomputation
    torch.testing.assert_close(stats_ckpt, stats)
    checkpointed.set_grad_checkpointing(False)
    assert not checkpointed.grad_checkpointing


def test_grad_checkpointing_applies_to_googlenet_aux_heads_and_backbones():
    def build() -> nn.Module:
        torch.manual_seed(0)
        return get("googlenet", num_classes=2, small_input=True, aux_logits=True).train()

    x = _images(side=16)
    plain, checkpointed = build(), build()
    checkpointed.set_grad_checkpointing()
    expected = _loss_and_grads(plain, x, plain.forward_with_aux)
    got = _loss_and_grads(checkpointed, x, checkpointed.forward_with_aux)
    torch.testing.assert_close(got, expected)

    torch.manual_seed(0)
    backbone = get("resnet18", features_only=True, small_input=True)
    backbone.set_grad_checkpointing()
    sum(m.sum() for m in backbone(x)).backward()
    assert all(p.grad is not None for p in backbone.parameters())


def test_memory_efficient_densenet_counts_each_batch_once():
    def build(memory_efficient: bool) -> DenseNet:
        torch.manual_seed(0)
        return DenseNet(8, (3, 3), 16, num_classes=2, memory_efficient=memory_efficient).train()

    x = _images(side=16)
    expected, got = _loss_and_grads(build(False), x), _loss_and_grads(build(True), x)
    torch.testing.assert_close(got, expected)


# -- drop_rate ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "default", "count"),
    [
        ("alexnet", 0.5, 2),
        ("alexnet_original", 0.5, 2),
        ("vgg16", 0.5, 2),
        ("googlenet", 0.4, 1),
        ("cifar_cnn", 0.5, 2),
    ],
)
def test_drop_rate_reaches_the_classifier_dropout(name, default, count):
    def rates(model: nn.Module) -> list[float]:
        return [m.p for m in model.modules() if isinstance(m, nn.Dropout)]

    with torch.device("meta"):
        assert rates(get(name)) == [default] * count
        assert rates(get(name, drop_rate=0.2)) == [0.2] * count
        assert get(name, drop_rate=0.2).cnnzoo_config["drop_rate"] == 0.2
        if name != "googlenet":  # the older name keeps working, for code and saved configs
            assert rates(get(name, dropout=0.3)) == [0.3] * count
            with pytest.raises(ValueError, match="dropout is the older name of drop_rate"):
                get(name, drop_rate=0.2, dropout=0.3)
        with pytest.raises(ValueError, match=rf"drop_rate must be in \[0, 1\) for {name}"):
            get(name, drop_rate=1.0)
