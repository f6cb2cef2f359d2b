"""The synthetic dataset's files (layout in hiddenemo.synthetic): every video drawn from its own
generator, written atomically, finished videos kept on a rerun; the label, split, target and truth
tables; the summary."""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd

from hiddenemo.data.store import atomic_write_text
from hiddenemo.pool import WorkerPool
from hiddenemo.synthetic.figure import skeleton
from hiddenemo.synthetic.openpose import openpose_people
from hiddenemo.synthetic.plan import (CLASSES, CUE_NAMES, CUES, FPS, LOSE, WIN, VideoPlan, envelopes, level_names,
                                      plan_dataset)
from hiddenemo.synthetic.render import render

VERSION = "1"
LABELS_FILE = "labels_20200831.csv"
LEVELS_FILE = "levels.csv"              # levels > 2: video_id,label,split,subject_id for `dataset folder`


def generate(out: Path, seed: int = 0, n_videos: int = 64, n_frames: int = 150, width: int = 192,
             height: int = 144, n_subjects: int | None = None, lose_share: float = 0.25,
             target_share: float = 0.3, progress: bool = True, levels: int = 2, workers: int = 0) -> dict:
    """Write the dataset under `out` (see the module docstring); returns a summary dict. With `levels`
    > 2 (graded hidden levels, `plan.level_names`), also `levels.csv` (the labels for `hiddenemo
    dataset folder`, blank on the target split) and `target_levels.csv` (the withheld ones).

    Videos are drawn in `workers` processes at once (0: one per core; 1: here, one after the other);
    each from its own generator, so the files do not depend on how many. Finished videos (both the
    mp4 and the OpenPose folder present) are kept, so an interrupted run resumes. Asking for
    different parameters in an existing folder starts over in that folder."""
    from tqdm import tqdm

    if width % 2 or height % 2 or width < 64 or height < 48:
        raise ValueError(f"video size must be even and at least 64x48, got {width}x{height}")
    out = Path(out)
    params = {"version": VERSION, "seed": seed, "n_videos": n_videos, "n_frames": n_frames, "width": width,
              "height": height, "n_subjects": n_subjects, "lose_share": lose_share,
              "target_share": target_share, **({"levels": levels} if levels > 2 else {})}
    meta_path = out / "synthetic.json"
    if meta_path.exists() and json.loads(meta_path.read_text()).get("params") != params:
        for sub in ("videos", "openpose", "truth"):
            shutil.rmtree(out / sub, ignore_errors=True)
    names = level_names(levels) if levels > 2 else None          # refuses a bad `levels` before drawing
    plans = plan_dataset(seed, n_videos, n_frames, n_subjects, lose_share, target_share, levels)
    for sub in ("videos", "openpose", "truth"):
        (out / sub).mkdir(parents=True, exist_ok=True)

    todo = [p for p in plans if not ((out / "videos" / f"{p.video_id}.mp4").exists()
                                     and (out / "openpose" / p.video_id).is_dir())]
    workers = min(workers or os.cpu_count() or 1, len(todo))
    if workers > 1:
        with WorkerPool(workers) as pool:
            pool.map(write_video, [(out, seed, p, width, height) for p in todo], [f"video {p.video_id}" for p in todo],
                     f"synthetic videos ({workers} workers)", unit="video", progress=progress)
    else:
        for plan in tqdm(todo, desc="synthetic videos", disable=not progress):
            write_video(out, seed, plan, width, height)

    labels, splits, target, truth = tables(plans)
    atomic_write_text(out / LABELS_FILE, labels.to_csv(index=False))
    atomic_write_text(out / "splits.csv", splits.to_csv(index=False))
    atomic_write_text(out / "target_labels.csv", target.to_csv(index=False))
    if names:
        level = [names[p.level] for p in plans]
        truth.insert(4, "level", level)
        table = pd.DataFrame({"video_id": [p.video_id for p in plans], "label": level,
                              "split": [p.split for p in plans], "subject_id": [p.subject.id for p in plans]})
        atomic_write_text(out / "target_levels.csv", table.loc[table["split"] == "test", ["video_id", "label"]]
                          .to_csv(index=False))
        table.loc[table["split"] == "test", "label"] = ""
        atomic_write_text(out / LEVELS_FILE, table.to_csv(index=False))
    atomic_write_text(out / "truth" / "cues.csv", truth.to_csv(index=False))
    summary = summarise(plans)
    if names:
        summary["levels"] = {n: sum(names[p.level] == n for p in plans) for n in names}
    atomic_write_text(meta_path, json.dumps({"params": params, "summary": summary,
                                             "cues": [asdict(c) for c in CUES]}, indent=2))
    return summary


