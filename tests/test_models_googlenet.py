"""GoogLeNet as the paper builds it (real 5x5 branches), its auxiliary classifiers, small input."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from _reference import assert_min_input_size_is_the_true_minimum, small_input_training_step
from torch import nn

from cnnzoo.models import get
from cnnzoo.models.googlenet import GoogLeNet


def test_follows_the_paper_with_real_5x5_convolutions():
    model = get("googlenet")
    names = ("3a", "3b", "4a", "4b", "4c", "4d", "4e", "5a", "5b")
    modules = [getattr(model, f"inception{n}") for n in names]
    # output widths of the paper's table 1
    assert [m.out_channels for m in modules] == [256, 480, 512, 512, 512, 528, 832, 832, 1024]
    for module in modules:
        kernels = [m.kernel_size for m in module.branch3.modules() if isinstance(m, nn.Conv2d)]
        assert kernels == [(1, 1), (5, 5)]
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(convs) == len(norms)  # batch norm after every conv
    assert model.aux1 is None and model.aux2 is None


def test_aux_logits_keep_forward_plain_and_offer_forward_with_aux():
    torch.manual_seed(0)
    model = get("googlenet", num_classes=5, aux_logits=True)
    x = torch.randn(2, 3, 64, 64)  # small enough to be quick, large enough for every pool
    logits = model(x)
    assert isinstance(logits, torch.Tensor)
    assert logits.shape == (2, 5)
    main, aux1, aux2 = model.forward_with_aux(x)
    assert main.shape == aux1.shape == aux2.shape == (2, 5)
    target = torch.tensor([0, 4])
    loss = F.cross_entropy(main, target) + 0.3 * (
        F.cross_entropy(aux1, target) + F.cross_entropy(aux2, target)
    )
    loss.backward()
    assert model.aux1.fc2.weight.grad is not None
    assert model.aux2.conv.conv.weight.grad is not None

    model.reset_classifier(3)
    model.eval()
    with torch.no_grad():
        assert all(out.shape == (2, 3) for out in model.forward_with_aux(x))


def test_without_aux_heads_refuses_forward_with_aux():
    model = get("googlenet", small_input=True)
    with pytest.raises(ValueError, match="aux_logits=True"):
        model.forward_with_aux(torch.randn(1, 3, 32, 32))
    assert isinstance(model, GoogLeNet)


# Two stride-1 stem convs and no stem pools: 32 -> 8 after the two remaining max pools.
@pytest.mark.parametrize(("shape", "side"), [((1, 28, 28), 7), ((3, 32, 32), 8)])
def test_small_input_trains_on_28_and_32_pixel_images(shape, side):
    model, feature_side = small_input_training_step("googlenet", shape)
    assert feature_side == (side, side)
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


@pytest.mark.parametrize(("small_input", "minimum"), [(True, (4, 4)), (False, (31, 31))])
def test_min_input_size_is_the_true_minimum(small_input, minimum):
    model = get("googlenet", small_input=small_input)
    assert model.min_input_size == minimum
    assert_min_input_size_is_the_true_minimum(model)
