"""Ask a teacher about every video of a workspace, skipping what the cache already holds.

Each video is hashed, looked up by cache key, asked if needed (in `teacher.concurrency` worker
threads) and its verdict appended at once, so an interrupted run keeps every finished answer. A
video whose input is missing (no video file, no pose.npy) gets a `failed` status line, not a
verdict: it is a problem with the workspace, not the teacher's answer. Several `teach` processes of
one teacher id on one workspace split the videos through claims (`data/claims.py`): a video is
asked once, and the others count it under `elsewhere`.
"""
from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from hiddenemo.data.claims import Claims, LogTail, SharedQueue
from hiddenemo.data.manifest import DatasetInfo, read_manifest, select_videos
from hiddenemo.errors import UserError
from hiddenemo.teacher.retry import TeacherFailure, redact
from hiddenemo.teacher.schema import Verdict, failed
from hiddenemo.teacher.store import (append_status, append_verdict, cache_key, latest_by_key, read_verdicts,
                                    verdict_path)

log = logging.getLogger(__name__)
DEFAULT_FPS = 25.0


class MissingInput(Exception):
    """The video's input for this teacher is absent; the message says which file and what to run."""


@dataclass
class Video:
    video_id: str
    path: str | None
    fps: float
    n_frames: int | None
    label: int | None

    @property
    def duration_s(self) -> float | None:
        return self.n_frames / self.fps if self.n_frames else None


def manifest_videos(work: Path, only: list[str] | None = None) -> list[Video]:
    df = select_videos(read_manifest(work), only or None, work)
    return [Video(video_id=str(r.video_id), path=None if pd.isna(r.path) else str(r.path),
                  fps=DEFAULT_FPS if pd.isna(r.fps) or not r.fps > 0 else float(r.fps),
                  n_frames=None if pd.isna(r.n_frames) else int(r.n_frames),
                  label=None if pd.isna(r.label) else int(r.label))
            for r in df.itertuples(index=False)]


class Teacher(ABC):
    """A teacher answers about one video at a time; the runner does caching, logging and threads."""
    name: str = ""
    model: str = ""
    prompt_version: str = ""
    concurrency: int = 1

    def __init__(self, work: Path, info: DatasetInfo):
        self.work = Path(work)
        self.info = info
        if not info.classes:
            raise UserError(f"the {self.name} teacher words its verdicts with the class names, and {self.work} has "
                            "none (no labels): re-create it with `hiddenemo dataset folder ... --classes "
                            "'[NEGATIVE,POSITIVE]'`, or with --labels")
        self.positive = info.positive or info.classes[-1]

    def params(self) -> dict:
        """Everything besides content, model and prompt that changes the answer (part of the cache key)."""
        return {"classes": list(self.info.classes), "positive": self.positive}

    @abstractmethod
    def content_hash(self, video: Video) -> str:
        """Hash of the input this teacher reads; raises MissingInput when it is absent."""

    @abstractmethod
    def ask(self, video: Video) -> Verdict:
        """The verdict for one video (teacher_id and cache_key are filled in by the runner);
        raises TeacherFailure when no usable answer came back."""

    def estimate(self, video: Video) -> dict:
        """Expected {input_tokens, output_tokens, cost_usd} of asking (zero for offline teachers)."""
        return {"input_tokens": 0, "output_tokens": 0, "cost_usd": 0.0}

    def label_for(self, p_positive: float | None) -> str | None:
        if p_positive is None:
            return None
        negative = next((c for c in self.info.classes if c != self.positive), None)
        return self.positive if p_positive >= 0.5 else negative


@dataclass
class RunSummary:
    asked: int = 0
    ok: int = 0
    failed: int = 0
    cached_ok: int = 0
    cached_failed: int = 0
    missing: list[str] = field(default_factory=list)
    elsewhere: int = 0                 # answered by another process meanwhile
    answered: LogTail | None = field(default=None, repr=False)   # verdicts appended since the cache was read
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    estimate: dict = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)


def plan(work: Path, teacher: Teacher, teacher_id: str, videos: list[Video], retry_failed: bool):
    """Split videos into (to ask with their keys, cached ok, cached failed, missing input)."""
    cache, current = latest_by_key(work, teacher_id), read_verdicts(work, teacher_id)
    todo, summary = [], RunSummary()
    for video in videos:
        try:
            key = cache_key(teacher.content_hash(video), teacher.name, teacher.model,
                            teacher.prompt_version, teacher.params())
        except MissingInput as e:
            summary.missing.append(video.video_id)
            append_status(work, "teach", {"video_id": video.video_id, "teacher_id": teacher_id,
                                          "status": "failed", "reason": str(e), "seconds": 0.0})
            log.warning("%s", e)
            continue
        hit = cache.get(key)
        if hit is not None and (hit.ok or not retry_failed):
            summary.cached_ok += hit.ok
            summary.cached_failed += not hit.ok
            if hit.ok and current.get(video.video_id, hit).cache_key != key:
                # Back to an earlier setting (say, the other `--pleasant`): its answer, not asked again,
                # must become the latest one again, which is what training, `embed` and the report read.
                append_verdict(work, hit)
            continue
        todo.append((video, key))
    return todo, summary


