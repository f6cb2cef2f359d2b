"""The drawn figure's true keypoints: a seated person in the OpenPose 137 layout, moved by the plan's
cue envelopes (expressions, head turns and nods, arm poses, finger curl, fidgeting), in units of a
BASE_W x BASE_H frame that the renderer and the OpenPose writer scale to the output size.
"""
from __future__ import annotations

import math

import numpy as np

from hiddenemo.data.layout import (BODY, L_EAR, L_ELBOW, L_EYE, L_SHOULDER, L_WRIST, NECK, NOSE, PUPILS, R_EAR, R_ELBOW,
                                   R_EYE, R_SHOULDER, R_WRIST, part_size)
from hiddenemo.synthetic.plan import FPS, VideoPlan, envelopes

BASE_W, BASE_H = 192, 144                    # geometry below is in these units, scaled to the output size


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
    face = _face_points(head, yaw, nod, env, s, gaze_side)                 # (T, 70, 2), face-local order

    arms = _arms(env, neck, r_sh, l_sh, face, s, t, jitter_hands)
    pose = np.full((T, part_size(BODY), 2), np.nan, dtype=np.float32)      # lower body: under the desk
    pose[:, NOSE] = face[:, 30]
    pose[:, NECK] = neck
    pose[:, R_SHOULDER], pose[:, R_ELBOW], pose[:, R_WRIST] = r_sh, arms["r_elbow"], arms["r_wrist"]
    pose[:, L_SHOULDER], pose[:, L_ELBOW], pose[:, L_WRIST] = l_sh, arms["l_elbow"], arms["l_wrist"]
    pose[:, R_EYE], pose[:, L_EYE] = face[:, PUPILS[0]], face[:, PUPILS[1]]
    ear_dx = 17 * s * np.cos(yaw)
    pose[:, R_EAR] = head + np.stack([-ear_dx - 2 * np.sin(yaw), np.full(T, -1.0)], -1)
    pose[:, L_EAR] = head + np.stack([ear_dx - 2 * np.sin(yaw), np.full(T, -1.0)], -1)
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
