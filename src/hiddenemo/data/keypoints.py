"""Keypoint features as the paper's section 3.1 builds them.

`pose.npy` holds (T, 137, 3): x, y normalised to the person box (box origin, divided by its width
and height) and a confidence. A point that was not found has confidence 0 and x = y = NaN, so it
can never be read as a real (0, 0). Features for the model are x, y plus the offsets to frames
t-8, t-16, t-24, taken on the full-rate sequence and only then sampled.
"""
from __future__ import annotations

import os

import numpy as np

from hiddenemo.data.layout import LEFT_HAND, N_KEYPOINTS, POSE_GROUPS, RIGHT_HAND

OFFSETS = (8, 16, 24)
MIN_CONFIDENCE = 0.05


def box_from_keypoints(xy: np.ndarray, conf: np.ndarray, min_conf: float = MIN_CONFIDENCE,
                       margin: float = 0.05) -> np.ndarray:
    """(T, 5) boxes spanned by the confident keypoints of each frame, grown by `margin` of their size;
    NaN where a frame has fewer than two confident points."""
    x, y = xy[..., 0], xy[..., 1]                 # separate planes: reducing over V is then fast
    ok = (conf > min_conf) & np.isfinite(x) & np.isfinite(y)             # (T, V)
    lo = np.stack([np.where(ok, x, np.inf).min(1), np.where(ok, y, np.inf).min(1)], 1)     # (T, 2)
    hi = np.stack([np.where(ok, x, -np.inf).max(1), np.where(ok, y, -np.inf).max(1)], 1)
    size = hi - lo
    lo, hi = lo - margin * size, hi + margin * size
    n_ok = ok.sum(1)
    box = np.concatenate([lo, hi, (n_ok / ok.shape[1])[:, None]], axis=1)
    box[n_ok < 2] = np.nan
    return box.astype(np.float32)


def normalise_to_box(xy: np.ndarray, conf: np.ndarray, box: np.ndarray | None = None,
                     min_conf: float = MIN_CONFIDENCE) -> tuple[np.ndarray, np.ndarray]:
    """Pixel keypoints (T, V, 2) + confidences (T, V) -> (pose (T, V, 3) float16, box (T, 5) float32).

    Uses the detector's box where it has one and the keypoints' own box elsewhere."""
    xy = np.asarray(xy, dtype=np.float32)
    conf = np.asarray(conf, dtype=np.float32)
    own = box_from_keypoints(xy, conf, min_conf)
    if box is None:
        box = own
    else:
        box = np.asarray(box, dtype=np.float32).copy()
        no_det = ~np.isfinite(box[:, :4]).all(1)
        box[no_det] = own[no_det]
    x0, y0 = box[:, 0:1], box[:, 1:2]                                     # (T, 1)
    width, height = box[:, 2:3] - x0, box[:, 3:4] - y0
    with np.errstate(all="ignore"):                   # x and y as separate planes: fewer passes
        x = (xy[..., 0] - x0) / np.where(width > 0, width, np.nan)        # (T, V)
        y = (xy[..., 1] - y0) / np.where(height > 0, height, np.nan)
    found = (conf > min_conf) & np.isfinite(x) & np.isfinite(y)
    pose = np.empty(conf.shape + (3,), dtype=np.float16)
    pose[..., 0] = np.where(found, x, np.nan)
    pose[..., 1] = np.where(found, y, np.nan)
    pose[..., 2] = np.where(found, conf, 0)
    return pose, box


def keypoint_features(pose, frame_idx: np.ndarray, offsets: tuple[int, ...] = OFFSETS,
                      min_conf: float = MIN_CONFIDENCE) -> tuple[np.ndarray, np.ndarray]:
    """Features at the sampled frames: (N, 137, 2 + 2 * len(offsets)) float32 and a point mask (N, 137).

    `pose` may be a memmap of the full-rate sequence: only the rows t and t - k are read; or the
    video's `Keypoints`, checked once for many samplings (the same features). An offset whose far
    end is missing (or before the start) is 0, the point itself missing is masked."""
    planes, here_ok = keypoint_planes(pose, frame_idx, offsets, min_conf)
    return np.stack(planes, axis=-1), here_ok


