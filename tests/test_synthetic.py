"""The synthetic dataset: real file formats, seeded, resumable, ingestible by the iMiGUE adapter, and
cues that separate the classes only partly per modality."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from hiddenemo.synthetic import files, plan
from hiddenemo.synthetic.separability import separability

IMIGUE_COLUMNS = ["video_id", "label_id", "start_time", "start_frame", "end_time", "end_frame", "class",
                  "subject_id", "subject_gender", "subject_nationality", "win_or_lose"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("synthetic")
    summary = files.generate(out, seed=3, n_videos=8, n_frames=40, width=96, height=72, progress=False, workers=2)
    return out, summary


def test_files_in_imigue_formats(tiny):
    out, summary = tiny
    labels = pd.read_csv(out / files.LABELS_FILE, dtype={"video_id": str}, keep_default_na=False)
    splits = pd.read_csv(out / "splits.csv", dtype={"video_id": str})
    target = pd.read_csv(out / "target_labels.csv", dtype={"video_id": str})
    assert list(labels.columns) == IMIGUE_COLUMNS
    assert list(splits.columns) == ["video_id", "subject_id", "cvpr21_emotion", "miga_cross_subject"]
    assert len(splits) == summary["videos"] == 8
    assert set(labels["video_id"]) == set(splits["video_id"])          # every video has annotations
    assert all(any(e.annotated for e in p.episodes) for p in plan.plan_dataset(0, 64, 150))
    test_ids = set(splits.loc[splits["miga_cross_subject"] == "test", "video_id"])
    assert test_ids and set(target["video_id"]) == test_ids
    # Withheld exactly on the target split; the target file holds the true labels.
    shown = labels.groupby("video_id")["win_or_lose"].first()
    assert (shown[list(test_ids)] == "").all()
    assert set(shown.drop(list(test_ids))) <= {"Win", "Lose"} and set(target["win_or_lose"]) <= {"Win", "Lose"}
    # Cross-subject: no person is on both sides.
    by_split = splits.groupby("miga_cross_subject")["subject_id"].apply(set)
    assert not (by_split["train"] & by_split["test"])
    assert (labels["start_frame"] <= labels["end_frame"]).all()
    assert set(labels["class"]) <= {c.gesture for c in plan.CUES if c.gesture is not None}


def test_openpose_json_matches_the_video(tiny):
    import av

    out, _ = tiny
    with av.open(str(out / "videos" / "1.mp4")) as container:
        frames = [f.to_ndarray(format="bgr24") for f in container.decode(video=0)]
    files = sorted((out / "openpose" / "1").glob("1_*_keypoints.json"))
    assert len(files) == len(frames) and files[0].name == "1_000000000000_keypoints.json"
    assert frames[0].shape == (72, 96, 3)
    seen = 0
    for path in files:
        doc = json.loads(path.read_text())
        assert doc["version"] == 1.3
        for person in doc["people"][:1]:
            sizes = [len(person[k]) for k in ("pose_keypoints_2d", "face_keypoints_2d",
                                              "hand_left_keypoints_2d", "hand_right_keypoints_2d")]
            assert sizes == [75, 210, 63, 63]
            face = np.array(person["face_keypoints_2d"]).reshape(70, 3)
            ok = face[:, 2] > 0
            # Face points lie on the drawn face: inside the frame, in its upper half.
            assert ok.sum() > 60
            assert (face[ok, 0] > 0).all() and (face[ok, 0] < 96).all() and (face[ok, 1] < 50).all()
            body = np.array(person["pose_keypoints_2d"]).reshape(25, 3)
            assert (body[[9, 10, 11, 12, 13, 14], 2] == 0).all()          # lower body hidden by the desk
            seen += 1
    assert seen >= len(files) * 0.8


def test_seeded_and_resumable(tiny, tmp_path):
    out, summary = tiny
    a = plan.plan_dataset(3, 8, 40)
    b = plan.plan_dataset(3, 8, 40)
    c = plan.plan_dataset(4, 8, 40)
    assert [(p.label, p.n_frames, len(p.episodes)) for p in a] == [(p.label, p.n_frames, len(p.episodes)) for p in b]
    assert [(p.label, p.n_frames) for p in a] != [(p.label, p.n_frames) for p in c]
    # A second run keeps finished videos (same bytes, untouched) and rewrites a missing one identically.
    video = out / "videos" / "2.mp4"
    before = {p: p.stat().st_mtime_ns for p in (out / "videos").iterdir()}
    pose_before = (out / "openpose" / "2" / "2_000000000003_keypoints.json").read_text()
    video.unlink()
    import shutil
    shutil.rmtree(out / "openpose" / "2")
    assert files.generate(out, seed=3, n_videos=8, n_frames=40, width=96, height=72, progress=False) == summary
    assert (out / "openpose" / "2" / "2_000000000003_keypoints.json").read_text() == pose_before
    after = {p: p.stat().st_mtime_ns for p in (out / "videos").iterdir()}
    assert all(after[p] == t for p, t in before.items() if p != video) and video.exists()


def test_workers_write_the_same_files(tiny, tmp_path):
    """Two worker processes (the fixture) and one: every JSON and CSV file byte for byte (an mp4 may
    differ even between two runs of one process, docs/synthetic.md)."""
    out, _ = tiny
    files.generate(tmp_path, seed=3, n_videos=8, n_frames=40, width=96, height=72, progress=False, workers=1)
    written = lambda root: {p.relative_to(root): p for p in root.rglob("*") if p.is_file()}   # noqa: E731
    by_two, by_one = written(out), written(tmp_path)
    assert by_two.keys() == by_one.keys()
    assert sum(p.suffix == ".json" for p in by_one) > 8 * 20
    for name, path in by_one.items():
        if path.suffix != ".mp4":
            assert path.read_bytes() == by_two[name].read_bytes(), name


def test_ingested_by_the_imigue_adapter(tiny, tmp_path):
    from hiddenemo.commands.dataset import imigue
    from hiddenemo.data.manifest import read_manifest
    from hiddenemo.data.store import Store

    out, summary = tiny
    work = tmp_path / "work"
    imigue(labels=out / files.LABELS_FILE, splits=out / "splits.csv", out=work, videos=out / "videos",
           openpose=out / "openpose", workers=1)
    manifest = read_manifest(work)
    assert len(manifest) == summary["videos"]
    assert manifest["label"].notna().sum() == summary["labelled"]
    pose = Store(work).load("1", "pose")
    assert pose.shape[1:] == (137, 3) and len(pose) == manifest.set_index("video_id").loc["1", "n_frames"]


def test_bad_sizes_are_refused(tmp_path):
    with pytest.raises(ValueError, match="even"):
        files.generate(tmp_path, n_videos=4, width=97, height=72, progress=False)
    with pytest.raises(ValueError, match="at least 4"):
        plan.plan_dataset(0, 3, 40)


def test_default_size_balance_and_partial_separability():
    """At the demo's size: about 3:1 Win:Lose, and the cues each modality shows separate the classes
    less well than all cues together (from the ground truth the generator inserted)."""
    plans = plan.plan_dataset(0, 64, 150)
    summary = files.summarise(plans)
    assert 0.2 <= summary["lose"] / summary["videos"] <= 0.3
    assert summary["subjects"] < summary["videos"] and summary["target"] > 0
    auc = separability(files.tables(plans)[3]).set_index("what")["auc"]
    assert auc["modality:all"] > 0.75
    for modality in ("keypoints", "pixels", "annotations", "teacher"):
        assert auc[f"modality:{modality}"] < auc["modality:all"], modality
    assert auc["modality:teacher"] < 0.7
    for cue in ("flush", "clench", "lip_press"):                      # the hidden cues carry signal
        assert auc[cue] > 0.6, cue
    for cue in ("talk_gesture", "nod", "shrug"):                     # distractors do not
        assert 0.35 < auc[cue] < 0.65, cue
