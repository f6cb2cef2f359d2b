"""A seeded synthetic interview dataset in iMiGUE's real file formats.

Each video shows a drawn person seated behind a press-conference desk, seen from the front: head
with the 70 OpenPose face points, torso, arms and hands. Behavioural cues are inserted as timed
episodes whose rates depend on the hidden label (Win / Lose, about 3:1) and on the person (some
people fidget, touch their face or smile more than others whatever the result). The cues sit in
different modalities at different strengths (see `CUES` and docs/synthetic.md), so that neither
one modality nor a rule-based teacher reading the keypoints is enough, while a fused model can do
better:

- `flush` (reddening cheeks) is drawn in the pixels only;
- `clench` (curling fingers) is in the hand keypoints only: hands are drawn as mittens;
- `lip_press` moves the lips by less than the keypoint noise: it is mostly in the annotations;
- `face_touch`, `arm_fold`, `gaze_away`, `smile`, `fidget` are in keypoints and pixels, and are
  what a behaviour teacher reads; some are weak, and `nod`, `shrug`, `blink`, `talk_gesture` are
  distractors with the same rate in both classes.

Outputs under `out/` (every file the iMiGUE adapter reads, in its formats):

    videos/<id>.mp4                            H.264, 25 fps
    openpose/<id>/<id>_<frame:012d>_keypoints.json   OpenPose 1.3 JSON, pixels of the drawn figure + noise
    labels_20200831.csv                        timed micro-gestures, win_or_lose blank on the target split
    splits.csv                                 video_id, subject_id, cvpr21_emotion, miga_cross_subject
    target_labels.csv                          the withheld labels of the target split (scoring only)
    truth/cues.csv                             per video, the fraction of frames each cue was active
    synthetic.json                             parameters and the cue table

Everything depends only on (seed, sizes): a video is drawn from its own generator, so an
interrupted run resumes by skipping finished videos and gives the same files.
"""
from __future__ import annotations

import json
import math
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from hiddenemo.data.store import atomic_write_text

FPS = 25
VERSION = "1"
LABELS_FILE = "labels_20200831.csv"
LABEL_NAMES = {0: "Win", 1: "Lose"}          # iMiGUE's win_or_lose spelling; 1 = the cue-rich class
BASE_W, BASE_H = 192, 144                    # geometry below is in these units, scaled to the output size


@dataclass(frozen=True)
class Cue:
    """A behaviour inserted as timed episodes."""
    name: str
    rate_win: float                  # episodes per 10 s for a Win video (before person/video variation)
    rate_lose: float                 # the same for a Lose video
    seconds: tuple[float, float]     # episode duration range
    gesture: int | None              # iMiGUE class id written to the labels file; None = not annotated
    keypoints: int                   # visibility in each modality: 0 none, 1 faint, 2 clear
    pixels: int
    annotations: int
    teacher: bool                    # read by a keypoint-rule teacher (hand-to-face, arms, gaze, ...)
    track: str = "head"              # episodes on one track never overlap (arms cannot do two things)


# Annotated cues carry the id of the nearest official iMiGUE class (hiddenemo.data.imigue.TAXONOMY):
# 8 touching or scratching facial parts, 17 folding arms, 29 pressing lips, 31 shaking shoulders,
# 99 illustrative body language. iMiGUE has no nodding class, so nods are not annotated.
CUES: tuple[Cue, ...] = (
    Cue("talk_gesture", 1.6, 1.6, (1.0, 2.4), 99, 2, 2, 2, False, "arms"),
    Cue("face_touch", 0.7, 0.9, (0.8, 2.0), 8, 2, 2, 2, True, "arms"),
    Cue("arm_fold", 0.35, 0.7, (1.6, 3.6), 17, 2, 2, 2, True, "arms"),
    Cue("gaze_away", 0.8, 1.4, (0.6, 1.6), None, 2, 1, 0, True, "eyes"),
    Cue("smile", 1.2, 0.6, (0.8, 2.0), None, 2, 2, 0, True, "mouth"),
    Cue("lip_press", 0.4, 2.0, (0.6, 1.4), 29, 1, 1, 2, False, "lips"),
    Cue("flush", 0.4, 2.0, (1.2, 3.0), None, 0, 2, 0, False, "skin"),
    Cue("clench", 0.4, 2.0, (1.0, 2.6), None, 2, 0, 0, False, "fingers"),
    Cue("nod", 1.0, 1.0, (0.4, 0.9), None, 2, 2, 0, True, "head"),
    Cue("shrug", 0.5, 0.5, (0.5, 1.0), 31, 2, 2, 2, True, "shoulders"),
    Cue("blink", 3.0, 3.0, (0.10, 0.16), None, 2, 1, 0, True, "lids"),
)
CUE_NAMES = tuple(c.name for c in CUES)
FIDGET_LOSE_FACTOR = 1.15           # continuous hand/body jitter, keypoints (dynamics) and teacher
ANNOTATOR_RECALL = 0.85             # share of annotatable episodes the annotator writes down

