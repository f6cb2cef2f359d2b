"""Batch teaching: every video not yet answered in one job of the provider's batch API (`teach --batch`),
at half the online price (Gemini Batch API, OpenAI Batch API), results within 24 hours.

The job is recorded in `WORK/teacher/<teacher_id>.batch.json` (provider, job id, video -> cache key,
uploads) the moment the provider accepts it, so a `teach` killed while waiting loses nothing: the
next `teach` of that teacher id (with or without `--batch`) collects the same job instead of
submitting another. Each result becomes an ordinary verdict in `WORK/teacher/<teacher_id>.jsonl`
(same cache keys as online answers, so either way a video is asked once). A video the job could not
answer is recorded as a failed verdict with the provider's reason and left for the next run:
`teach --batch --retry_failed` puts those in a new job, `teach --retry_failed` asks them online.
When the results are stored, the uploads are deleted and the record removed.

A backend (`gemini`, `openai`) supplies four steps: `batch_submit(todo) -> job`, `batch_state(job) ->
BatchState`, `batch_results(job) -> {video_id: Verdict | TeacherFailure}`, `batch_cleanup(job)`.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from hiddenemo.data.store import atomic_write_text
from hiddenemo.errors import UserError
from hiddenemo.teacher import runner
from hiddenemo.teacher.retry import TeacherFailure
from hiddenemo.teacher.schema import Verdict, failed
from hiddenemo.teacher.store import latest_by_key, verdict_path

log = logging.getLogger(__name__)


@dataclass
class BatchState:
    state: str           # the provider's own word (JOB_STATE_RUNNING, in_progress, ...)
    done: bool           # finished, successfully or not: results (or failures) can be collected
    progress: str = ""   # e.g. "12 of 40 done", when the provider says


def job_path(work: Path, teacher_id: str) -> Path:
    path = verdict_path(work, teacher_id)
    return path.with_name(path.stem + ".batch.json")


def pending_batch(work: Path, teacher_id: str) -> dict | None:
    """The job submitted earlier and not yet collected, if any."""
    path = job_path(work, teacher_id)
    return json.loads(path.read_text()) if path.exists() else None


def run_batch(work: Path, teacher, teacher_id: str, videos: list[runner.Video], retry_failed: bool = False,
              dry_run: bool = False) -> runner.RunSummary:
    """Submit one job for the videos not yet answered (or resume the one pending), wait for it, and
    record its results; with `dry_run`, only estimate the cost at the batch price."""
    if not getattr(teacher, "batch", False):
        raise UserError(f"the {teacher.name} teacher has no batch API: --batch works with gemini and openai")
    job = pending_batch(work, teacher_id)
    if job is not None and job["teacher"] != teacher.name:
        raise UserError(f"{job_path(work, teacher_id)} is a {job['teacher']} batch job, and this is the {teacher.name} "
                        f"teacher: run `teach --teacher {job['teacher']} --teacher_id {teacher_id}` to collect it")
    if job is None:
        todo, summary = runner.prepare(work, teacher, teacher_id, videos, retry_failed)
        summary.estimate["online_cost_usd"] = summary.estimate["cost_usd"] / teacher.price_factor
        if dry_run or not todo:
            return summary
        job = teacher.batch_submit(todo)
        job.update(teacher=teacher.name, model=teacher.model, submitted=time.time(),
                   videos={video.video_id: key for video, key in todo})
        if job["id"] is None:                            # not one video could be sent
            collect(work, teacher, teacher_id, job, {}, "not submitted", summary)
            return summary
        atomic_write_text(job_path(work, teacher_id), json.dumps(job, indent=1))
        log.info("submitted batch job %s with %d videos; if this process stops, `teach` again collects it",
                 job["id"], len(todo))
    else:
        summary = runner.RunSummary(estimate={"videos": 0, "input_tokens": 0, "output_tokens": 0, "cost_usd": 0.0})
        log.info("collecting batch job %s submitted %s (%d videos)", job["id"],
                 time.strftime("%Y-%m-%d %H:%M", time.localtime(job["submitted"])), len(job["videos"]))
        if dry_run:
            return summary
    state = wait(teacher, job)
    if not state.done:
        raise UserError(f"batch job {job['id']} is still {state.state} after {teacher.cfg.batch_wait_s:.0f} s "
                        f"({state.progress or 'no progress reported'}); run the same `teach` later to collect it")
    collect(work, teacher, teacher_id, job, teacher.batch_results(job), state.state, summary)
    return summary


def wait(teacher, job: dict) -> BatchState:
    """Poll until the job is done or `batch_wait_s` has passed, showing its state."""
    from tqdm import tqdm

    deadline = time.monotonic() + teacher.cfg.batch_wait_s
    with tqdm(desc=f"batch job {job['id']}", bar_format="{desc} [{elapsed}]") as bar:
        while True:
            state = teacher.retrying(lambda: teacher.batch_state(job), f"batch job {job['id']}: state")
            bar.set_description_str(f"batch job {job['id']}: {state.state} {state.progress}".strip())
            if state.done or time.monotonic() >= deadline:
                return state
            time.sleep(teacher.cfg.batch_poll_s)


def collect(work: Path, teacher, teacher_id: str, job: dict, answers: dict, ended: str,
            summary: runner.RunSummary) -> None:
    """Every video of the job as a verdict (a failure where it has no answer), then clean up."""
    recorded = latest_by_key(work, teacher_id)          # a collection cut short earlier kept these
    for video_id, key in job["videos"].items():
        if key in recorded and recorded[key].ok:
            continue
        answer = answers.get(video_id) or TeacherFailure(job["failed"].get(video_id) or (
            f"no result for this video in batch job {job['id']} (ended {ended})"))
        if isinstance(answer, TeacherFailure):
            answer = failed(video_id, teacher_id, answer.reason, raw=answer.raw, **answer.usage)
        verdict = answer.model_copy(update={"video_id": video_id, "teacher_id": teacher_id, "cache_key": key,
                                            "model": answer.model or job["model"],
                                            "prompt_version": teacher.prompt_version})
        runner.record(work, verdict)
        runner.tally(summary, verdict)
    try:
        teacher.batch_cleanup(job)
    except Exception as e:  # noqa: BLE001 - uploads expire on their own; never lose results over them
        log.info("batch job %s: could not delete its uploads: %s", job["id"], e)
    job_path(work, teacher_id).unlink(missing_ok=True)
    if summary.failed:
        log.warning("%d video(s) of batch job %s failed (reasons in %s); `teach --batch --retry_failed` submits them "
                    "in a new job, `teach --retry_failed` asks them online", summary.failed, job["id"],
                    verdict_path(work, teacher_id))


def answer_or_failure(parse, *args) -> Verdict | TeacherFailure:
    """A backend's parse of one result, its TeacherFailure kept as the value (one bad item never stops the rest)."""
    try:
        return parse(*args)
    except TeacherFailure as e:
        return e
