"""Is run A really better than run B on the same videos? A paired bootstrap on every metric, and
McNemar's test on the per-video correctness (exact binomial when discordant pairs are few).

The bootstrap p-value is the shifted-null one: resampled differences are centred on the observed
difference, and p is the share at least as far from it as the observed difference is from 0.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from hiddenemo.eval.bootstrap import LEVEL, N_BOOT, bootstrap_weights, percentile_interval
from hiddenemo.eval.metrics import METRICS, _check, weighted_metrics

EXACT_BELOW = 25  # discordant pairs under which McNemar uses the exact binomial test


def mcnemar(correct_a, correct_b) -> dict:
    """McNemar's test on paired correctness: b = only A right, c = only B right."""
    a = np.asarray(correct_a, dtype=bool)
    b_ = np.asarray(correct_b, dtype=bool)
    b, c = int((a & ~b_).sum()), int((~a & b_).sum())
    if b + c == 0:
        return {"only_a_right": b, "only_b_right": c, "p_value": 1.0, "method": "no discordant pairs"}
    if b + c < EXACT_BELOW:
        p = float(stats.binomtest(b, b + c, 0.5).pvalue)
        method = "exact binomial"
    else:
        chi2 = (abs(b - c) - 1) ** 2 / (b + c)
        p = float(stats.chi2.sf(chi2, 1))
        method = "chi-square with continuity correction"
    return {"only_a_right": b, "only_b_right": c, "p_value": min(p, 1.0), "method": method}


def paired_bootstrap(y, p_a, p_b, threshold_a: float = 0.5, threshold_b: float = 0.5, groups=None,
                     n_boot: int = N_BOOT, level: float = LEVEL, seed: int = 0) -> dict:
    """For each metric: A - B, its percentile interval and a two-sided p-value, from the same
    resamples of videos (or subjects) for both runs."""
    y, p_a = _check(y, p_a)
    _, p_b = _check(y, p_b)
    ones = np.ones((1, len(y)))
    w = bootstrap_weights(len(y), n_boot, np.random.default_rng(seed), groups)
    full_a, full_b = weighted_metrics(y, p_a, ones, threshold_a), weighted_metrics(y, p_b, ones, threshold_b)
    rep_a, rep_b = weighted_metrics(y, p_a, w, threshold_a), weighted_metrics(y, p_b, w, threshold_b)
    out = {}
    for name in METRICS:
        diff = float(full_a[name][0] - full_b[name][0])
        reps = rep_a[name] - rep_b[name]
        reps = reps[np.isfinite(reps)]
        low, high = percentile_interval(reps, level)
        p_value = float(np.mean(np.abs(reps - diff) >= abs(diff) - 1e-12)) if len(reps) and np.isfinite(diff) else float("nan")
        out[name] = {"a": float(full_a[name][0]), "b": float(full_b[name][0]), "difference": diff,
                     "low": low, "high": high, "p_value": p_value}
    return out


def compare_runs(a: pd.DataFrame, b: pd.DataFrame, threshold_a: float = 0.5, threshold_b: float = 0.5,
                 alpha: float = 0.05, n_boot: int = N_BOOT, seed: int = 0) -> dict:
    """Compare two runs' predictions on the videos both have and whose labels are known.

    Args:
        a: Run A: columns video_id, p_positive, label (true 0/1, nullable), optional subject_id.
        b: Run B: the same columns.
        threshold_a: A's decision threshold.
        threshold_b: B's decision threshold.
        alpha: Level at which a difference is marked significant.
        n_boot: Bootstrap replicates.
        seed: Seed of the resampling.

    Returns:
        {n, resampled, metrics: {name: {a, b, difference, low, high, p_value, significant}},
        mcnemar: {...}, significant_accuracy: bool}.
    """
    both = a[["video_id", "p_positive", "label"] + (["subject_id"] if "subject_id" in a else [])].merge(
        b[["video_id", "p_positive"]], on="video_id", suffixes=("_a", "_b"))
    both = both[both["label"].notna()]
    if both.empty:
        raise ValueError("the two runs share no labeled videos: nothing to compare")
    groups = _groups(both)
    y = both["label"].astype(int).to_numpy()
    pa, pb = both["p_positive_a"].to_numpy(float), both["p_positive_b"].to_numpy(float)
    metrics = paired_bootstrap(y, pa, pb, threshold_a, threshold_b, groups, n_boot, 1 - alpha, seed)
    for m in metrics.values():
        m["significant"] = bool(m["p_value"] < alpha)
    test = mcnemar((pa >= threshold_a) == y, (pb >= threshold_b) == y)
    return {"n": len(y), "resampled": "subjects" if groups is not None else "videos", "alpha": alpha,
            "metrics": metrics, "mcnemar": test, "significant_accuracy": bool(test["p_value"] < alpha)}


def _groups(df: pd.DataFrame):
    if "subject_id" in df and df["subject_id"].notna().all():
        return df["subject_id"].astype(str).to_numpy()
    return None