NATIONALITIES = ("Australia", "Spain", "United States", "France", "China", "Croatia", "Germany",
                 "Japan", "Canada", "Serbia", "Czech Republic", "Argentina")
SKIN = ((189, 214, 240), (160, 190, 225), (120, 160, 205), (90, 125, 170), (60, 90, 130))   # BGR
HAIR = ((30, 30, 35), (40, 60, 100), (60, 110, 170), (25, 25, 25), (120, 150, 190))
SHIRT = ((170, 90, 30), (40, 40, 40), (230, 230, 230), (60, 60, 160), (60, 130, 60), (150, 60, 110))
BACKDROP = ((140, 80, 20), (120, 60, 10), (90, 90, 90), (150, 110, 40))


@dataclass
class Subject:
    id: str
    gender: str
    nationality: str
    skin: tuple
    hair: tuple
    shirt: tuple
    dx: float                        # seat position and body scale
    scale: float
    habits: dict                     # cue name -> personal rate multiplier
    fidget: float


@dataclass
class Episode:
    cue: str
    start: int                       # frames, inclusive
    end: int                         # frames, exclusive
    side: int = 1                    # which hand / which way (+1 = image right)
    annotated: bool = False


@dataclass
class VideoPlan:
    video_id: str
    subject: Subject
    label: int                       # 0 Win, 1 Lose
    split: str                       # train (labelled) / test (target: label withheld)
    n_frames: int
    fidget: float
    backdrop: tuple
    episodes: list[Episode] = field(default_factory=list)


# --------------------------------------------------------------------------------------- planning

def plan_dataset(seed: int, n_videos: int, n_frames: int, n_subjects: int | None = None,
                 lose_share: float = 0.25, target_share: float = 0.3) -> list[VideoPlan]:
    """Who is in which video, its label and split, its length and its timed cue episodes."""
    if n_videos < 4:
        raise ValueError(f"need at least 4 videos (2 labelled, 2 target), got {n_videos}")
    rng = np.random.default_rng([seed, 0])
    n_subjects = min(n_subjects or max(2, round(n_videos / 3)), n_videos)
    subjects = [_subject(np.random.default_rng([seed, 1, s]), f"{s + 1}") for s in range(n_subjects)]

    # Subjects with several videos, cross-subject target split (as MiGA's), about 3:1 Win:Lose.
    owner = np.sort(np.concatenate([np.arange(n_subjects), rng.integers(0, n_subjects, n_videos - n_subjects)]))
    target_subjects = _target_subjects(rng, owner, target_share)
    split = np.where(np.isin(owner, target_subjects), "test", "train")
    labels = np.zeros(n_videos, dtype=int)
    for part in ("train", "test"):                  # each part about 3:1, with at least one Lose
        idx = np.flatnonzero(split == part)
        n_lose = min(max(1, round(len(idx) * lose_share)), len(idx) - 1) if len(idx) > 1 else 0
        labels[rng.choice(idx, n_lose, replace=False)] = 1

    lengths = np.clip(n_frames * rng.lognormal(0.0, 0.35, n_videos), 0.5 * n_frames, 2.2 * n_frames)
    plans = []
    for v in range(n_videos):
        vrng = np.random.default_rng([seed, 2, v])
        subject = subjects[owner[v]]
        plan = VideoPlan(video_id=str(v + 1), subject=subject, label=int(labels[v]), split=str(split[v]),
                         n_frames=max(int(lengths[v]), 30), backdrop=BACKDROP[vrng.integers(len(BACKDROP))],
                         fidget=subject.fidget * (FIDGET_LOSE_FACTOR if labels[v] else 1.0)
                         * float(vrng.lognormal(0, 0.2)))
        plan.episodes = _episodes(vrng, plan)
        plans.append(plan)
    return plans


def _subject(rng: np.random.Generator, subject_id: str) -> Subject:
    return Subject(id=subject_id, gender=str(rng.choice(["F", "M"])),
                   nationality=str(rng.choice(NATIONALITIES)),
                   skin=SKIN[rng.integers(len(SKIN))], hair=HAIR[rng.integers(len(HAIR))],
                   shirt=SHIRT[rng.integers(len(SHIRT))], dx=float(rng.uniform(-10, 10)),
                   scale=float(rng.uniform(0.92, 1.08)),
                   # Personal habits blur the class signal: a rate is the class rate times this.
                   habits={c.name: float(rng.lognormal(0.0, 0.45)) for c in CUES},
                   fidget=float(rng.lognormal(0.0, 0.35)))


def _target_subjects(rng: np.random.Generator, owner: np.ndarray, share: float) -> np.ndarray:
    """Whole subjects go to the target split until it holds about `share` of the videos."""
    order = rng.permutation(np.unique(owner))
    counts = np.bincount(owner)
    chosen, total = [], 0
    for s in order:
        if total >= share * len(owner) and len(chosen) >= 1:
            break
        if total + counts[s] > len(owner) - 2:       # keep at least two labelled videos
            continue
        chosen.append(s)
        total += counts[s]
    return np.array(chosen)


