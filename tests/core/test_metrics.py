"""Metrics against numbers computed by hand."""

import pytest
import torch

from core import metrics


def test_accuracy_and_topk():
    assert metrics.accuracy([0, 1, 2, 2], [0, 2, 2, 1]) == pytest.approx(0.5)
    assert metrics.accuracy(torch.tensor([1, 1]), torch.tensor([1, 1])) == 1.0
    assert metrics.accuracy([], []) == 0.0
    logits = torch.tensor([[0.1, 0.9, 0.0], [0.8, 0.15, 0.05], [0.2, 0.3, 0.5]])
    # top-2: sample 0 true 0 -> {1,0} yes; sample 1 true 2 -> {0,1} no; sample 2 true 0 -> {2,1} no
    assert metrics.topk_accuracy(logits, [0, 2, 0], k=2) == pytest.approx(1 / 3)
    assert metrics.topk_accuracy(logits, [0, 2, 0], k=5) is None
    with pytest.raises(ValueError):
        metrics.accuracy([0, 1], [0])


def test_confusion_matrix_rows_are_truth():
    y_true = [0, 0, 0, 1, 1, 2, 2, 2, 2]
    y_pred = [0, 0, 1, 1, 2, 2, 2, 0, 2]
    cm = metrics.confusion_matrix(y_true, y_pred, 3)
    assert cm == [[2, 1, 0], [0, 1, 1], [1, 0, 3]]
    with pytest.raises(ValueError):
        metrics.confusion_matrix([0, 3], [0, 0], 3)


def test_per_class_hand_computed():
    cm = [[2, 1, 0], [0, 1, 1], [1, 0, 3]]
    rows = metrics.per_class(cm, ["a", "b", "c"])
    # class a: tp 2, predicted 3, support 3 -> p 2/3, r 2/3, f1 2/3
    assert rows[0]["name"] == "a" and rows[0]["support"] == 3
    assert rows[0]["precision"] == pytest.approx(2 / 3) and rows[0]["recall"] == pytest.approx(2 / 3)
    assert rows[0]["f1"] == pytest.approx(2 / 3)
    # class b: tp 1, predicted 2, support 2 -> p 0.5 r 0.5
    assert rows[1]["precision"] == pytest.approx(0.5) and rows[1]["recall"] == pytest.approx(0.5)
    # class c: tp 3, predicted 4, support 4 -> p 0.75 r 0.75
    assert rows[2]["f1"] == pytest.approx(0.75) and rows[2]["support"] == 4
    m = metrics.macro(rows)
    assert m["precision"] == pytest.approx((2 / 3 + 0.5 + 0.75) / 3)


def test_per_class_undefined_is_none_not_zero_and_absent_classes_are_left_out():
    # x: 3 right; y: never in the labels, never predicted (the evaluated folder lacks it); z: one image, taken for x;
    # w: no images here, yet predicted once (for x)
    cm = [[3, 0, 0, 1], [0, 0, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0]]
    rows = metrics.per_class(cm, ["x", "y", "z", "w"])
    assert rows[1] == {"name": "y", "precision": None, "recall": None, "f1": None, "support": 0}
    # z occurs: recall 0 of 1; never predicted, so precision is undefined; F1 counts as 0 (scikit-learn)
    assert rows[2] == {"name": "z", "precision": None, "recall": 0.0, "f1": 0.0, "support": 1}
    # w: predicted once, wrongly: precision 0; no images to recall: undefined, not 0.000
    assert rows[3] == {"name": "w", "precision": 0.0, "recall": None, "f1": 0.0, "support": 0}
    p_x, r_x = 3 / 4, 3 / 4
    f1_x = 2 * p_x * r_x / (p_x + r_x)
    assert rows[0]["f1"] == pytest.approx(f1_x)
    m = metrics.macro(rows)  # over x, z and w, an undefined ratio counting 0: scikit-learn's macro averages
    assert m["f1"] == pytest.approx(f1_x / 3)
    assert m["precision"] == pytest.approx(p_x / 3) and m["recall"] == pytest.approx(r_x / 3)
    assert metrics.macro([rows[1]]) == {"precision": 0.0, "recall": 0.0, "f1": 0.0}
    with pytest.raises(ValueError):
        metrics.per_class(cm, ["only-one"])
