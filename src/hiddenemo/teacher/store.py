"""Verdict log and cache: `WORK/teacher/<teacher_id>.jsonl`, append-only.

Every ask appends one line, successful or failed; nothing is rewritten, so an interrupted run loses
at most the line being written (a torn last line is skipped on reading). The cache key hashes what
decides the answer — the video's content, the teacher, its model, the prompt version and the
parameters — so a re-run asks nothing already answered, and changing any of them re-asks.
"""
from __future__ import annotations

import hashlib
import json
import logging
import threading
from pathlib import Path

from pydantic import ValidationError

from hiddenemo.data.ids import check_video_id
from hiddenemo.data.store import append_line
from hiddenemo.teacher.retry import redact
from hiddenemo.teacher.schema import Verdict

log = logging.getLogger(__name__)
_append_lock = threading.Lock()


def verdict_path(work: str | Path, teacher_id: str) -> Path:
    return Path(work) / "teacher" / f"{check_video_id(teacher_id, 'teacher id')}.jsonl"


def file_hash(path: str | Path, chunk: int = 1 << 20) -> str:
    """sha256 of a file's bytes (a video, pose.npy, events.npy): the content part of the cache key."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def cache_key(content_hash: str, teacher: str, model: str, prompt_version: str, params: dict) -> str:
    blob = json.dumps({"content": content_hash, "teacher": teacher, "model": model,
                       "prompt": prompt_version, "params": params}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def append_verdict(work: str | Path, verdict: Verdict) -> None:
    """Append one verdict line (flushed and fsynced); safe to call from several threads."""
    with _append_lock:
        append_line(verdict_path(work, verdict.teacher_id), redact(verdict.model_dump_json()))


def read_all(work: str | Path, teacher_id: str) -> list[Verdict]:
    """Every verdict line in file order; unreadable lines (a torn last line) are skipped with a warning."""
    path = verdict_path(work, teacher_id)
    if not path.exists():
        return []
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            out.append(Verdict.model_validate_json(line))
        except ValidationError:
            log.warning("%s line %d is not a readable verdict (an interrupted write?); skipped", path, n)
    return out


def latest_by_key(work: str | Path, teacher_id: str) -> dict[str, Verdict]:
    """The last verdict per cache key, an ok one winning over any failure (what a re-run may skip)."""
    out: dict[str, Verdict] = {}
    for v in read_all(work, teacher_id):
        if v.ok or v.cache_key not in out or not out[v.cache_key].ok:
            out[v.cache_key] = v
    return out


def read_verdicts(work: str | Path, teacher_id: str) -> dict[str, Verdict]:
    """The latest successful verdict per video (what training and `embed` read)."""
    return {v.video_id: v for v in read_all(work, teacher_id) if v.ok}


def append_status(work: str | Path, stage: str, record: dict) -> None:
    """One line in `WORK/status/<stage>.jsonl`: {video_id, status, reason, seconds}."""
    with _append_lock:
        append_line(Path(work) / "status" / f"{stage}.jsonl", redact(json.dumps(record, default=str)))