def _episodes(rng: np.random.Generator, plan: VideoPlan) -> list[Episode]:
    """Poisson episodes per cue; episodes on one track never overlap; every video talks with its hands
    at least once (so every video has annotations, as in iMiGUE)."""
    seconds = plan.n_frames / FPS
    busy: dict[str, np.ndarray] = {}
    episodes = []
    for cue in CUES:
        rate = (cue.rate_lose if plan.label else cue.rate_win) * plan.subject.habits[cue.name]
        n = rng.poisson(rate * rng.lognormal(0, 0.25) * seconds / 10)
        if cue.name == "talk_gesture":
            n = max(n, 1)
        track = busy.setdefault(cue.track, np.zeros(plan.n_frames, dtype=bool))
        for _ in range(n):
            length = int(rng.uniform(*cue.seconds) * FPS)
            for _attempt in range(8):
                start = int(rng.integers(0, max(plan.n_frames - length, 1)))
                end = min(start + length, plan.n_frames)
                if not track[max(start - 5, 0):end + 5].any():
                    track[start:end] = True
                    episodes.append(Episode(cue.name, start, end, side=int(rng.choice([-1, 1])),
                                            annotated=cue.gesture is not None
                                            and bool(rng.random() < ANNOTATOR_RECALL)))
                    break
    if not any(e.annotated for e in episodes):
        # iMiGUE lists a video's label only on its annotation rows: an unannotated video would lose it.
        next(e for e in episodes if e.cue == "talk_gesture").annotated = True
    return sorted(episodes, key=lambda e: (e.start, e.cue))


def envelopes(plan: VideoPlan) -> dict[str, np.ndarray]:
    """Per cue, its activation (T,) in [0, 1] with 0.2 s ramps (blinks: instant); plus the signed
    side per frame under the key `<cue>.side`."""
    t = np.arange(plan.n_frames)
    env = {c.name: np.zeros(plan.n_frames, dtype=np.float32) for c in CUES}
    for e in plan.episodes:
        ramp = 1.0 if e.cue == "blink" else max(min(5.0, (e.end - e.start) / 3), 1.0)
        a = np.clip(np.minimum(t - e.start + 1, e.end - t) / ramp, 0, 1).astype(np.float32)
        env[e.cue] = np.maximum(env[e.cue], a)
        side = env.setdefault(f"{e.cue}.side", np.zeros(plan.n_frames, dtype=np.float32))
        side[e.start:e.end] = e.side
    return env


# --------------------------------------------------------------------------------- the figure

# Face template: 70 points relative to the head centre, in units of the head's half-width (x) and
# half-height (y), with a depth z for turning. Order = OpenPose face: jaw 0-16, brows 17-26,
# nose 27-35, eyes 36-47, outer lips 48-59, inner lips 60-67, pupils 68-69.
def _face_template() -> np.ndarray:
    pts = []
    for phi in np.linspace(0, math.pi, 17):                                   # jaw, image left to right
        pts.append((-0.92 * math.cos(phi), -0.05 + 0.85 * math.sin(phi), 0.35 * math.sin(phi) - 0.2))
    for x0 in (-0.75, 0.15):                                                  # brows
        for k in range(5):
            x = x0 + 0.15 * k
            pts.append((x, -0.40 - 0.07 * math.sin(math.pi * k / 4), 0.3))
    for k in range(4):                                                        # nose bridge
        pts.append((0.0, -0.28 + 0.13 * k, 0.35 + 0.12 * k))
    for k in range(5):                                                        # nose bottom
        pts.append((-0.18 + 0.09 * k, 0.22 - 0.03 * (k == 2), 0.45))
    for cx in (-0.40, 0.40):                                                  # eyes: corner, 2 upper, corner, 2 lower
        for dx, dy in ((-0.17, 0), (-0.06, -0.075), (0.06, -0.075), (0.17, 0), (0.06, 0.075), (-0.06, 0.075)):
            pts.append((cx + dx, -0.18 + dy, 0.3))
    for k in range(12):                                                       # outer lips, from the right corner
        a = math.pi - 2 * math.pi * k / 12
        pts.append((0.30 * math.cos(a), 0.50 - 0.085 * math.sin(a), 0.3))
    for k in range(8):                                                        # inner lips
        a = math.pi - 2 * math.pi * k / 8
        pts.append((0.22 * math.cos(a), 0.50 - 0.025 * math.sin(a), 0.3))
    pts += [(-0.40, -0.18, 0.32), (0.40, -0.18, 0.32)]                        # pupils
    return np.array(pts, dtype=np.float32)


