"""evaluate's richer metrics: top-k accuracy, per-class precision, recall and F1, macro averages.

The "model" is ``nn.Flatten`` on images that are the logits themselves, so every number can be
worked out by hand.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import cnnzoo
from cnnzoo.training.evaluation import class_scores

# Five classes; class 4 is neither a label nor a prediction.
LOGITS = torch.tensor(
    [
        [3.0, 2.0, 1.0, 0.0, -9.0],  # label 1: top-1 0, top-2 {0, 1}
        [0.0, 3.0, 2.0, 1.0, -9.0],  # label 1: right
        [1.0, 0.0, 3.0, 2.0, -9.0],  # label 0: top-1 2, found at rank 3
        [3.0, 0.0, 1.0, 2.0, -9.0],  # label 3: top-1 0, top-2 {0, 3}
    ]
)
LABELS = torch.tensor([1, 1, 0, 3])


def evaluate(**kwargs):
    return cnnzoo.evaluate(nn.Flatten(), (LOGITS[:, :, None, None], LABELS), **kwargs)


def test_top_k_accuracy_for_the_ks_asked():
    metrics = evaluate(top_k=(3, 1, 2))
    assert metrics["top1_accuracy"] == metrics["accuracy"] == 0.25
    assert metrics["top2_accuracy"] == 0.75
    assert metrics["top3_accuracy"] == 1.0
    assert evaluate(top_k=2)["top2_accuracy"] == 0.75


def test_top5_by_default_only_with_more_than_five_classes():
    assert not any(key.startswith("top") for key in evaluate())  # 5 classes: top-5 is 1
    wide = torch.cat([LOGITS, torch.full((4, 2), -9.0)], dim=1)
    metrics = cnnzoo.evaluate(nn.Flatten(), (wide[:, :, None, None], LABELS))
    assert metrics["top5_accuracy"] == 1.0


@pytest.mark.parametrize("bad", [6, 0, (1, 7), True, 2.0])
def test_a_k_the_model_cannot_have_is_refused(bad):
    with pytest.raises(ValueError, match="top_k"):
        evaluate(top_k=bad)


def test_precision_recall_f1_per_class_and_macro():
    metrics = evaluate()
    # Predictions 0, 1, 2, 0 for labels 1, 1, 0, 3.
    nan = math.nan
    torch.testing.assert_close(
        metrics["precision"],
        torch.tensor([0.0, 1.0, 0.0, 0.0, nan], dtype=torch.float64),
        equal_nan=True,
    )
    torch.testing.assert_close(
        metrics["recall"],
        torch.tensor([0.0, 0.5, 0.0, 0.0, nan], dtype=torch.float64),
        equal_nan=True,
    )
    torch.testing.assert_close(
        metrics["f1"],
        torch.tensor([0.0, 2 / 3, 0.0, 0.0, nan], dtype=torch.float64),
        equal_nan=True,
    )
    # Macro averages over the four classes that occur (class 4 is left out).
    assert metrics["macro_precision"] == pytest.approx(0.25)
    assert metrics["macro_recall"] == pytest.approx(0.125)
    assert metrics["macro_f1"] == pytest.approx((2 / 3) / 4)


def test_the_existing_keys_are_kept():
    metrics = evaluate()
    assert metrics["accuracy"] == 0.25
    assert metrics["confusion_matrix"].tolist()[:2] == [[0, 0, 1, 0, 0], [1, 1, 0, 0, 0]]
    per_class = metrics["per_class_accuracy"]
    assert per_class[1] == 0.5 and math.isnan(per_class[2])  # class 2 is never a label
    assert metrics["loss"] == pytest.approx(
        float(nn.functional.cross_entropy(LOGITS, LABELS)), rel=1e-6
    )


def test_class_scores_of_a_perfect_classifier():
    scores = class_scores(torch.diag(torch.tensor([3, 1, 2])))
    for name in ("precision", "recall", "f1"):
        assert scores[name].tolist() == [1.0, 1.0, 1.0]
        assert scores[f"macro_{name}"] == 1.0
