"""Keypoint features against hand-computed values: box normalisation, offsets, masking."""
from __future__ import annotations

import numpy as np

from hiddenemo.data import keypoints
from hiddenemo.data.keypoints import (Keypoints, box_from_keypoints, checked_keypoints, coverage, keypoint_features,
                                      normalise_to_box, offset_lengths, split_groups)
from hiddenemo.data.pooled import _rows_in, pose_vector
from hiddenemo.data.store import Store

T, V = 30, 137


def _moving_point_video():
    """Point 0 moves 2 px right and 1 px down per frame from (100, 50) inside a fixed detector box
    (100, 50)-(300, 250): normalised x = t / 100, y = t / 200. Point 1 sits still at (200, 150) but
    is missing at frame 16. Every other point is missing (0, 0, 0 as OpenPose writes it)."""
    t = np.arange(T, dtype=np.float32)
    xy = np.zeros((T, V, 2), np.float32)
    conf = np.zeros((T, V), np.float32)
    xy[:, 0] = np.stack([100 + 2 * t, 50 + t], 1)
    conf[:, 0] = 0.9
    xy[:, 1] = (200, 150)
    conf[:, 1] = 0.8
    conf[16, 1] = 0.0
    box = np.tile(np.array([100, 50, 300, 250, 0.99], np.float32), (T, 1))
    return xy, conf, box


def test_normalise_to_detector_box_by_hand():
    xy, conf, box = _moving_point_video()
    pose, used_box = normalise_to_box(xy, conf, box)
    assert pose.shape == (T, V, 3) and pose.dtype == np.float16
    np.testing.assert_allclose(pose[10, 0], [0.10, 0.05, 0.9], atol=1e-3)
    np.testing.assert_allclose(pose[29, 0], [0.29, 0.145, 0.9], atol=1e-3)
    np.testing.assert_allclose(pose[3, 1], [0.5, 0.5, 0.8], atol=1e-3)
    # Missing points are NaN with confidence 0, never a real-looking (0, 0) = box corner - origin.
    assert np.isnan(pose[16, 1, :2]).all() and pose[16, 1, 2] == 0
    assert np.isnan(pose[:, 2:, :2]).all() and (pose[:, 2:, 2] == 0).all()
    np.testing.assert_array_equal(used_box, box)


def test_box_from_keypoints_by_hand_and_detector_gaps_fall_back_to_it():
    xy = np.array([[[10, 20], [110, 220], [0, 0]]], np.float32)     # (1, 3, 2)
    conf = np.array([[0.9, 0.7, 0.0]], np.float32)
    box = box_from_keypoints(xy, conf, margin=0.05)
    # span (10, 20)-(110, 220) grown by 5 % of (100, 200); score = 2 of 3 points found
    np.testing.assert_allclose(box[0], [5, 10, 115, 230, 2 / 3], rtol=1e-6)
    pose, used = normalise_to_box(xy, conf, np.full((1, 5), np.nan, np.float32))
    np.testing.assert_allclose(used[0], box[0])
    np.testing.assert_allclose(pose[0, 0, :2], [5 / 110, 10 / 220], atol=1e-3)
    # fewer than two confident points: no box, every point masked
    conf1 = np.array([[0.9, 0.0, 0.0]], np.float32)
    assert np.isnan(box_from_keypoints(xy, conf1)).all()
    assert np.isnan(normalise_to_box(xy, conf1)[0][0, :, :2]).all()


def test_offsets_by_hand_on_the_full_rate_sequence():
    xy, conf, box = _moving_point_video()
    pose, _ = normalise_to_box(xy, conf, box)
    feats, mask = keypoint_features(pose, np.array([24, 10, 16]))
    assert feats.shape == (3, V, 8) and feats.dtype == np.float32 and mask.shape == (3, V)
    # t = 24, point 0: position, then offsets to t-8, t-16, t-24 (x moves 0.01 and y 0.005 a frame)
    np.testing.assert_allclose(feats[0, 0], [0.24, 0.12, 0.08, 0.04, 0.16, 0.08, 0.24, 0.12], atol=2e-3)
    # t = 10: only t-8 exists; offsets reaching before frame 0 are 0
    np.testing.assert_allclose(feats[1, 0], [0.10, 0.05, 0.08, 0.04, 0, 0, 0, 0], atol=2e-3)
    # point 1 still: offsets 0; at t = 24 its t-8 end (frame 16) is missing -> 0, not a jump
    np.testing.assert_allclose(feats[0, 1], [0.5, 0.5, 0, 0, 0, 0, 0, 0], atol=1e-3)
    # t = 16: point 1 itself missing -> masked and all zeros
    assert not mask[2, 1] and (feats[2, 1] == 0).all()
    assert mask[:, 0].all() and not mask[:, 2:].any()
    assert np.isfinite(feats).all()


