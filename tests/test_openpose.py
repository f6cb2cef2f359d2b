"""OpenPose 1.x JSON ingestion on folders written here in the real format, and on video 298."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from hiddenemo.data import openpose as op
from hiddenemo.data.openpose import ingest_openpose, is_ingested, read_openpose_dir
from hiddenemo.data.store import Store
from hiddenemo.errors import UserError


def person(neck_x: float, neck_y: float, conf: float = 0.8, face: bool = True) -> dict:
    """An OpenPose person: body around the neck, face and hands offset from it; point 0 is the nose."""
    body = np.zeros((25, 3))
    body[:8] = [(neck_x + dx, neck_y + dy, conf) for dx, dy in
                [(0, -60), (0, 0), (-50, 0), (-70, 60), (-60, 120), (50, 0), (70, 60), (60, 120)]]
    face_kp = np.column_stack([neck_x + np.linspace(-20, 20, 70), np.full(70, neck_y - 70), np.full(70, conf)])
    hand = np.column_stack([np.full(21, neck_x - 60), np.full(21, neck_y + 130), np.full(21, conf)])
    return {"person_id": [-1], "pose_keypoints_2d": body.ravel().tolist(),
            "face_keypoints_2d": face_kp.ravel().tolist() if face else [],
            "hand_left_keypoints_2d": hand.ravel().tolist(), "hand_right_keypoints_2d": hand.ravel().tolist(),
            "pose_keypoints_3d": [], "face_keypoints_3d": [], "hand_left_keypoints_3d": [],
            "hand_right_keypoints_3d": []}


def write_frame(folder: Path, frame: int, people: list[dict], name: str = "clip") -> Path:
    path = folder / f"{name}_{frame:012d}_keypoints.json"
    path.write_text(json.dumps({"version": 1.3, "people": people}))
    return path


@pytest.fixture
def video_dir(tmp_path: Path) -> Path:
    """10 frames numbered 0..10 with frame 4 missing; frame 2 has nobody; frame 6 has a stranger
    listed first; frame 8 is truncated; frame 9 has a hand list of the wrong length."""
    folder = tmp_path / "clip"
    folder.mkdir()
    for f in range(11):
        if f == 4:
            continue
        people = [] if f == 2 else [person(300 + f, 200)]
        if f == 6:
            people = [person(900, 500, conf=0.95), person(306, 200)]
        write_frame(folder, f, people)
    text = (folder / "clip_000000000008_keypoints.json").read_text()
    (folder / "clip_000000000008_keypoints.json").write_text(text[: len(text) // 2])
    bad = person(309, 200)
    bad["hand_left_keypoints_2d"] = bad["hand_left_keypoints_2d"][:-3]
    write_frame(folder, 9, [bad])
    (folder / "notes.txt").write_text("not a frame")
    return folder


def test_reads_numbering_gaps_no_person_several_people_and_bad_files(video_dir):
    video = read_openpose_dir(video_dir, workers=1)
    assert video.xy.shape == (11, 137, 2) and video.conf.shape == (11, 137)
    report = video.report
    assert report["n_frames"] == 11 and report["n_files"] == 10
    assert report["missing_files"] == 1 and report["no_person"] == 1 and report["several_people"] == 1
    assert report["unreadable_files"] == ["clip_000000000008_keypoints.json", "clip_000000000009_keypoints.json"]
    assert "JSONDecodeError" in report["unreadable_reasons"]["clip_000000000008_keypoints.json"]
    assert "hand_left_keypoints_2d has 60 numbers" in report["unreadable_reasons"]["clip_000000000009_keypoints.json"]
    assert report["empty_rows"] == 4
    empty = ~(video.conf > 0).any(1)
    np.testing.assert_array_equal(np.flatnonzero(empty), [2, 4, 8, 9])
    # the track continues with the person near frame 5's neck, not people[0]
    np.testing.assert_allclose(video.xy[6, 1], [306, 200])
    np.testing.assert_allclose(video.xy[10, 1], [310, 200])
    # layout: body 0-24, face 25-94, left hand 95-115, right hand 116-136
    np.testing.assert_allclose(video.xy[0, 25], [280, 130])
    np.testing.assert_allclose(video.xy[0, 95], [240, 330])
    assert (video.conf[0, 8:25] == 0).all() and (video.conf[0, :8] == 0.8).all()


def test_first_frame_with_several_people_keeps_the_most_confident(tmp_path):
    write_frame(tmp_path, 0, [person(900, 500, conf=0.2), person(300, 200, conf=0.9)])
    write_frame(tmp_path, 1, [person(302, 200)])
    video = read_openpose_dir(tmp_path, workers=1)
    np.testing.assert_allclose(video.xy[0, 1], [300, 200])


def test_parts_openpose_was_not_asked_for_are_missing_points(tmp_path):
    write_frame(tmp_path, 0, [person(300, 200, face=False)])
    video = read_openpose_dir(tmp_path, workers=1)
    assert (video.conf[0, 25:95] == 0).all() and (video.conf[0, 95:] > 0).all()


def test_process_pool_gives_the_same_result(video_dir, monkeypatch):
    monkeypatch.setattr(op, "PARALLEL_FROM", 1)
    one, two = read_openpose_dir(video_dir, workers=1), read_openpose_dir(video_dir, workers=2)
    np.testing.assert_array_equal(one.xy, two.xy)
    np.testing.assert_array_equal(one.conf, two.conf)
    assert one.report == two.report


def test_ingest_writes_pose_and_box_and_is_idempotent(video_dir, work):
    store = Store(work)
    report = ingest_openpose(store, "clip", video_dir, workers=1)
    assert report["no_person"] == 1
    pose, box = store.load("clip", "pose"), store.load("clip", "box")
    assert pose.shape == (11, 137, 3) and pose.dtype == np.float16
    assert box.shape == (11, 5) and box.dtype == np.float32
    assert np.isnan(box[[2, 4, 8, 9]]).all() and np.isfinite(box[[0, 1, 3, 5, 6, 7, 10]]).all()
    assert np.isnan(pose[2, :, :2]).all() and (pose[2, :, 2] == 0).all()
    found = pose[0, :, 2] > 0
    assert (pose[0, found, :2] >= 0).all() and (pose[0, found, :2] <= 1).all()
    assert is_ingested(store, "clip")
    assert store.meta("clip", "pose")["params"]["report"]["n_frames"] == 11
    assert not is_ingested(store, "other")


def test_unusable_folders_are_clear_errors(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        read_openpose_dir(tmp_path / "nope")
    with pytest.raises(UserError, match="no `\\*_<frame>_keypoints.json` files"):
        read_openpose_dir(tmp_path)
    write_frame(tmp_path, 0, [person(1, 1)], name="a")
    write_frame(tmp_path, 0, [person(1, 1)], name="b")
    with pytest.raises(UserError, match="two files for frame 0"):
        read_openpose_dir(tmp_path)


def test_real_video_298(imigue_dir, tmp_path):
    archive = imigue_dir / "openpose_json_video298.tar.xz"
    if not archive.exists():
        pytest.skip(f"{archive} not found")
    subprocess.run(["tar", "-xJf", str(archive), "-C", str(tmp_path)], check=True)
    store = Store(tmp_path / "work")
    report = ingest_openpose(store, "298", tmp_path / "298")
    assert report["n_frames"] == 21068 and report["n_files"] == 21068
    assert report["no_person"] == 175 and report["several_people"] == 10
    assert report["missing_files"] == 0 and report["unreadable_files"] == []
    pose = store.load("298", "pose")
    assert pose.shape == (21068, 137, 3)
    nobody = (pose[..., 2] == 0).all(1)
    assert nobody.sum() == 175 and np.isnan(pose[nobody][..., :2]).all()
    assert np.isnan(store.load("298", "box")[:, 0]).sum() == 175


def test_a_malformed_number_in_a_folder_is_named(tmp_path):
    write_frame(tmp_path, 0, [person(300, 200)])
    path = write_frame(tmp_path, 1, [person(301, 200)])
    path.write_text(path.read_text().replace("301.0", "3..01", 1))
    report = read_openpose_dir(tmp_path, workers=1).report
    assert report["unreadable_files"] == [path.name]


def test_consecutive_crowded_frames_follow_the_moving_track(tmp_path):
    write_frame(tmp_path, 0, [person(100, 200)])
    for f in range(1, 6):       # the subject walks right 40 px a frame; a bystander stays at 400
        write_frame(tmp_path, f, [person(400, 200, conf=0.95), person(100 + 40 * f, 200)])
    video = read_openpose_dir(tmp_path, workers=1)
    np.testing.assert_allclose(video.xy[:, 1, 0], [100, 140, 180, 220, 260, 300])
    assert video.report["several_people"] == 5


def test_a_file_with_a_byte_order_mark_still_reads(tmp_path):
    """orjson refuses a UTF-8 BOM (Windows tools write one); the standard-library fallback reads it."""
    write_frame(tmp_path, 0, [person(300, 200)])
    path = write_frame(tmp_path, 1, [person(301, 200)])
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    video = read_openpose_dir(tmp_path, workers=1)
    assert video.report["unreadable_files"] == []
    np.testing.assert_allclose(video.xy[1, 1], [301, 200])