def keypoint_planes(pose, frame_idx: np.ndarray, offsets: tuple[int, ...] = OFFSETS,
                    min_conf: float = MIN_CONFIDENCE) -> tuple[list[np.ndarray], np.ndarray]:
    """`keypoint_features` as a list of (N, 137) float32 planes: x, y, then dx, dy for each offset."""
    frame_idx = np.asarray(frame_idx, dtype=np.int64)
    if isinstance(pose, Keypoints) and pose.min_conf != min_conf:
        raise ValueError(f"keypoints checked at confidence {pose.min_conf}, asked for {min_conf}")
    x, y, here_ok = _rows(pose, frame_idx, min_conf)                      # (N, V) each
    planes = [np.where(here_ok, x, 0), np.where(here_ok, y, 0)]
    for k in offsets:
        back_idx = frame_idx - k
        back_x, back_y, back_ok = _rows(pose, np.maximum(back_idx, 0), min_conf)
        ok = here_ok & back_ok & (back_idx >= 0)[:, None]
        planes += [np.where(ok, x - back_x, 0), np.where(ok, y - back_y, 0)]
    return planes, here_ok


def offset_lengths(pose, frame_idx: np.ndarray, offsets: tuple[int, ...] = OFFSETS,
                   min_conf: float = MIN_CONFIDENCE) -> tuple[list[np.ndarray], np.ndarray]:
    """The length of each offset of `keypoint_features` (np.linalg.norm of its dx, dy, to the bit): one
    (N, 137) float32 plane per offset, and the point mask (N, 137). From a `Keypoints`' own per-frame
    lengths where it has them (a window of the sequence has them too: an offset reaching before the
    window's start is 0, as it is before the sequence's)."""
    frame_idx = np.asarray(frame_idx, dtype=np.int64)
    if isinstance(pose, Keypoints) and pose.min_conf == min_conf and all(k in pose.lengths for k in offsets):
        return [np.where((frame_idx >= k)[:, None], pose.lengths[k][frame_idx], 0) for k in offsets], \
            pose.seen[frame_idx]
    planes, here_ok = keypoint_planes(pose, frame_idx, offsets, min_conf)
    return [_length(dx, dy) for dx, dy in zip(planes[2::2], planes[3::2])], here_ok


def _length(dx: np.ndarray, dy: np.ndarray) -> np.ndarray:
    # np.linalg.norm of (dx, dy) pairs, to the bit (float32 throughout), at a fraction of its cost.
    return np.sqrt(dx * dx + dy * dy)


def split_groups(x: np.ndarray) -> dict[str, np.ndarray]:
    """Split the keypoint axis (axis 1) into the body / face / hands groups."""
    assert x.shape[1] == N_KEYPOINTS, x.shape
    return {name: x[:, sl] for name, sl in POSE_GROUPS.items()}


def anyone_seen(pose: np.ndarray, max_rows: int = 256) -> bool:
    """Whether any keypoint was seen in a (T, 137, 3) sequence, judged on up to `max_rows` evenly spaced
    frames: cheap on a memory-mapped array of a long video."""
    if len(pose) == 0:
        return False
    rows = np.unique(np.linspace(0, len(pose) - 1, min(len(pose), max_rows)).astype(int))
    return bool((np.asarray(pose[rows, :, 2]) > 0).any())


def coverage(pose: np.ndarray, min_conf: float = MIN_CONFIDENCE) -> dict[str, float]:
    """Fraction of frames in which each group has at least half of its points."""
    ok = (np.asarray(pose[..., 2], dtype=np.float32) > min_conf)
    return {name: float((ok[:, sl].mean(1) >= 0.5).mean()) if len(ok) else 0.0
            for name, sl in POSE_GROUPS.items()}


LOW_COVERAGE = 0.5
"""A video with a person or a face in fewer than this share of its frames gets a warning (hands are
often out of an interview shot, so their share is reported, not warned about)."""


def video_coverage(box: np.ndarray, pose: np.ndarray | None, min_conf: float = MIN_CONFIDENCE) -> dict[str, float]:
    """Share of a video's frames with a person box, a face (half of its points or more) and a hand
    (either one with half of its points or more): the quality signal of one extraction."""
    n = len(box)
    if n == 0:
        return {"person": 0.0, "face": 0.0, "hands": 0.0}
    out = {"person": float(np.isfinite(np.asarray(box[:, 0], dtype=np.float32)).mean()), "face": 0.0, "hands": 0.0}
    if pose is not None and len(pose):
        ok = np.asarray(pose[..., 2], dtype=np.float32) > min_conf                  # (T, 137)
        half = lambda sl: ok[:, sl].mean(1) >= 0.5
        out["face"] = float(half(POSE_GROUPS["face"]).mean())
        out["hands"] = float((half(LEFT_HAND) | half(RIGHT_HAND)).mean())
    return {k: round(v, 4) for k, v in out.items()}


