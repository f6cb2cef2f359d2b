"""The statistics behave as advertised on simulated data: interval coverage, EM under label shift,
and the paired tests' false-positive rate. Small simulations, vectorised, a few seconds each."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from hiddenemo.eval.bootstrap import bootstrap_metrics, bootstrap_weights
from hiddenemo.eval.compare import compare_runs, mcnemar, paired_bootstrap
from hiddenemo.eval.labelshift import adjust_posteriors, balanced_threshold, class_weights, em_prior

REPLICATES, N_BOOT = 200, 200


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def simulate(rng, n, prior=0.7, separation=1.5, subject_sd=0.0, per_subject=1):
    """Scores N(+-separation/2 + subject effect, 1); predicted positive when score >= 0."""
    subjects = np.repeat(np.arange(n // per_subject + 1), per_subject)[:n]
    effect = rng.normal(0, subject_sd, subjects.max() + 1)[subjects]
    y = (rng.random(n) < prior).astype(int)
    score = (y - 0.5) * separation + effect + rng.normal(0, 1, n)
    return y, sigmoid(score), subjects


@pytest.mark.parametrize("metric,truth", [
    ("accuracy", norm.cdf(0.75)), ("balanced_accuracy", norm.cdf(0.75)), ("auroc", norm.cdf(1.5 / np.sqrt(2)))])
def test_intervals_cover_at_about_the_nominal_rate(metric, truth):
    rng = np.random.default_rng(1)
    covered = []
    for r in range(REPLICATES):
        y, p, _ = simulate(rng, 150)
        ci = bootstrap_metrics(y, p, n_boot=N_BOOT, seed=r)["ci"][metric]
        covered.append(ci["low"] <= truth <= ci["high"])
    rate = np.mean(covered)
    assert 0.89 <= rate <= 0.99, f"{metric}: 95% intervals covered the truth {rate:.1%} of the time"


def test_subject_bootstrap_covers_when_videos_of_a_subject_are_alike():
    rng = np.random.default_rng(2)
    sd, truth = 1.0, norm.cdf(0.75 / np.sqrt(2.0))     # accuracy with a subject effect of sd 1
    by_subject, by_video = [], []
    for r in range(REPLICATES):
        y, p, subjects = simulate(rng, 160, subject_sd=sd, per_subject=8)
        ci_s = bootstrap_metrics(y, p, groups=subjects, n_boot=N_BOOT, seed=r)["ci"]["accuracy"]
        ci_v = bootstrap_metrics(y, p, n_boot=N_BOOT, seed=r)["ci"]["accuracy"]
        by_subject.append(ci_s["low"] <= truth <= ci_s["high"])
        by_video.append(ci_v["low"] <= truth <= ci_v["high"])
    assert 0.87 <= np.mean(by_subject) <= 0.99
    assert np.mean(by_video) < np.mean(by_subject)     # ignoring the clusters gives too narrow intervals


def test_cluster_weights_move_whole_subjects():
    groups = np.array(["a", "a", "b", "c", "c", "c"])
    w = bootstrap_weights(6, 50, np.random.default_rng(0), groups)
    assert (w[:, 0] == w[:, 1]).all() and (w[:, 3] == w[:, 5]).all()
    assert (w[:, [0, 2, 3]].sum(1) == 3).all()         # three subjects drawn per replicate


@pytest.mark.parametrize("target_prior", [0.2, 0.5, 0.9])
def test_em_recovers_a_known_prior_under_label_shift(target_prior):
    rng = np.random.default_rng(3)
    train_prior, n = 0.79, 3000
    y = (rng.random(n) < target_prior).astype(int)
    x = np.where(y == 1, 1.0, -1.0) + rng.normal(0, 1, n)
    # Bayes posterior under the training prior: exactly what a calibrated model trained there gives.
    p_train = sigmoid(2 * x + np.log(train_prior / (1 - train_prior)))
    prior, adjusted = em_prior(p_train, train_prior)
    assert prior == pytest.approx(target_prior, abs=0.03)
    assert adjusted.mean() == pytest.approx(prior, abs=1e-6)
    # The re-weighted posteriors are the Bayes posteriors under the true target prior, up to its estimate.
    p_true = sigmoid(2 * x + np.log(target_prior / (1 - target_prior)))
    assert np.abs(adjusted - p_true).mean() < 0.03


def test_em_leaves_an_unshifted_set_alone():
    p = np.array([0.1, 0.9, 0.9, 0.9, 0.2])
    prior, adjusted = em_prior(p, train_prior=float(p.mean()))
    assert prior == pytest.approx(p.mean()) and np.allclose(adjusted, p)


def test_label_shift_helpers():
    assert class_weights([1, 1, 1, 0]) == {0: 2.0, 1: 4 / 6}
    assert balanced_threshold(0.79) == 0.79
    assert adjust_posteriors([0.5], 0.8, 0.8)[0] == pytest.approx(0.5)
    assert adjust_posteriors([0.8], 0.8, 0.5)[0] == pytest.approx(0.5)
    with pytest.raises(ValueError):
        em_prior([0.5], train_prior=1.0)


def test_paired_tests_keep_their_level_on_identical_runs():
    rng = np.random.default_rng(4)
    alpha, sims, n = 0.05, 300, 120
    rejected_boot, rejected_mcnemar = [], []
    for s in range(sims):
        y = (rng.random(n) < 0.7).astype(int)
        base = (y - 0.5) * 1.5
        p_a = sigmoid(base + rng.normal(0, 1, n))     # two runs of the same quality, independent errors
        p_b = sigmoid(base + rng.normal(0, 1, n))
        rejected_boot.append(paired_bootstrap(y, p_a, p_b, n_boot=N_BOOT, seed=s)["accuracy"]["p_value"] < alpha)
        rejected_mcnemar.append(mcnemar((p_a >= 0.5) == y, (p_b >= 0.5) == y)["p_value"] < alpha)
    assert 0.01 <= np.mean(rejected_boot) <= 0.10, np.mean(rejected_boot)
    assert np.mean(rejected_mcnemar) <= 0.08, np.mean(rejected_mcnemar)


def test_a_real_difference_is_found_and_runs_join_on_video_id():
    rng = np.random.default_rng(5)
    n = 200
    y = (rng.random(n) < 0.5).astype(int)
    good = sigmoid((y - 0.5) * 4 + rng.normal(0, 1, n))
    poor = sigmoid(rng.normal(0, 1, n))
    ids = [f"v{i}" for i in range(n)]
    a = pd.DataFrame({"video_id": ids, "p_positive": good, "label": y})
    b = pd.DataFrame({"video_id": ids[::-1], "p_positive": poor[::-1]})
    out = compare_runs(a, b, n_boot=N_BOOT)
    assert out["n"] == n and out["significant_accuracy"] and out["metrics"]["auroc"]["significant"]
    assert out["metrics"]["accuracy"]["difference"] > 0.2


def test_mcnemar_switches_to_chi_square_for_many_discordant_pairs():
    a = np.array([True] * 40 + [False] * 10 + [True] * 50)
    b = np.array([False] * 40 + [True] * 10 + [True] * 50)
    out = mcnemar(a, b)
    assert out["method"].startswith("chi-square") and out["only_a_right"] == 40 and out["p_value"] < 0.001
    assert mcnemar([True, False], [True, True])["method"] == "exact binomial"


def test_em_interval_contains_the_target_prior():
    from hiddenemo.eval.labelshift import em_prior_interval
    rng = np.random.default_rng(6)
    y = (rng.random(400) < 0.35).astype(int)
    x = np.where(y == 1, 1.0, -1.0) + rng.normal(0, 1, 400)
    low, high = em_prior_interval(sigmoid(2 * x + np.log(0.8 / 0.2)), 0.8, n_boot=300)
    assert low < 0.35 < high and high - low < 0.25
