"""OpenPose 1.x JSON output -> `pose.npy` (T, 137, 3) and `box.npy` (T, 5).

OpenPose writes one `<name>_<frame:012d>_keypoints.json` per frame, each holding a list of people
with BODY_25 (25 x 3), face (70 x 3), left hand (21 x 3) and right hand (21 x 3) as flat
`x, y, confidence` lists; a point it did not find is `0, 0, 0`. This module turns such a folder into
one person's track:

- the frame number in the file name sets the row, so a missing file becomes a no-person row and T
  follows the numbering (T = largest frame number + 1);
- a frame with several people keeps the one nearest to the person chosen before (the interviewee
  continues the track; a passer-by does not), and at the start the most confidently seen one;
- a file that cannot be parsed is named in the report and its row is left empty; the rest ingests.

Parsing is JSON-decode bound (the files are small): `orjson` decodes them about four times faster
than the standard library, which is kept as the fallback for what orjson refuses but Python reads
(a byte-order mark, NaN), and large folders are parsed by a small pool of processes; see
`benchmarks/openpose_ingest.py` for the figures.
"""
from __future__ import annotations

import json
import os
import re
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import orjson

from hiddenemo.data.keypoints import MIN_CONFIDENCE, normalise_to_box
from hiddenemo.data.layout import BODY, N_KEYPOINTS, NECK, OPENPOSE_PARTS, part_size
from hiddenemo.data.store import Store
from hiddenemo.errors import UserError

PRODUCER = "openpose-json"
VERSION = "1"
PARTS = tuple((key, part_size(part)) for key, part in OPENPOSE_PARTS.items())     # (JSON key, points)
FULL_LENGTHS = tuple(3 * n for _, n in PARTS)
FRAME_FILE = re.compile(r"_(\d+)_keypoints\.json$")
PARALLEL_FROM = 2000          # below this many files a process pool costs more than it saves


@dataclass
class OpenPoseVideo:
    """One person's keypoints over a video, in pixels."""
    xy: np.ndarray            # (T, 137, 2) float32 pixels; 0 where missing
    conf: np.ndarray          # (T, 137) float32; 0 = missing
    report: dict = field(default_factory=dict)


def frame_files(directory: Path) -> dict[int, Path]:
    """Frame number -> file, from OpenPose's `<name>_<frame>_keypoints.json` names."""
    directory = Path(directory)
    if not directory.is_dir():
        raise UserError(f"OpenPose folder {directory} does not exist or is not a folder")
    files: dict[int, Path] = {}
    for path in directory.iterdir():
        match = FRAME_FILE.search(path.name)
        if not match:
            continue
        frame = int(match.group(1))
        if frame in files:
            raise UserError(f"OpenPose folder {directory} has two files for frame {frame} "
                            f"({files[frame].name}, {path.name}): keep one video's output per folder")
        files[frame] = path
    if not files:
        raise UserError(f"OpenPose folder {directory} has no `*_<frame>_keypoints.json` files")
    return files


def parse_frame(data: bytes) -> np.ndarray:
    """One frame's JSON -> (P, 137, 3) float32 for its P people (P may be 0); a "person" with no
    point found is no person.

    Raises ValueError (json.JSONDecodeError is one) when the file is not OpenPose JSON."""
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError:
        document = json.loads(data)       # BOM, NaN: legal to Python; else raises with a clear message
    people = document["people"]
    out = np.zeros((len(people), N_KEYPOINTS, 3), dtype=np.float32)
    for p, person in enumerate(people):
        values = [person.get(key) or [] for key, _ in PARTS]      # a part not asked for is []
        if tuple(map(len, values)) == FULL_LENGTHS:                # the usual case: one conversion
            flat = values[0] + values[1] + values[2] + values[3]
            out[p] = np.array(flat, dtype=np.float32).reshape(N_KEYPOINTS, 3)
            continue
        start = 0
        for (key, n), part in zip(PARTS, values):
            if part:
                if len(part) != 3 * n:
                    raise ValueError(f"{key} has {len(part)} numbers, expected {3 * n}")
                out[p, start:start + n] = np.array(part, dtype=np.float32).reshape(n, 3)
            start += n
    return out if len(out) == 1 and out[0, :, 2].any() else out[(out[:, :, 2] > 0).any(1)]


def _parse_chunk(paths: list[Path]) -> tuple[np.ndarray, np.ndarray, dict[int, str]]:
    """(people per file (n,), everyone's keypoints stacked (sum, 137, 3), file index -> error).

    Runs in a worker: one stacked array crosses the process boundary cheaply, and an error becomes
    its message so that one bad file never stops the chunk."""
    counts = np.zeros(len(paths), dtype=np.int64)
    people: list[np.ndarray] = []
    errors: dict[int, str] = {}
    for i, path in enumerate(paths):
        try:
            found = parse_frame(path.read_bytes())
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
            errors[i] = f"{type(e).__name__}: {e}"
            continue
        counts[i] = len(found)
        people.append(found)
    stacked = np.concatenate(people) if people else np.zeros((0, N_KEYPOINTS, 3), np.float32)
    return counts, stacked, errors


