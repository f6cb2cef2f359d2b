"""Classification metrics, written once for weighted samples so that the plain figures and every
bootstrap replicate come from the same code.

A bootstrap replicate is a vector of counts (how often each video was drawn), so resampling is a
weight matrix `w` (B, n) and all B replicates are computed at once with numpy. The plain metrics
are the case B = 1, w = 1. Two classes: a video is predicted positive when `p_positive >= threshold`.
More classes (`multiclass_metrics`): the prediction is the arg-max of the class probabilities (n, C),
AUROC is the mean of the one-vs-rest AUROCs, and the same four METRICS come with per-class recall
and the C x C confusion matrix.
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


def multiclass_metrics(y_true, probs) -> dict:
    """Accuracy, balanced accuracy (mean per-class recall), macro-F1, AUROC (mean one-vs-rest over the
    classes present with both sides), per-class recall and one-vs-rest AUROC, the confusion matrix
    (rows = truth, columns = arg-max prediction), n, and the class fractions of truth and prediction.

    Args:
        y_true: (n,) class indices 0..C-1.
        probs: (n, C) class probabilities (rows need not sum to one: only their arg-max and ranks count).
    """
    y, P = check_multiclass(y_true, probs)
    values = weighted_multiclass(y, P, np.ones((1, len(y))))
    out = {k: float(values[k][0]) for k in METRICS}
    confusion = values["confusion"][0]
    out.update(confusion=confusion.astype(int).tolist(), n=len(y), decision="arg-max",
               per_class_recall=values["recall"][0].tolist(), per_class_auroc=values["per_class_auroc"][:, 0].tolist(),
               class_fraction_true=(confusion.sum(1) / max(len(y), 1)).tolist(),
               class_fraction_pred=(confusion.sum(0) / max(len(y), 1)).tolist())
    return out


def weighted_multiclass(y: np.ndarray, P: np.ndarray, w: np.ndarray) -> dict:
    """`multiclass_metrics` for B weightings at once: `w` (B, n) -> METRICS (B,), recall (B, C),
    per_class_auroc (C, B), confusion (B, C, C)."""
    w = np.atleast_2d(np.asarray(w, dtype=np.float64))                  # (B, n)
    n, C = P.shape
    cells = np.zeros((n, C * C))
    cells[np.arange(n), y * C + P.argmax(1)] = 1.0
    confusion = (w @ cells).reshape(len(w), C, C)                       # (B, truth, prediction)
    hits = confusion.diagonal(axis1=1, axis2=2)                         # (B, C)
    truth, predicted = confusion.sum(2), confusion.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        accuracy = hits.sum(1) / truth.sum(1)
        recall = hits / truth                                           # a class absent from the resample: NaN
        f1 = 2 * hits / (truth + predicted)                             # NaN for a class in neither truth nor prediction
    aurocs = np.stack([weighted_auroc((y == c).astype(np.int64), P[:, c], w) for c in range(C)])  # (C, B)
    return {"accuracy": accuracy, "balanced_accuracy": _nanmean0(recall.T), "macro_f1": _nanmean0(f1.T),
            "auroc": _nanmean0(aurocs), "recall": recall, "per_class_auroc": aurocs, "confusion": confusion}


def check_multiclass(y_true, probs) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true).astype(np.int64).ravel()
    P = np.asarray(probs, dtype=np.float64)
    if P.ndim != 2 or P.shape[0] != y.shape[0]:
        raise ValueError(f"labels ({y.shape[0]}) and class probabilities {P.shape} do not match: want (n, C)")
    if len(y) and (y.min() < 0 or y.max() >= P.shape[1]):
        raise ValueError(f"class indices must lie in 0..{P.shape[1] - 1}, got {sorted(set(y.tolist()))[:5]}")
    if not np.isfinite(P).all():
        raise ValueError("probabilities contain NaN or inf")
    return y, P


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