def write_video(out: Path, seed: int, plan: VideoPlan, width: int, height: int) -> None:
    """One video's OpenPose folder and mp4, drawn from its own generator."""
    rng = np.random.default_rng([seed, 3, int(plan.video_id)])
    kp = skeleton(plan, rng)
    _write_openpose(out / "openpose" / plan.video_id, plan.video_id, openpose_people(plan, kp, width, height, rng))
    _write_video(out / "videos" / f"{plan.video_id}.mp4", render(plan, kp, width, height, rng), width, height)


def tables(plans: list[VideoPlan]) -> tuple[pd.DataFrame, ...]:
    """(labels in iMiGUE's format, splits table, withheld target labels, per-video cue truth)."""
    rows, split_rows, target_rows, truth_rows = [], [], [], []
    cues = {c.name: c for c in CUES}
    for p in plans:
        label = CLASSES[p.label]
        shown = "" if p.split == "test" else label
        n = 0
        for e in p.episodes:
            if not e.annotated:
                continue
            n += 1
            rows.append({"video_id": p.video_id, "label_id": n, "start_time": round(e.start / FPS, 4),
                         "start_frame": e.start, "end_time": round((e.end - 1) / FPS, 4), "end_frame": e.end - 1,
                         "class": cues[e.cue].gesture, "subject_id": p.subject.id,
                         "subject_gender": p.subject.gender, "subject_nationality": p.subject.nationality,
                         "win_or_lose": shown})
        split_rows.append({"video_id": p.video_id, "subject_id": p.subject.id,
                           "miga_cross_subject": p.split})
        if p.split == "test":
            target_rows.append({"video_id": p.video_id, "win_or_lose": label})
        env = envelopes(p)
        truth_rows.append({"video_id": p.video_id, "subject_id": p.subject.id, "split": p.split,
                           "win_or_lose": label, "n_frames": p.n_frames, "fidget": round(p.fidget, 4),
                           **{f"{c}_frac": round(float((env[c] > 0.5).mean()), 4) for c in CUE_NAMES}})
    splits = pd.DataFrame(split_rows)
    splits.insert(2, "cvpr21_emotion", _cvpr21(plans))
    return pd.DataFrame(rows), splits, pd.DataFrame(target_rows, columns=["video_id", "win_or_lose"]), \
        pd.DataFrame(truth_rows)


def _cvpr21(plans: list[VideoPlan]) -> list[str]:
    """A class-balanced protocol like CVPR'21's: as many Win as Lose per part, the rest unused."""
    out = ["unused"] * len(plans)
    for part in ("train", "test"):
        idx = [i for i, p in enumerate(plans) if p.split == part]
        lose = [i for i in idx if plans[i].label == LOSE]
        win = [i for i in idx if plans[i].label == WIN][:len(lose)]
        for i in lose + win:
            out[i] = part
    return out


def summarise(plans: list[VideoPlan]) -> dict:
    frames = np.array([p.n_frames for p in plans])
    return {"videos": len(plans), "subjects": len({p.subject.id for p in plans}),
            "labelled": sum(p.split == "train" for p in plans), "target": sum(p.split == "test" for p in plans),
            "win": sum(p.label == WIN for p in plans), "lose": sum(p.label == LOSE for p in plans),
            "labelled_lose": sum(p.label == LOSE and p.split == "train" for p in plans),
            "frames_total": int(frames.sum()), "frames_min": int(frames.min()),
            "frames_median": int(np.median(frames)), "frames_max": int(frames.max()),
            "annotations": sum(e.annotated for p in plans for e in p.episodes)}


def _write_openpose(directory: Path, video_id: str, frames: list[list[dict]]) -> None:
    """All frames into a temporary folder, renamed into place at the end: a folder that exists is whole."""
    tmp = directory.with_name(directory.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for f, people in enumerate(frames):
        text = json.dumps({"version": 1.3, "people": people}, separators=(",", ":"))
        (tmp / f"{video_id}_{f:012d}_keypoints.json").write_text(text)
    shutil.rmtree(directory, ignore_errors=True)
    tmp.rename(directory)


def _write_video(path: Path, frames, width: int, height: int) -> None:
    """H.264 mp4 at 25 fps through PyAV (imported here: only writing a video needs it)."""
    import av

    tmp = path.with_name(path.stem + ".tmp.mp4")
    with av.open(str(tmp), "w") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        # One encoder thread: libx264's threaded encoding differs from run to run (6 of 64 videos, frames
        # up to 72 grey levels apart). Even so, one or two of 8 small videos still come out with other
        # bytes now and then although their frames are identical (cause not found; docs/synthetic.md).
        stream.options = {"crf": "20", "preset": "veryfast", "threads": "1"}
        for img in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="bgr24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    tmp.replace(path)
