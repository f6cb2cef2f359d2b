"""The OpenPose skeleton as graphs, one per keypoint group (indices local to the group).

Edges are OpenPose's own render pairs (`poseParameters.hpp`, `faceParameters.hpp`,
`handParameters.hpp`): BODY_25's bones, the 68-point face's contour, brows, nose, eyes and lips, and
each hand's five fingers from the wrist. OpenPose draws the two pupils (face 68, 69) as lone points;
here each pupil is also joined to the six points of its eye so it is not an isolated node. The two
hands are not joined to each other (the paper's point about two-hand gestures: an MLP sees both).

The edge lists are plain Python so the skeleton drawing can use the very same ones without torch.
"""
from __future__ import annotations

BODY_25_EDGES = [
    (1, 8), (1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (8, 9), (9, 10), (10, 11), (8, 12),
    (12, 13), (13, 14), (1, 0), (0, 15), (15, 17), (0, 16), (16, 18), (14, 19), (19, 20), (14, 21),
    (11, 22), (22, 23), (11, 24),
]


def _chain(points, closed=False):
    points = list(points)
    edges = list(zip(points[:-1], points[1:]))
    return edges + [(points[-1], points[0])] if closed else edges


FACE_70_EDGES = (
    _chain(range(0, 17))                          # jaw contour
    + _chain(range(17, 22)) + _chain(range(22, 27))  # right and left brow
    + _chain(range(27, 31)) + _chain(range(31, 36))  # nose bridge and bottom
    + _chain(range(36, 42), closed=True) + _chain(range(42, 48), closed=True)  # right and left eye
    + _chain(range(48, 60), closed=True) + _chain(range(60, 68), closed=True)  # outer and inner lips
    + [(68, i) for i in range(36, 42)] + [(69, i) for i in range(42, 48)]      # pupils to their eye
)

HAND_21_EDGES = [edge for finger in range(5)
                 for edge in _chain([0] + list(range(1 + 4 * finger, 5 + 4 * finger)))]

# Left hand = group points 0-20 (OpenPose 95-115), right hand = 21-41 (OpenPose 116-136).
HANDS_42_EDGES = HAND_21_EDGES + [(a + 21, b + 21) for a, b in HAND_21_EDGES]

GROUP_EDGES = {"body": BODY_25_EDGES, "face": FACE_70_EDGES, "hands": HANDS_42_EDGES}
GROUP_SIZES = {"body": 25, "face": 70, "hands": 42}


def adjacency(group: str):
    """Symmetric 0/1 adjacency (V, V) float tensor of a group, without self loops (the dense
    torch_geometric layers add those themselves)."""
    import torch  # here, so that importing the edge lists (e.g. for drawing) does not need torch

    if group not in GROUP_EDGES:
        raise ValueError(f"unknown keypoint group {group!r}; expected one of {sorted(GROUP_EDGES)}")
    size = GROUP_SIZES[group]
    adj = torch.zeros(size, size)
    for a, b in GROUP_EDGES[group]:
        adj[a, b] = adj[b, a] = 1.0
    return adj
