"""A newcomer's first hour on their own videos (issue 21): each trap they met, closed.

Valence by class name, a loud warning for a backwards teacher, `dataset` re-runs that leave finished
work alone, every bad file name at once, per-video coverage, option suggestions, quiet native
libraries, and the documented command lines that must parse.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import helpers_video
from test_teacher_behaviour import FPS, T, relaxed, tense

from hiddenemo.cli import COMMANDS, main
from hiddenemo.data.manifest import DatasetInfo, read_manifest, update_manifest, write_manifest
from hiddenemo.data.store import Store
from hiddenemo.errors import UserError
from hiddenemo.teacher.store import read_verdicts

SRC = Path(__file__).resolve().parents[1] / "src"


def clip(path: Path, n_frames: int = 12, fps: int = 10) -> Path:
    frames = [np.full((32, 32, 3), 20 + i * 10, np.uint8) for i in range(n_frames)]
    return helpers_video.write_video(path, frames, fps=fps)


def folder_of_clips(root: Path, names: list[str]) -> Path:
    folder = root / "videos"
    for i, name in enumerate(names):
        clip(folder / name, 10 + i)
    return folder


# ---- 2. valence by class name, and a loud warning for a backwards teacher ------------------------

def test_pleasant_names_a_class_and_follows_it_through_relabeling(tmp_path, work, capsys):
    videos = folder_of_clips(tmp_path, ["a.mp4", "b.mp4", "c.mp4"])
    labels = tmp_path / "labels.csv"
    labels.write_text("video_id,label\na,calm\nb,calm\nc,stressed\n")
    args = ["dataset", "folder", "--videos", videos, "--labels", labels, "--out", work]
    assert main([str(a) for a in args + ["--pleasant", "calm"]]) == 0
    info = DatasetInfo.load(work)
    assert info.positive == "stressed" and info.positive_valence == "unpleasant" and info.pleasant == "calm"
    assert "pleasant class 'calm'" in capsys.readouterr().out
    # Relabeling makes calm the rarer class, hence positive: the valence follows the name.
    labels.write_text("video_id,label\na,calm\nb,stressed\nc,stressed\n")
    assert main([str(a) for a in args + ["--pleasant", "calm"]]) == 0
    info = DatasetInfo.load(work)
    assert info.positive == "calm" and info.positive_valence == "pleasant" and info.pleasant == "calm"
    assert main([str(a) for a in args + ["--pleasant", "relaxed"]]) == 2
    assert "--pleasant 'relaxed' must name one of the two classes" in capsys.readouterr().err


def test_behaviour_teacher_refuses_to_guess_the_pleasant_class(tmp_path, work, capsys):
    from hiddenemo.teacher.behaviour import BehaviourTeacher

    videos = folder_of_clips(tmp_path, ["a.mp4", "b.mp4"])
    labels = tmp_path / "labels.csv"
    labels.write_text("video_id,label\na,calm\nb,stressed\n")
    assert main(["dataset", "folder", "--videos", str(videos), "--labels", str(labels), "--out", str(work)]) == 0
    assert "pleasant class not given" in capsys.readouterr().out
    info = DatasetInfo.load(work)
    assert info.positive_valence is None and info.pleasant is None
    with pytest.raises(UserError, match="--pleasant CLASS"):
        BehaviourTeacher(work, info)
    assert main(["teach", "--work", str(work), "--teacher", "behaviour"]) == 2
    assert "does not say which of ['calm', 'stressed']" in capsys.readouterr().err


def _pose_workspace(work: Path, valence: str) -> None:
    """Six labeled videos: relaxed ones are calm, tense ones stressed; stressed is positive."""
    store, rows = Store(work), []
    for i in range(6):
        stressed = i % 2 == 1
        store.save(f"s{i}", "pose", (tense if stressed else relaxed)(i).astype(np.float16), "test", "1")
        rows.append({"video_id": f"s{i}", "label": int(stressed), "split": "train", "fps": FPS, "n_frames": T})
    write_manifest(work, pd.DataFrame(rows))
    DatasetInfo(name="t", classes=["calm", "stressed"], positive="stressed", positive_valence=valence).save(work)


def test_a_backwards_teacher_gets_a_loud_warning_with_the_fix(work, capsys):
    _pose_workspace(work, "pleasant")        # the old default: the rules point to 'stressed' as pleasant
    assert main(["teach", "--work", str(work), "--teacher", "behaviour"]) == 0
    out = capsys.readouterr().out
    assert "AUROC 0.000 (95% interval 0.000-0.000)" in out
    assert "WARNING: teacher behaviour ranks the labeled videos backwards" in out
    assert "entirely below 0.5" in out and "--pleasant calm" in out
    _pose_workspace(work, "unpleasant")      # what `--pleasant calm` writes
    assert main(["teach", "--work", str(work), "--teacher", "behaviour"]) == 0
    out = capsys.readouterr().out
    assert "AUROC 1.000" in out and "WARNING" not in out
    # Back to the first setting: nothing is asked again, and its answers are again the ones read.
    _pose_workspace(work, "pleasant")
    assert main(["teach", "--work", str(work), "--teacher", "behaviour"]) == 0
    out = capsys.readouterr().out
    assert "asked 0" in out and "6 already answered" in out and "AUROC 0.000" in out and "WARNING" in out
    assert all(v.p_positive >= 0.5 for vid, v in read_verdicts(work, "behaviour").items() if vid in ("s0", "s2"))


# ---- 3. re-running `dataset` leaves finished work as it is ---------------------------------------

def test_rerunning_dataset_folder_keeps_measured_lengths_byte_identical(tmp_path, work):
    videos = folder_of_clips(tmp_path, ["a.mp4", "b.mp4", "c.mp4"])
    labels = tmp_path / "labels.csv"
    labels.write_text("video_id,label\na,calm\nb,stressed\n")
    args = [str(a) for a in ["dataset", "folder", "--videos", videos, "--labels", labels, "--out", work,
                             "--pleasant", "calm"]]
    assert main(args) == 0
    assert read_manifest(work).set_index("video_id").loc["b", "n_frames"] == 11      # the header's count
    # What extraction writes after decoding (extract/runner.py): the exact count and the measured rate.
    update_manifest(work, pd.DataFrame([{"video_id": "b", "n_frames": 9, "fps": 9.5}]))
    finished = {name: (work / name).read_bytes() for name in ("manifest.parquet", "dataset.json")}
    assert main(args) == 0
    assert {name: (work / name).read_bytes() for name in finished} == finished
    row = read_manifest(work).set_index("video_id").loc["b"]
    assert (row["n_frames"], row["fps"]) == (9, 9.5)
    # A video whose file changed place is probed afresh.
    (videos / "b.mp4").rename(videos / "b.mov")
    assert main(args) == 0
    row = read_manifest(work).set_index("video_id").loc["b"]
    assert (row["n_frames"], row["fps"]) == (11, 10.0)


# ---- 4. tiny data: figures with intervals, small folds named, a class too small named --------------

def test_train_on_tiny_data_prints_intervals_and_names_small_folds(tmp_path, capsys, caplog):
    import yaml
    from train_fixtures import TINY, make_workspace

    work = tmp_path / "w"
    make_workspace(work, n_train=11, n_test=3)
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump({**TINY, "model": {**TINY["model"], "modalities": ["pose"]},
                                      "stage1": {**TINY["stage1"], "epochs": 2}, "selection": {"folds": 5}}))
    base = ["train", "--work", str(work), "--config", str(config), "--stage2_enabled", "false"]
    assert main(base + ["--run", "r"]) == 0
    printed = capsys.readouterr()
    out = printed.err                                             # stdout stays JSON for scripts
    assert json.loads(printed.out)["stage1/pose"]["auroc"] >= 0
    assert "95% bootstrap intervals over subjects; the stage rows are out-of-fold on the 11 labeled" in out
    line = next(x for x in out.splitlines() if x.strip().startswith("stage1/pose"))
    assert line.count("[") == 4 and "AUROC" in line and "(n=11)" in line   # every figure with its interval
    # The run's files name their columns so that a truth and a prediction cannot be confused.
    oof = pd.read_csv(work / "runs" / "r" / "oof.csv")
    predictions = pd.read_csv(work / "runs" / "r" / "predictions.csv")
    assert "y_true" in oof and set(oof["y_true"]) == {0, 1} and "label" not in oof
    assert "predicted_class" in predictions and set(predictions["predicted_class"]) <= {"lose", "win"}
    assert "label" not in predictions
    warning = " ".join(r.getMessage() for r in caplog.records if r.levelname == "WARNING")
    assert "11 labeled videos in" in warning and "are noise" in warning and "--selection.folds 2" in warning
    # A class with one labeled video cannot be cross-validated: say which, and what to do.
    manifest = read_manifest(work)
    train = manifest["split"].eq("train")
    positives = manifest.index[train & manifest["label"].eq(1)]
    manifest.loc[positives[1:], "label"] = 0
    write_manifest(work, manifest)
    assert main(base + ["--run", "r2"]) == 2
    err = capsys.readouterr().err
    assert "at least 2 labeled training videos of each class, and 'win' has 1 (of 11 labeled)" in err


# ---- 5. bad file names: all at once, or derived ids ----------------------------------------------

def test_every_bad_file_name_is_listed_and_safe_ids_derive_usable_ones(tmp_path, work, capsys):
    videos = folder_of_clips(tmp_path, ["Interview (2).mp4", "café.mov", "ok_1.mp4", "[draft] take 3.mp4"])
    labels = tmp_path / "labels.csv"
    labels.write_text("video_id,label\nInterview (2),calm\nok_1,stressed\ncafe,calm\n")
    args = [str(a) for a in ["dataset", "folder", "--videos", videos, "--labels", labels, "--out", work]]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "3 file name(s) cannot be video ids" in err              # all of them, in one message
    for name, derived in [("Interview (2).mp4", "Interview_2"), ("café.mov", "cafe"),
                          ("[draft] take 3.mp4", "draft_take_3")]:
        assert f"{name!r} -> {derived}" in err
    assert "--safe_ids true" in err and "Traceback" not in err
    assert main(args + ["--safe_ids", "true", "--pleasant", "calm"]) == 0
    df = read_manifest(work).set_index("video_id")
    assert sorted(df.index) == ["Interview_2", "cafe", "draft_take_3", "ok_1"]
    assert Path(df.loc["Interview_2", "path"]).name == "Interview (2).mp4"    # the file keeps its name
    assert df.loc["Interview_2", "label"] == 0 and df.loc["cafe", "label"] == 0   # labeled by either name
    assert pd.isna(df.loc["draft_take_3", "label"])                            # not in the CSV: unlabeled


def test_derived_ids_that_clash_are_named(tmp_path):
    from hiddenemo.data.folder import find_videos

    videos = folder_of_clips(tmp_path, ["a b.mp4", "a_b.mp4"])
    with pytest.raises(UserError, match="several files share a video id"):
        find_videos(videos, safe_ids=True)


# ---- 6. coverage: person, face and hands per video -----------------------------------------------

def test_video_coverage_counts_frames_with_a_person_a_face_and_a_hand():
    from hiddenemo.data.keypoints import low_coverage, video_coverage

    n = 20
    box = np.full((n, 5), np.nan, np.float32)
    box[:16] = (0, 0, 10, 10, 1)                               # a person on 80 % of the frames
    pose = np.zeros((n, 137, 3), np.float16)
    pose[:3, 25:95, 2] = 1.0                                   # a face on 15 %
    pose[:10, 95:110, 2] = 1.0                                 # the left hand (15 of 21 points) on 50 %
    shares = video_coverage(box, pose)
    assert shares == {"person": 0.8, "face": 0.15, "hands": 0.5}
    assert low_coverage(shares) == ["face"]
    assert video_coverage(box[:0], pose[:0]) == {"person": 0.0, "face": 0.0, "hands": 0.0}


def test_extract_status_lines_and_summary_carry_coverage(tmp_path, work, capsys):
    from hiddenemo.extract.runner import read_status

    # A rendered title card (nobody in it) and, when it can be had, a real face clip.
    card = helpers_video.write_video(tmp_path / "title.mp4", [np.full((72, 96, 3), (30, 30, 120), np.uint8)] * 8)
    videos = {"title": card}
    source = helpers_video.pyfeat_video()
    if source is not None:
        videos["face"] = helpers_video.first_frames(source, tmp_path / "face.mp4", 16)
    write_manifest(work, pd.DataFrame({"video_id": list(videos), "split": "train",
                                       "path": [str(p) for p in videos.values()]}))
    assert main(["extract", "--work", str(work), "--extract.frames", "none", "--extract.detect_every", "4"]) == 0
    out = capsys.readouterr().out
    status = {r["video_id"]: r for r in read_status(work)}
    assert status["title"]["coverage"] == {"person": 0.0, "face": 0.0, "hands": 0.0}
    assert "no person found in any frame" in status["title"]["reason"]
    assert f"coverage (share of frames, median of {len(videos)} video" in out
    assert "with a person or a face in under 50% of the frames" in out and "  title: person 0%, face 0%" in out
    if "face" in status:
        assert status["face"]["coverage"]["person"] == 1.0 and status["face"]["coverage"]["face"] >= 0.9
        assert "  face:" not in out                                          # well covered: not listed
    # A re-run skips the work and still reports what was seen.
    assert main(["extract", "--work", str(work), "--extract.frames", "none", "--extract.detect_every", "4"]) == 0
    assert "  title: person 0%, face 0%" in capsys.readouterr().out
    assert read_status(work)[-1]["coverage"] is not None


# ---- 7. wrong option names: the nearest real ones, in one line ------------------------------------

@pytest.mark.parametrize("argv, wrong, suggested", [
    (["train", "--work", "W", "--epochs", "3"], "--epochs", "--stage1.epochs or --stage2.epochs"),
    (["extract", "--work", "W", "--frames_every", "10"], "--frames_every", "--extract.frames_every"),
    (["dataset", "folder", "--video", "v"], "--video", "--videos"),
    (["train", "--work", "W", "--selection.fold", "3"], "--selection.fold", "--selection.folds"),   # no abbreviations
])
def test_a_wrong_option_gets_the_nearest_in_one_line(argv, wrong, suggested, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "usage:" not in err
    assert f"unknown option {wrong} (did you mean {suggested}" in err


@pytest.mark.parametrize("argv, listed", [([], [c for c in COMMANDS]),
                                          (["dataset"], [c for c in COMMANDS["dataset"] if c != "_help"])])
def test_no_subcommand_lists_every_one(argv, listed, capsys):
    with pytest.raises(SystemExit):
        main(argv)
    err = capsys.readouterr().err
    assert "..." not in err and "…" not in err
    names = [line.split()[0] for line in err.splitlines() if line.startswith("  ")]
    assert names == listed


# ---- 8. native libraries' chatter stays off the terminal -----------------------------------------

CHATTY = """
import os, sys
from multiprocessing import get_context
from hiddenemo.native_log import quiet_native_logs

