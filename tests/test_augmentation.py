"""cnnzoo.augmentation and fit's augment, mixup, cutmix and drop_path_rate options."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F
from _synthetic import stripes, tiny_net
from torch import nn

import cnnzoo
from cnnzoo.augmentation import (
    POLICIES,
    BatchMix,
    drop_path_sites,
    make_augment,
    stochastic_depth,
)
from cnnzoo.cli import build_parser
from cnnzoo.training import CrossEntropy

MEAN, STD = (0.3,), (0.2,)


def _normalised(n: int = 16, channels: int = 1, size: int = 28, seed: int = 0) -> torch.Tensor:
    pixels = torch.rand(n, channels, size, size, generator=torch.Generator().manual_seed(seed))
    return (pixels - MEAN[0]) / STD[0]


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# -- policies ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(POLICIES))
@pytest.mark.parametrize("channels", [1, 3])
def test_a_policy_keeps_shape_and_dtype_and_repeats_under_a_seed(name, channels):
    batch = _normalised(channels=channels, size=32 if channels == 3 else 28)
    augment = make_augment(name, (MEAN * channels, STD * channels))
    assert augment is not None
    state = torch.get_rng_state()
    first = augment(batch, _generator(1))
    assert torch.equal(torch.get_rng_state(), state)  # torch's global generator is left alone
    again = make_augment(name, (MEAN * channels, STD * channels))(batch, _generator(1))
    other = augment(batch, _generator(2))
    assert first.shape == batch.shape and first.dtype == batch.dtype
    assert torch.equal(first, again)
    assert not torch.equal(first, other)


@pytest.mark.parametrize("name", ["trivialaugment", "randaugment"])
def test_photometric_policies_work_on_pixels_and_return_normalised_batches(name):
    # Undone and redone with the run's mean and std: back in pixels, every value is in [0, 1]
    # (the operations clamp to the pixel range), which a batch left normalised would not be.
    batch = _normalised(n=32)
    out = make_augment(name, (MEAN, STD))(batch, _generator(0))
    pixels = out * STD[0] + MEAN[0]
    assert pixels.min() >= -1e-5 and pixels.max() <= 1 + 1e-5
    assert out.min() < 0  # still normalised: pixels below the mean are negative


def test_each_image_draws_its_own_operation():
    same = _normalised(n=1).expand(32, -1, -1, -1).contiguous()
    out = make_augment("trivialaugment", (MEAN, STD))(same, _generator(0))
    distinct = {tuple(image.flatten()[:200].tolist()) for image in out}
    assert len(distinct) > 8  # one operation for the whole batch would give 1


def test_erasing_erases_to_the_mean_colour_on_some_images_only():
    batch = _normalised(n=64) + 5.0  # no value is 0 before erasing
    out = make_augment("erasing")(batch, _generator(0))
    erased = (out == 0).flatten(1).any(1)
    assert 0 < int(erased.sum()) < 64  # p = 0.5 per image
    assert torch.equal(out[~erased], batch[~erased])


def test_names_chain_with_crop_and_flip_and_unknown_names_are_refused():
    augment = make_augment("crop+flip+erasing")
    assert augment(_normalised(), _generator(0)).shape == (16, 1, 28, 28)
    with pytest.raises(ValueError, match=r"unknown augmentation 'autoaugment'.*trivialaugment"):
        make_augment(["crop", "autoaugment"])
    with pytest.raises(ValueError, match="augment must be None, a name"):
        make_augment(3)


# -- mixup and cutmix -------------------------------------------------------------------------
def test_mixup_blends_images_and_targets_by_one_weight():
    images, labels = _normalised(n=8), torch.tensor([0, 1, 2, 3, 4, 5, 6, 7])
    mixed, targets = BatchMix(0.4, 0.0, num_classes=10, seed=0).for_epoch(0)(images, labels)
    assert mixed.shape == images.shape and targets.shape == (8, 10)
    torch.testing.assert_close(targets.sum(1), torch.ones(8))
    lam = float(targets[0, 0])  # sample 0 is mixed with its neighbour, sample 7 (rolled by 1)
    torch.testing.assert_close(targets[0, 7], torch.tensor(1 - lam))
    torch.testing.assert_close(mixed[0], lam * images[0] + (1 - lam) * images[7])


def test_cutmix_pastes_a_box_and_weights_targets_by_its_area():
    images, labels = torch.zeros(4, 1, 28, 28), torch.tensor([0, 1, 2, 3])
    images[1:] = 1.0  # sample 0 receives a box from sample 3: ones in zeros
    mixed, targets = BatchMix(0.0, 1.0, num_classes=4, seed=3).for_epoch(0)(images, labels)
    pasted = float(mixed[0].mean())
    torch.testing.assert_close(targets[0], torch.tensor([1 - pasted, 0.0, 0.0, pasted]))


def test_mixing_repeats_by_seed_and_epoch():
    images, labels = _normalised(n=8), torch.arange(8) % 3
    mix = BatchMix(0.2, 1.0, num_classes=3, seed=5)
    runs = [[mix.for_epoch(epoch)(images, labels) for _ in range(4)] for epoch in (0, 0, 1)]
    same = all(torch.equal(a[0], b[0]) for a, b in zip(runs[0], runs[1], strict=True))
    assert same
    assert not all(torch.equal(a[1], b[1]) for a, b in zip(runs[0], runs[2], strict=True))


def test_soft_target_loss_is_the_mixture_of_the_two_hard_losses():
    logits = torch.randn(6, 5, generator=_generator(0))
    a, b, lam = torch.tensor([0, 1, 2, 3, 4, 0]), torch.tensor([1, 2, 3, 4, 0, 0]), 0.3
    soft = lam * F.one_hot(a, 5).float() + (1 - lam) * F.one_hot(b, 5).float()
    expected = lam * F.cross_entropy(logits, a) + (1 - lam) * F.cross_entropy(logits, b)
    torch.testing.assert_close(CrossEntropy()(logits, soft), expected)


def test_bad_mixing_strengths_are_refused_before_training():
    images, labels = stripes(24)
    for option in ({"mixup": -0.1}, {"cutmix": float("inf")}, {"mixup": True}):
        with pytest.raises(ValueError, match="must be a number >= 0"):
            cnnzoo.fit(tiny_net(), (images, labels), epochs=1, verbose=0, **option)


class _ChannelReader(nn.Module):
    """Predicts the brightest channel: the class of an image that lights channel ``label``."""

    num_classes = 3

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(10.0))  # lr=0: it stays 10

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * x.mean((2, 3))


def test_fit_reports_accuracy_on_the_hard_labels_under_mixup():
    # The model reads a mixed image's top class exactly as the mixed target's top class: scored
    # against the soft targets it would be always right (1.0); scored against the images' own
    # labels it is wrong wherever a batch's weight gave the neighbour the larger share.
    labels = torch.tensor([0, 1, 2, 1] * 16)
    images = F.one_hot(labels, 3).float().view(64, 3, 1, 1).expand(64, 3, 4, 4).contiguous()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the collapse watch sees a run that cannot learn
        history = cnnzoo.fit(
            _ChannelReader(),
            (images, labels),
            val_data=(images, labels),
            epochs=2,
            batch_size=16,
            lr=0.0,
            mixup=1.0,
            verbose=0,
        )
    assert all(0.0 < accuracy < 1.0 for accuracy in history.history["accuracy"])
    assert history.history["val_accuracy"] == [1.0, 1.0]  # validation is never mixed


# -- stochastic depth -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "blocks"), [("resnet18", 8), ("resnet50", 16), ("densenet121", 58), ("mini_resnet", 2)]
)
def test_drop_path_finds_every_residual_branch(name, blocks):
    assert len(drop_path_sites(cnnzoo.get_model(name, num_classes=10))) == blocks


def test_drop_path_rates_grow_linearly_and_change_nothing_saved():
    model = cnnzoo.get_model("resnet18", num_classes=10)
    keys, count = list(model.state_dict()), sum(p.numel() for p in model.parameters())
    with stochastic_depth(model, 0.2) as rates:
        assert rates == pytest.approx([0.025 * i for i in range(1, 9)])
        assert list(model.state_dict()) == keys
        assert sum(p.numel() for p in model.parameters()) == count
    assert all(not site._forward_hooks for site in drop_path_sites(model))  # removed on exit


def test_drop_path_is_the_identity_in_eval_mode_and_at_rate_zero():
    torch.manual_seed(0)
    # zero_init_residual=False: branches that start at zero would look the same dropped.
    model = cnnzoo.get_model(
        "resnet18", num_classes=10, small_input=True, zero_init_residual=False
    ).eval()
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        plain = model(x)
        with stochastic_depth(model, 0.5):
            assert torch.equal(model(x), plain)  # eval mode
        model.train()
        torch.manual_seed(1)
        train_plain = model(x)
        with stochastic_depth(model, 0.0) as rates:
            torch.manual_seed(1)
            assert rates == [] and torch.equal(model(x), train_plain)
        with stochastic_depth(model, 0.9):
            torch.manual_seed(1)
            assert not torch.equal(model(x), train_plain)


def test_a_dropped_branch_leaves_the_shortcut_alone():
    from cnnzoo.blocks import BasicBlock

    block = BasicBlock(4, 4).train()
    nn.init.constant_(block.bn2.weight, 1.0)
    x = torch.rand(64, 4, 6, 6) + 1.0
    torch.manual_seed(0)
    with stochastic_depth(block, 0.5):  # one block: it gets the full rate
        out = block(x)
    dropped = torch.isclose(out, torch.relu(x)).flatten(1).all(1)
    assert 0 < int(dropped.sum()) < 64


def test_drop_path_on_a_model_without_shortcuts_is_refused_before_training():
    model = cnnzoo.get_model("googlenet", num_classes=3, small_input=True)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    images, labels = stripes(24)
    with pytest.raises(ValueError, match="googlenet has none"):
        cnnzoo.fit(model, (images, labels), epochs=1, verbose=0, drop_path_rate=0.1)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    with pytest.raises(ValueError, match=r"drop_path_rate must be a number in \[0, 1\)"):
        cnnzoo.fit(tiny_net(), (images, labels), epochs=1, verbose=0, drop_path_rate=1.0)


# -- fit and the CLI --------------------------------------------------------------------------
def _seeded_run() -> dict[str, torch.Tensor]:
    images = torch.rand(48, 1, 28, 28, generator=_generator(0))
    labels = torch.arange(48) % 10
    torch.manual_seed(0)
    model = cnnzoo.get_model("mini_resnet")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # 48 random images: nothing to learn
        cnnzoo.fit(
            model,
            (images, labels),
            epochs=1,
            batch_size=16,
            augment=["crop", "flip", "trivialaugment", "erasing"],
            mixup=0.2,
            cutmix=1.0,
            drop_path_rate=0.2,
            verbose=0,
        )
    return model.state_dict()


def test_fit_with_every_option_repeats_under_a_seed():
    first, second = _seeded_run(), _seeded_run()
    assert all(torch.equal(first[k], second[k]) for k in first)


def test_cli_flags_parse():
    args = build_parser().parse_args(
        [
            "train",
            "mini_resnet",
            "--data",
            "fashion-mnist",
            "--out",
            "run",
            "--augment",
            "crop",
            "trivialaugment",
            "erasing",
            "--mixup",
            "0.2",
            "--cutmix",
            "1",
            "--drop-path-rate",
            "0.1",
        ]
    )
    assert args.augment == ["crop", "trivialaugment", "erasing"]
    assert (args.mixup, args.cutmix, args.drop_path_rate) == (0.2, 1.0, 0.1)
    with pytest.raises(SystemExit):
        build_parser().parse_args(
            ["train", "lenet5", "--data", "x", "--out", "o", "--augment", "autoaugment"]
        )
