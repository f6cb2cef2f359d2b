"""Label shift between the labeled training videos and the target set.

A classifier's posteriors, and the threshold tuned on training folds, carry the training prior
(iMiGUE/MiGA: 79 % positive in train, fewer in test). Three remedies, each right in its own case:

- class-balanced training (`class_weights`): the model learns as if the classes were equally
  frequent; right when no target prior is known and balanced accuracy is what counts;
- a threshold for balanced accuracy (`balanced_threshold`): with calibrated posteriors, predicting
  positive when p >= training prior maximises expected balanced accuracy; needs no retraining;
- EM prior estimation on the unlabeled target set (`em_prior`, Saerens, Latinne & Decaestecker,
  Neural Computation 14(1), 2002): estimates the target prior from the model's posteriors alone and
  re-weights them to it. It uses the target videos without their labels, so it is TRANSDUCTIVE —
  every output that uses it says so. It assumes the class-conditionals did not change and that the
  posteriors are calibrated (`platt_calibrate` on out-of-fold predictions helps).
"""
from __future__ import annotations

import numpy as np

TRANSDUCTIVE_NOTE = ("transductive: the prior was estimated by EM from the unlabeled target videos' "
                     "predicted probabilities (no target labels used)")


def class_weights(labels, n_classes: int = 2) -> dict[int, float]:
    """Weights n / (C n_c) per class, so each of the C classes carries an equal share of the loss
    (sklearn's "balanced"); the training engineer's `--class-balanced` consumes this."""
    y = np.asarray(labels).astype(np.int64)
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    if (counts == 0).any():
        raise ValueError(f"class-balanced weights need every class; counts are {counts.tolist()}")
    return {c: float(len(y) / (n_classes * counts[c])) for c in range(n_classes)}


def balanced_threshold(train_prior: float) -> float:
    """The threshold that maximises balanced accuracy for calibrated posteriors trained at
    `train_prior`: p / (1 - p) >= prior / (1 - prior), i.e. p >= prior."""
    return float(train_prior)


def adjust_posteriors(p, train_prior: float, target_prior: float) -> np.ndarray:
    """Bayes' rule re-weighting of P(positive | x) from the training prior to a target prior."""
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-12, 1 - 1e-12)
    pos = p * (target_prior / train_prior)
    neg = (1 - p) * ((1 - target_prior) / (1 - train_prior))
    return pos / (pos + neg)


def em_prior(p_target, train_prior: float, max_iter: int = 1000, tol: float = 1e-8) -> tuple[float, np.ndarray]:
    """Estimate the positive-class prior of an unlabeled target set and re-weight its posteriors.

    Alternates E (posteriors adjusted to the current prior) and M (prior = mean adjusted posterior)
    from the training prior until the prior moves less than `tol` (Saerens et al. 2002).

    Args:
        p_target: (n,) calibrated P(positive | x) of the target videos under the training prior.
        train_prior: Positive fraction of the training set the model was fitted on.
        max_iter: Iteration cap.
        tol: Convergence tolerance on the prior.

    Returns:
        (estimated target prior, (n,) adjusted posteriors).
    """
    p = np.asarray(p_target, dtype=np.float64)
    if p.size == 0:
        raise ValueError("EM prior estimation needs at least one target video")
    if not 0 < train_prior < 1:
        raise ValueError(f"the training prior must lie strictly between 0 and 1, got {train_prior}")
    prior = float(train_prior)
    for _ in range(max_iter):
        adjusted = adjust_posteriors(p, train_prior, prior)
        new_prior = float(adjusted.mean())
        if abs(new_prior - prior) < tol:
            prior = new_prior
            break
        prior = new_prior
    return prior, adjust_posteriors(p, train_prior, prior)


def adjust_class_posteriors(P, train_prior, target_prior) -> np.ndarray:
    """Bayes' rule re-weighting of class posteriors (n, C) from the training prior (C,) to a target prior (C,)."""
    P = np.clip(np.asarray(P, dtype=np.float64), 1e-12, None)
    scaled = P * (np.asarray(target_prior, dtype=np.float64) / np.asarray(train_prior, dtype=np.float64))
    return scaled / scaled.sum(1, keepdims=True)


def em_class_prior(P_target, train_prior, max_iter: int = 1000, tol: float = 1e-8) -> tuple[np.ndarray, np.ndarray]:
    """`em_prior` for C classes: (the target set's estimated class prior (C,), adjusted posteriors (n, C))
    from calibrated posteriors (n, C) under the training prior (C,). Transductive (TRANSDUCTIVE_NOTE)."""
    P = np.asarray(P_target, dtype=np.float64)
    train_prior = np.asarray(train_prior, dtype=np.float64)
    if P.ndim != 2 or len(P) == 0:
        raise ValueError("EM prior estimation needs the (n, C) posteriors of at least one target video")
    if (train_prior <= 0).any():
        raise ValueError(f"every class needs a positive training prior, got {train_prior.tolist()}")
    prior = train_prior.copy()
    for _ in range(max_iter):
        new_prior = adjust_class_posteriors(P, train_prior, prior).mean(0)
        done = np.abs(new_prior - prior).max() < tol
        prior = new_prior
        if done:
            break
    return prior, adjust_class_posteriors(P, train_prior, prior)


def em_prior_interval(p_target, train_prior: float, n_boot: int = 1000, level: float = 0.95, seed: int = 0,
                      max_iter: int = 1000, tol: float = 1e-6) -> tuple[float, float]:
    """Bootstrap percentile interval of the EM prior, resampling target videos; the B EM runs go
    side by side (weights (B, n)), so this costs about one EM run on B * n numbers."""
    from hiddenemo.eval.bootstrap import bootstrap_weights, percentile_interval

    p = np.clip(np.asarray(p_target, dtype=np.float64), 1e-12, 1 - 1e-12)
    w = bootstrap_weights(len(p), n_boot, np.random.default_rng(seed))          # (B, n)
    prior = np.full(n_boot, float(train_prior))
    for _ in range(max_iter):
        pos = p * (prior[:, None] / train_prior)
        adjusted = pos / (pos + (1 - p) * ((1 - prior[:, None]) / (1 - train_prior)))
        new_prior = (w * adjusted).sum(1) / w.sum(1)
        done = np.abs(new_prior - prior).max() < tol
        prior = new_prior
        if done:
            break
    return percentile_interval(prior, level)


def logit(p, eps: float = 1e-6) -> np.ndarray:
    """log(p / (1 - p)), with p clipped to [eps, 1 - eps] so that certain answers stay finite; in p's dtype."""
    p = np.clip(p, eps, 1 - eps)
    return np.log(p / (1 - p))


def platt_calibrate(p_fit, y_fit, p_apply) -> np.ndarray:
    """Re-map probabilities with a logistic fit of labels on logit(p) (Platt scaling), fitted on
    out-of-fold predictions of labeled videos, applied to others. Keeps the training prior."""
    from sklearn.linear_model import LogisticRegression

    column = lambda p: logit(np.asarray(p, dtype=np.float64))[:, None]    # noqa: E731
    model = LogisticRegression(C=1e6).fit(column(p_fit), np.asarray(y_fit).astype(int))
    return model.predict_proba(column(p_apply))[:, 1]
