"""Baselines on a small synthetic workspace whose events carry a real signal."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from hiddenemo.data.manifest import DatasetInfo, write_manifest
from hiddenemo.data.store import Store
from hiddenemo.errors import UserError
from hiddenemo.eval.baselines import baseline_predictions, make_folds, pooled_features
from hiddenemo.eval.metrics import binary_metrics

RATE_HZ = 5.0


def make_workspace(work, n_train=80, n_test=30, seed=0, text=True):
    """Videos whose positive class makes class-0 events twice as often; test split 30 % positive."""
    rng = np.random.default_rng(seed)
    rows, store = [], Store(work)
    for i in range(n_train + n_test):
        split = "train" if i < n_train else "test"
        y = int(rng.random() < (0.75 if split == "train" else 0.3))
        vid = f"v{i:03d}"
        events = np.zeros((int(RATE_HZ * 60 * rng.uniform(1, 3)), 32), dtype=np.uint8)
        for c, rate in ((0, 4 + 4 * y), (5, 3)):     # events per minute
            n_ev = rng.poisson(rate * len(events) / RATE_HZ / 60)
            for start in rng.integers(0, len(events) - 3, n_ev):
                events[start:start + 2, c] = 1
        store.save(vid, "events", events, "test", "1", {"rate_hz": RATE_HZ})
        if text:
            store.save(vid, "text.tiny", (rng.normal(0, 1, 8) + 0.8 * y).astype(np.float32), "test", "1")
        rows.append({"video_id": vid, "label": y if split == "train" else pd.NA, "split": split,
                     "subject_id": f"s{i // 2}", "fps": 25.0})
    DatasetInfo(name="toy", classes=["lose", "win"], positive="win").save(work)
    write_manifest(work, pd.DataFrame(rows))
    return work


def test_event_rates_count_onsets_per_minute(work):
    store = Store(work)
    events = np.zeros((600, 32), dtype=np.uint8)      # 2 minutes at 5 Hz
    events[10:20, 3] = 1
    events[100:101, 3] = 1
    events[0:5, 7] = 1
    store.save("a", "events", events, "test", "1", {"rate_hz": RATE_HZ})
    rates = np.expm1(pooled_features(work, "events", ["a"])[0])          # log1p of onsets per minute
    assert rates[3] == pytest.approx(1.0) and rates[7] == pytest.approx(0.5) and rates.sum() == pytest.approx(1.5)


def test_missing_array_is_a_nan_row(work):
    make_workspace(work, n_train=6, n_test=0)
    X = pooled_features(work, "events", ["v000", "nothing"])
    assert np.isfinite(X[0]).all() and np.isnan(X[1]).all()
    # an empty array (nobody found, no frame embedded) is missing too, without a numpy warning
    store = Store(work)
    store.save("v000", "frames", np.zeros((3, 4), np.float16), "test", "1")
    store.save("v001", "frames", np.zeros((0, 4), np.float16), "test", "1")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        X = pooled_features(work, "frames", ["v000", "v001"])
    assert np.isfinite(X[0]).all() and np.isnan(X[1]).all()


def test_logistic_beats_majority_and_folds_keep_subjects_apart(work):
    make_workspace(work)
    df = baseline_predictions(work, "events", n_folds=4, seed=0)
    oof = df[df["split"] == "train"]
    assert set(df["baseline"]) == {"majority", "logistic"}
    assert (df[df["split"] == "test"]["fold"] == -1).all() and len(df[df["split"] == "test"]) == 60
    per_subject = oof.groupby("subject_id")["fold"].nunique()
    assert (per_subject == 1).all()
    logistic = oof[oof["baseline"] == "logistic"]
    majority = oof[oof["baseline"] == "majority"]
    m_log = binary_metrics(logistic["label"].astype(int), logistic["p_positive"])
    m_maj = binary_metrics(majority["label"].astype(int), majority["p_positive"])
    assert m_maj["auroc"] == pytest.approx(0.5)
    assert m_log["auroc"] > 0.7
    assert set(df.attrs["C"]) == {0, 1, 2, 3, "all"}


def test_given_folds_are_used_and_text_found(work):
    make_workspace(work)
    train_ids = [f"v{i:03d}" for i in range(80)]
    folds = pd.Series(np.arange(80) // 2 % 3, index=train_ids)
    df = baseline_predictions(work, "text", folds=folds)
    oof = df[(df["split"] == "train") & (df["baseline"] == "logistic")].set_index("video_id")
    assert (oof["fold"] == folds.loc[oof.index]).all()
    with pytest.raises(UserError, match="miss"):
        baseline_predictions(work, "text", folds=folds.iloc[:10])


def test_make_folds_refuses_too_few():
    with pytest.raises(UserError, match="at least 2 folds"):
        make_folds(np.array([0, 1, 1, 1]), None)
