"""The folder adapter: tiny real videos written here, labels CSVs with the usual accidents."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import helpers_video

from hiddenemo.cli import main
from hiddenemo.data.folder import choose_classes, find_videos, folder_table, read_labels
from hiddenemo.data.manifest import DatasetInfo, read_manifest
from hiddenemo.errors import UserError


def write_video(path: Path, n_frames: int = 12, fps: int = 10) -> Path:
    """A tiny 32x32 clip whose frames differ (one grey level per frame)."""
    frames = [np.full((32, 32, 3), i * 10, np.uint8) for i in range(n_frames)]
    return helpers_video.write_video(path, frames, fps=fps)


@pytest.fixture
def videos(tmp_path: Path) -> Path:
    folder = tmp_path / "videos"
    folder.mkdir()
    for name, n in [("alice_1", 12), ("alice_2", 15), ("bob_1", 9), ("carol_1", 11)]:
        write_video(folder / f"{name}.mp4", n)
    (folder / "broken.avi").write_bytes(b"not a video")
    (folder / "readme.txt").write_text("ignored")
    return folder


def labels_file(path: Path, text: str, bom: bool = False, crlf: bool = False) -> Path:
    text = text.replace("\n", "\r\n") if crlf else text
    path.write_bytes((("\ufeff" if bom else "") + text).encode())
    return path


def test_command_builds_the_manifest_with_defaults(videos, tmp_path, work, capsys):
    labels = labels_file(tmp_path / "labels.csv",
                         "video_id,label,subject_id\nalice_1,calm,alice\nalice_2,tense,alice\n"
                         "bob_1,calm,bob\nbroken,calm,\n", bom=True, crlf=True)
    assert main(["dataset", "folder", "--videos", str(videos), "--labels", str(labels), "--out", str(work)]) == 0
    df = read_manifest(work).set_index("video_id")
    assert df.index.tolist() == ["alice_1", "alice_2", "bob_1", "broken", "carol_1"]
    info = DatasetInfo.load(work)
    assert info.classes == ["calm", "tense"] and info.positive == "tense"      # the rarer class
    assert df["label"].tolist()[:4] == [0, 1, 0, 0] and df["label"].isna().tolist()[4]
    assert df["split"].tolist() == ["train", "train", "train", "train", "test"]   # unlabeled -> test
    assert df.loc["alice_2", "n_frames"] == 15 and df.loc["alice_2", "fps"] == 10
    assert pd.isna(df.loc["broken", "n_frames"]) and pd.isna(df.loc["broken", "fps"])  # unreadable: unknown
    assert df.loc["alice_1", "subject_id"] == "alice" and pd.isna(df.loc["broken", "subject_id"])
    assert Path(df.loc["bob_1", "path"]).is_file() and (df["source"] == "folder").all()
    assert "positive 'tense'" in capsys.readouterr().out


def test_positive_flag_splits_and_blank_labels(videos, tmp_path, work):
    labels = labels_file(tmp_path / "labels.csv",
                         "video_id,label,split\nalice_1,calm,val\nalice_2,tense,\nbob_1,,train\n")
    assert main(["dataset", "folder", "--videos", str(videos), "--labels", str(labels), "--out", str(work),
                 "--positive", "calm"]) == 0
    df = read_manifest(work).set_index("video_id")
    assert DatasetInfo.load(work).classes == ["tense", "calm"]
    assert df["label"].tolist()[:2] == [1, 0] and df["label"].isna().sum() == 3
    assert df["split"].tolist() == ["val", "train", "train", "test", "test"]


def test_more_than_two_classes(videos, tmp_path):
    labels = read_labels(labels_file(tmp_path / "l.csv", "video_id,label\nalice_1,c\nalice_2,a\nbob_1,b\n"))
    df, info = folder_table(find_videos(videos), labels)
    assert info.classes == ["a", "b", "c"] and info.positive is None
    assert df.set_index("video_id")["label"].tolist()[:3] == [2, 0, 1]


def test_choose_classes_ties_and_errors():
    assert choose_classes(pd.Series(["x", "y", "x", "y"]), None) == (["x", "y"], "y")
    assert choose_classes(pd.Series(["win", "win", "lose"]), "win") == (["lose", "win"], "win")
    with pytest.raises(UserError, match="a task needs two or more"):
        choose_classes(pd.Series(["x", None]), None)
    with pytest.raises(UserError, match="'maybe' is not among the labels"):
        choose_classes(pd.Series(["x", "y"]), "maybe")
    with pytest.raises(UserError, match=r"more than one way: \[\['Win', 'win'\]\]"):
        choose_classes(pd.Series(["win", "Win", "lose"]), None)


def test_label_rows_without_a_video_are_named(videos, tmp_path, work, capsys, caplog):
    labels = labels_file(tmp_path / "l.csv", "video_id,label\nalice_1,a\nalice_2,b\nalice_3,b\n")
    assert main(["dataset", "folder", "--videos", str(videos), "--labels", str(labels), "--out", str(work)]) == 2
    assert "have no video file: ['alice_3']" in capsys.readouterr().err
    assert main(["dataset", "folder", "--videos", str(videos), "--labels", str(labels), "--out", str(work),
                 "--missing_videos", "warn"]) == 0
    assert "alice_3" in caplog.text and "alice_3" not in read_manifest(work)["video_id"].tolist()


@pytest.mark.parametrize("text,message", [
    ("video_id,label\nalice_1,a\nalice_1,b\n", "listed more than once: 'alice_1' \\(lines 2, 3\\)"),
    ("id,label\nalice_1,a\n", "lacks column\\(s\\) \\['video_id'\\]"),
    ("video_id,label,split\nalice_1,a,training\n", "split must be one of"),
    ("video_id,label\n,a\n", "empty video_id on line\\(s\\) \\[2\\]"),
])
def test_bad_label_files(tmp_path, text, message):
    with pytest.raises(UserError, match=message):
        read_labels(labels_file(tmp_path / "l.csv", text))


def test_bad_video_folders(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        find_videos(tmp_path / "nope")
    (tmp_path / "a.mp4").write_bytes(b"")
    (tmp_path / "a.MOV").write_bytes(b"")
    with pytest.raises(UserError, match="several files share a video id"):
        find_videos(tmp_path)
    (tmp_path / "a.MOV").unlink()
    (tmp_path / "bad id.mp4").write_bytes(b"")
    with pytest.raises(UserError, match=r"1 file name\(s\) cannot be video ids.*--safe_ids true"):
        find_videos(tmp_path)
