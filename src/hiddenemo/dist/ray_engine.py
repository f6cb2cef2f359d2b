"""`--engine ray`: the per-video jobs of `extract` and `teach` in a pool of Ray actors.

Each actor builds the same job as the local engine once (`extract.job.VideoJob`, a teacher from
`teacher.registry.make_teacher`) and then runs videos one after another, so models load once per
actor. Actors write the arrays themselves, through `Store` (atomic, idempotent) on the shared
filesystem; the driver is the only writer of the status lines, the verdict log and the manifest,
exactly as the local engine's parent process is, so the files are the same whichever engine ran.

A video that fails in the ordinary way (an unreadable file) comes back as a `failed` status and is
recorded at once. A video whose actor process died (a crash in a native library, out of memory, a
lost node) is tried again on a fresh actor up to `retries` times, then recorded as failed; the
other videos go on. For `teach`, one `TokenBucket` actor spaces the requests of all actors to a
global rate and makes all of them pause when one is told to slow down (HTTP 429).

This is the only module that imports ray (the optional extra `pip install hiddenemo[ray]`).
"""
from __future__ import annotations

import logging
import os
import socket
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable

import pandas as pd
import ray
from ray.exceptions import RayActorError, RayTaskError

from hiddenemo.data.claims import Claims, LogTail, SharedQueue
from hiddenemo.dist.config import RayOptions
from hiddenemo.errors import UserError

log = logging.getLogger(__name__)
READY_TIMEOUT_S = 900.0      # model loading on a cold node (first ONNX/MediaPipe import) takes a while


# ---- the cluster ---------------------------------------------------------------------------------
def connect(address: str | None) -> bool:
    """Join the cluster at `address` ('auto', 'HOST:PORT', 'ray://HOST:10001') or start a local one
    (None). True when this call started Ray here, so the caller shuts it down again."""
    if ray.is_initialized():
        return False
    try:
        ray.init(address=address, include_dashboard=False, configure_logging=False)
    except (ConnectionError, RuntimeError, ValueError) as e:
        raise UserError(f"cannot join a Ray cluster at {address!r}: {e}. Start one with `ray start --head` "
                        "(and `ray start --address HEAD:6379` on the other nodes), or leave out --address "
                        "to start a local one") from e
    return True