def prepare(work: Path, teacher: Teacher, teacher_id: str, videos: list[Video], retry_failed: bool):
    """`plan`, plus the estimated tokens and cost of the videos to ask (shared with the Ray engine)."""
    answered = LogTail(verdict_path(work, teacher_id), field="cache_key")    # before the cache is read
    todo, summary = plan(work, teacher, teacher_id, videos, retry_failed)
    summary.answered = answered
    for key in ("input_tokens", "output_tokens", "cost_usd"):
        summary.estimate[key] = sum(teacher.estimate(v)[key] for v, _ in todo)
    summary.estimate["videos"] = len(todo)
    return todo, summary


def claims_of(work: Path, teacher_id: str) -> Claims:
    return Claims.of_stage(work, f"teach-{teacher_id}")


def shared(todo: list[tuple[Video, str]], claims: Claims, summary: RunSummary) -> SharedQueue:
    """The videos to ask, split with other processes through `claims`: a video whose verdict another
    process appended since `prepare` read the cache is not asked again."""
    keys = {v.video_id: key for v, key in todo}
    return SharedQueue([(v.video_id, (v, key)) for v, key in todo], claims,
                       lambda video_id: keys[video_id] in summary.answered)


def ask_one(teacher: Teacher, teacher_id: str, video: Video, key: str) -> Verdict:
    """One video's verdict; never raises: a failure is a failed verdict with its reason."""
    start = time.monotonic()
    try:
        verdict = teacher.ask(video)
    except TeacherFailure as e:
        verdict = failed(video.video_id, teacher_id, e.reason, raw=e.raw, **e.usage)
    except Exception as e:  # noqa: BLE001
        # An unexpected error on one video (unreadable file, a library bug) must not stop the others.
        verdict = failed(video.video_id, teacher_id, redact(f"{type(e).__name__}: {e}"))
    return verdict.model_copy(update={
        "video_id": video.video_id, "teacher_id": teacher_id, "cache_key": key,
        "model": verdict.model or teacher.model, "prompt_version": teacher.prompt_version,
        "seconds": round(time.monotonic() - start, 3)})


def record(work: Path, verdict: Verdict) -> None:
    """The verdict line and its status line (WORK/teacher/<id>.jsonl, WORK/status/teach.jsonl)."""
    append_verdict(work, verdict)
    append_status(work, "teach", {"video_id": verdict.video_id, "teacher_id": verdict.teacher_id,
                                  "status": verdict.status, "reason": verdict.reason,
                                  "seconds": verdict.seconds})


def tally(summary: RunSummary, v: Verdict) -> None:
    summary.asked += 1
    summary.ok += v.ok
    summary.failed += not v.ok
    if not v.ok:
        summary.failures[v.video_id] = v.reason or ""
        log.warning("video %s: teacher %s failed: %s", v.video_id, v.teacher_id, v.reason)
    summary.input_tokens += v.input_tokens
    summary.output_tokens += v.output_tokens + v.thinking_tokens
    summary.cost_usd += v.cost_usd


def run(work: Path, teacher: Teacher, teacher_id: str, videos: list[Video], retry_failed: bool = False,
        dry_run: bool = False) -> RunSummary:
    """Ask `teacher` about every video not already answered; with `dry_run`, only estimate the cost."""
    from tqdm import tqdm

    todo, summary = prepare(work, teacher, teacher_id, videos, retry_failed)
    if dry_run or not todo:
        return summary

    def one(video: Video, key: str) -> Verdict:
        verdict = ask_one(teacher, teacher_id, video, key)
        record(work, verdict)
        return verdict

    with claims_of(work, teacher_id) as claims, ThreadPoolExecutor(max_workers=max(1, teacher.concurrency)) as pool:
        queue, running = shared(todo, claims, summary), {}
        bar = tqdm(total=len(todo), desc=f"teach {teacher_id}", unit="video")
        while queue or running:
            while len(running) < max(1, teacher.concurrency) and (got := queue.take()) is not None:
                video_id, (video, key) = got
                running[pool.submit(one, video, key)] = video_id
            if not running:
                queue.wait()                                   # the rest is in other processes' hands
                continue
            finished, _ = wait(running, timeout=1.0, return_when=FIRST_COMPLETED)
            for fut in finished:
                queue.done(running.pop(fut))
                tally(summary, fut.result())
                bar.update(1)
        bar.close()
        summary.elsewhere = len(queue.elsewhere)
    return summary
