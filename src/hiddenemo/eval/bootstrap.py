"""Bootstrap confidence intervals for the metrics, resampling videos or, when subjects are known,
whole subjects (a cluster bootstrap: one person's videos are not independent evidence).

A replicate is a count per video, drawn with `Generator.multinomial`, so B replicates are one
(B, n) weight matrix and every metric is computed for all of them at once (`weighted_metrics`).
Intervals are percentile intervals.
"""
from __future__ import annotations

import numpy as np

from hiddenemo.eval.metrics import (METRICS, _check, binary_metrics, check_multiclass, multiclass_metrics,
                                    weighted_metrics, weighted_multiclass)

N_BOOT = 2000
LEVEL = 0.95


def bootstrap_weights(n: int, n_boot: int, rng: np.random.Generator, groups=None) -> np.ndarray:
    """(n_boot, n) float counts: videos drawn with replacement, or whole groups drawn with replacement
    (every video of a drawn group counts once per draw) when `groups` (n,) is given."""
    if groups is None:
        return rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot).astype(np.float64)
    _, group_of = np.unique(np.asarray(groups).astype(str), return_inverse=True)
    n_groups = group_of.max() + 1
    group_counts = rng.multinomial(n_groups, np.full(n_groups, 1.0 / n_groups), size=n_boot)
    return group_counts[:, group_of].astype(np.float64)


def percentile_interval(samples: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    """The (low, high) percentile interval of replicate values, ignoring NaN replicates (a resample
    with one class has no AUROC)."""
    finite = samples[np.isfinite(samples)]
    if len(finite) == 0:
        return float("nan"), float("nan")
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(finite, [tail, 100 - tail])
    return float(low), float(high)


def bootstrap_metrics(y_true, p_positive, threshold: float = 0.5, groups=None, n_boot: int = N_BOOT,
                      level: float = LEVEL, seed: int = 0) -> dict:
    """`binary_metrics` (or `multiclass_metrics`) plus, for each of METRICS, `{estimate, low, high}` at
    the given level (more classes: per-class recall intervals too, `per_class_recall_ci`).

    Args:
        y_true: (n,) 0/1 labels, or class indices with (n, C) probabilities.
        p_positive: (n,) probabilities of the positive class, or (n, C) class probabilities (arg-max).
        threshold: Predict positive when `p_positive >= threshold` (two classes only).
        groups: (n,) subject ids for a cluster bootstrap, or None to resample videos.
        n_boot: Number of bootstrap replicates.
        level: Confidence level of the intervals.
        seed: Seed of the resampling.
    """
    if np.ndim(p_positive) == 2:
        y, p = check_multiclass(y_true, p_positive)
        out = multiclass_metrics(y, p)
    else:
        y, p = _check(y_true, p_positive)
        out = binary_metrics(y, p, threshold)
    w = bootstrap_weights(len(y), n_boot, np.random.default_rng(seed), groups)
    replicates = weighted_multiclass(y, p, w) if p.ndim == 2 else weighted_metrics(y, p, w, threshold)
    if p.ndim == 2:
        out["per_class_recall_ci"] = [percentile_interval(r, level) for r in replicates["recall"].T]
    out["ci"] = {}
    for name in METRICS:
        low, high = percentile_interval(replicates[name], level)
        out["ci"][name] = {"estimate": out[name], "low": low, "high": high}
    out.update(level=level, n_boot=n_boot, resampled="subjects" if groups is not None else "videos",
               n_groups=int(len(np.unique(np.asarray(groups).astype(str)))) if groups is not None else len(y))
    return out
