"""The OpenPose skeleton as graphs, one per keypoint group (indices local to the group).

The edges are the OpenPose layout's (`hiddenemo.data.layout`: OpenPose's render pairs, which the
skeleton drawing uses too): BODY_25's bones, the 68-point face's contour, brows, nose, eyes and lips,
each hand's five fingers from the wrist. One addition for the graph: OpenPose draws the two pupils (face 68, 69) as
lone points; here each is joined to the six points of its eye so it is not an isolated node. The two
hands are not joined to each other (the paper's point about two-hand gestures: an MLP sees both).
"""
from __future__ import annotations

import torch

from hiddenemo.data.layout import LEFT_EYE, POSE_GROUPS, PUPILS, RIGHT_EYE, part_size
from hiddenemo.data.layout import adjacency as layout_adjacency

PUPIL_EDGES = [(PUPILS[0], i) for i in RIGHT_EYE] + [(PUPILS[1], i) for i in LEFT_EYE]      # face-local
GROUP_SIZES = {name: part_size(group) for name, group in POSE_GROUPS.items()}


def adjacency(group: str) -> torch.Tensor:
    """Symmetric 0/1 adjacency (V, V) of a group, without self loops (the dense torch_geometric
    layers add those themselves)."""
    if group not in POSE_GROUPS:
        raise ValueError(f"unknown keypoint group {group!r}; expected one of {sorted(POSE_GROUPS)}")
    adj = torch.from_numpy(layout_adjacency(POSE_GROUPS[group]).copy())
    if group == "face":
        for a, b in PUPIL_EDGES:
            adj[a, b] = adj[b, a] = 1.0
    return adj
