"""A killed extraction resumes without recomputing what finished; worker processes give the same
arrays as one process. Tiny videos rendered here, real models, no frame embeddings (fast)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from helpers_video import moving_square_frames, write_video
from test_extract_job import good_video, workspace

from hiddenemo.data.store import Store
from hiddenemo.extract.config import ExtractConfig
from hiddenemo.extract.runner import extract_all, read_status

ROOT = Path(__file__).resolve().parents[1]


def test_killed_run_resumes_without_recomputing(tmp_path, work):
    videos = {f"v{i}": write_video(tmp_path / f"v{i}.mp4", moving_square_frames(40, 96, 72, seed=i))
              for i in range(4)}
    workspace(work, videos)
    args = [sys.executable, "-m", "hiddenemo.cli", "extract", "--work", str(work), "--extract.frames", "none"]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    status = work / "status" / "extract.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if status.exists() and status.read_text().strip():
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    finished = {s["video_id"] for s in read_status(work) if s["status"] == "ok"}
    assert finished and len(finished) < 4, "the kill should land mid-run"
    stamps = {f: f.stat().st_mtime_ns for vid in finished for f in (work / "store" / vid).glob("*")}

    summary = extract_all(work, ExtractConfig(frames="none"))
    # With several workers (the default on more than one core) a video may have its arrays written
    # but not yet its status line when the kill lands: it is complete, so it is skipped too.
    assert summary["skipped"] >= len(finished) and summary["ok"] + summary["skipped"] == 4
    assert {f: f.stat().st_mtime_ns for f in stamps} == stamps         # nothing finished was redone
    assert all(Store(work).load(v, "pose").shape == (40, 137, 3) for v in videos)


def test_workers_in_processes_match_one_process(tmp_path):
    videos = {f"w{i}": good_video(tmp_path, f"w{i}", 10, seed=i) for i in range(3)}
    one, two = workspace(tmp_path / "one", videos), workspace(tmp_path / "two", videos)
    config = ExtractConfig(box="pose-box", frames="none")
    assert extract_all(one, config, workers=1)["ok"] == 3
    assert extract_all(two, config, workers=2)["ok"] == 3
    for vid in videos:
        for name in ("box", "pose"):
            np.testing.assert_array_equal(Store(one).load(vid, name), Store(two).load(vid, name))
    assert len(read_status(two)) == 3
