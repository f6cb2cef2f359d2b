"""The OpenPose 137-point skeleton: connections and colours as OpenPose renders them, and a drawer.

Indices are global (0-136): BODY_25 0-24, face 25-94, left hand 95-115, right hand 116-136. Colours
are RGB. A limb takes the colour of its second point, as in OpenPose's renderer. Importable without
OpenCV (only `draw_skeleton` needs it), so plots and graph models can share these lists.
"""
from __future__ import annotations

import numpy as np

FACE0, LEFT_HAND0, RIGHT_HAND0 = 25, 95, 116

BODY25_EDGES = [(1, 8), (1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (8, 9), (9, 10), (10, 11),
                (8, 12), (12, 13), (13, 14), (1, 0), (0, 15), (15, 17), (0, 16), (16, 18), (14, 19),
                (19, 20), (14, 21), (11, 22), (22, 23), (11, 24)]
BODY25_COLORS = [(255, 0, 85), (255, 0, 0), (255, 85, 0), (255, 170, 0), (255, 255, 0), (170, 255, 0),
                 (85, 255, 0), (0, 255, 0), (255, 0, 0), (0, 255, 85), (0, 255, 170), (0, 255, 255),
                 (0, 170, 255), (0, 85, 255), (0, 0, 255), (255, 0, 170), (170, 0, 255), (255, 0, 255),
                 (85, 0, 255), (0, 0, 255), (0, 0, 255), (0, 0, 255), (0, 255, 255), (0, 255, 255),
                 (0, 255, 255)]


def _chain(a: int, b: int, closed: bool = False) -> list[tuple[int, int]]:
    edges = [(i, i + 1) for i in range(a, b)]
    return edges + [(b, a)] if closed else edges


# Jaw, brows, nose bridge, nose base, eyes, outer and inner lips (68-point iBUG order; 68/69 pupils).
FACE70_EDGES = (_chain(0, 16) + _chain(17, 21) + _chain(22, 26) + _chain(27, 30) + _chain(31, 35)
                + _chain(36, 41, True) + _chain(42, 47, True) + _chain(48, 59, True) + _chain(60, 67, True))
FACE_COLOR = (255, 255, 255)
HAND21_EDGES = [(0, 1), (1, 2), (2, 3), (3, 4), (0, 5), (5, 6), (6, 7), (7, 8), (0, 9), (9, 10), (10, 11),
                (11, 12), (0, 13), (13, 14), (14, 15), (15, 16), (0, 17), (17, 18), (18, 19), (19, 20)]
HAND21_COLORS = [(100, 100, 100), (100, 0, 0), (150, 0, 0), (200, 0, 0), (255, 0, 0), (100, 100, 0),
                 (150, 150, 0), (200, 200, 0), (255, 255, 0), (0, 100, 50), (0, 150, 75), (0, 200, 100),
                 (0, 255, 125), (0, 50, 100), (0, 75, 150), (0, 100, 200), (0, 125, 255), (100, 0, 100),
                 (150, 0, 150), (200, 0, 200), (255, 0, 255)]

# Global (137-point) edges and per-point colours.
EDGES_137 = (BODY25_EDGES + [(FACE0 + a, FACE0 + b) for a, b in FACE70_EDGES]
             + [(LEFT_HAND0 + a, LEFT_HAND0 + b) for a, b in HAND21_EDGES]
             + [(RIGHT_HAND0 + a, RIGHT_HAND0 + b) for a, b in HAND21_EDGES])
COLORS_137 = BODY25_COLORS + [FACE_COLOR] * 70 + HAND21_COLORS + HAND21_COLORS


def adjacency(group: slice | None = None) -> np.ndarray:
    """Symmetric 0/1 adjacency (V, V) of the OpenPose connections, for all 137 points or one group."""
    adj = np.zeros((137, 137), dtype=np.float32)
    for a, b in EDGES_137:
        adj[a, b] = adj[b, a] = 1
    return adj if group is None else adj[group, group]


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
    for a, b in EDGES_137:
        if ok[a] and ok[b]:
            width = 2 * scale if b < FACE0 else scale
            cv2.line(out, tuple(pts[a]), tuple(pts[b]), COLORS_137[b], width, cv2.LINE_AA)
    for i in np.flatnonzero(ok):
        radius = 3 * scale if i < FACE0 else scale
        cv2.circle(out, tuple(pts[i]), radius, COLORS_137[i], -1, cv2.LINE_AA)
    return out
