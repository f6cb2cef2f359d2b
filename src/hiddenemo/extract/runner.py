"""Extraction over a whole manifest: a `VideoJob` per worker process, one status line per video.

The parent process is the only writer of `WORK/status/extract.jsonl` and of the manifest's fps and
n_frames, so workers never race on a shared file. A video's arrays are complete once its status
line is written; killing the run loses at most the videos in flight. Several `extract` processes on
one workspace split the videos through claims (`data/claims.py`): each video is computed by one of
them, and the others count it under `elsewhere`.
"""
from __future__ import annotations

import json
import logging
import os
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from multiprocessing import active_children, get_context
from pathlib import Path

import pandas as pd

from hiddenemo.data.claims import Claims, LogTail, SharedQueue
from hiddenemo.data.manifest import read_manifest, select_videos, update_manifest
from hiddenemo.data.store import Store, append_line
from hiddenemo.errors import UserError
from hiddenemo.extract import decode
from hiddenemo.extract.config import ExtractConfig
from hiddenemo.extract.job import VideoJob
from hiddenemo.processes import die_with_parent
from hiddenemo.words import count

log = logging.getLogger(__name__)

STATUS_FILE = Path("status") / "extract.jsonl"


def append_status(work: Path, record: dict) -> None:
    """One JSON line per attempt; appended and flushed at once so a kill keeps the lines before."""
    line = {k: record.get(k) for k in ("video_id", "status", "reason", "seconds", "n_frames", "fps", "coverage")}
    append_line(Path(work) / STATUS_FILE, json.dumps(line))


def read_status(work: Path) -> list[dict]:
    path = Path(work) / STATUS_FILE
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def extract_all(work: str | Path, config: ExtractConfig, workers: int = 1,
                video_ids: list[str] | None = None) -> dict:
    """Run extraction on every video of the manifest (or the given ids); returns the summary."""
    from tqdm import tqdm

    work = Path(work)
    manifest = select_videos(read_manifest(work), video_ids, work)      # ManifestError is a UserError
    swept = Store(work).sweep_temporary()
    if swept:
        log.info("removed %d temporary file(s) an interrupted run left in %s", swept, work / "store")
    todo = [(r.video_id, None if pd.isna(r.path) else str(r.path),
             _expected_frames(r.path, r.n_frames)) for r in manifest.itertuples()]
    workers = max(1, min(workers or config.default_workers(), len(todo) or 1))     # 0: from the cores
    threads = config.threads or max(1, (os.cpu_count() or 1) // workers)
    counts = {"ok": 0, "failed": 0, "skipped": 0}
    failures: dict[str, str] = {}
    frames_done = 0
    start = time.perf_counter()
    bar = tqdm(total=sum(n for *_, n in todo) or None, unit="frame", unit_scale=True, dynamic_ncols=True,
               desc=f"extract {count(len(todo), 'video')}")

    def finish(status: dict, expected: int) -> None:
        nonlocal frames_done
        append_status(work, status)
        counts[status["status"]] += 1
        if status["status"] == "failed":
            failures[status["video_id"]] = status["reason"]
        n = status.get("n_frames") or 0
        if status["status"] == "ok":
            frames_done += n
        if status["status"] == "skipped" and bar.total:
            bar.total = max(bar.total - expected, bar.n)     # skipped frames must not inflate the rate
        record_video(work, status)
        bar.set_postfix(ok=counts["ok"], failed=counts["failed"], skipped=counts["skipped"])

    claims = Claims.of_stage(work, "extract")
    recorded_elsewhere = LogTail(work / STATUS_FILE)       # a status line this process did not write
    queue = SharedQueue([(video_id, (path, n)) for video_id, path, n in todo], claims,
                        recorded_elsewhere.__contains__)
    try:
        with claims:
            if workers == 1:
                job = VideoJob(work, config, threads, progress=bar.update)
                while queue:
                    if (got := queue.take()) is None:
                        queue.wait()                           # the rest is in other processes' hands
                        continue
                    video_id, (path, expected) = got
                    before = bar.n
                    status = job.run(video_id, path)
                    if status["status"] == "ok" and bar.n == before:
                        bar.update(status.get("n_frames") or 0)
                    finish(status, expected)
                    queue.done(video_id)
            else:
                _run_pool(work, config, workers, threads, queue, bar, finish)
    finally:
        bar.close()
    seconds = time.perf_counter() - start
    return {"videos": len(todo), **counts, "elsewhere": len(queue.elsewhere), "failures": failures,
            "frames": frames_done, "seconds": round(seconds, 1),
            "frames_per_second": round(frames_done / seconds, 1) if seconds else 0.0}


def _run_pool(work, config, workers, threads, queue: SharedQueue, bar, finish) -> None:
    # spawn: MediaPipe, onnxruntime and torch are not fork-safe once initialised.
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_init_worker,
                             initargs=(str(work), config, threads)) as pool:
        running = {}
        try:
            while queue or running:
                # A short queue: Ctrl-C drops little, and claims are taken only just before the work.
                while len(running) < 2 * workers and (got := queue.take()) is not None:
                    video_id, (path, expected) = got
                    running[pool.submit(_run_in_worker, video_id, path)] = (video_id, expected)
                if not running:
                    queue.wait()                               # the rest is in other processes' hands
                    continue
                done, _ = wait(running, timeout=1.0, return_when=FIRST_COMPLETED)
                for future in done:
                    video_id, expected = running.pop(future)
                    status = future.result()
                    if status["status"] == "ok":
                        bar.update(status.get("n_frames") or 0)
                    finish(status, expected)
                    queue.done(video_id)
        except BaseException as e:
            for future in running:
                future.cancel()
            if isinstance(e, KeyboardInterrupt):
                # Ctrl-C on this process alone would let each worker finish the video it holds (seconds
                # to minutes): stop them. Their writes are atomic; a stray *.tmp is swept later.
                for child in active_children():
                    child.terminate()
            raise


_WORKER_JOB: VideoJob | None = None   # one per worker process, built by the pool's initializer


def _init_worker(work: str, config: ExtractConfig, threads: int) -> None:
    global _WORKER_JOB
    die_with_parent()
    _WORKER_JOB = VideoJob(work, config, threads)


def _run_in_worker(video_id: str, path: str | None) -> dict:
    return _WORKER_JOB.run(video_id, path)


def _expected_frames(path, n_frames) -> int:
    """Frames a video should have, for the progress bar's ETA: the manifest's count, else the header's."""
    if not pd.isna(n_frames):
        return int(n_frames)
    if pd.isna(path):
        return 0
    try:
        return decode.probe(path).n_frames_hint
    except UserError:
        return 0            # the job will report what is wrong with it


def record_video(work: Path, status: dict) -> None:
    """Exact frame count and measured rate into the manifest, once a video has been decoded."""
    row = {"video_id": status["video_id"]}
    if status.get("n_frames"):
        row["n_frames"] = int(status["n_frames"])
    if status.get("fps"):
        row["fps"] = float(status["fps"])
    if len(row) > 1:
        update_manifest(work, pd.DataFrame([row]))
