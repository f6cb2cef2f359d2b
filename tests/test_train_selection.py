"""Honest model selection: folds, epochs and thresholds come from the labeled training videos only,
and test labels cannot change anything training or selection produces."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from train_fixtures import make_workspace, tiny_config

from hiddenemo.data.manifest import read_manifest, write_manifest
from hiddenemo.errors import UserError
from hiddenemo.train.config import SelectionConfig
from hiddenemo.train.run import train_run
from hiddenemo.eval.metrics import binary_metrics
from hiddenemo.data.manifest import DatasetInfo
from hiddenemo.data.workspace import Workspace
from hiddenemo.train.selection import choose_epoch, choose_threshold, make_folds, quantile_threshold, score_curve

FAST = {"model": {"modalities": ["text", "events"], "dim": 16,
                  "encoder_args": {"events": {"model_dim": 16, "depth": 1, "heads": 2}}},
        "stage1": {"epochs": 2, "lr": 3e-3, "batch_size": 8}, "stage2": {"epochs": 2, "lr": 1e-3, "batch_size": 8},
        "selection": {"folds": 2}}


def test_training_split_drops_every_label_outside_train(tmp_path):
    manifest = pd.DataFrame({"video_id": list("abcdef"), "label": [1, 0, 1, 0, pd.NA, 1],
                             "split": ["train", "train", "train", "test", "test", "val"],
                             "subject_id": list("xxyyzz")})
    write_manifest(tmp_path, manifest)
    DatasetInfo("t", ["lose", "win"], "win").save(tmp_path)
    labeled, others = Workspace(tmp_path).training_split()
    assert labeled["video_id"].tolist() == ["a", "b", "c"] and labeled["label"].tolist() == [1, 0, 1]
    assert "label" not in others.columns and others["video_id"].tolist() == ["d", "e", "f"]


def test_training_labels_count_the_positive_class_as_1(tmp_path):
    """A workspace whose positive class is index 0 hands out 1 for it all the same."""
    write_manifest(tmp_path, pd.DataFrame({"video_id": list("abc"), "label": [0, 1, pd.NA],
                                           "split": ["train", "train", "test"]}))
    DatasetInfo("t", ["calm", "tense"], "calm").save(tmp_path)
    ws = Workspace(tmp_path)
    assert ws.training_split()[0]["label"].tolist() == [1, 0]
    assert ws.truth()["y"].tolist()[:2] == [1, 0] and ws.truth()["y"].isna().tolist() == [False, False, True]
    assert ws.class_name(1) == "calm" and ws.text_array("minilm") == "text.minilm"


def test_selection_cannot_see_test_labels(tmp_path):
    """Poison the test labels (flip them all): every file training and selection write is identical."""
    config = tiny_config(**FAST)
    for name in ("clean", "poisoned"):
        make_workspace(tmp_path / name)
    poisoned = read_manifest(tmp_path / "poisoned")
    is_test = poisoned["split"] == "test"
    poisoned.loc[is_test, "label"] = 1 - poisoned.loc[is_test, "label"]
    write_manifest(tmp_path / "poisoned", poisoned)

    clean = train_run(tmp_path / "clean", "r", config)
    dirty = train_run(tmp_path / "poisoned", "r", config)
    for name in ("oof.csv", "selection.json", "predictions.csv", "stage2/metrics.csv", "stage1/events/metrics.csv"):
        a = (tmp_path / "clean" / "runs" / "r" / name).read_text()
        assert a == (tmp_path / "poisoned" / "runs" / "r" / name).read_text(), name
    assert clean["cross_validated"] == dirty["cross_validated"]
    # Only the report on test differs, and it must: the labels it scores against were flipped.
    assert clean["test"]["accuracy"] == pytest.approx(1 - dirty["test"]["accuracy"])


def test_folds_keep_subjects_together_and_stratify():
    rng = np.random.default_rng(0)
    labeled = pd.DataFrame({"video_id": [f"v{i}" for i in range(60)], "label": rng.integers(0, 2, 60),
                            "subject_id": [f"s{i // 3}" for i in range(60)]})
    folds = make_folds(labeled, SelectionConfig(folds=4), seed=0)
    assert set(folds) == {0, 1, 2, 3}
    assert labeled.assign(fold=folds).groupby("subject_id")["fold"].nunique().max() == 1
    ungrouped = make_folds(labeled.assign(subject_id=pd.NA), SelectionConfig(folds=4), seed=0)
    assert set(ungrouped) == {0, 1, 2, 3}


def test_too_few_of_a_class_is_a_clear_error():
    labeled = pd.DataFrame({"video_id": ["a", "b", "c"], "label": [1, 1, 0], "subject_id": [None] * 3})
    with pytest.raises(UserError, match="at least 2 videos of each class"):
        make_folds(labeled, SelectionConfig(folds=5), seed=0)


def test_threshold_methods():
    y = np.array([0, 0, 0, 1, 1, 1, 1, 1, 1, 1])
    p = np.array([0.1, 0.3, 0.6, 0.2, 0.65, 0.7, 0.75, 0.8, 0.9, 0.95])
    balanced = choose_threshold(p, y, SelectionConfig(threshold="balanced", threshold_bootstrap=0))
    assert 0.6 < balanced["threshold"] < 0.65 and balanced["oof_score"] == pytest.approx(6 / 7 / 2 + 1 / 2)
    accuracy = choose_threshold(p, y, SelectionConfig(threshold="cv-accuracy", threshold_bootstrap=0))
    assert accuracy["metric"] == "accuracy" and accuracy["oof_score"] == pytest.approx(0.9)
    assert choose_threshold(p, y, SelectionConfig(threshold="fixed", fixed_threshold=0.4))["threshold"] == 0.4
    q = choose_threshold(p, y, SelectionConfig(threshold="quantile", quantile_prior=0.3))
    assert q["method"] == "quantile" and "assumes" in q["note"]
    assert (p >= quantile_threshold(p, 0.3)).mean() == pytest.approx(0.3)
    with pytest.raises(UserError, match="quantile_prior"):
        choose_threshold(p, y, SelectionConfig(threshold="quantile"))


def test_score_curve_is_binary_metrics_at_every_threshold():
    rng = np.random.default_rng(0)
    y = (rng.random(60) < 0.7).astype(int)
    p = np.round(np.clip(0.5 + 0.2 * (y - 0.5) + rng.normal(0, 0.2, 60), 0, 1), 2)    # ties included
    thresholds = np.concatenate([np.unique(p), [0.0, 1.01, 0.333]])
    for metric in ("accuracy", "balanced_accuracy"):
        expected = [binary_metrics(y, p, t)[metric] for t in thresholds]
        np.testing.assert_allclose(score_curve(p, y, thresholds, metric), expected)


def test_bootstrap_threshold_is_the_median_of_resampled_best_cuts():
    """Seeded and reproducible; on a small set whose negatives are bimodal the one best cut sits under
    the lower group, while the resamples' median stays between the classes' bulk."""
    y = np.array([0] * 6 + [1] * 20)
    p = np.array([0.30, 0.35, 0.40, 0.70, 0.75, 0.80] + list(np.linspace(0.45, 0.95, 20)))
    plain = choose_threshold(p, y, SelectionConfig(threshold_bootstrap=0))
    bagged = choose_threshold(p, y, SelectionConfig(threshold_bootstrap=200), seed=3)
    assert bagged == choose_threshold(p, y, SelectionConfig(threshold_bootstrap=200), seed=3)
    assert bagged["bootstrap"] == 200 and bagged["best_cut"] == plain["threshold"]
    rng, cuts = np.random.default_rng(3), []
    for _ in range(200):
        i = rng.integers(0, len(p), len(p))
        if 0 < y[i].sum() < len(i):
            cuts.append(choose_threshold(p[i], y[i], SelectionConfig(threshold_bootstrap=0))["threshold"])
    assert bagged["threshold"] == pytest.approx(np.median(cuts))
    assert bagged["oof_score"] == pytest.approx(binary_metrics(y, p, bagged["threshold"])["balanced_accuracy"])


def test_choose_epoch_takes_the_best_and_the_earliest_on_ties():
    y = np.array([0, 0, 1, 1])
    oof = np.array([[0.6, 0.5, 0.4, 0.3], [0.1, 0.2, 0.8, 0.9], [0.1, 0.2, 0.8, 0.9]])
    assert choose_epoch(oof, y, np.array([1.0, 0.5, 0.4]), "auroc") == 2
    assert choose_epoch(oof, y, np.array([1.0, 0.5, 0.4]), "loss") == 3
