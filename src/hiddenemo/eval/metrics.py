"""Binary classification metrics, written once for weighted samples so that the plain figures and
every bootstrap replicate come from the same code.

A bootstrap replicate is a vector of counts (how often each video was drawn), so resampling is a
weight matrix `w` (B, n) and all B replicates are computed at once with numpy. The plain metrics
are the case B = 1, w = 1. A video is predicted positive when `p_positive >= threshold`.
"""
from __future__ import annotations

import numpy as np

METRICS = ("accuracy", "balanced_accuracy", "macro_f1", "auroc")


def binary_metrics(y_true, p_positive, threshold: float = 0.5) -> dict:
    """Accuracy, balanced accuracy, macro-F1, AUROC (NaN when only one class is present), the
    confusion matrix `[[tn, fp], [fn, tp]]` (rows = truth, columns = prediction), n, and the
    positive fractions of truth and prediction.

    Args:
        y_true: (n,) 0/1 labels (1 = positive class).
        p_positive: (n,) probability of the positive class.
        threshold: Predict positive when `p_positive >= threshold`.
    """
    y, p = _check(y_true, p_positive)
    values = weighted_metrics(y, p, np.ones((1, len(y))), threshold)
    tn, fp, fn, tp = (int(values[k][0]) for k in ("tn", "fp", "fn", "tp"))
    out = {k: float(values[k][0]) for k in METRICS}
    out.update(confusion=[[tn, fp], [fn, tp]], n=len(y), threshold=float(threshold),
               positive_fraction_true=float(y.mean()) if len(y) else float("nan"),
               positive_fraction_pred=float((p >= threshold).mean()) if len(y) else float("nan"))
    return out


def weighted_metrics(y: np.ndarray, p: np.ndarray, w: np.ndarray, threshold: float = 0.5) -> dict:
    """All METRICS and the confusion counts for B weightings at once: `w` (B, n) -> arrays (B,)."""
    w = np.atleast_2d(np.asarray(w, dtype=np.float64))                  # (B, n)
    pred = p >= threshold
    pos, neg = y == 1, y == 0
    tp, fn = w[:, pos & pred].sum(1), w[:, pos & ~pred].sum(1)
    fp, tn = w[:, neg & pred].sum(1), w[:, neg & ~pred].sum(1)
    total = tp + fn + fp + tn
    with np.errstate(invalid="ignore", divide="ignore"):
        accuracy = (tp + tn) / total
        # Recall of each class present in the resample; a class absent from it drops out (sklearn's rule).
        recalls = np.stack([tp / (tp + fn), tn / (tn + fp)])
        balanced = _nanmean0(recalls)
        # F1 of each class that occurs in truth or prediction (sklearn's label set for macro-F1).
        f1s = np.stack([2 * tp / (2 * tp + fp + fn), 2 * tn / (2 * tn + fn + fp)])
        macro_f1 = _nanmean0(f1s)
    return {"accuracy": accuracy, "balanced_accuracy": balanced, "macro_f1": macro_f1,
            "auroc": weighted_auroc(y, p, w), "tp": tp, "fn": fn, "fp": fp, "tn": tn}


def weighted_auroc(y: np.ndarray, p: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Mann-Whitney AUROC (ties count one half) for each row of weights (B, n); NaN where a
    weighting leaves one class empty."""
    w = np.atleast_2d(np.asarray(w, dtype=np.float64))
    scores, inverse = np.unique(p, return_inverse=True)                # U distinct scores, ascending
    onehot = np.zeros((len(p), len(scores)))
    onehot[np.arange(len(p)), inverse] = 1.0
    pos_at = (w * (y == 1)) @ onehot                                    # (B, U) positive weight per score
    neg_at = (w * (y == 0)) @ onehot                                    # (B, U) negative weight per score
    neg_below = np.cumsum(neg_at, axis=1) - neg_at
    wins = (pos_at * (neg_below + 0.5 * neg_at)).sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = wins / (pos_at.sum(1) * neg_at.sum(1))
    return np.where(np.isfinite(auc), auc, np.nan)


def _nanmean0(x: np.ndarray) -> np.ndarray:
    ok = np.isfinite(x)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(ok, x, 0).sum(0) / ok.sum(0)


def _check(y_true, p_positive) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true).astype(np.int64).ravel()
    p = np.asarray(p_positive, dtype=np.float64).ravel()
    if y.shape != p.shape:
        raise ValueError(f"labels ({y.shape[0]}) and probabilities ({p.shape[0]}) differ in length")
    if not np.isin(y, (0, 1)).all():
        raise ValueError(f"binary labels must be 0 or 1, got {sorted(set(y.tolist()) - {0, 1})[:5]}")
    if not np.isfinite(p).all():
        raise ValueError("probabilities contain NaN or inf")
    return y, p