FACE = _face_template()
EYE_UPPER = [37, 38, 43, 44]
EYE_LOWER = [41, 40, 47, 46]           # the lower lid point below each upper one
HAND_SPREAD = np.array([-0.9, -0.25, 0.0, 0.25, 0.5])   # thumb, index .. pinky base offsets across the palm
HAND_LEN = np.array([0.35, 0.45, 0.48, 0.45, 0.38])     # first-phalanx lengths relative to hand size


def skeleton(plan: VideoPlan, rng: np.random.Generator) -> np.ndarray:
    """True pixel keypoints (T, 137, 2) in BASE_W x BASE_H units, and the cue envelopes drive them."""
    T = plan.n_frames
    env = envelopes(plan)
    s = plan.subject.scale
    cx = BASE_W / 2 + plan.subject.dx
    t = np.arange(T) / FPS
    fid = plan.fidget

    # Slow sway of the whole body plus the person's fidgeting (2-5 Hz jitter of hands and head).
    sway = np.stack([_smooth_noise(rng, T, 40) * 1.2, _smooth_noise(rng, T, 50) * 0.6], -1)
    jitter_hands = np.stack([_smooth_noise(rng, T, 6), _smooth_noise(rng, T, 6)], -1) * 1.3 * fid
    jitter_head = np.stack([_smooth_noise(rng, T, 8), _smooth_noise(rng, T, 8)], -1) * 0.5 * fid

    shrug = env["shrug"][:, None] * np.array([0, -4.0]) * s
    neck = np.array([cx, 86.0]) + sway + shrug
    sh_w = 30 * s
    r_sh = neck + np.array([-sh_w, 3.0 * s])
    l_sh = neck + np.array([sh_w, 3.0 * s])

    nod = env["nod"] * np.sin(2 * np.pi * 2.2 * t) * 0.12                 # pitch, radians
    gaze_side = env.get("gaze_away.side", np.zeros(T))
    yaw = env["gaze_away"] * gaze_side * 0.16 + 0.04 * _smooth_noise(rng, T, 60)
    head = neck + np.array([0.0, -34.0 * s]) + jitter_head + np.stack([np.zeros(T), nod * 20 * s], -1)
    face = _face_points(head, yaw, nod, env, s, gaze_side)                 # (T, 70, 2)

    arms = _arms(env, neck, r_sh, l_sh, face, s, t, jitter_hands)
    pose = np.full((T, 25, 2), np.nan, dtype=np.float32)                   # lower body: under the desk
    pose[:, 0] = face[:, 30]
    pose[:, 1] = neck
    pose[:, 2], pose[:, 3], pose[:, 4] = r_sh, arms["r_elbow"], arms["r_wrist"]
    pose[:, 5], pose[:, 6], pose[:, 7] = l_sh, arms["l_elbow"], arms["l_wrist"]
    pose[:, 15], pose[:, 16] = face[:, 68], face[:, 69]
    ear_dx = 17 * s * np.cos(yaw)
    pose[:, 17] = head + np.stack([-ear_dx - 2 * np.sin(yaw), np.full(T, -1.0)], -1)
    pose[:, 18] = head + np.stack([ear_dx - 2 * np.sin(yaw), np.full(T, -1.0)], -1)
    clench = env["clench"]
    hands_l = _hand(arms["l_wrist"], arms["l_dir"], side=+1, curl=0.25 + 1.25 * clench, size=11 * s)
    hands_r = _hand(arms["r_wrist"], arms["r_dir"], side=-1, curl=0.25 + 1.25 * clench, size=11 * s)
    return np.concatenate([pose, face, hands_l, hands_r], axis=1).astype(np.float32)


def _face_points(head, yaw, pitch, env, s, gaze_side) -> np.ndarray:
    T = len(head)
    f = np.broadcast_to(FACE, (T, 70, 3)).copy()
    # Expressions move template points before the head's own motion.
    blink = env["blink"][:, None]
    f[:, EYE_UPPER, 1] += blink * 0.14
    smile = env["smile"][:, None]
    f[:, [48, 60], 0] -= smile * 0.06
    f[:, [54, 64], 0] += smile * 0.06
    f[:, [48, 54, 60, 64], 1] -= smile * 0.08
    f[:, [56, 57, 58], 1] += smile[:, :1] * 0.03
    press = env["lip_press"][:, None]
    f[:, 61:64, 1] += press * 0.02                      # inner lips meet; outer lips thin a little
    f[:, 65:68, 1] -= press * 0.02
    f[:, 49:54, 1] += press * 0.012
    f[:, 55:60, 1] -= press * 0.012
    gaze = env["gaze_away"][:, None] * gaze_side[:, None]
    f[:, 68:70, 0] += gaze * 0.09
    f[:, 68:70, 1] += env["gaze_away"][:, None] * 0.025
    x = f[..., 0] * np.cos(yaw)[:, None] + f[..., 2] * np.sin(yaw)[:, None]
    y = f[..., 1] * np.cos(pitch)[:, None] + f[..., 2] * np.sin(pitch)[:, None] * 0.5
    return np.stack([head[:, None, 0] + 16 * s * x, head[:, None, 1] + 20 * s * y], -1)


