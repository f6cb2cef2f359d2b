"""Honest model selection: folds, the number of epochs and the decision threshold (two classes) or
rule (more: the arg-max, optionally at the target set's EM prior), all chosen on the labeled training
videos only.

The labeled training rows come from `Workspace.training_split`, the one place that hands out labels
(every other row comes WITHOUT a label column), so nothing here can see a test label even by mistake. The
paper chose epochs and thresholds from leaderboard feedback (its limitation 4); here they come from
out-of-fold predictions.
"""
from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from hiddenemo.errors import UserError
from hiddenemo.eval.metrics import binary_metrics, multiclass_metrics
from hiddenemo.train.config import SelectionConfig

log = logging.getLogger(__name__)

def make_folds(labeled: pd.DataFrame, config: SelectionConfig, seed: int) -> np.ndarray:
    """Fold number (0..k-1) of each labeled video: stratified by label, grouped by subject when known."""
    y = labeled["label"].to_numpy()
    k = min(config.folds, int(np.bincount(y).min()))
    if k < 2:
        raise UserError(f"{config.folds}-fold cross-validation needs at least 2 videos of each class; "
                        f"counts are {np.bincount(y).tolist()}")
    if k < config.folds:
        log.warning("%d folds instead of selection.folds = %d: the rarer class has only %d labeled videos",
                    k, config.folds, k)
    subjects = labeled["subject_id"]
    folds = np.full(len(labeled), -1)
    if config.group_by_subject and subjects.notna().all() and subjects.nunique() >= k:
        from sklearn.model_selection import StratifiedGroupKFold
        splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
        parts = splitter.split(np.zeros(len(y)), y, groups=subjects.astype(str).to_numpy())
    else:
        from sklearn.model_selection import StratifiedKFold
        parts = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed).split(np.zeros(len(y)), y)
    for fold, (_, val_idx) in enumerate(parts):
        folds[val_idx] = fold
    return folds


def choose_epoch(oof_by_epoch: np.ndarray, y: np.ndarray, loss_by_epoch: np.ndarray, metric: str) -> int:
    """Number of epochs (1-based) whose pooled out-of-fold predictions score best; the earliest on ties.

    oof_by_epoch: (E, n) out-of-fold probabilities after each epoch, or (E, n, C) class probabilities;
    loss_by_epoch: (E,) mean val loss. Two classes: balanced accuracy is taken at the training prior, the
    threshold that maximises it for calibrated probabilities (see
    `hiddenemo.eval.labelshift.balanced_threshold`); more: every metric at the arg-max."""
    if metric == "loss":
        scores = -np.asarray(loss_by_epoch, dtype=np.float64)
    elif np.ndim(oof_by_epoch) == 3:
        scores = np.array([multiclass_metrics(y, p)[metric] for p in oof_by_epoch])
    else:
        scores = np.array([binary_metrics(y, p, threshold=float(np.mean(y)))[metric] for p in oof_by_epoch])
    scores = np.nan_to_num(scores, nan=-np.inf)
    return int(np.flatnonzero(scores >= scores.max() - 1e-12)[0]) + 1


def choose_threshold(p: np.ndarray, y: np.ndarray, config: SelectionConfig, seed: int = 0) -> dict:
    """The decision threshold and how it was chosen, from out-of-fold probabilities `p` and labels `y`;
    `seed` draws the bootstrap resamples (`config.threshold_bootstrap`)."""
    method = config.threshold
    if method == "fixed":
        return {"method": "fixed", "threshold": float(config.fixed_threshold)}
    if method == "quantile":
        prior = _check_prior(config.quantile_prior)
        return {"method": "quantile", "prior": prior, "threshold": quantile_threshold(p, prior),
                "note": "the paper's quantile trick: assumes the target set's positive fraction is "
                        f"{prior}; at prediction time the threshold is recomputed on the target videos"}
    metric = {"cv-accuracy": "accuracy", "balanced": "balanced_accuracy"}[method]
    p, y = np.asarray(p, dtype=np.float64), np.asarray(y).astype(int)
    best_cut = _best_cut(p, y, metric)
    cuts = []
    if config.threshold_bootstrap > 0:
        rng = np.random.default_rng(seed)
        for _ in range(config.threshold_bootstrap):
            i = rng.integers(0, len(p), len(p))
            if 0 < y[i].sum() < len(i):                           # both classes drawn
                cuts.append(_best_cut(p[i], y[i], metric))
    threshold = float(np.median(cuts)) if cuts else best_cut
    return {"method": method, "metric": metric, "threshold": threshold,
            "oof_score": float(score_curve(p, y, np.array([threshold]), metric)[0]),
            "best_cut": best_cut, "bootstrap": len(cuts)}


def choose_decision(config: SelectionConfig, train_prior: np.ndarray) -> dict:
    """How a task of more than two classes decides: the arg-max, at the training prior or at the
    target set's EM prior (`selection.class_prior`); kept where a binary model keeps its threshold."""
    decision = {"method": "argmax", "class_prior": config.class_prior,
                "train_prior": [float(x) for x in train_prior]}
    if config.class_prior == "em":
        decision["note"] = ("transductive: at prediction time the class probabilities are re-weighted to the target "
                            "videos' class prior, estimated by EM from their own predictions (no labels)")
    return decision


def _best_cut(p: np.ndarray, y: np.ndarray, metric: str) -> float:
    """The cut that scores best on (p, y); the middle of the best plateau, the least sensitive to
    small shifts in the probabilities."""
    candidates = _midpoints(p)
    scores = score_curve(p, y, candidates, metric)
    best = np.flatnonzero(scores >= scores.max() - 1e-12)
    return float(candidates[best[len(best) // 2]])


def score_curve(p: np.ndarray, y: np.ndarray, thresholds: np.ndarray, metric: str) -> np.ndarray:
    """Accuracy or balanced accuracy of `p >= t` for every t at once (as `binary_metrics` per t)."""
    positives, negatives = np.sort(p[y == 1]), np.sort(p[y == 0])
    tp = len(positives) - np.searchsorted(positives, thresholds, side="left")     # p >= t among positives
    tn = np.searchsorted(negatives, thresholds, side="left")                      # p < t among negatives
    if metric == "accuracy":
        return (tp + tn) / len(p)
    recall = tp / max(len(positives), 1)
    specificity = tn / max(len(negatives), 1)
    return (recall + specificity) / 2


def quantile_threshold(p: np.ndarray, prior: float) -> float:
    """Threshold that predicts a fraction `prior` of these probabilities positive."""
    return float(np.quantile(np.asarray(p, dtype=np.float64), 1.0 - _check_prior(prior)))


def _check_prior(prior: float | None) -> float:
    if prior is None or not 0.0 < prior < 1.0:
        raise UserError("selection.threshold = quantile needs selection.quantile_prior in (0, 1): the "
                        "positive fraction you assume for the target videos")
    return float(prior)


def _midpoints(p: np.ndarray) -> np.ndarray:
    values = np.unique(np.asarray(p, dtype=np.float64))
    inner = (values[1:] + values[:-1]) / 2
    return np.concatenate([[values[0] - 1e-6], inner, [values[-1] + 1e-6]])
