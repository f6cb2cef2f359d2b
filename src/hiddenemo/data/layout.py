"""The OpenPose 137-point layout of every keypoint array (`pose.npy` (T, 137, 3)), written once.

BODY_25 (0-24), 70 face points (25-94: the 68 of the iBUG scheme, then the two pupils at 93 and 94),
left hand (95-115), right hand (116-136); left and right are the person's own, as OpenPose writes
them. The pose modality reads three groups: `body`, `face` and `hands` (both hands). The edges are
OpenPose's render pairs, with indices local to their part (`EDGES` has them all, global).

Who reads it: the store and features (hiddenemo.data), OpenPose JSON (data.openpose), MediaPipe's
mapping (extract.keypoints), the drawing (extract.skeleton), the graph encoders (models.graph), the
behaviour cues (teacher.cues, teacher.head) and the synthetic figure (hiddenemo.synthetic).
"""
from __future__ import annotations

import numpy as np

N_KEYPOINTS = 137
BODY, FACE, LEFT_HAND, RIGHT_HAND = slice(0, 25), slice(25, 95), slice(95, 116), slice(116, 137)
HANDS = slice(LEFT_HAND.start, RIGHT_HAND.stop)
POSE_GROUPS = {"body": BODY, "face": FACE, "hands": HANDS}
# The parts of an OpenPose JSON person, in the order of the 137 points.
OPENPOSE_PARTS = {"pose_keypoints_2d": BODY, "face_keypoints_2d": FACE, "hand_left_keypoints_2d": LEFT_HAND,
                  "hand_right_keypoints_2d": RIGHT_HAND}

# BODY_25 points (global indices: the body comes first).
NOSE, NECK, R_SHOULDER, R_ELBOW, R_WRIST, L_SHOULDER, L_ELBOW, L_WRIST = range(8)
R_EYE, L_EYE, R_EAR, L_EAR = 15, 16, 17, 18
# Face points, local to the face (iBUG 68 order): add FACE.start for the global index.
JAW, BROWS, NOSE_BRIDGE, NOSE_BASE = range(0, 17), range(17, 27), range(27, 31), range(31, 36)
RIGHT_EYE, LEFT_EYE = range(36, 42), range(42, 48)           # corner, upper, upper, corner, lower, lower
OUTER_LIPS, INNER_LIPS = range(48, 60), range(60, 68)
PUPILS = (68, 69)                                            # right, left


def part_size(part: slice) -> int:
    return part.stop - part.start


def global_index(part: slice, local):
    """Index (or array of indices, for a range) into the 137 points of the part's point(s) `local`."""
    return part.start + local if isinstance(local, int) else part.start + np.asarray(local)


def _chain(a: int, b: int, closed: bool = False) -> list[tuple[int, int]]:
    edges = [(i, i + 1) for i in range(a, b)]
    return edges + [(b, a)] if closed else edges


BODY25_EDGES = [(1, 8), (1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (8, 9), (9, 10), (10, 11),
                (8, 12), (12, 13), (13, 14), (1, 0), (0, 15), (15, 17), (0, 16), (16, 18), (14, 19),
                (19, 20), (14, 21), (11, 22), (22, 23), (11, 24)]
# Jaw, brows, nose bridge, nose base, eyes, outer and inner lips (OpenPose draws the pupils as lone points).
FACE70_EDGES = (_chain(0, 16) + _chain(17, 21) + _chain(22, 26) + _chain(27, 30) + _chain(31, 35)
                + _chain(36, 41, True) + _chain(42, 47, True) + _chain(48, 59, True) + _chain(60, 67, True))
# Wrist, then four joints per finger, thumb to little finger.
HAND21_EDGES = [(0, 1), (1, 2), (2, 3), (3, 4), (0, 5), (5, 6), (6, 7), (7, 8), (0, 9), (9, 10), (10, 11),
                (11, 12), (0, 13), (13, 14), (14, 15), (15, 16), (0, 17), (17, 18), (18, 19), (19, 20)]
EDGES = (BODY25_EDGES + [(FACE.start + a, FACE.start + b) for a, b in FACE70_EDGES]
         + [(LEFT_HAND.start + a, LEFT_HAND.start + b) for a, b in HAND21_EDGES]
         + [(RIGHT_HAND.start + a, RIGHT_HAND.start + b) for a, b in HAND21_EDGES])


def adjacency(part: slice | None = None) -> np.ndarray:
    """Symmetric 0/1 adjacency (V, V) of the OpenPose connections, of all 137 points or of one part
    or group (indices local to it)."""
    adj = np.zeros((N_KEYPOINTS, N_KEYPOINTS), dtype=np.float32)
    for a, b in EDGES:
        adj[a, b] = adj[b, a] = 1
    return adj if part is None else adj[part, part]