def test_features_read_from_a_memmap_match_in_memory(work):
    xy, conf, box = _moving_point_video()
    pose, _ = normalise_to_box(xy, conf, box)
    Store(work).save("v", "pose", pose, "test", "1")
    mapped = Store(work).load("v", "pose")
    idx = np.array([29, 0, 29, 8])                      # repeated and unsorted rows
    a, ma = keypoint_features(mapped, idx)
    b, mb = keypoint_features(pose, idx)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(ma, mb)
    np.testing.assert_array_equal(a[0], a[2])


def _noisy_pose(rng, n):
    """Random keypoints with unseen points (NaN), infinities and confidences on both sides of the cut."""
    pose = rng.normal(size=(n, V, 3)).astype(np.float16)
    pose[..., 2] = rng.uniform(0, 0.2, (n, V))
    pose[rng.uniform(size=(n, V)) < 0.2, :2] = np.nan
    pose[rng.uniform(size=(n, V)) < 0.05, 1] = np.inf
    return pose


def test_checked_keypoints_give_the_raw_arrays_bytes():
    """Training samples a video's `Keypoints` (checked once) instead of its raw rows: the same bytes,
    for the model's features, the pooled statistics' offset lengths, and a window of the sequence."""
    rng = np.random.default_rng(0)
    for n in (1, 8, 20, 600):
        pose = _noisy_pose(rng, n)
        table = Keypoints.check(pose)
        idx = rng.integers(0, n, 64)
        for offsets in ((8,), (8, 16, 24)):
            for raw, checked in zip(keypoint_features(pose, idx, offsets), keypoint_features(table, idx, offsets)):
                assert raw.tobytes() == checked.tobytes()
        lengths, seen = offset_lengths(table, idx)
        feats, mask = keypoint_features(pose, idx)
        norms = np.linalg.norm(feats[..., 2:].reshape(len(idx), V, 3, 2), axis=-1)
        assert np.stack(lengths, -1).tobytes() == norms.tobytes() and seen.tobytes() == mask.tobytes()
        for window in ((0.0, 1.0), (0.3, 0.9)):
            assert pose_vector(_rows_in(pose, window)).tobytes() == pose_vector(_rows_in(table, window)).tobytes()


def test_checked_keypoints_are_kept_within_their_budget(work, monkeypatch):
    store = Store(work)
    for vid in ("a", "b"):
        store.save(vid, "pose", _noisy_pose(np.random.default_rng(1), 40), "test", "1")
    monkeypatch.setattr(keypoints, "_checked_files", {})
    monkeypatch.setattr(keypoints, "KEYPOINTS_CACHE_BYTES", 40 * V * 21)            # one video's table
    a = checked_keypoints(store.load("a", "pose"))
    assert isinstance(a, Keypoints) and checked_keypoints(store.load("a", "pose")) is a        # kept
    b = checked_keypoints(store.load("b", "pose"))
    assert not isinstance(b, Keypoints) and b.shape == (40, V, 3)                  # over budget: the raw array


def test_groups_and_coverage():
    xy, conf, box = _moving_point_video()
    pose, _ = normalise_to_box(xy, conf, box)
    groups = split_groups(pose)
    assert {k: v.shape[1] for k, v in groups.items()} == {"body": 25, "face": 70, "hands": 42}
    assert coverage(pose) == {"body": 0.0, "face": 0.0, "hands": 0.0}   # 2 of 25 body points
    pose[:, :13, 2] = 1
    assert coverage(pose)["body"] == 1.0