def pool_size(options: RayOptions, n_tasks: int) -> int:
    """Actors to start: as asked, else as many as the cluster's CPUs (and GPUs) hold; never more
    than there are tasks."""
    n = options.actors
    if not n:
        resources = ray.cluster_resources()
        n = int(resources.get("CPU", 1) // options.cpus_per_actor)
        if options.gpus_per_actor:
            n = min(n, int(resources.get("GPU", 0) // options.gpus_per_actor))
    return max(1, min(n, n_tasks))


def _actor_options(options: RayOptions, concurrency: int = 1) -> dict:
    # No restarts by Ray: the pool replaces a dead actor itself, so it knows which videos to retry.
    return {"num_cpus": options.cpus_per_actor, "num_gpus": options.gpus_per_actor, "max_restarts": 0,
            "max_task_retries": 0, "max_concurrency": max(1, concurrency)}


def run_pool(make_actor: Callable[[], Any], tasks: list[tuple[str, tuple]] | SharedQueue, n_actors: int, retries: int,
             done: Callable[[str, Any], None], lost: Callable[[str, str], None], in_flight: int = 1) -> None:
    """Run `actor.run.remote(*args)` for every (key, args) on a pool of `n_actors` actors.

    `done(key, result)` is called on the driver as each task finishes; a task whose actor died is
    queued again on a fresh actor up to `retries` times, then `lost(key, reason)` is called.
    `in_flight` is how many tasks an actor holds at once (its `max_concurrency`). `tasks` may be a
    `SharedQueue`, whose claims split the tasks with other drivers on the same workspace."""
    queue = tasks if isinstance(tasks, SharedQueue) else SharedQueue(tasks)
    actors = [make_actor() for _ in range(n_actors)]
    try:
        _wait_ready(actors)
        attempts, load = Counter(), [0] * n_actors
        running: dict[Any, tuple[int, str, tuple]] = {}
        while queue or running:
            for i in range(n_actors):
                while load[i] < in_flight and (got := queue.take()) is not None:
                    key, args = got
                    running[actors[i].run.remote(*args)] = (i, key, args)
                    load[i] += 1
            if not running:
                queue.wait()                                  # the rest is in other drivers' hands
                continue
            ready, _ = ray.wait(list(running), num_returns=1, timeout=1.0)
            for ref in ready:
                i, key, args = running.pop(ref)
                load[i] -= 1
                try:
                    result = ray.get(ref)
                except RayActorError as e:
                    attempts[key] += 1
                    reason = _first_line(e)
                    if actors[i] is not None and _is_dead(e):
                        actors[i] = make_actor()              # a fresh process for what is queued next
                    if attempts[key] <= retries:
                        log.warning("%s: worker process died (%s); retry %d of %d", key, reason, attempts[key], retries)
                        queue.put_back(key, args)
                        continue
                    lost(key, f"the worker process died {attempts[key]} times ({reason}); "
                              "see the Ray logs (/tmp/ray/session_latest/logs) for the crash")
                except RayTaskError as e:                     # the job raised, which it should not
                    lost(key, _first_line(e.cause if e.cause is not None else e))
                else:
                    done(key, result)
                queue.done(key)
    finally:
        for actor in actors:
            ray.kill(actor)


def _wait_ready(actors: list) -> None:
    """Every actor has built its job (models loaded), or a clear error saying why not."""
    try:
        ray.get([a.ready.remote() for a in actors], timeout=READY_TIMEOUT_S)
    except RayActorError as e:
        raise UserError(f"a Ray worker could not load its models: {_first_line(e)}. Every node needs "
                        "hiddenemo and its models installed in the same Python environment as here") from e


def _is_dead(error: RayActorError) -> bool:
    # An unavailable actor (a network blip) may come back; a dead one will not.
    return not type(error).__name__.startswith("ActorUnavailable")


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    lines = [line for line in text.splitlines() if line.strip()]
    return f"{type(error).__name__}: {lines[-1] if lines else ''}"[:300]


# ---- extract -------------------------------------------------------------------------------------
@ray.remote
class ExtractActor:
    """One `VideoJob` per actor, built once: models load when the actor starts."""

    def __init__(self, work: str, config, threads: int):
        from hiddenemo.extract.job import VideoJob
        self.job = VideoJob(work, config, threads)

    def ready(self) -> int:
        return os.getpid()

    def run(self, video_id: str, path: str | None) -> dict:
        return on_node(self.job.run(video_id, path))


def on_node(status: dict) -> dict:
    """A failed video's reason names the node it failed on: a full disk or a missing codec is that
    node's, and the fix is there."""
    if status["status"] == "failed":
        status["reason"] = f"{status['reason']} (on node {socket.gethostname()})"
    return status


def extract_ray(work: str | Path, config, options: RayOptions, address: str | None = None,
                video_ids: list[str] | None = None) -> dict:
    """`extract_all` on a Ray cluster: same outputs, same status lines, same summary."""
    from tqdm import tqdm

    from hiddenemo.data.manifest import read_manifest, select_videos
    from hiddenemo.extract.runner import STATUS_FILE, record_video, append_status

    options.check()
    config.check()
    work = Path(work).resolve()               # actors on other nodes see the same shared path
    manifest = select_videos(read_manifest(work), video_ids, work)
    # Relative video paths mean "from here", as for the local engine; actors start elsewhere.
    todo = {r.video_id: (None if pd.isna(r.path) else str(Path(r.path).absolute()),
                         0 if pd.isna(r.n_frames) else int(r.n_frames)) for r in manifest.itertuples()}
    counts, failures, frames_done = {"ok": 0, "failed": 0, "skipped": 0}, {}, 0
    if not todo:
        return {"videos": 0, **counts, "elsewhere": 0, "failures": failures, "frames": 0, "seconds": 0.0,
                "frames_per_second": 0.0, "engine": "ray", "actors": 0}
    started_here = connect(address)
    start = time.perf_counter()
    try:
        n_actors = pool_size(options, len(todo))
        threads = config.threads or max(1, int(options.cpus_per_actor))
        bar = tqdm(total=sum(n for _, n in todo.values()) or None, unit="frame", unit_scale=True,
                   dynamic_ncols=True, desc=f"extract {len(todo)} videos on {n_actors} Ray actors")

        def done(video_id: str, status: dict) -> None:
            nonlocal frames_done
            append_status(work, status)
            counts[status["status"]] += 1
            if status["status"] == "failed":
                failures[video_id] = status["reason"]
            if status["status"] == "ok":
                frames_done += status.get("n_frames") or 0
                bar.update(status.get("n_frames") or 0)
            if status["status"] == "skipped" and bar.total:
                bar.total = max(bar.total - todo[video_id][1], bar.n)   # skipped frames must not inflate the rate
            record_video(work, status)
            bar.set_postfix(ok=counts["ok"], failed=counts["failed"], skipped=counts["skipped"])

        def lost(video_id: str, reason: str) -> None:
            done(video_id, {"video_id": video_id, "status": "failed", "reason": reason, "seconds": None})

        make = lambda: ExtractActor.options(**_actor_options(options)).remote(str(work), config, threads)  # noqa: E731
        recorded_elsewhere = LogTail(work / STATUS_FILE)   # a status line another driver wrote
        try:
            with Claims.of_stage(work, "extract") as claims:
                queue = SharedQueue([(vid, (vid, path)) for vid, (path, _) in todo.items()], claims,
                                    recorded_elsewhere.__contains__)
                run_pool(make, queue, n_actors, options.retries, done, lost)
        finally:
            bar.close()
    finally:
        if started_here:
            ray.shutdown()
    seconds = time.perf_counter() - start
    return {"videos": len(todo), **counts, "elsewhere": len(queue.elsewhere), "failures": failures,
            "frames": frames_done, "seconds": round(seconds, 1),
            "frames_per_second": round(frames_done / seconds, 1) if seconds else 0.0,
            "engine": "ray", "actors": n_actors}


# ---- teach ---------------------------------------------------------------------------------------
@ray.remote(num_cpus=0)
class TokenBucket:
    """A global rate limit (GCRA): `reserve()` books the next free slot and says how long to wait
    for it, so the bucket never blocks and one actor serves any number of callers; `hold(s)` pushes
    every later slot back by s seconds (a provider's 429 with a retry delay)."""

    def __init__(self, per_minute: float, burst: int = 1):
        self.interval = 60.0 / per_minute if per_minute > 0 else 0.0
        self.burst = max(1, burst)
        self.tat = time.monotonic()           # theoretical arrival time of the next request

    def reserve(self) -> float:
        now = time.monotonic()
        wait = max(0.0, self.tat - now - (self.burst - 1) * self.interval)
        self.tat = max(self.tat, now) + self.interval
        return wait

    def hold(self, seconds: float) -> None:
        self.tat = max(self.tat, time.monotonic() + seconds)


class ClusterGate:
    """The teachers' `RateGate` interface (`wait`, `hold`) backed by the shared `TokenBucket`."""

    def __init__(self, bucket, sleep: Callable[[float], None] = time.sleep):
        self.bucket, self._sleep = bucket, sleep

    def wait(self) -> None:
        delay = ray.get(self.bucket.reserve.remote())
        if delay > 0:
            self._sleep(delay)

    def hold(self, seconds: float) -> None:
        self.bucket.hold.remote(seconds)


@ray.remote
class TeachActor:
    """One teacher per actor, built once; asks about one video per call (`max_concurrency` at once)."""

    def __init__(self, work: str, name: str, vlm, annotation_rules: bool, teacher_id: str, bucket, limit: bool):
        from hiddenemo.teacher.registry import make_teacher
        from hiddenemo.teacher.retry import install_log_redaction

        install_log_redaction()
        self.teacher = make_teacher(name, Path(work), vlm, annotation_rules)
        self.teacher_id = teacher_id
        self.gate = ClusterGate(bucket)
        # API teachers pass every HTTP request (retries included) through their gate: share it.
        self.per_request = hasattr(self.teacher, "gate")
        if self.per_request:
            self.teacher.gate = self.gate
        self.limit_per_video = limit and not self.per_request

    def ready(self) -> int:
        return os.getpid()

    def run(self, video, key: str):
        from hiddenemo.teacher.runner import ask_one

        if self.limit_per_video:
            self.gate.wait()
        return ask_one(self.teacher, self.teacher_id, video, key)


def teach_ray(work: str | Path, teacher, teacher_id: str, videos: list, *, name: str, vlm, annotation_rules: bool,
              options: RayOptions, address: str | None = None, retry_failed: bool = False, dry_run: bool = False):
    """`teacher.runner.run` on a Ray cluster: the driver plans (cache look-ups, cost estimate) with
    `teacher`, actors build their own teacher `name` and ask; the driver records every verdict."""
    from tqdm import tqdm

    from hiddenemo.teacher.runner import claims_of, prepare, record, shared, tally
    from hiddenemo.teacher.schema import failed

    options.check()
    work = Path(work).resolve()
    todo, summary = prepare(work, teacher, teacher_id, videos, retry_failed)
    if dry_run or not todo:
        return summary
    started_here = connect(address)
    try:
        n_actors = pool_size(options, len(todo))
        concurrency = max(1, teacher.concurrency)
        bucket = TokenBucket.remote(options.requests_per_minute, options.burst)
        bar = tqdm(total=len(todo), desc=f"teach {teacher_id} on {n_actors} Ray actors", unit="video")

        def done(video_id: str, verdict) -> None:
            record(work, verdict)
            tally(summary, verdict)
            bar.update(1)

        keys = {v.video_id: key for v, key in todo}

        def lost(video_id: str, reason: str) -> None:
            # Cached as a failure like any other: asked again with --retry_failed.
            done(video_id, failed(video_id, teacher_id, reason, cache_key=keys[video_id], model=teacher.model,
                                  prompt_version=teacher.prompt_version))

        limit = options.requests_per_minute > 0
        make = lambda: TeachActor.options(**_actor_options(options, concurrency)).remote(  # noqa: E731
            str(work), name, vlm, annotation_rules, teacher_id, bucket, limit)
        try:
            with claims_of(work, teacher_id) as claims:
                queue = shared(todo, claims, summary)
                run_pool(make, queue, n_actors, options.retries, done, lost, in_flight=concurrency)
                summary.elsewhere = len(queue.elsewhere)
        finally:
            bar.close()
            ray.kill(bucket)
    finally:
        if started_here:
            ray.shutdown()
    return summary
