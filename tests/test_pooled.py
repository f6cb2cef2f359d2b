"""Pooled per-video statistics (data/pooled.py): what they count, the person baselines, and that
person-relative statistics read no label."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hiddenemo.data.manifest import write_manifest
from hiddenemo.data.pooled import PooledFeatures, VideoTiming, events_vector
from hiddenemo.data.store import Store
from hiddenemo.train.config import TrainConfig
from hiddenemo.train.data import pooled_inputs

RATE = 5.0


def test_events_vector_counts_rates_shares_and_length():
    events = np.zeros((600, 3), np.uint8)                 # 2 minutes at 5 Hz
    events[10:20, 0] = 1                                   # two onsets of class 0 (1/min), 15 rows on
    events[100:105, 0] = 1
    events[0:30, 1] = 1                                    # one onset of class 1, 30 rows on
    groups = ["head", "head", "body"]
    vec = events_vector(events, RATE, groups, ("group_rates", "group_shares", "class_rates", "class_shares", "length"))
    body_rate, head_rate, body_share, head_share = vec[:4]           # groups sorted: body, head
    assert body_rate == 0 and np.expm1(head_rate) == pytest.approx(1.5)
    assert body_share == 0 and head_share == pytest.approx(35 / 600)   # rows with any head gesture on
    np.testing.assert_allclose(np.expm1(vec[4:7]), [1.0, 0.5, 0.0])
    np.testing.assert_allclose(vec[7:10], [15 / 600, 30 / 600, 0.0])
    assert vec[10] == pytest.approx(np.log(2.0))


def _events_workspace(work, subjects: dict[str, str], onsets: dict[str, int]) -> dict[str, VideoTiming]:
    store = Store(work)
    for vid, n in onsets.items():
        ev = np.zeros((300, 2), np.uint8)                  # 1 minute
        for k in range(n):
            ev[10 + 20 * k: 12 + 20 * k, 0] = 1
        store.save(vid, "events", ev, "test", "1", {"rate_hz": RATE, "classes": [1, 2]})
    return {vid: VideoTiming(fps=25.0, subject_id=s) for vid, s in subjects.items()}


def test_subject_baseline_subtracts_the_person_mean(work):
    videos = _events_workspace(work, {"a1": "a", "a2": "a", "b1": "b", "solo": None}, {"a1": 1, "a2": 3, "b1": 2, "solo": 5})
    raw = PooledFeatures(work, "events", videos)
    rel = PooledFeatures(work, "events", videos, baseline="subject")
    assert rel.transductive and not raw.transductive
    mean_a = (raw.vector("a1") + raw.vector("a2")) / 2
    np.testing.assert_allclose(rel.vector("a1"), raw.vector("a1") - mean_a)
    np.testing.assert_allclose(rel.vector("a1"), -rel.vector("a2"))
    assert not rel.vector("b1").any() and not rel.vector("solo").any()     # alone: its own baseline
    assert rel.vector("missing") is None


def test_video_start_baseline_and_training_windows(work):
    store = Store(work)
    ev = np.zeros((1500, 1), np.uint8)                     # 5 minutes; gestures only after minute 2
    ev[700:705, 0] = ev[900:905, 0] = ev[1100:1105, 0] = 1
    store.save("v", "events", ev, "test", "1", {"rate_hz": RATE, "classes": [1]})
    videos = {"v": VideoTiming(fps=25.0, subject_id="s")}
    start = PooledFeatures(work, "events", videos, baseline="video-start", baseline_minutes=2.0)
    raw = PooledFeatures(work, "events", videos)
    np.testing.assert_allclose(start.vector("v"), raw.vector("v"))          # the first 2 minutes had none
    assert raw.vector("v", window=(0.0, 0.4))[0] == 0 and raw.vector("v", window=(0.4, 1.0))[0] > raw.vector("v")[0]


def test_person_relative_inputs_read_no_label(work):
    """Poisoned labels (every label flipped, test labels invented) change no pooled vector."""
    videos = _events_workspace(work, {"a1": "a", "a2": "a", "b1": "b", "b2": "b"}, {"a1": 1, "a2": 3, "b1": 2, "b2": 4})
    config = TrainConfig()
    config.pooled.person_baseline = "subject"

    def vectors(labels):
        manifest = pd.DataFrame({"video_id": list(videos), "label": labels, "split": ["train", "train", "train", "test"],
                                 "subject_id": [v.subject_id for v in videos.values()], "fps": 25.0})
        write_manifest(work, manifest)
        pooled = pooled_inputs(work, manifest, config, None, {"events": ["events-stats"]})["events"]
        return np.stack([pooled.vector(v) for v in videos])

    np.testing.assert_array_equal(vectors([1, 0, 1, pd.NA]), vectors([0, 1, 0, 1]))
