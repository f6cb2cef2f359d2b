"""binary_metrics and its weighted (bootstrap) form agree with scikit-learn."""
from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, balanced_accuracy_score, confusion_matrix, f1_score, roc_auc_score

from hiddenemo.eval.metrics import binary_metrics, weighted_metrics


@pytest.mark.parametrize("seed", range(5))
def test_matches_sklearn(seed):
    rng = np.random.default_rng(seed)
    n = 40 + seed * 13
    y = rng.integers(0, 2, n)
    p = np.round(np.clip(0.5 + 0.25 * (y - 0.5) + rng.normal(0, 0.25, n), 0, 1), 2)  # rounding makes ties
    m = binary_metrics(y, p, threshold=0.5)
    pred = (p >= 0.5).astype(int)
    assert m["accuracy"] == pytest.approx(accuracy_score(y, pred))
    assert m["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y, pred))
    assert m["macro_f1"] == pytest.approx(f1_score(y, pred, average="macro"))
    assert m["auroc"] == pytest.approx(roc_auc_score(y, p))
    assert m["confusion"] == confusion_matrix(y, pred, labels=[0, 1]).tolist()
    assert m["n"] == n


def test_weights_equal_repeating_rows():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 30)
    p = rng.random(30)
    counts = rng.integers(0, 4, 30)
    weighted = weighted_metrics(y, p, counts[None, :].astype(float), 0.4)
    repeated = binary_metrics(np.repeat(y, counts), np.repeat(p, counts), 0.4)
    for key in ("accuracy", "balanced_accuracy", "macro_f1", "auroc"):
        assert weighted[key][0] == pytest.approx(repeated[key])


def test_one_class_gives_nan_auroc_and_sklearn_rules():
    y = np.ones(10, dtype=int)
    p = np.linspace(0.1, 0.9, 10)
    m = binary_metrics(y, p)
    assert math.isnan(m["auroc"])
    pred = (p >= 0.5).astype(int)
    assert m["accuracy"] == pytest.approx(0.5)
    assert m["macro_f1"] == pytest.approx(f1_score(y, pred, average="macro", zero_division=0))


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="differ in length"):
        binary_metrics([0, 1], [0.5])
    with pytest.raises(ValueError, match="0 or 1"):
        binary_metrics([0, 2], [0.5, 0.5])
