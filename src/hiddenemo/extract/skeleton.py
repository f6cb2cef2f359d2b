"""The OpenPose 137-point skeleton drawn as OpenPose renders it: colours per point, and a drawer.

The points and connections are `hiddenemo.data.layout`'s. Colours are RGB. A limb takes the colour of
its second point, as in OpenPose's renderer. Importable without OpenCV (only `draw_skeleton` needs it).
"""
from __future__ import annotations

import numpy as np

from hiddenemo.data.layout import EDGES, FACE, part_size

BODY25_COLORS = [(255, 0, 85), (255, 0, 0), (255, 85, 0), (255, 170, 0), (255, 255, 0), (170, 255, 0),
                 (85, 255, 0), (0, 255, 0), (255, 0, 0), (0, 255, 85), (0, 255, 170), (0, 255, 255),
                 (0, 170, 255), (0, 85, 255), (0, 0, 255), (255, 0, 170), (170, 0, 255), (255, 0, 255),
                 (85, 0, 255), (0, 0, 255), (0, 0, 255), (0, 0, 255), (0, 255, 255), (0, 255, 255),
                 (0, 255, 255)]

FACE_COLOR = (255, 255, 255)
HAND21_COLORS = [(100, 100, 100), (100, 0, 0), (150, 0, 0), (200, 0, 0), (255, 0, 0), (100, 100, 0),
                 (150, 150, 0), (200, 200, 0), (255, 255, 0), (0, 100, 50), (0, 150, 75), (0, 200, 100),
                 (0, 255, 125), (0, 50, 100), (0, 75, 150), (0, 100, 200), (0, 125, 255), (100, 0, 100),
                 (150, 0, 150), (200, 0, 200), (255, 0, 255)]

COLORS_137 = BODY25_COLORS + [FACE_COLOR] * part_size(FACE) + HAND21_COLORS + HAND21_COLORS


def draw_skeleton(image: np.ndarray, xy: np.ndarray, conf: np.ndarray, box: np.ndarray | None = None,
                  min_conf: float = 0.05) -> np.ndarray:
    """Draw the box (green) and the skeleton on a copy of an RGB image; `xy` (137, 2) in pixels."""
    import cv2

    out = np.ascontiguousarray(image.copy())
    scale = max(1, round(max(out.shape[:2]) / 400))
    ok = (conf > min_conf) & np.isfinite(xy).all(-1)
    pts = np.nan_to_num(xy).round().astype(int)
    if box is not None and np.isfinite(box[:4]).all():
        x0, y0, x1, y1 = np.round(box[:4]).astype(int)
        cv2.rectangle(out, (x0, y0), (x1, y1), (0, 255, 0), scale)
    for a, b in EDGES:
        if ok[a] and ok[b]:
            width = 2 * scale if b < FACE.start else scale
            cv2.line(out, tuple(pts[a]), tuple(pts[b]), COLORS_137[b], width, cv2.LINE_AA)
    for i in np.flatnonzero(ok):
        radius = 3 * scale if i < FACE.start else scale
        cv2.circle(out, tuple(pts[i]), radius, COLORS_137[i], -1, cv2.LINE_AA)
    return out
