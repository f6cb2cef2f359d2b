"""The OpenPose skeleton as graphs, one per keypoint group (indices local to the group).

The edges are the ones the skeleton drawing uses (`hiddenemo.extract.skeleton`, OpenPose's render
pairs): BODY_25's bones, the 68-point face's contour, brows, nose, eyes and lips, each hand's five
fingers from the wrist. One addition for the graph: OpenPose draws the two pupils (face 68, 69) as
lone points; here each is joined to the six points of its eye so it is not an isolated node. The two
hands are not joined to each other (the paper's point about two-hand gestures: an MLP sees both).
"""
from __future__ import annotations

import torch

from hiddenemo.data.store import POSE_GROUPS
from hiddenemo.extract.skeleton import BODY25_EDGES, FACE70_EDGES, HAND21_EDGES

PUPIL_EDGES = [(68, i) for i in range(36, 42)] + [(69, i) for i in range(42, 48)]
HANDS42_EDGES = HAND21_EDGES + [(a + 21, b + 21) for a, b in HAND21_EDGES]  # left 0-20, right 21-41

GROUP_EDGES = {"body": BODY25_EDGES, "face": FACE70_EDGES + PUPIL_EDGES, "hands": HANDS42_EDGES}
GROUP_SIZES = {name: group.stop - group.start for name, group in POSE_GROUPS.items()}


def adjacency(group: str) -> torch.Tensor:
    """Symmetric 0/1 adjacency (V, V) of a group, without self loops (the dense torch_geometric
    layers add those themselves)."""
    if group not in GROUP_EDGES:
        raise ValueError(f"unknown keypoint group {group!r}; expected one of {sorted(GROUP_EDGES)}")
    size = GROUP_SIZES[group]
    adj = torch.zeros(size, size)
    for a, b in GROUP_EDGES[group]:
        adj[a, b] = adj[b, a] = 1.0
    return adj