def _arms(env, neck, r_sh, l_sh, face, s, t, jitter) -> dict[str, np.ndarray]:
    """Elbows, wrists and hand directions as blends of the resting pose and the active cue's pose."""
    T = len(neck)
    out = {}
    for name, sh, sgn in (("r", r_sh, -1), ("l", l_sh, 1)):
        # Resting: forearms on the desk, hands pointing inwards.
        elbow = sh + np.array([sgn * 9.0, 30.0]) * s
        wrist = neck + np.array([sgn * 20.0, 38.0]) * s
        direction = np.tile(np.array([-sgn * 0.8, -0.6]), (T, 1))
        poses = []
        talk = env["talk_gesture"] * (env["talk_gesture.side"] == sgn) if "talk_gesture.side" in env else env["talk_gesture"] * 0
        wave = np.stack([3 * np.sin(2 * np.pi * 1.3 * t), 2.5 * np.cos(2 * np.pi * 1.7 * t)], -1) * s
        poses.append((talk, sh + np.array([sgn * 8.0, 26.0]) * s, neck + np.array([sgn * 14.0, 18.0]) * s + wave,
                      np.array([-sgn * 0.3, -0.95])))
        touch = env["face_touch"] * (env["face_touch.side"] == sgn) if "face_touch.side" in env else env["face_touch"] * 0
        chin = face[:, 8] + np.array([sgn * 6.0, 4.0]) * s
        poses.append((touch, sh + np.array([sgn * 4.0, 24.0]) * s, chin, np.array([-sgn * 0.25, -0.97])))
        fold = env["arm_fold"]
        poses.append((fold, sh + np.array([sgn * 3.0, 24.0]) * s, neck + np.array([-sgn * 12.0, 22.0 + 3 * (sgn > 0)]) * s,
                      np.array([-sgn * 0.95, -0.2])))
        for weight, e_pos, w_pos, d in poses:
            w = weight[:, None]
            elbow = elbow * (1 - w) + e_pos * w
            wrist = wrist * (1 - w) + w_pos * w
            direction = direction * (1 - w) + d * w
        wrist = wrist + jitter * (1 - 0.7 * fold[:, None])
        out[f"{name}_elbow"], out[f"{name}_wrist"] = elbow, wrist
        out[f"{name}_dir"] = direction / np.linalg.norm(direction, axis=-1, keepdims=True)
    return out


def _hand(wrist, direction, side, curl, size) -> np.ndarray:
    """21 OpenPose hand points: wrist, then 4 joints per finger (thumb .. pinky); `curl` in radians
    per joint bends the fingers towards the palm."""
    T = len(wrist)
    perp = np.stack([-direction[:, 1], direction[:, 0]], -1) * side
    pts = [wrist]
    for f in range(5):
        base = wrist + direction * size * (0.25 if f == 0 else 0.55) + perp * size * HAND_SPREAD[f] * 0.4
        ang = np.zeros(T) if f else np.full(T, -0.6 * side)
        p = base
        pts_f = []
        d = direction
        for j in range(4):
            a = ang + (curl * (1.0 if f else 0.4)) * j * side
            c, s_ = np.cos(a)[:, None], np.sin(a)[:, None]
            dj = np.concatenate([d[:, :1] * c - d[:, 1:] * s_, d[:, :1] * s_ + d[:, 1:] * c], -1)
            if j:
                p = p + dj * size * HAND_LEN[f] * (0.8 ** j)
            pts_f.append(p)
        pts += pts_f
    return np.stack(pts, 1)


def _smooth_noise(rng: np.random.Generator, n: int, width: int) -> np.ndarray:
    """Unit-variance noise smoothed over about `width` frames."""
    kernel = np.hanning(max(width, 3))
    x = np.convolve(rng.standard_normal(n + len(kernel)), kernel, mode="same")[:n]
    return x / (x.std() + 1e-9)


# ------------------------------------------------------------------------------------- drawing

