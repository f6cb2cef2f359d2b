"""Behaviour cue proxies from keypoints, each with its times: what the `behaviour` teacher reads.

Input: `pose` (T, 137, 3) in the OpenPose 137 layout — BODY_25 0-24, 70 face points 25-94 (68
landmarks, pupils at 93 and 94), left hand 95-115, right hand 116-136 — with x, y normalised to the
person box and NaN for a missing point. Every cue is a per-frame signal measured against a reference
inside the same body (face size, eye width, the video's own median), so it does not depend on the
camera distance. Episodes shorter than a cue's minimum duration are noise and are dropped; gaps
shorter than `MERGE_S` inside an episode are bridged.

Cues (code: what it measures):
- `hand-to-face`: a hand (or wrist) inside the face box grown by 25 %.
- `arms crossed`: each wrist on the other side of the body midline, below the shoulders.
- head motion (`head.py`: from the face mesh, and from the BODY_25 nose, eyes and ears where the
  mesh is lost; each episode says which): `AU53/AU54 head nod`, two or more down-up swings of the
  nose of at least 5 % of the head height, each under 0.7 s; `head shake`, three or more side to
  side swings of the yaw of at least 0.08 (about 9 degrees); swings mostly inside a turn of the same
  source are the turn's, and of a nod and a shake at once the stronger one is kept; `AU51/AU52 head turn`, the yaw held
  more than 0.2 (about 23 degrees) off the head's usual direction for 0.5 s or more; `AU55/AU56 head
  tilt`, the eye line's slope held more than 0.2 off its usual level for 0.5 s or more.
- `shoulder rise`: the shoulders come up towards the nose by 20 % for at most 4 s (shrug; looking
  down looks alike, a known confound).
- `AU45 blink`: the eye aspect ratio drops below 65 % of its median for at most 0.5 s.
- `AU25/AU26 mouth opening`: the inner lips part by more than 25 % of the mouth width.
- `AU12 smile`: the mouth widens by more than 8 % over its median, relative to the eye distance.
- `AU61/AU62 gaze aversion`: the pupils sit off the eye centre by more than 15 % of the eye width.
- `fidgeting`: speed of the hands (rolling 1-s median, so one large movement is not restlessness);
  episodes are stretches at more than twice the video's median and above a floor of 0.05 box/s.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hiddenemo.data import layout
from hiddenemo.data.layout import L_SHOULDER, L_WRIST, NECK, NOSE, R_SHOULDER, R_WRIST, global_index
from hiddenemo.teacher.head import head_signals, oscillations, reference
from hiddenemo.teacher.head import rolling_median as _rolling_median
from hiddenemo.teacher.head import smooth as _smooth

# Indices into the 137 points (hiddenemo.data.layout).
RIGHT_EYE = global_index(layout.FACE, layout.RIGHT_EYE)       # corner, upper, upper, corner, lower, lower
LEFT_EYE = global_index(layout.FACE, layout.LEFT_EYE)
MOUTH_RIGHT, MOUTH_LEFT = global_index(layout.FACE, 48), global_index(layout.FACE, 54)
INNER_TOP, INNER_BOTTOM = global_index(layout.FACE, 62), global_index(layout.FACE, 66)
PUPILS = tuple(global_index(layout.FACE, p) for p in layout.PUPILS)
FACE_POINTS = np.arange(layout.FACE.start, layout.FACE.stop)
LEFT_HAND = np.arange(layout.LEFT_HAND.start, layout.LEFT_HAND.stop)
RIGHT_HAND = np.arange(layout.RIGHT_HAND.start, layout.RIGHT_HAND.stop)

MERGE_S = 0.2
# Real interviewees turn their heads to each reporter: only a turn beyond the usual spread (about the
# 80th percentile on iMiGUE video 298) counts.
TURN = 0.2
TILT = 0.2               # slope of the eye line, about 11 degrees
NOD_SWING = 0.05         # head heights
SHAKE_SWING = 0.08       # yaw units (about half the angle in radians): a swing of about 9 degrees
SWING_MAX_S = 0.7        # a slower movement is a change of posture, not a nod or a shake
HOLD_MIN_S = 0.5
FIDGET_FLOOR = 0.05      # box units per second: below this, hands are still whatever the ratio


@dataclass
class Episode:
    start_s: float
    end_s: float
    intensity: float
    detail: str = ""


@dataclass
class Cue:
    code: str
    name: str
    meaning: str
    episodes: list[Episode] = field(default_factory=list)
    value: float | None = None          # a per-video level where the cue has one (fidgeting energy)

    def count(self) -> int:
        return len(self.episodes)

    def seconds(self) -> float:
        return float(sum(e.end_s - e.start_s for e in self.episodes))


# ------------------------------------------------------------------------------------ helpers

def _xy(pose: np.ndarray, idx) -> np.ndarray:
    return np.asarray(pose[:, idx, :2], dtype=np.float32)


def _nanmean(x: np.ndarray, axis) -> np.ndarray:
    ok = np.isfinite(x)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(ok, x, 0).sum(axis) / ok.sum(axis)


def _nanmedian(x: np.ndarray) -> float:
    x = x[np.isfinite(x)]
    return float(np.median(x)) if len(x) else float("nan")


def _dist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.linalg.norm(a - b, axis=-1)


def episodes_of(mask: np.ndarray, strength: np.ndarray, fps: float, min_s: float, max_s: float | None = None,
                merge_s: float = MERGE_S) -> list[Episode]:
    """Runs of True in `mask` (T,) lasting min_s..max_s (gaps under merge_s bridged), with the mean
    `strength` over each run as intensity."""
    mask = np.asarray(mask, dtype=bool)
    gap = int(round(merge_s * fps))
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    starts, ends = edges[::2], edges[1::2]
    runs = []
    for s, e in zip(starts, ends):
        if runs and s - runs[-1][1] <= gap:
            runs[-1][1] = e
        else:
            runs.append([s, e])
    out = []
    for s, e in runs:
        length = (e - s) / fps
        if length < min_s or (max_s is not None and length > max_s):
            continue
        vals = strength[s:e]
        vals = vals[np.isfinite(vals)]
        out.append(Episode(s / fps, e / fps, float(np.clip(vals.mean(), 0, 1)) if len(vals) else 0.0))
    return out


# --------------------------------------------------------------------------------------- cues

def face_box(pose: np.ndarray, grow: float = 0.25) -> np.ndarray:
    """(T, 4) x0, y0, x1, y1 of the face points, grown by `grow` of its size on every side."""
    f = _xy(pose, FACE_POINTS)
    with np.errstate(all="ignore"):
        ok = np.isfinite(f).all(-1).sum(1) >= 10
        lo = np.where(ok[:, None], np.nanmin(np.where(np.isfinite(f), f, np.inf), 1), np.nan)
        hi = np.where(ok[:, None], np.nanmax(np.where(np.isfinite(f), f, -np.inf), 1), np.nan)
    size = hi - lo
    return np.concatenate([lo - grow * size, hi + grow * size], 1)


def hand_to_face(pose: np.ndarray, fps: float) -> Cue:
    box = face_box(pose)
    inside = np.zeros(len(pose), dtype=bool)
    depth = np.zeros(len(pose))
    for hand, wrist in ((LEFT_HAND, L_WRIST), (RIGHT_HAND, R_WRIST)):
        pts = np.concatenate([_xy(pose, hand), _xy(pose, [wrist])], 1)       # (T, 22, 2)
        with np.errstate(invalid="ignore"):
            hit = ((pts >= box[:, None, :2]) & (pts <= box[:, None, 2:])).all(-1)   # (T, 22)
        n_seen = np.isfinite(pts).all(-1).sum(1)
        share = hit.sum(1) / np.maximum(n_seen, 1)
        here = (hit.sum(1) >= 3) | hit[:, -1]
        inside |= here
        depth = np.maximum(depth, np.where(here, share, 0))
    cue = Cue("hand-to-face", "hand-to-face contact", "self-touch (face, chin, cheek); by the prior rule "
              "not a sign of tension on its own")
    cue.episodes = episodes_of(inside, depth, fps, min_s=0.3)
    return cue


def arms_crossed(pose: np.ndarray, fps: float) -> Cue:
    neck, rs, ls = _xy(pose, NECK), _xy(pose, R_SHOULDER), _xy(pose, L_SHOULDER)
    rw, lw = _xy(pose, R_WRIST), _xy(pose, L_WRIST)
    width = np.abs(ls[:, 0] - rs[:, 0])
    mid = (rs[:, 0] + ls[:, 0]) / 2
    side = np.sign(ls[:, 0] - rs[:, 0])               # +1 when the left shoulder is on the image right
    shoulder_y = (rs[:, 1] + ls[:, 1]) / 2
    with np.errstate(invalid="ignore"):
        # Each wrist past the midline towards the other shoulder by 10 % of the shoulder width.
        r_over = side * (rw[:, 0] - mid) / width
        l_over = side * (mid - lw[:, 0]) / width
        below = (rw[:, 1] > shoulder_y) & (lw[:, 1] > shoulder_y)
        crossed = (r_over > 0.1) & (l_over > 0.1) & below
    strength = np.clip(np.minimum(r_over, l_over) * 2, 0, 1)
    cue = Cue("arms crossed", "arms crossed / folded", "a closed, self-protective posture")
    cue.episodes = episodes_of(crossed, strength, fps, min_s=0.8)
    return cue


def head_motion(pose: np.ndarray, fps: float) -> list[Cue]:
    """Nods, shakes, turns and tilts from the face mesh where it was found, and from the body points
    where it was not (`head.py`); an episode both read is one episode naming both."""
    cues = {"nod": Cue("AU53/AU54", "head nod", "the head moves down and up (conversational, agreement)"),
            "shake": Cue("head shake", "head shake", "the head turns from side to side and back (negation, doubt)"),
            "turn": Cue("AU51/AU52", "head turn", "the head turns away from its usual direction and stays turned"),
            "tilt": Cue("AU55/AU56", "head tilt", "the head tilts towards one shoulder")}
    mesh_seen = np.zeros(len(pose), dtype=bool)
    for signals in head_signals(pose, fps):                    # the face mesh first
        found = _head_episodes(signals, fps)
        for name, episodes in found.items():
            # The body points count where the mesh was lost, or where they agree with it.
            cues[name].episodes += [e for e in episodes if signals.source == "face mesh"
                                    or mesh_seen[round(e.start_s * fps):round(e.end_s * fps)].mean() <= 0.5
                                    or _mostly_inside(e, cues[name].episodes)]
        if signals.source == "face mesh":
            mesh_seen = np.isfinite(signals.yaw)
    for cue in cues.values():
        cue.episodes = _merge_sources(cue.episodes)
    return list(cues.values())


def _head_episodes(signals, fps: float) -> dict[str, list[Episode]]:
    """Each head cue's episodes from one source's signals."""
    source = f"from the {signals.source}"
    found = {"turn": _holds(signals.yaw, fps, TURN, source), "tilt": _holds(signals.roll, fps, TILT, source)}
    for name, x, amplitude, min_swings in (("nod", signals.pitch, NOD_SWING, 2),
                                           ("shake", signals.yaw, SHAKE_SWING, 3)):
        found[name] = []
        for a, b, moves in oscillations(x, fps, amplitude, min_swings, SWING_MAX_S):
            size = max(abs(m.size) for m in moves)
            found[name].append(Episode(a / fps, (b + 1) / fps, float(np.clip(size / (4 * amplitude), 0, 1)),
                                       f"{len(moves)} swings, {source}"))
    # Turning away and back moves the nose too: swings mostly inside a turn are the turn's. A shaking
    # head also bobs a little and a nodding one sways: of a nod and a shake at once, the stronger
    # (against its own threshold) is the movement.
    nods, shakes, turns = found["nod"], found["shake"], found["turn"]
    found["nod"] = [e for e in nods if not _mostly_inside(e, turns + [s for s in shakes if s.intensity > e.intensity])]
    found["shake"] = [e for e in shakes if not _mostly_inside(e, turns + [n for n in nods if n.intensity >= e.intensity])]
    return found


def _mostly_inside(e: Episode, others: list[Episode]) -> bool:
    inside = sum(max(0.0, min(e.end_s, o.end_s) - max(e.start_s, o.start_s)) for o in others)
    return inside > 0.5 * (e.end_s - e.start_s)


def _holds(x: np.ndarray, fps: float, threshold: float, source: str) -> list[Episode]:
    """Stretches where `x`, smoothed over 0.4 s (a shake averages out), lies more than `threshold` off
    the head's usual level for at least HOLD_MIN_S, with the side they lie on. An episode runs from
    the head passing half the threshold on its way out to passing it on its way back."""
    x = _smooth(x, max(1, round(fps * 0.4)))
    off = x - reference(x, fps)
    out = []
    for sign, side in ((-1, "towards the image left"), (1, "towards the image right")):
        with np.errstate(invalid="ignore"):
            held, away = sign * off > threshold, sign * off > threshold / 2
        for e in episodes_of(away, np.abs(off) / (3 * threshold), fps, min_s=HOLD_MIN_S):
            if held[round(e.start_s * fps):round(e.end_s * fps)].sum() >= HOLD_MIN_S * fps:
                e.detail = f"{side}, {source}"
                out.append(e)
    return out


def _merge_sources(episodes: list[Episode]) -> list[Episode]:
    """Overlapping episodes of the same kind (same side) from the two sources become one, naming both
    (the face mesh first)."""
    def split(e: Episode) -> tuple[str, str]:
        what, _, source = e.detail.rpartition(", from the ")
        return ("" if what.endswith(" swings") else what), source

    out: list[Episode] = []
    for e in sorted(episodes, key=lambda e: e.start_s):
        if out and e.start_s <= out[-1].end_s + MERGE_S and split(out[-1])[0] == split(e)[0]:
            last = out[-1]
            last.end_s, last.intensity = max(last.end_s, e.end_s), max(last.intensity, e.intensity)
            if split(e)[1] not in last.detail:
                last.detail = last.detail.rpartition(", from the ")[0] + ", from the face mesh and body points"
            continue
        out.append(e)
    return out


def shoulder_rises(pose: np.ndarray, fps: float) -> Cue:
    nose, rs, ls = _xy(pose, NOSE), _xy(pose, R_SHOULDER), _xy(pose, L_SHOULDER)
    width = _dist(rs, ls)
    gap = ((rs[:, 1] + ls[:, 1]) / 2 - nose[:, 1]) / width    # nose above the shoulder line, in widths
    gap = _smooth(gap, max(1, int(fps * 0.2)))
    drop = 1 - gap / _nanmedian(gap)
    with np.errstate(invalid="ignore"):
        mask = drop > 0.2
    cue = Cue("shoulder rise", "shoulder rise (shrug)", "shoulders pulled up towards the head")
    cue.episodes = episodes_of(mask, drop * 3, fps, min_s=0.25, max_s=4.0)
    return cue


def eye_aspect(pose: np.ndarray) -> np.ndarray:
    """(T,) mean eye aspect ratio of both eyes: lid opening over eye width."""
    ratios = []
    for eye in (RIGHT_EYE, LEFT_EYE):
        p = _xy(pose, eye)
        with np.errstate(invalid="ignore", divide="ignore"):
            ratios.append((_dist(p[:, 1], p[:, 5]) + _dist(p[:, 2], p[:, 4])) / (2 * _dist(p[:, 0], p[:, 3])))
    return _nanmean(np.stack(ratios, 1), 1)


def blinks(pose: np.ndarray, fps: float) -> Cue:
    ear = eye_aspect(pose)
    ratio = ear / _nanmedian(ear)
    with np.errstate(invalid="ignore"):
        mask = ratio < 0.65
    cue = Cue("AU45", "blink", "eyelids close briefly")
    # At least two frames: a one-frame dip is keypoint noise more often than a blink.
    cue.episodes = episodes_of(mask, 1 - ratio, fps, min_s=1.5 / fps, max_s=0.5, merge_s=0.0)
    return cue


def mouth_openings(pose: np.ndarray, fps: float) -> Cue:
    top, bottom = _xy(pose, INNER_TOP), _xy(pose, INNER_BOTTOM)
    width = _dist(_xy(pose, MOUTH_RIGHT), _xy(pose, MOUTH_LEFT))
    opening = _smooth(_dist(top, bottom) / width, max(1, int(fps * 0.12)))
    with np.errstate(invalid="ignore"):
        mask = opening > 0.25
    cue = Cue("AU25/AU26", "mouth opening", "lips part / jaw drops (speaking, exhaling)")
    cue.episodes = episodes_of(mask, opening * 2, fps, min_s=0.15)
    return cue


def smiles(pose: np.ndarray, fps: float) -> Cue:
    eyes = _dist(_nanmean(_xy(pose, RIGHT_EYE), 1), _nanmean(_xy(pose, LEFT_EYE), 1))
    width = _smooth(_dist(_xy(pose, MOUTH_RIGHT), _xy(pose, MOUTH_LEFT)) / eyes, max(1, int(fps * 0.2)))
    gain = width / _nanmedian(width) - 1
    with np.errstate(invalid="ignore"):
        mask = gain > 0.08
    cue = Cue("AU12", "smile", "lip corners pulled up and out")
    cue.episodes = episodes_of(mask, gain * 5, fps, min_s=0.4)
    return cue


def gaze_aversion(pose: np.ndarray, fps: float) -> Cue:
    offsets = []
    for eye, pupil in ((RIGHT_EYE, PUPILS[0]), (LEFT_EYE, PUPILS[1])):
        p = _xy(pose, eye)
        centre = _nanmean(p, 1)
        width = _dist(p[:, 0], p[:, 3])
        offsets.append((_xy(pose, pupil)[:, :] - centre) / width[:, None])     # (T, 2)
    off = _smooth(_nanmean(np.stack(offsets, 0), 0), max(1, int(fps * 0.2)))  # (T, 2)
    off = off - np.array([_nanmedian(off[:, 0]), _nanmedian(off[:, 1])])
    size = np.linalg.norm(off, axis=-1)
    with np.errstate(invalid="ignore"):
        mask = size > 0.15
    cue = Cue("AU61/AU62", "gaze aversion", "eyes turned away from the usual direction of gaze")
    cue.episodes = episodes_of(mask, size * 3, fps, min_s=0.4)
    for e in cue.episodes:
        seg = off[int(e.start_s * fps):max(int(e.end_s * fps), int(e.start_s * fps) + 1)]
        dx, dy = np.nanmean(seg[:, 0]), np.nanmean(seg[:, 1])
        e.detail = ("to the image right" if dx > 0 else "to the image left") if abs(dx) >= abs(dy) else \
            ("downwards" if dy > 0 else "upwards")
    return cue


def fidgeting(pose: np.ndarray, fps: float) -> Cue:
    """Speed of the hand centres (the wrist where a hand is missing), lightly smoothed against keypoint
    noise, in box units per second; `value` is its median over the video. The per-frame level is a
    rolling median over 1 s: sustained restlessness stays, the few fast frames of one large movement
    (reaching for the face, folding the arms) drop out. Head movement is left to `head_motion`."""
    speeds = []
    for hand, wrist in ((LEFT_HAND, L_WRIST), (RIGHT_HAND, R_WRIST)):
        centre = _nanmean(_xy(pose, hand), 1)
        centre = _smooth(np.where(np.isfinite(centre), centre, _xy(pose, wrist)), 3)       # (T, 2)
        speeds.append(np.linalg.norm(np.diff(centre, axis=0, prepend=centre[:1]), axis=-1) * fps)
    level = _rolling_median(_nanmean(np.stack(speeds, 1), 1), max(3, int(fps)))
    median = _nanmedian(level)
    with np.errstate(invalid="ignore"):
        mask = (level > 2 * median) & (level > FIDGET_FLOOR)
    cue = Cue("fidgeting", "fidgeting", "restless small movements of the hands", value=median)
    cue.episodes = episodes_of(mask, level / (4 * max(median, FIDGET_FLOOR)), fps, min_s=1.0)
    return cue


DETECTORS = (hand_to_face, arms_crossed, head_motion, shoulder_rises, blinks, mouth_openings, smiles, gaze_aversion,
             fidgeting)


def detect_all(pose: np.ndarray, fps: float) -> dict[str, Cue]:
    """Every cue of one video, by name."""
    pose = np.asarray(pose, dtype=np.float32)
    if pose.ndim != 3 or pose.shape[1:] != (layout.N_KEYPOINTS, 3):
        raise ValueError(f"pose must be (T, 137, 3), got {pose.shape}")
    found = [detect(pose, fps) for detect in DETECTORS]
    return {c.name: c for cue in found for c in (cue if isinstance(cue, list) else [cue])}
