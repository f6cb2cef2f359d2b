"""Keypoints in the OpenPose 137 layout from MediaPipe Holistic.

Layout: `hiddenemo.data.layout` (as OpenPose writes it: BODY_25, 70 face points, left and right hand).
Holistic runs on the person crop in tracking mode; its points come back in full-frame pixels.
MediaPipe's hands are the default rather than OpenPose's partly because OpenPose's hand points were
noisy on iMiGUE (the paper's limitation 1).
"""
from __future__ import annotations

import numpy as np

from hiddenemo.data.keypoints import MIN_CONFIDENCE
from hiddenemo.data.layout import BODY, FACE, LEFT_HAND, N_KEYPOINTS, RIGHT_HAND

# BODY_25 from the 33 pose landmarks; a pair is averaged (neck = mid-shoulders, mid-hip).
BODY25_FROM_POSE = [0, (11, 12), 12, 14, 16, 11, 13, 15, (23, 24), 24, 26, 28, 23, 25, 27, 5, 2, 8, 7,
                    31, 31, 29, 32, 32, 30]
# The 68 iBUG face points from the 478-point face mesh, then the pupils (needs refined landmarks).
FACE70_FROM_MESH = [162, 234, 93, 58, 172, 136, 149, 148, 152, 377, 378, 365, 397, 288, 323, 454, 389,
                    71, 63, 105, 66, 107, 336, 296, 334, 293, 301, 168, 197, 5, 4, 75, 97, 2, 326, 305,
                    33, 160, 158, 133, 153, 144, 362, 385, 387, 263, 373, 380, 61, 39, 37, 0, 267, 269,
                    291, 405, 314, 17, 84, 181, 78, 82, 13, 312, 308, 317, 14, 87, 468, 473]

_BODY_A = np.array([p[0] if isinstance(p, tuple) else p for p in BODY25_FROM_POSE])
_BODY_B = np.array([p[1] if isinstance(p, tuple) else p for p in BODY25_FROM_POSE])
_FACE_IDX = np.array(FACE70_FROM_MESH)


def _landmarks(lms) -> np.ndarray:
    """MediaPipe landmark list -> (N, 3) array of x, y (relative to the image) and visibility."""
    return np.array([(p.x, p.y, p.visibility) for p in lms.landmark], dtype=np.float32)


def holistic_to_openpose(result, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """One Holistic result on an image of width x height -> (xy (137, 2) pixels, conf (137,)).

    Body confidence is the pose landmark's visibility (the lower of a pair); face and hand points
    have none in MediaPipe, so they get 1 when their part was found. Missing: NaN and 0."""
    xy = np.full((N_KEYPOINTS, 2), np.nan, dtype=np.float32)
    conf = np.zeros(N_KEYPOINTS, dtype=np.float32)
    scale = np.array([width, height], dtype=np.float32)
    if result.pose_landmarks is not None:
        pose = _landmarks(result.pose_landmarks)                             # (33, 3)
        xy[BODY] = (pose[_BODY_A, :2] + pose[_BODY_B, :2]) / 2 * scale
        conf[BODY] = np.minimum(pose[_BODY_A, 2], pose[_BODY_B, 2])
    if result.face_landmarks is not None:
        face = _landmarks(result.face_landmarks)                             # (478, 3)
        if len(face) > _FACE_IDX.max():
            xy[FACE] = face[_FACE_IDX, :2] * scale
            conf[FACE] = 1.0
    for part, lms in ((LEFT_HAND, result.left_hand_landmarks), (RIGHT_HAND, result.right_hand_landmarks)):
        if lms is not None:
            xy[part] = _landmarks(lms)[:, :2] * scale                        # same 21-point order
            conf[part] = 1.0
    return xy, conf


def interpolate_between(xy: np.ndarray, conf: np.ndarray, measured: np.ndarray,
                        min_conf: float = MIN_CONFIDENCE) -> tuple[np.ndarray, np.ndarray]:
    """Points of the frames that were not measured, from the two measured frames around each.

    xy (T, V, 2), conf (T, V), measured (T,) bool -> new (xy, conf). A point of an unmeasured frame is
    the linear interpolation (by frame distance) of the same point on the previous and the next
    measured frame when both have it, with the smaller of their confidences; otherwise it is missing
    (NaN, 0), as are the frames before the first and after the last measured one. Measured frames
    are returned as they are."""
    xy = np.array(xy, dtype=np.float32)
    conf = np.array(conf, dtype=np.float32)
    measured = np.asarray(measured, dtype=bool)
    known = np.flatnonzero(measured)
    todo = np.flatnonzero(~measured)
    after = np.searchsorted(known, todo)                   # index in `known` of the next measured frame
    inside = (after > 0) & (after < len(known))
    xy[todo[~inside]], conf[todo[~inside]] = np.nan, 0
    t, a, b = todo[inside], known[after[inside] - 1], known[after[inside]]
    if len(t):
        w = ((t - a) / (b - a)).astype(np.float32)[:, None, None]
        seen = lambda f: (conf[f] > min_conf) & np.isfinite(xy[f]).all(-1)          # (G, V)
        both = seen(a) & seen(b)
        xy[t] = np.where(both[..., None], (1 - w) * xy[a] + w * xy[b], np.nan)
        conf[t] = np.where(both, np.minimum(conf[a], conf[b]), 0)
    return xy, conf


class HolisticKeypoints:
    """MediaPipe Holistic in tracking mode, one instance per video (it keeps state between frames)."""

    name = "mediapipe-holistic-0.10.21"

    def __init__(self):
        import mediapipe as mp

        # model_complexity 1 only: 0 and 2 make mediapipe 0.10.21 download other pose models.
        self.holistic = mp.solutions.holistic.Holistic(
            static_image_mode=False, model_complexity=1, smooth_landmarks=True,
            refine_face_landmarks=True, min_detection_confidence=0.5, min_tracking_confidence=0.5)

    def __call__(self, rgb: np.ndarray, window: tuple[int, int, int, int] | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
        """Keypoints of the person inside `window` (x0, y0, x1, y1; None = whole frame), in
        full-frame pixels: (xy (137, 2), conf (137,))."""
        x0, y0 = (window[0], window[1]) if window else (0, 0)
        crop = rgb[window[1]:window[3], window[0]:window[2]] if window else rgb
        result = self.holistic.process(np.ascontiguousarray(crop))
        xy, conf = holistic_to_openpose(result, crop.shape[1], crop.shape[0])
        return xy + np.array([x0, y0], dtype=np.float32), conf

    def close(self) -> None:
        self.holistic.close()