def low_coverage(shares: dict[str, float]) -> list[str]:
    """The parts (person, face) seen in fewer than LOW_COVERAGE of the frames."""
    return [part for part in ("person", "face") if shares.get(part, 1.0) < LOW_COVERAGE]


def _rows(pose, idx: np.ndarray, min_conf: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """x, y (N, V) float32 and seen (N, V) at rows `idx`. x and y as separate planes: the arithmetic
    on them is several times faster than on interleaved (N, V, 2) pairs."""
    if isinstance(pose, Keypoints):
        return pose.x[idx], pose.y[idx], pose.seen[idx]
    # Fancy-indexing a memmap reads only these rows; unique+inverse avoids reading one twice.
    uniq, inverse = np.unique(idx, return_inverse=True)
    return _checked(np.asarray(pose[uniq], dtype=np.float32)[inverse], min_conf)


def _checked(rows: np.ndarray, min_conf: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(..., V, 3) float32 rows -> x, y (NaN as 0) and whether each point was seen."""
    x, y = rows[..., 0], rows[..., 1]
    ok = (rows[..., 2] > min_conf) & np.isfinite(x) & np.isfinite(y)
    return np.nan_to_num(x), np.nan_to_num(y), ok


class Keypoints:
    """A pose sequence with every point checked once: planes `x`, `y` (T, 137), 0 where the point was
    not seen, `seen` (T, 137), and `lengths` {k: (T, 137)}, the length of the offset to frame t - k for
    the pooled statistics' OFFSETS. `keypoint_features` and `offset_lengths` sample it as they sample
    the raw array, to the same bytes, without checking the same rows again at every draw (training
    samples each video `resamples` times an epoch; the pooled pose statistics read a window of it)."""

    def __init__(self, x: np.ndarray, y: np.ndarray, seen: np.ndarray, min_conf: float,
                 lengths: dict[int, np.ndarray]):
        self.x, self.y, self.seen, self.min_conf, self.lengths = x, y, seen, min_conf, lengths

    @classmethod
    def check(cls, pose: np.ndarray, min_conf: float = MIN_CONFIDENCE) -> "Keypoints":
        x, y, seen = _checked(np.asarray(pose, dtype=np.float32), min_conf)
        points = cls(np.where(seen, x, 0), np.where(seen, y, 0), seen, min_conf, {})
        # Every frame's offset lengths, by the one reading of offsets that the draws use.
        lengths, _ = offset_lengths(points, np.arange(len(seen)), OFFSETS, min_conf)
        points.lengths = dict(zip(OFFSETS, lengths))
        return points

    def __len__(self) -> int:
        return len(self.seen)

    def __getitem__(self, rows: slice) -> "Keypoints":
        return Keypoints(self.x[rows], self.y[rows], self.seen[rows], self.min_conf,
                         {k: length[rows] for k, length in self.lengths.items()})

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.x, self.y, self.seen, *self.lengths.values()))


KEYPOINTS_CACHE_BYTES = 512 * 2**20
_checked_files: dict[tuple, Keypoints] = {}


def checked_keypoints(pose: np.ndarray) -> Keypoints | np.ndarray:
    """A stored pose array (a memmap from the store) as `Keypoints`, kept in this process for the
    next call while all kept ones fit in KEYPOINTS_CACHE_BYTES; a video beyond that stays the
    memory-mapped array, whose draws read and check their rows each time (as fast as before the
    tables, where building tables to drop them again would be slower)."""
    filename = getattr(pose, "filename", None)
    if filename is None:
        return Keypoints.check(pose)
    stat = os.stat(filename)
    key = (filename, stat.st_mtime_ns, stat.st_size)          # a rewritten file is checked again
    if key not in _checked_files:
        kept = sum(t.nbytes for t in _checked_files.values())
        if kept + pose.size // 3 * (9 + 4 * len(OFFSETS)) > KEYPOINTS_CACHE_BYTES:   # x, y, lengths float32, seen
            return pose
        _checked_files[key] = Keypoints.check(pose)
    return _checked_files[key]
