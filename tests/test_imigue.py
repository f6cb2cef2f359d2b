"""The iMiGUE adapter on small files written here in the official formats, and on the shared ones."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hiddenemo.cli import main
from hiddenemo.data.imigue import (EVENT_CLASSES, GESTURE_GROUP_OF, GESTURE_GROUPS, MICRO_GESTURE_NAMES, TAXONOMY,
                                   describe_events, events_multi_hot, read_annotations)
from hiddenemo.data.manifest import DatasetInfo, read_manifest
from hiddenemo.data.store import Store
from hiddenemo.errors import UserError
from test_openpose import person, write_frame

HEADER = ("video_id,label_id,start_time,start_frame,end_time,end_frame,class,subject_id,"
          "subject_gender,subject_nationality,win_or_lose")


def annotation_csv(path: Path, rows: list[tuple], bom: bool = False, crlf: bool = False) -> Path:
    """rows: (video_id, start_frame, end_frame, class, subject_id, win_or_lose)."""
    lines = [HEADER] + [f"{v},{i + 1},{s / 25:.4f},{s},{e / 25:.4f},{e},{c},{subj},F,Spain,{wl}"
                        for i, (v, s, e, c, subj, wl) in enumerate(rows)]
    text = ("\r\n" if crlf else "\n").join(lines) + "\n"
    path.write_text(("\ufeff" if bom else "") + text, encoding="utf-8", newline="")
    return path


def splits_csv(path: Path, rows: list[tuple]) -> Path:
    """rows: (video_id, subject_id, cvpr21_emotion, miga_cross_subject)."""
    path.write_text("video_id,subject_id,cvpr21_emotion,miga_cross_subject\n"
                    + "".join(",".join(map(str, r)) + "\n" for r in rows))
    return path


@pytest.fixture
def small_imigue(tmp_path: Path) -> tuple[Path, Path]:
    labels = annotation_csv(tmp_path / "labels.csv", [
        ("1", 10, 40, 20, "7", "Win"), ("1", 30, 60, 99, "7", "Win"), ("1", 95, 99, 31, "7", "Win"),
        ("2", 0, 4, 1, "8", "Lose"),
        ("3", 5, 14, 5, "9", ""),                 # withheld label: unlabeled
    ], bom=True, crlf=True)
    splits = splits_csv(tmp_path / "splits.csv", [
        ("1", 7, "train", "train"), ("2", 8, "test", "train"), ("3", 9, "unused", "test")])
    return labels, splits


def test_events_multi_hot_by_hand():
    ev = events_multi_hot(np.array([10, 30, 95]), np.array([40, 60, 99]), np.array([20, 99, 31]),
                          n_frames=100, fps=25, rate_hz=5)
    assert ev.shape == (20, 32) and ev.dtype == np.uint8     # 100 frames = 4 s = 20 rows of 5 frames
    col = {c: i for i, c in enumerate(EVENT_CLASSES)}
    np.testing.assert_array_equal(np.flatnonzero(ev[:, col[20]]), np.arange(2, 9))   # frames 10-40
    np.testing.assert_array_equal(np.flatnonzero(ev[:, col[99]]), np.arange(6, 13))  # frames 30-60
    np.testing.assert_array_equal(np.flatnonzero(ev[:, col[31]]), [19])
    assert ev.sum() == 7 + 7 + 1
    runs = describe_events(ev, 5)
    assert runs[0] == (0.4, 1.8, MICRO_GESTURE_NAMES[20])
    # an annotation past the given length extends the sequence instead of being cut
    assert events_multi_hot(np.array([0]), np.array([149]), np.array([1]), n_frames=100).shape == (30, 32)


def test_class_names_cover_every_column():
    assert len(EVENT_CLASSES) == 32 and set(MICRO_GESTURE_NAMES) == set(EVENT_CLASSES)
    assert len(set(MICRO_GESTURE_NAMES.values())) == 32
    assert set(GESTURE_GROUP_OF.values()) == set(GESTURE_GROUPS)


def test_taxonomy_matches_the_official_class_list(imigue_dir):
    """Every id, figure code, name and body-part group as in the shared gesture_classes.csv (the
    transcription of Figure 2 of the iMiGUE paper)."""
    import pandas as pd
    official = pd.read_csv(imigue_dir / "gesture_classes.csv", dtype=str, keep_default_na=False)
    assert sorted(int(c) for c in official["class"]) == sorted(TAXONOMY)
    for row in official.to_dict("records"):
        code, name, group = TAXONOMY[int(row["class"])]
        assert (code, group) == (row["figure_code"], row["group"]), row
        # 99's official name carries its figure code in brackets: "illustrative body language (C32)"
        assert row["name"].removesuffix(f" ({code})") == name, row


def test_command_on_small_files_bom_crlf_withheld_labels(small_imigue, work):
    labels, splits = small_imigue
    assert main(["dataset", "imigue", "--labels", str(labels), "--splits", str(splits),
                 "--protocol", "miga", "--out", str(work), "--events_rate", "5"]) == 0
    df = read_manifest(work).set_index("video_id")
    assert df["label"].tolist()[:2] == [1, 0] and df["label"].isna().tolist() == [False, False, True]
    assert df["split"].tolist() == ["train", "train", "test"]
    assert df["n_frames"].tolist() == [99, 4, 14] and (df["fps"] == 25).all()
    assert df["subject_id"].tolist() == ["7", "8", "9"]
    info = DatasetInfo.load(work)
    assert (info.classes, info.positive, info.protocol) == (["lose", "win"], "win", "miga")
    store = Store(work)
    ev = store.load("1", "events")
    assert ev.shape == (20, 32) and store.meta("1", "events")["params"]["classes"] == list(EVENT_CLASSES)
    assert store.meta("1", "events")["params"]["rate_hz"] == 5.0
    assert store.load("3", "events").sum() == 2
    # cvpr21 keeps its "unused" split
    assert main(["dataset", "imigue", "--labels", str(labels), "--splits", str(splits),
                 "--protocol", "cvpr21", "--out", str(work)]) == 0
    assert read_manifest(work)["split"].tolist() == ["train", "test", "unused"]


def test_rerun_skips_current_events_and_a_new_rate_rewrites_them(small_imigue, work, capsys):
    labels, splits = small_imigue
    args = ["dataset", "imigue", "--labels", str(labels), "--splits", str(splits), "--out", str(work)]
    main(args)
    assert "events: 3 written" in capsys.readouterr().out
    main(args)
    assert "events: 0 written, 3 already current" in capsys.readouterr().out
    main(args + ["--events_rate", "10"])
    assert "events: 3 written" in capsys.readouterr().out
    assert Store(work).load("1", "events").shape == (40, 32)


def test_openpose_folders_are_ingested_and_a_bad_one_does_not_stop_the_rest(small_imigue, work, tmp_path):
    labels, splits = small_imigue
    root = tmp_path / "openpose"
    for f in range(120):                               # video 1: more frames than annotated
        (root / "1").mkdir(parents=True, exist_ok=True)
        write_frame(root / "1", f, [person(300, 200)], name="1")
    (root / "0002").mkdir()                           # zero-padded folder name, but empty: fails
    (root / "77").mkdir()                             # no such video: ignored with a warning
    assert main(["dataset", "imigue", "--labels", str(labels), "--splits", str(splits),
                 "--out", str(work), "--openpose", str(root), "--workers", "1"]) == 0
    store = Store(work)
    assert store.load("1", "pose").shape == (120, 137, 3)
    assert read_manifest(work).set_index("video_id").loc["1", "n_frames"] == 120
    assert store.load("1", "events").shape == (24, 32)
    status = [json.loads(line) for line in (work / "status" / "openpose.jsonl").read_text().splitlines()]
    assert {s["video_id"]: s["status"] for s in status} == {"1": "ok", "2": "failed"}
    assert "no `*_<frame>_keypoints.json` files" in status[1]["reason"]
    main(["dataset", "imigue", "--labels", str(labels), "--splits", str(splits),
          "--out", str(work), "--openpose", str(root)])
    status = [json.loads(line) for line in (work / "status" / "openpose.jsonl").read_text().splitlines()]
    assert status[2] == {**status[2], "video_id": "1", "status": "skipped"}


def test_bad_inputs_are_user_errors_naming_the_problem(tmp_path, work, capsys):
    bad = annotation_csv(tmp_path / "a.csv", [("1", 10, 5, 20, "7", "Win")])
    with pytest.raises(UserError, match="end_frame before start_frame on line"):
        read_annotations(bad)
    bad = annotation_csv(tmp_path / "b.csv", [("1", 1, 5, 42, "7", "Win")])
    with pytest.raises(UserError, match=r"unknown micro-gesture class\(es\) \[42\]"):
        read_annotations(bad)
    bad = annotation_csv(tmp_path / "c.csv", [("1", 1, 5, 2, "7", "Win"), ("1", 6, 9, 2, "7", "Lose")])
    splits = splits_csv(tmp_path / "s.csv", [("1", 7, "train", "train")])
    assert main(["dataset", "imigue", "--labels", str(bad), "--splits", str(splits), "--out", str(work)]) == 2
    assert "different win_or_lose" in capsys.readouterr().err
    good = annotation_csv(tmp_path / "d.csv", [("1", 1, 5, 2, "7", "Win"), ("5", 1, 5, 2, "7", "Win")])
    assert main(["dataset", "imigue", "--labels", str(good), "--splits", str(splits), "--out", str(work)]) == 2
    assert "['5'] are annotated but missing from the split table" in capsys.readouterr().err
    assert main(["dataset", "imigue", "--labels", str(good), "--splits", str(splits), "--out", str(work),
                 "--protocol", "nope"]) == 2
    assert "unknown protocol" in capsys.readouterr().err


def test_shared_imigue_files(imigue_dir, tmp_path, capsys):
    work = tmp_path / "work"
    assert main(["dataset", "imigue", "--labels", str(imigue_dir / "labels_masked.csv"),
                 "--splits", str(imigue_dir / "splits.csv"), "--protocol", "miga", "--out", str(work)]) == 0
    df = read_manifest(work)
    assert len(df) == 359
    train, test = df[df["split"] == "train"], df[df["split"] == "test"]
    assert len(train) == 255 and train["label"].notna().all() and int(train["label"].sum()) == 202
    assert len(test) == 104 and test["label"].isna().all()
    store = Store(work)
    assert all(store.has(v, "events") for v in df["video_id"])
    assert df["n_frames"].min() == 504 and df["n_frames"].max() == 35046
    assert main(["dataset", "imigue", "--labels", str(imigue_dir / "labels_masked.csv"),
                 "--splits", str(imigue_dir / "splits.csv"), "--protocol", "cvpr21", "--out", str(work)]) == 0
    df = read_manifest(work)
    assert df["split"].value_counts().to_dict() == {"unused": 157, "train": 102, "test": 100}
    assert df[df["split"] == "train"]["label"].notna().sum() == 102 - 38


def test_videos_are_matched_by_id_and_probed(small_imigue, work, tmp_path):
    from test_folder import write_video
    labels, splits = small_imigue
    folder = tmp_path / "videos"
    folder.mkdir()
    write_video(folder / "0001.mp4", n_frames=60, fps=10)          # zero-padded id
    write_video(folder / "3.avi", n_frames=12, fps=10)
    write_video(folder / "99.mp4", n_frames=5)                      # not in the split table: ignored
    assert main(["dataset", "imigue", "--labels", str(labels), "--splits", str(splits),
                 "--out", str(work), "--videos", str(folder)]) == 0
    df = read_manifest(work).set_index("video_id")
    assert Path(df.loc["1", "path"]).name == "0001.mp4" and pd_isna(df.loc["2", "path"])
    assert (df.loc["1", "fps"], df.loc["1", "n_frames"]) == (10.0, 60)
    assert (df.loc["2", "fps"], df.loc["2", "n_frames"]) == (25.0, 4)    # no video: annotations
    # 60 frames at 10 fps = 6 s = 30 rows at 5 Hz; annotation frames still count at 25 fps
    events = Store(work).load("1", "events")
    assert events.shape == (30, 32) and np.flatnonzero(events[:, 19]).tolist() == list(range(2, 9))


def pd_isna(value) -> bool:
    import pandas as pd
    return bool(pd.isna(value))
