"""Per-video statistics: one vector that summarises a whole sequence, read by the pooled (`*-stats`)
encoders and by the logistic baselines.

With 255 labeled videos, long-sequence Transformers over 5 Hz gesture sequences learned nothing on
iMiGUE while a logistic regression on per-class rates did better (DESIGN.md, "small data wants small
models"; the paper's own MLP-beats-GCN lesson). These vectors are what such small models read:

- `events`: per body-part group and per class, onsets per minute (log1p) and the share of time
  active, and the video's length in log minutes (how long someone stays at a press conference is
  itself behaviour);
- `pose`: per keypoint and offset (t-8, t-16, t-24), mean and std of the offset length over a fixed
  sampling of frames — how much and how unevenly each point moves;
- `frames`: mean and std of the frame embeddings.

Person-relative, label-free (`baseline`): people differ far more from each other than from
themselves on a win and a loss day, so a vector can be measured against the person's own baseline:
`subject` subtracts the mean vector of the same person's videos in the workspace — the unlabeled
target videos' features included, which makes it transductive (never their labels); `video-start`
subtracts the vector of the video's own first `baseline_minutes`.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from hiddenemo.data.keypoints import OFFSETS, checked_keypoints, offset_lengths
from hiddenemo.data.sampling import sample_indices
from hiddenemo.data.store import Store
from hiddenemo.errors import UserError

log = logging.getLogger(__name__)

EVENT_FEATURES = ("group_rates", "group_shares", "class_rates", "class_shares", "length")
BASELINES = ("none", "subject", "video-start")
POSE_FRAMES = 512       # frames sampled per video (or window) for the pose statistics
POOLED_MODALITIES = ("events", "pose", "frames")


def events_vector(events: np.ndarray, rate_hz: float, groups: list[str] | None,
                  features: tuple[str, ...] = ("class_rates",)) -> np.ndarray:
    """Statistics of a multi-hot events sequence (T'', C) at `rate_hz`; `groups` names the group of
    each column (needed by the group features)."""
    if rate_hz <= 0:
        raise UserError("an events array's sidecar has no params.rate_hz; rebuild it with `hiddenemo dataset`")
    on = np.asarray(events, dtype=bool)                                      # (T'', C)
    onsets = on[:1].sum(0) + (on[1:] & ~on[:-1]).sum(0)                      # (C,) runs of 1s
    minutes = max(len(on) / rate_hz / 60.0, 1e-9)
    rates, shares = onsets / minutes, on.mean(0) if len(on) else np.zeros(on.shape[1])
    parts = []
    for feature in features:
        if feature in ("group_rates", "group_shares"):
            if groups is None:
                raise UserError(f"pooled events feature {feature!r} needs a body-part group per gesture class "
                                "(dataset.json extra.event_groups, written by `hiddenemo dataset imigue`: re-run it on this workspace)")
            names = sorted(set(groups))
            member = np.array([[g == name for g in groups] for name in names], dtype=np.float64)  # (G, C)
            # a group's share: the time at least one of its gestures is on
            group_share = np.array([on[:, m.astype(bool)].any(1).mean() if len(on) else 0.0 for m in member])
            parts.append(np.log1p(member @ rates) if feature == "group_rates" else group_share)
        elif feature == "class_rates":
            parts.append(np.log1p(rates))
        elif feature == "class_shares":
            parts.append(shares)
        elif feature == "length":
            parts.append(np.array([np.log(minutes)]))
        else:
            raise UserError(f"unknown pooled events feature {feature!r}; choose from {EVENT_FEATURES}")
    return np.concatenate(parts).astype(np.float64)


def pose_vector(pose) -> np.ndarray:
    """Per keypoint and offset, mean and std of the offset length over POSE_FRAMES evenly spaced frames:
    (137 * len(OFFSETS) * 2,). `pose`: a (T, 137, 3) array or the video's `Keypoints`."""
    idx, valid = sample_indices(len(pose), POSE_FRAMES, train=False)
    lengths, seen = offset_lengths(pose, idx[valid], OFFSETS)               # K x (N, 137), (N, 137)
    w = seen.astype(np.float64)
    count = np.maximum(w.sum(0), 1)
    # One offset at a time on (N, 137) planes: the same sums, element by element, as on (N, 137, K),
    # several times faster than arithmetic along an axis of K.
    means = [(length * w).sum(0) / count for length in lengths]
    stds = [np.sqrt(((length - mean) ** 2 * w).sum(0) / count) for length, mean in zip(lengths, means)]
    return np.concatenate([np.stack(means, -1).ravel(), np.stack(stds, -1).ravel()])


def frames_vector(frames: np.ndarray) -> np.ndarray:
    rows = np.asarray(frames, dtype=np.float64)
    return np.concatenate([rows.mean(0), rows.std(0)])


@dataclass
class VideoTiming:
    """What turns minutes into rows of a video's arrays."""
    fps: float | None = None
    subject_id: str | None = None


def video_timings(manifest: pd.DataFrame) -> dict[str, VideoTiming]:
    """Each manifest video's fps and person (subject_id), as the pooled statistics need them."""
    return {str(r.video_id): VideoTiming(fps=None if pd.isna(r.fps) else float(r.fps),
                                         subject_id=None if pd.isna(r.subject_id) else str(r.subject_id))
            for r in manifest[["video_id", "fps", "subject_id"]].itertuples()}