def _parse_all(paths: list[Path], workers: int) -> tuple[np.ndarray, np.ndarray, dict[int, str]]:
    if workers <= 1 or len(paths) < PARALLEL_FROM:
        return _parse_chunk(paths)
    size = -(-len(paths) // (workers * 4))
    starts = range(0, len(paths), size)
    with ProcessPoolExecutor(workers) as pool:
        parts = list(pool.map(_parse_chunk, [paths[i:i + size] for i in starts]))
    errors = {start + i: e for start, (_, _, errs) in zip(starts, parts) for i, e in errs.items()}
    return np.concatenate([c for c, _, _ in parts]), np.concatenate([p for _, p, _ in parts]), errors


def _centre(person: np.ndarray) -> np.ndarray | None:
    """Where a person is: the neck when found (the most stable point of a seated upper body), else the
    mean of the confident body points."""
    if person[NECK, 2] > MIN_CONFIDENCE:
        return person[NECK, :2]
    body = person[BODY]
    ok = body[:, 2] > MIN_CONFIDENCE
    if not ok.any():
        ok = person[:, 2] > MIN_CONFIDENCE
        body = person
    return body[ok, :2].mean(0) if ok.any() else None


def choose_person(people: np.ndarray, previous: np.ndarray | None) -> int:
    """Index of the person continuing the track: nearest to the previous centre; with no previous
    centre, the one with the largest summed confidence (the interviewee fills the frame)."""
    centres = [_centre(p) for p in people]
    if previous is not None:
        dist = [np.inf if c is None else float(np.hypot(*(c - previous))) for c in centres]
        if np.isfinite(min(dist)):
            return int(np.argmin(dist))
    return int(np.argmax(people[:, :, 2].sum(1)))


def read_openpose_dir(directory: str | Path, workers: int | None = None) -> OpenPoseVideo:
    """Read a folder of OpenPose per-frame JSON into one person's track.

    Args:
        directory: folder of `<name>_<frame:012d>_keypoints.json` files (one video).
        workers: parsing processes; default min(2, CPUs). 1 parses in this process.
    """
    files = frame_files(Path(directory))
    n_frames = max(files) + 1
    frames = sorted(files)
    workers = min(2, os.cpu_count() or 1) if workers is None else workers
    counts, people, errors = _parse_all([files[f] for f in frames], workers)

    # Frames with one person take it; those with several continue the track from the row filled
    # last before them, in order (so a choice made at one such frame guides the next).
    frames = np.asarray(frames)
    first = np.concatenate([[0], np.cumsum(counts)[:-1]])        # each file's first row in `people`
    kp = np.zeros((n_frames, N_KEYPOINTS, 3), dtype=np.float32)
    single = counts == 1
    kp[frames[single]] = people[first[single]]
    filled_rows = np.full(n_frames, -1)
    filled_rows[frames[counts > 0]] = frames[counts > 0]
    last_filled = np.maximum.accumulate(filled_rows)               # latest filled row <= each row
    for i in np.flatnonzero(counts > 1):
        before = last_filled[frames[i] - 1] if frames[i] > 0 else -1
        previous = _centre(kp[before]) if before >= 0 else None
        candidates = people[first[i]:first[i] + counts[i]]
        kp[frames[i]] = candidates[choose_person(candidates, previous)]
    unreadable = {files[int(frames[i])].name: reason for i, reason in errors.items()}
    no_person = int((counts == 0).sum()) - len(errors)
    several = int((counts > 1).sum())
    missing = n_frames - len(files)
    report = {"n_frames": n_frames, "n_files": len(files), "no_person": no_person,
              "several_people": several, "missing_files": missing,
              "unreadable_files": sorted(unreadable), "unreadable_reasons": unreadable,
              "empty_rows": no_person + missing + len(unreadable)}
    return OpenPoseVideo(xy=kp[..., :2], conf=kp[..., 2], report=report)


def ingest_openpose(store: Store, video_id: str, directory: str | Path, box: np.ndarray | None = None,
                    workers: int | None = None) -> dict:
    """Write `pose` and `box` for one video from its OpenPose folder; returns the report.

    `box` (T, 5) is a detector's person box when there is one; otherwise the box spanned by the
    confident keypoints is used (OpenPose itself gives none)."""
    video = read_openpose_dir(directory, workers)
    if box is not None and len(box) != len(video.xy):
        raise UserError(f"video {video_id}: the given box has {len(box)} rows but OpenPose has "
                        f"{len(video.xy)} frames in {directory}")
    pose, box = normalise_to_box(video.xy, video.conf, box)
    params = {"source": str(directory), "report": video.report}
    store.save(video_id, "pose", pose, PRODUCER, VERSION, params)
    store.save(video_id, "box", box, PRODUCER, VERSION, params)
    return video.report


def is_ingested(store: Store, video_id: str) -> bool:
    """Both arrays present and made by this version of the ingestion."""
    return all(store.is_current(video_id, name, PRODUCER, VERSION) for name in ("pose", "box"))