def render(plan: VideoPlan, kp: np.ndarray, width: int, height: int, rng: np.random.Generator):
    """Yield (height, width, 3) uint8 BGR frames of the figure at keypoints `kp` (base units)."""
    import cv2

    sx, sy = width / BASE_W, height / BASE_H
    env = envelopes(plan)
    subj = plan.subject
    background = _backdrop(plan, width, height, rng)
    noise_bank = [rng.normal(0, 2.0, (height, width, 3)).astype(np.int16) for _ in range(6)]
    S = 16                                           # fixed-point shift for sub-pixel drawing

    def P(p):
        return (int(round(p[0] * sx * S)), int(round(p[1] * sy * S)))

    def poly(pts):
        return (np.stack([pts[:, 0] * sx, pts[:, 1] * sy], -1) * S).round().astype(np.int32)

    lw = max(1, int(round(sx)))
    for f in range(plan.n_frames):
        img = background.copy()
        k = kp[f]
        body, face = k[:25], k[25:95]
        hand_l, hand_r = k[95:116], k[116:137]
        neck, r_sh, l_sh = body[1], body[2], body[5]
        # Torso: shirt from the shoulders down past the desk.
        torso = np.array([r_sh, l_sh, l_sh + [6, 70], r_sh + [-6, 70]])
        cv2.fillConvexPoly(img, poly(torso), subj.shirt, cv2.LINE_AA, 4)
        cv2.line(img, P(neck), P(neck - [0, 12]), subj.skin, 7 * lw, cv2.LINE_AA, 4)
        # Desk in front of the lower torso, with a microphone.
        desk_y = int(118 * sy)
        cv2.rectangle(img, (0, desk_y), (width, height), (40, 40, 45), -1)
        cv2.rectangle(img, (0, desk_y), (width, desk_y + max(1, int(2 * sy))), (90, 90, 95), -1)
        mic = (int((BASE_W / 2 + 22) * sx), desk_y)
        cv2.line(img, mic, (mic[0] - int(10 * sx), mic[1] - int(22 * sy)), (20, 20, 20), lw)
        cv2.circle(img, (mic[0] - int(10 * sx), mic[1] - int(23 * sy)), max(2, int(2.5 * sx)), (15, 15, 15), -1)
        _draw_head(img, face, body, env, f, subj, P, poly, sx, sy, lw)
        for sh, el, wr, hand in ((r_sh, body[3], body[4], hand_r), (l_sh, body[6], body[7], hand_l)):
            cv2.line(img, P(sh), P(el), subj.shirt, 6 * lw, cv2.LINE_AA, 4)
            cv2.line(img, P(el), P(wr), subj.skin, 5 * lw, cv2.LINE_AA, 4)
            # Hands drawn as mittens: palm and a fixed finger block, so finger curl stays invisible.
            d = hand[9] - hand[0]
            d = d / (np.linalg.norm(d) + 1e-6)
            tip = hand[0] + d * 11 * subj.scale
            cv2.line(img, P(hand[0]), P(tip), subj.skin, 5 * lw, cv2.LINE_AA, 4)
            cv2.line(img, P(hand[1]), P(hand[2]), subj.skin, 2 * lw, cv2.LINE_AA, 4)
        img = np.clip(img.astype(np.int16) + noise_bank[f % len(noise_bank)], 0, 255).astype(np.uint8)
        yield img


def _draw_head(img, face, body, env, f, subj, P, poly, sx, sy, lw):
    import cv2

    centre = (face[0] + face[16]) / 2
    rx = np.linalg.norm(face[16] - face[0]) / 2 * 1.05
    top = face[19:25, 1].min()
    ry = (face[8, 1] - top) * 0.78
    cy = (face[8, 1] + top) / 2 - 2
    cv2.ellipse(img, P((centre[0], cy - 3)), (int(rx * sx * 16 * 1.08), int(ry * sy * 16 * 1.12)), 0, 0, 360,
                subj.hair, -1, cv2.LINE_AA, 4)
    for ear in (body[17], body[18]):
        cv2.circle(img, P(ear), int(3 * sx * 16), subj.skin, -1, cv2.LINE_AA, 4)
    cv2.fillPoly(img, [poly(face[0:17])], subj.skin, cv2.LINE_AA, 4)
    cv2.ellipse(img, P((centre[0], face[0, 1] + 1)), (int(rx * sx * 16), int((face[0, 1] - top + 5) * sy * 16)),
                0, 180, 360, subj.skin, -1, cv2.LINE_AA, 4)
    # Flush: reddened cheeks, in the pixels only.
    flush = float(env["flush"][f])
    if flush > 0:
        overlay = img.copy()
        for cheek in (face[3] * 0.5 + face[31] * 0.5, face[13] * 0.5 + face[35] * 0.5):
            cv2.ellipse(overlay, P(cheek), (int(5 * sx * 16), int(3.5 * sy * 16)), 0, 0, 360, (70, 60, 220), -1,
                        cv2.LINE_AA, 4)
        cv2.addWeighted(overlay, 0.55 * flush, img, 1 - 0.55 * flush, 0, dst=img)
    brow = tuple(int(c * 0.5) for c in subj.hair)
    cv2.polylines(img, [poly(face[17:22]), poly(face[22:27])], False, brow, lw, cv2.LINE_AA, 4)
    for eye, pupil in ((face[36:42], face[68]), (face[42:48], face[69])):
        open_ = (eye[4, 1] - eye[2, 1]) > 0.6
        if open_:
            cv2.fillPoly(img, [poly(eye)], (235, 235, 235), cv2.LINE_AA, 4)
            cv2.circle(img, P(pupil), max(1, int(1.3 * sx * 16)), (30, 30, 30), -1, cv2.LINE_AA, 4)
        else:
            cv2.polylines(img, [poly(eye[[0, 1, 2, 3]])], False, (40, 40, 40), lw, cv2.LINE_AA, 4)
    cv2.polylines(img, [poly(face[27:31]), poly(face[31:36])], False, tuple(int(c * 0.7) for c in subj.skin),
                  lw, cv2.LINE_AA, 4)
    cv2.fillPoly(img, [poly(face[48:60])], (80, 80, 170), cv2.LINE_AA, 4)
    cv2.polylines(img, [poly(face[60:68])], True, (40, 40, 90), lw, cv2.LINE_AA, 4)