class PooledFeatures:
    """The pooled vectors of one modality for the videos of a workspace, optionally person-relative.

    `vector(video_id, window)` gives the statistics of the rows in `window` (fractions (start, end)
    of the sequence; None = all of it) minus the person's baseline; None when the video lacks the
    array or it is empty. Full-video vectors are computed once and kept."""

    def __init__(self, work, modality: str, videos: dict[str, VideoTiming], *, events_features=("class_rates",),
                 baseline: str = "none", baseline_minutes: float = 2.0, event_groups: dict | None = None):
        if modality not in POOLED_MODALITIES:
            raise UserError(f"no pooled statistics for modality {modality!r}; they exist for {POOLED_MODALITIES}")
        if baseline not in BASELINES:
            raise UserError(f"unknown person baseline {baseline!r}; choose from {BASELINES}")
        self.store, self.modality, self.videos = Store(work), modality, videos
        self.events_features, self.baseline, self.baseline_minutes = tuple(events_features), baseline, baseline_minutes
        self.event_groups = {str(k): v for k, v in (event_groups or {}).items()}
        self._full: dict[str, np.ndarray | None] = {}
        self._subject_mean: dict[str, np.ndarray] | None = None
        self._arrays: dict[str, np.ndarray | None] = {}       # memory-mapped: training reads a window per draw

    def __getstate__(self) -> dict:
        # A worker process maps the arrays itself (a pickled memmap would carry the whole array).
        return {**self.__dict__, "_arrays": {}}

    @property
    def transductive(self) -> bool:
        """Whether a video's vector depends on other videos' features (the unlabeled target ones too)."""
        return self.baseline == "subject"

    @property
    def width(self) -> int:
        for vid in self.videos:
            vec = self._full_vector(vid)
            if vec is not None:
                return len(vec)
        raise UserError(f"no video in {self.store.work} has the `{self.modality}` array: run the stage that makes it first")

    def vector(self, video_id: str, window: tuple[float, float] | None = None) -> np.ndarray | None:
        if window is None:
            raw = self._full_vector(video_id)
        else:
            array = self._array(video_id, drawn=True)
            raw = None if array is None else self._statistics(video_id, _rows_in(array, window))
        if raw is None:
            return None
        if self.baseline == "subject":
            return raw - self.subject_baseline(video_id)
        if self.baseline == "video-start":
            start = self._first_minutes(video_id)
            return raw - start if start is not None else np.zeros_like(raw)
        return raw

    def _full_vector(self, video_id: str) -> np.ndarray | None:
        if video_id not in self._full:
            array = self._array(video_id)
            self._full[video_id] = None if array is None else self._statistics(video_id, array)
        return self._full[video_id]

    def _array(self, video_id: str, drawn: bool = False):
        """The video's array (None: none or empty); keypoints `drawn` again and again (training's windows)
        as the process's checked `Keypoints`, read once for a whole-video vector."""
        if video_id not in self._arrays:
            array = self.store.load_if(video_id, self.modality)
            self._arrays[video_id] = None if array is None or len(array) == 0 else array
        array = self._arrays[video_id]
        return checked_keypoints(array) if drawn and self.modality == "pose" and array is not None else array

    def _statistics(self, video_id: str, rows: np.ndarray) -> np.ndarray | None:
        if len(rows) == 0:
            return None
        if self.modality == "events":
            params = (self.store.meta(video_id, "events") or {}).get("params", {})
            classes = params.get("classes") or list(range(rows.shape[1]))
            groups = [self.event_groups[str(c)] for c in classes] if self.event_groups else None
            return events_vector(np.asarray(rows), float(params.get("rate_hz", 0) or 0), groups, self.events_features)
        if self.modality == "pose":
            return pose_vector(rows)
        return frames_vector(rows)

    def subject_baseline(self, video_id: str) -> np.ndarray:
        """The mean full-video vector of the video's person over their videos here (its own when alone)."""
        timing = self.videos.get(video_id, VideoTiming())
        return self.subject_means().get(timing.subject_id or f"video:{video_id}", self._full_vector(video_id))

    def subject_means(self) -> dict[str, np.ndarray]:
        """Each person's mean full-video vector, computed at the first call (every video's vector)."""
        if self._subject_mean is None:
            by_subject: dict[str, list[np.ndarray]] = {}
            for vid, timing in self.videos.items():
                vec = self._full_vector(vid)
                if vec is not None:
                    by_subject.setdefault(timing.subject_id or f"video:{vid}", []).append(vec)
            self._subject_mean = {s: np.mean(vs, axis=0) for s, vs in by_subject.items()}
            alone = sum(len(vs) == 1 for vs in by_subject.values())
            if alone:
                log.warning("%d %s video(s) are the only one of their person (or have no subject_id): measured "
                            "against themselves, their person-relative %s statistics are all zero", alone,
                            self.modality, self.modality)
        return self._subject_mean

    def _first_minutes(self, video_id: str) -> np.ndarray | None:
        array = self._array(video_id)
        rows_per_s = self._rows_per_second(video_id)
        if array is None or rows_per_s is None:
            return None
        return self._statistics(video_id, array[:max(1, int(round(self.baseline_minutes * 60 * rows_per_s)))])

    def _rows_per_second(self, video_id: str) -> float | None:
        if self.modality == "events":
            return float((self.store.meta(video_id, "events") or {}).get("params", {}).get("rate_hz", 0)) or None
        fps = self.videos.get(video_id, VideoTiming()).fps
        if not fps:
            return None
        if self.modality == "frames":                       # one row per embedded frame
            idx = self.store.load_if(video_id, "frames_idx")
            if idx is None or len(idx) < 2:
                return None
            return fps * (len(idx) - 1) / max(float(idx[-1] - idx[0]), 1.0)
        return fps


def _rows_in(array: np.ndarray, window: tuple[float, float]) -> np.ndarray:
    start, end = window
    n = len(array)
    a = min(int(np.floor(start * n)), n - 1)
    return array[a:max(a + 1, int(np.ceil(end * n)))]
