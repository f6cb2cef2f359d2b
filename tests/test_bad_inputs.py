"""The bad-input corpus, generated here, through the real CLI (`hiddenemo.cli.main`): broken and odd
videos, broken OpenPose JSON, broken label files, manifests and ids that point out of the workspace,
and hostile teacher answers. Each gets a clear error naming the file (exit 2, no traceback) or a
documented recovery (docs/reliability.md): the video fails alone with its reason, or is processed.

Every case is counted in the reliability summary (`faults.ledger`)."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from faults.ledger import LEDGER
from helpers_video import moving_square_frames, write_video
from test_openpose import person, write_frame

from hiddenemo.cli import main
from hiddenemo.data.manifest import read_manifest
from hiddenemo.data.store import Store
from hiddenemo.extract.runner import read_status


@pytest.fixture
def ledger(request):
    return LEDGER.register(request.config)


def run_cli(args: list[str], capsys) -> tuple[int, str]:
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out + out.err


def refused(code: int, text: str, *must_name: str) -> bool:
    """Exit 2, one `hiddenemo: error:` line naming what it must, and no traceback."""
    return code == 2 and "Traceback" not in text and "hiddenemo: error:" in text and all(m in text for m in must_name)


# ---- videos ------------------------------------------------------------------------------------------
def video_corpus(folder: Path) -> dict[str, str]:
    """Bad and odd videos; value: `failed: <words of the reason>` or `ok` (processed as documented)."""
    folder.mkdir(parents=True)
    (folder / "empty.mp4").write_bytes(b"")
    (folder / "text.mp4").write_text("this is a text file, not a video\n")
    whole = folder.parent / "whole.mp4"
    whole = write_video(whole, moving_square_frames(20, 96, 72)).read_bytes()
    (folder / "truncated.mp4").write_bytes(whole[: len(whole) // 3])
    write_video(folder / "mislabelled.mp4.mkv", moving_square_frames(6, 96, 72))   # Matroska named .mp4
    (folder / "mislabelled.mp4.mkv").rename(folder / "mislabelled.mp4")
    write_video(folder / "noperson.mp4", [np.full((72, 96, 3), 90, np.uint8)] * 4)
    write_video(folder / "oneframe.mp4", moving_square_frames(1, 96, 72))
    write_video(folder / "rotated.mp4", moving_square_frames(4, 96, 72), rotation=90)
    write_video(folder / "vfr.mp4", moving_square_frames(5, 96, 72), times=[0, 0.04, 0.2, 0.22, 0.5])
    write_video(folder / "huge.mp4", moving_square_frames(2, 2560, 1440))
    return {"empty": "failed: empty", "text": "failed: not a readable video", "truncated": "failed: not a readable",
            "mislabelled": "ok", "noperson": "ok", "oneframe": "ok", "rotated": "ok", "vfr": "ok", "huge": "ok"}


def test_bad_videos_fail_alone_with_their_reason(tmp_path, capsys, ledger):
    expected = video_corpus(tmp_path / "videos")
    labels = tmp_path / "labels.csv"
    labels.write_text("video_id,label\n" + "".join(f"{v},{'win' if i % 2 else 'lose'}\n"
                                                   for i, v in enumerate(expected)))
    work = tmp_path / "work"
    code, text = run_cli(["dataset", "folder", "--videos", tmp_path / "videos", "--labels", labels, "--out", work], capsys)
    assert code == 0 and "Traceback" not in text, text
    code, text = run_cli(["extract", "--work", work, "--extract.keypoints", "none", "--extract.frames", "none",
                          "--extract.detect_every", "50", "--extract.threads", "1"], capsys)
    status = {s["video_id"]: s for s in read_status(work)}
    for video_id, outcome in expected.items():
        s = status[video_id]
        if outcome == "ok":
            clean = s["status"] == "ok" and Store(work).load(video_id, "box").shape[1] == 5
        else:
            clean = s["status"] == "failed" and outcome.split(": ")[1] in s["reason"] and f"failed {video_id}:" in text
        ledger.bad_input(clean and "Traceback" not in text, f"video {video_id}: {s}")
        assert clean, (video_id, s)
    assert code == 0 and "Traceback" not in text
    boxes = {v: Store(work).load(v, "box") for v in expected if expected[v] == "ok"}
    assert boxes["oneframe"].shape == (1, 5) and np.isnan(boxes["noperson"][:, :4]).all()   # NaN row = no person
    manifest = read_manifest(work).set_index("video_id")
    assert manifest.loc["vfr", "n_frames"] == 5 and manifest.loc["huge", "n_frames"] == 2


# ---- OpenPose JSON -----------------------------------------------------------------------------------
def openpose_corpus(root: Path) -> dict[str, str]:
    """One folder per video; value: what the ingestion report must say."""
    def folder(name, frames):
        d = root / name
        d.mkdir(parents=True)
        for f, content in frames.items():
            if isinstance(content, str):
                (d / f"{name}_{f:012d}_keypoints.json").write_text(content)
            else:
                write_frame(d, f, content, name)

    good = [person(100, 100)]
    folder("1", {0: good, 1: good, 2: "{not json"})                                  # malformed
    folder("2", {0: good, 3: good})                                                   # frames 1, 2 missing
    folder("3", {0: good, 1: [person(100, 100), person(30, 30), person(160, 40)]})    # extra people
    nan = json.dumps({"people": [person(100, 100)]}).replace("100.0, 40.0", "NaN, NaN", 1)
    folder("4", {0: good, 1: nan})                                                    # NaN values
    short = person(100, 100)
    short["pose_keypoints_2d"] = short["pose_keypoints_2d"][:50]
    folder("5", {0: good, 1: [short]})                                                # wrong lengths
    return {"1": "unreadable_files", "2": "missing_files", "3": "several_people", "4": "nan", "5": "unreadable_files"}


def imigue_tables(tmp_path: Path, ids: list[str], label_rows: list[str] | None = None) -> tuple[Path, Path]:
    labels, splits = tmp_path / "labels.csv", tmp_path / "splits.csv"
    header = "video_id,label_id,start_time,start_frame,end_time,end_frame,class,subject_id,subject_gender,subject_nationality,win_or_lose\n"
    rows = label_rows or [f"{v},1,0,0,0.1,1,{(i % 31) + 1},s{i},m,x,{'Win' if i % 2 else 'Lose'}\n" for i, v in enumerate(ids)]
    labels.write_text(header + "".join(rows))
    splits.write_text("video_id,subject_id,cvpr21_emotion,miga_cross_subject\n"
                      + "".join(f"{v},s{i},train,train\n" for i, v in enumerate(ids)))
    return labels, splits


def test_bad_openpose_json_is_reported_per_video(tmp_path, capsys, ledger):
    expected = openpose_corpus(tmp_path / "openpose")
    labels, splits = imigue_tables(tmp_path, list(expected))
    work = tmp_path / "work"
    code, text = run_cli(["dataset", "imigue", "--labels", labels, "--splits", splits, "--out", work,
                          "--openpose", tmp_path / "openpose", "--workers", "1"], capsys)
    assert code == 0 and "Traceback" not in text, text
    status = {s["video_id"]: s for s in map(json.loads, (work / "status" / "openpose.jsonl").read_text().splitlines())}
    store = Store(work)
    for video_id, what in expected.items():
        s, pose = status[video_id], store.load(video_id, "pose")
        # The documented recovery: the bad frames are empty rows (x = y = NaN, c = 0), never invented.
        contract = bool(np.all(np.isnan(pose[..., 0]) == (pose[..., 2] == 0)))
        if what == "nan":
            clean = s["status"] == "ok" and contract
        else:
            value = s["report"][what]
            clean = s["status"] == "ok" and contract and (value if isinstance(value, int) else len(value)) > 0
        ledger.bad_input(clean, f"openpose {video_id}: {s}")
        assert clean, (video_id, s)


# ---- label files, manifests, ids ----------------------------------------------------------------------
def label_cases(tmp_path: Path) -> list[tuple[str, list, tuple[str, ...]]]:
    videos = tmp_path / "videos"
    videos.mkdir()
    for name in ("a", "b", "c"):
        write_video(videos / f"{name}.mp4", moving_square_frames(2, 32, 24))
    ids = ["1", "2"]
    cases = []

    def labels_file(name: str, text: str | bytes) -> Path:
        path = tmp_path / name
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
        return path

    folder = ["dataset", "folder", "--videos", videos, "--out", tmp_path / "wf", "--labels"]
    cases.append(("unknown id", folder + [labels_file("unknown.csv", "video_id,label\na,win\nb,lose\nzz,win\n")],
                  ("zz",)))
    cases.append(("duplicate id", folder + [labels_file("dupe.csv", "video_id,label\na,win\na,lose\nb,lose\n")],
                  ("dupe.csv", "'a'")))
    cases.append(("no header", folder + [labels_file("nohead.csv", "a,win\nb,lose\n")], ("nohead.csv", "video_id")))
    cases.append(("not utf-8", folder + [labels_file("latin.csv", b"video_id,label\na,w\xe9in\nb,lose\n")],
                  ("latin.csv",)))
    cases.append(("bad split", folder + [labels_file("split.csv", "video_id,label,split\na,win,training\nb,lose,train\n")],
                  ("split.csv", "training")))
    labels, splits = imigue_tables(tmp_path, ids, [
        "1,1,0,0,0.1,1,45,s0,m,x,Win\n", "2,1,0,0,0.1,1,3,s1,m,x,Lose\n"])
    imigue = ["dataset", "imigue", "--splits", splits, "--out", tmp_path / "wi", "--labels"]
    cases.append(("unknown gesture class", imigue + [labels], (str(labels), "45")))
    bad_label = labels_file("label_value.csv", labels.read_text().replace("45", "3").replace(",Win", ",Won"))
    cases.append(("unknown emotion class", imigue + [bad_label], ("label_value.csv", "won")))
    cases.append(("conflicting labels", imigue + [labels_file("conflict.csv", labels.read_text().splitlines()[0] + "\n"
                  "1,1,0,0,0.1,1,3,s0,m,x,Win\n1,2,0,2,0.1,3,4,s0,m,x,Lose\n2,1,0,0,0.1,1,3,s1,m,x,Lose\n")], ("'1'",)))
    cases.append(("missing labels file", folder + [tmp_path / "absent.csv"], ("absent.csv",)))
    return cases


def test_bad_label_files_are_refused_naming_the_file(tmp_path, capsys, ledger):
    for name, args, must in label_cases(tmp_path):
        code, text = run_cli(args, capsys)
        clean = refused(code, text, *must)
        ledger.bad_input(clean, f"labels {name}: {text[-300:]}")
        assert clean, (name, code, text[-2000:])


def test_bom_and_crlf_label_files_are_read(tmp_path, capsys, ledger):
    videos = tmp_path / "videos"
    videos.mkdir()
    for name in ("a", "b"):
        write_video(videos / f"{name}.mp4", moving_square_frames(2, 32, 24))
    labels = tmp_path / "labels.csv"
    labels.write_bytes("\ufeffvideo_id,label\r\na,win\r\nb,lose\r\n".encode())
    code, text = run_cli(["dataset", "folder", "--videos", videos, "--labels", labels, "--out", tmp_path / "w"], capsys)
    manifest = read_manifest(tmp_path / "w")
    clean = code == 0 and manifest["label"].notna().all() and set(manifest["video_id"]) == {"a", "b"}
    ledger.bad_input(clean, f"BOM/CRLF: {text[-300:]}")
    assert clean, text


@pytest.fixture
def small_work(tmp_path):
    """A workspace with a manifest and pose arrays (no models needed)."""
    from train_fixtures import make_workspace

    work = tmp_path / "work"
    make_workspace(work, n_train=6, n_test=2)
    return work


def test_paths_out_of_the_workspace_are_refused(small_work, tmp_path, capsys, ledger):
    outside = tmp_path / "outside"
    outside.mkdir()
    manifest = pd.read_parquet(small_work / "manifest.parquet")
    cases = []
    # A run or teacher name that climbs out.
    cases.append(("run name", ["train", "--work", small_work, "--run", "../../escaped"], ("run name", "../../escaped")))
    cases.append(("report run name", ["report", "--work", small_work, "--run", "../x"], ("run name",)))
    cases.append(("teacher id", ["teach", "--work", small_work, "--teacher_id", "../x"], ("teacher id",)))
    for name, args, must in cases:
        code, text = run_cli(args, capsys)
        clean = refused(code, text, *must) and not (tmp_path / "escaped").exists()
        ledger.bad_input(clean, f"{name}: {text[-300:]}")
        assert clean, (name, text[-2000:])
    # A manifest whose video id climbs out of the store.
    bad = manifest.copy()
    bad.loc[0, "video_id"] = "../../etc"
    bad.to_parquet(small_work / "manifest.parquet", index=False)
    code, text = run_cli(["teach", "--work", small_work], capsys)
    clean = refused(code, text, "manifest.parquet", "../../etc")
    ledger.bad_input(clean, f"manifest id: {text[-300:]}")
    assert clean, text
    manifest.to_parquet(small_work / "manifest.parquet", index=False)
    # A video folder of the store that is a symlink out of the workspace: never written through.
    video_id = manifest.loc[0, "video_id"]
    target = small_work / "store" / video_id
    for f in target.iterdir():
        f.rename(outside / f.name)
    target.rmdir()
    os.symlink(outside, target)
    before = sorted(p.name for p in outside.iterdir())
    code, text = run_cli(["teach", "--work", small_work, "--teacher", "behaviour"], capsys)
    status = small_work / "status" / "teach.jsonl"
    said = refused(code, text, "outside the store") or (status.exists() and "outside the store" in status.read_text())
    clean = said and "Traceback" not in text and sorted(p.name for p in outside.iterdir()) == before
    ledger.bad_input(clean, f"symlinked store folder: {text[-300:]}")
    assert clean, text


# ---- teacher answers ------------------------------------------------------------------------------------
HOSTILE = {
    "malformed": "this is not JSON {",
    "oversized": json.dumps({"observations": [], "evidence_positive": ["x" * 2_000_000], "evidence_negative": [],
                             "reflection": "", "verdict": "win", "confidence_positive": 0.7}),
    "script": json.dumps({"observations": [{"code": "<script>alert(1)</script>", "description": "<img src=x onerror=alert(2)>"}],
                          "evidence_positive": ["</td><script>steal()</script>"], "evidence_negative": [],
                          "reflection": "<b>bold</b>", "verdict": "win", "confidence_positive": 0.9}),
    "out of range": json.dumps({"observations": [], "evidence_positive": [], "evidence_negative": [],
                                "reflection": "", "verdict": "win", "confidence_positive": 7}),
}


def test_hostile_teacher_answers_fail_or_are_kept_as_text(work, ledger):
    """Each answer goes through the real parser of the VLM teachers: a bad one is a failed verdict
    with a short reason (never a label); HTML in a valid one stays inert text (escaped in the
    report: tests/test_security.py)."""
    from hiddenemo.data.manifest import DatasetInfo
    from hiddenemo.teacher.config import VlmConfig
    from hiddenemo.teacher.openai_compat import OpenAITeacher
    from hiddenemo.teacher.retry import TeacherFailure
    from hiddenemo.teacher.runner import Video

    teacher = OpenAITeacher(work, DatasetInfo("t", ["lose", "win"], "win"), VlmConfig(model="m"), connect=False)
    video = Video("v1", None, 25.0, 50, None)
    for name, raw in HOSTILE.items():
        try:
            verdict = teacher.verdict_from_text(video, raw, raw, "m", 1, 1, 0)
            outcome = "kept"
        except TeacherFailure as e:
            outcome, verdict = f"failed: {e.reason}", None
        if name == "script":
            clean = verdict is not None and "<script>" in verdict.text     # stored as text, escaped on output
        else:
            clean = outcome.startswith("failed") and len(outcome) < 1000
        ledger.bad_input(clean, f"teacher answer {name}: {outcome[:200]}")
        assert clean, (name, outcome[:300])