def child():
    os.write(2, b"W0000 00:00:1796059898.233752    6148 inference_feedback_manager.cc:114] Feedback manager\\n")

if __name__ == "__main__":
    with quiet_native_logs(enabled=os.environ["HIDDENEMO_LOG"] != "DEBUG"):
        os.write(2, b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\\n")
        os.write(2, b"I0000 00:00:1796059898.1 12 gl_context.cc:357] GL version: 3.2\\n")
        os.write(2, b"E0000 00:00:1796059898.1 12 graph.cc:1] a native error stays\\n")
        os.write(2, b"Water is wet\\n")             # starts with W, but is no log line
        print("python's own stderr", file=sys.stderr)
        p = get_context("spawn").Process(target=child)   # a worker process inherits the filter
        p.start(); p.join()
"""


@pytest.mark.parametrize("level", ["INFO", "DEBUG"])
def test_native_chatter_is_filtered_unless_debug(tmp_path, level):
    script = tmp_path / "chatty.py"
    script.write_text(CHATTY)
    env = {**os.environ, "PYTHONPATH": str(SRC), "HIDDENEMO_LOG": level}
    err = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=60).stderr
    assert "a native error stays" in err and "Water is wet" in err and "python's own stderr" in err
    chatter = ["XNNPACK", "gl_context.cc", "inference_feedback_manager"]
    assert all((c in err) == (level == "DEBUG") for c in chatter), err


def test_extract_preview_prints_no_mediapipe_chatter(tmp_path):
    card = helpers_video.write_video(tmp_path / "title.mp4", [np.full((72, 96, 3), 90, np.uint8)] * 4)
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    run = subprocess.run([sys.executable, "-m", "hiddenemo.cli", "extract", "--preview", str(card), "--out",
                          str(tmp_path / "p.png")], capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "W0000" not in run.stderr and "inference_feedback_manager" not in run.stderr
    assert "preview written to" in run.stdout