def _backdrop(plan: VideoPlan, width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """A sponsor wall: the video's colour with a grid of lighter logo blocks."""
    import cv2

    img = np.empty((height, width, 3), np.uint8)
    img[:] = plan.backdrop
    light = tuple(min(255, c + 60) for c in plan.backdrop)
    off = rng.integers(0, 20)
    for y in range(-int(off), height, max(8, height // 5)):
        for x in range(int(off) % 30 - 30, width, max(12, width // 5)):
            cv2.rectangle(img, (x, y), (x + width // 10, y + height // 16), light, -1)
    return img


# -------------------------------------------------------------------------------- OpenPose noise

def openpose_people(plan: VideoPlan, kp: np.ndarray, width: int, height: int,
                    rng: np.random.Generator) -> list[list[dict]]:
    """Per frame, the `people` list OpenPose would write: pixels of the drawn points plus noise, with
    realistic gaps (hands lost in runs, lower body never seen, a few frames without anyone or with
    a spurious second person)."""
    T = len(kp)
    scale = np.array([width / BASE_W, height / BASE_H], dtype=np.float32)
    px = kp * scale
    sigma = np.full(137, 0.5, np.float32) * scale.mean()
    sigma[:25], sigma[95:] = 0.8 * scale.mean(), 1.3 * scale.mean()
    px = px + rng.standard_normal(px.shape).astype(np.float32) * sigma[None, :, None]
    conf = np.concatenate([rng.uniform(0.55, 0.92, (T, 25)), rng.uniform(0.5, 0.85, (T, 70)),
                           rng.uniform(0.2, 0.6, (T, 42))], axis=1).astype(np.float32)
    conf[~np.isfinite(px).all(-1)] = 0
    env = envelopes(plan)
    touching = env["face_touch"] > 0.5
    for hand in (slice(95, 116), slice(116, 137)):
        lost = _runs(rng, T, p_start=0.03, mean_len=10) | (touching & (rng.random(T) < 0.5))
        conf[lost, hand] = 0
    blink = env["blink"] > 0.5
    conf[blink, 93:95] *= 0.2                                       # pupils behind closed lids
    nobody = _runs(rng, T, p_start=0.004, mean_len=4)
    out = []
    for f in range(T):
        if nobody[f]:
            out.append([])
            continue
        people = [_person(px[f], conf[f])]
        if rng.random() < 0.005:                                    # a passer-by, half seen
            ghost_xy = px[f] + np.array([width * 0.4, 0])
            ghost_c = np.where(rng.random(137) < 0.3, conf[f] * 0.4, 0)
            people.append(_person(ghost_xy, ghost_c))
        out.append(people)
    return out


def _person(xy: np.ndarray, conf: np.ndarray) -> dict:
    flat = np.concatenate([np.nan_to_num(xy, nan=0.0), conf[:, None]], -1)
    flat[conf <= 0] = 0
    flat = np.round(flat.astype(np.float64), 3)
    parts = {"pose_keypoints_2d": flat[:25], "face_keypoints_2d": flat[25:95],
             "hand_left_keypoints_2d": flat[95:116], "hand_right_keypoints_2d": flat[116:137]}
    person = {"person_id": [-1]}
    person.update({k: v.ravel().tolist() for k, v in parts.items()})
    person.update({k: [] for k in ("pose_keypoints_3d", "face_keypoints_3d", "hand_left_keypoints_3d",
                                   "hand_right_keypoints_3d")})
    return person


def _runs(rng: np.random.Generator, n: int, p_start: float, mean_len: float) -> np.ndarray:
    """Boolean mask of random runs: each frame starts one with p_start, lengths geometric."""
    mask = np.zeros(n, dtype=bool)
    for start in np.flatnonzero(rng.random(n) < p_start):
        mask[start:start + int(rng.geometric(1 / mean_len))] = True
    return mask


# ------------------------------------------------------------------------------------ the files

def generate(out: Path, seed: int = 0, n_videos: int = 64, n_frames: int = 150, width: int = 192,
             height: int = 144, n_subjects: int | None = None, lose_share: float = 0.25,
             target_share: float = 0.3, progress: bool = True) -> dict:
    """Write the dataset under `out` (see the module docstring); returns a summary dict.

    Finished videos (both the mp4 and the OpenPose folder present) are kept, so an interrupted run
    resumes. Asking for different parameters in an existing folder starts over in that folder."""
    from tqdm import tqdm

    if width % 2 or height % 2 or width < 64 or height < 48:
        raise ValueError(f"video size must be even and at least 64x48, got {width}x{height}")
    out = Path(out)
    params = {"version": VERSION, "seed": seed, "n_videos": n_videos, "n_frames": n_frames, "width": width,
              "height": height, "n_subjects": n_subjects, "lose_share": lose_share,
              "target_share": target_share}
    meta_path = out / "synthetic.json"
    if meta_path.exists() and json.loads(meta_path.read_text()).get("params") != params:
        for sub in ("videos", "openpose", "truth"):
            shutil.rmtree(out / sub, ignore_errors=True)
    plans = plan_dataset(seed, n_videos, n_frames, n_subjects, lose_share, target_share)
    for sub in ("videos", "openpose", "truth"):
        (out / sub).mkdir(parents=True, exist_ok=True)

    for plan in tqdm(plans, desc="synthetic videos", disable=not progress):
        video = out / "videos" / f"{plan.video_id}.mp4"
        pose_dir = out / "openpose" / plan.video_id
        if video.exists() and pose_dir.is_dir():
            continue
        rng = np.random.default_rng([seed, 3, int(plan.video_id)])
        kp = skeleton(plan, rng)
        _write_openpose(pose_dir, plan.video_id, openpose_people(plan, kp, width, height, rng))
        _write_video(video, render(plan, kp, width, height, rng), width, height)

    labels, splits, target, truth = tables(plans)
    atomic_write_text(out / LABELS_FILE, labels.to_csv(index=False))
    atomic_write_text(out / "splits.csv", splits.to_csv(index=False))
    atomic_write_text(out / "target_labels.csv", target.to_csv(index=False))
    atomic_write_text(out / "truth" / "cues.csv", truth.to_csv(index=False))
    summary = summarise(plans)
    atomic_write_text(meta_path, json.dumps({"params": params, "summary": summary,
                                             "cues": [asdict(c) for c in CUES]}, indent=2))
    return summary


def tables(plans: list[VideoPlan]) -> tuple[pd.DataFrame, ...]:
    """(labels in iMiGUE's format, splits table, withheld target labels, per-video cue truth)."""
    rows, split_rows, target_rows, truth_rows = [], [], [], []
    cues = {c.name: c for c in CUES}
    for p in plans:
        label = LABEL_NAMES[p.label]
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
        lose = [i for i in idx if plans[i].label]
        win = [i for i in idx if not plans[i].label][:len(lose)]
        for i in lose + win:
            out[i] = part
    return out


def summarise(plans: list[VideoPlan]) -> dict:
    frames = np.array([p.n_frames for p in plans])
    return {"videos": len(plans), "subjects": len({p.subject.id for p in plans}),
            "labelled": sum(p.split == "train" for p in plans), "target": sum(p.split == "test" for p in plans),
            "win": sum(p.label == 0 for p in plans), "lose": sum(p.label == 1 for p in plans),
            "labelled_lose": sum(p.label == 1 and p.split == "train" for p in plans),
            "frames_total": int(frames.sum()), "frames_min": int(frames.min()),
            "frames_median": int(np.median(frames)), "frames_max": int(frames.max()),
            "annotations": sum(e.annotated for p in plans for e in p.episodes)}


def separability(truth: pd.DataFrame, folds: int = 5, seed: int = 0) -> pd.DataFrame:
    """How well the inserted cues separate Lose from Win, from the ground truth (`truth/cues.csv`):
    the AUC of each cue alone, and a cross-validated logistic regression on the cues each modality
    shows clearly (visibility 2) — an upper bound for a model of that modality on this set."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    y = (truth["win_or_lose"] == LABEL_NAMES[1]).to_numpy(int)
    rows = []
    for c in CUES:
        rows.append({"what": c.name, "auc": roc_auc_score(y, truth[f"{c.name}_frac"])})
    rows.append({"what": "fidget", "auc": roc_auc_score(y, truth["fidget"])})
    groups = {m: [f"{c.name}_frac" for c in CUES if getattr(c, m) == 2] for m in ("keypoints", "pixels", "annotations")}
    groups["keypoints"].append("fidget")
    groups["teacher"] = [f"{c.name}_frac" for c in CUES if c.teacher] + ["fidget"]
    groups["all"] = [f"{c.name}_frac" for c in CUES] + ["fidget"]
    k = min(folds, int(y.sum()), int((1 - y).sum()))
    for name, cols in groups.items():
        x = truth[cols].to_numpy(float)
        model = LogisticRegression(C=1.0, max_iter=1000)
        p = cross_val_predict(model, (x - x.mean(0)) / (x.std(0) + 1e-9), y,
                              cv=StratifiedKFold(k, shuffle=True, random_state=seed), method="predict_proba")[:, 1]
        rows.append({"what": f"modality:{name}", "auc": roc_auc_score(y, p)})
    return pd.DataFrame(rows)


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
        stream.options = {"crf": "20", "preset": "veryfast"}
        for img in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="bgr24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    tmp.replace(path)
