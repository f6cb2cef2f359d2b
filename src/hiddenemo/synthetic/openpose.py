"""What OpenPose would have written for the drawn figure: its keypoints in pixels plus noise, with
realistic gaps, as the `people` list of an OpenPose 1.3 JSON frame."""
from __future__ import annotations

import numpy as np

from hiddenemo.data.layout import (BODY, FACE, HANDS, LEFT_HAND, N_KEYPOINTS, OPENPOSE_PARTS, PUPILS, RIGHT_HAND,
                                   global_index, part_size)
from hiddenemo.synthetic.figure import BASE_H, BASE_W
from hiddenemo.synthetic.plan import VideoPlan, envelopes


def openpose_people(plan: VideoPlan, kp: np.ndarray, width: int, height: int,
                    rng: np.random.Generator) -> list[list[dict]]:
    """Per frame, the `people` list OpenPose would write: pixels of the drawn points plus noise, with
    realistic gaps (hands lost in runs, lower body never seen, a few frames without anyone or with
    a spurious second person)."""
    T = len(kp)
    scale = np.array([width / BASE_W, height / BASE_H], dtype=np.float32)
    px = kp * scale
    sigma = np.full(N_KEYPOINTS, 0.5, np.float32) * scale.mean()
    sigma[BODY], sigma[HANDS] = 0.8 * scale.mean(), 1.3 * scale.mean()
    px = px + rng.standard_normal(px.shape).astype(np.float32) * sigma[None, :, None]
    conf = np.concatenate([rng.uniform(0.55, 0.92, (T, part_size(BODY))), rng.uniform(0.5, 0.85, (T, part_size(FACE))),
                           rng.uniform(0.2, 0.6, (T, part_size(HANDS)))], axis=1).astype(np.float32)
    conf[~np.isfinite(px).all(-1)] = 0
    env = envelopes(plan)
    touching = env["face_touch"] > 0.5
    for hand in (LEFT_HAND, RIGHT_HAND):
        lost = _runs(rng, T, p_start=0.03, mean_len=10) | (touching & (rng.random(T) < 0.5))
        conf[lost, hand] = 0
    blink = env["blink"] > 0.5
    conf[np.ix_(blink, global_index(FACE, PUPILS))] *= 0.2          # pupils behind closed lids
    nobody = _runs(rng, T, p_start=0.004, mean_len=4)
    out = []
    for f in range(T):
        if nobody[f]:
            out.append([])
            continue
        people = [_person(px[f], conf[f])]
        if rng.random() < 0.005:                                    # a passer-by, half seen
            ghost_xy = px[f] + np.array([width * 0.4, 0])
            ghost_c = np.where(rng.random(N_KEYPOINTS) < 0.3, conf[f] * 0.4, 0)
            people.append(_person(ghost_xy, ghost_c))
        out.append(people)
    return out


def _person(xy: np.ndarray, conf: np.ndarray) -> dict:
    flat = np.concatenate([np.nan_to_num(xy, nan=0.0), conf[:, None]], -1)
    flat[conf <= 0] = 0
    flat = np.round(flat.astype(np.float64), 3)
    parts = {key: flat[part] for key, part in OPENPOSE_PARTS.items()}
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
