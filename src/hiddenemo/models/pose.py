"""Keypoint encoders (the paper's section 3.2): per group, a per-frame spatial encoder, a Transformer
over the sampled frames, a masked mean; the groups concatenated and projected to `dim`.

    pose (B, N, 137, F) --split--> body (B, N, 25, F), face (B, N, 70, F), hands (B, N, 42, F)
    group: (B*N, V, F+1) --spatial--> (B*N, frame_dim) -> (B, N, frame_dim) --Transformer+pool--> (B, frame_dim)
    concat groups (B, G*frame_dim) --linear--> (B, dim)

Spatial encoders: `mlp` (all points of the frame concatenated into one vector, the paper's choice),
`gcn` / `gat` / `gin` (two dense torch_geometric graph layers over the OpenPose skeleton of the group,
node features flattened). A missing point enters as zeros with a 0 "found" flag (the extra channel).
"""
from __future__ import annotations

import functools

import torch
import torch.nn as nn

from hiddenemo.data.layout import N_KEYPOINTS, POSE_GROUPS
from hiddenemo.errors import UserError
from hiddenemo.models.graph import GROUP_SIZES, adjacency
from hiddenemo.models.layers import TemporalTransformer
from hiddenemo.models.registry import register_encoder

SPATIAL_KINDS = ("mlp", "gcn", "gat", "gin")


class SpatialMLP(nn.Module):
    """(M, V, C) -> (M, out): every point of the frame can interact with every other through the
    weight matrix, with no skeleton prior."""

    def __init__(self, n_points: int, in_features: int, out_dim: int, **_):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(1), nn.Linear(n_points * in_features, out_dim), nn.GELU(),
                                 nn.Linear(out_dim, out_dim))

    def forward(self, x: torch.Tensor, point_mask: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class SpatialGraph(nn.Module):
    """(M, V, C) -> (M, out): two dense graph layers over the group's skeleton, then the node features
    flattened and projected."""

    def __init__(self, kind: str, group: str, in_features: int, out_dim: int, point_hidden: int = 16,
                 gat_heads: int = 1):
        super().__init__()
        self.register_buffer("adj", adjacency(group), persistent=False)  # (V, V), rebuilt, not saved
        self.conv1 = _graph_layer(kind, in_features, point_hidden, gat_heads)
        self.conv2 = _graph_layer(kind, point_hidden, point_hidden, gat_heads)
        self.act = nn.GELU()
        self.out = nn.Linear(GROUP_SIZES[group] * point_hidden, out_dim)

    def forward(self, x: torch.Tensor, point_mask: torch.Tensor) -> torch.Tensor:
        # The layers' own `mask` argument takes its batch size from `adj`, which is shared (1, V, V)
        # here to avoid a per-frame copy; so missing points are zeroed after each layer instead.
        found = point_mask.to(x.dtype).unsqueeze(-1)                      # (M, V, 1)
        h = self.act(self.conv1(x, self.adj)) * found                     # (M, V, hidden)
        h = self.act(self.conv2(h, self.adj)) * found                     # (M, V, hidden)
        return self.out(h.flatten(1))                                     # (M, out)


def _graph_layer(kind: str, c_in: int, c_out: int, gat_heads: int) -> nn.Module:
    # Imported here: torch_geometric takes seconds to import, and a run without a graph encoder (each
    # of its worker processes too) need not pay them.
    from torch_geometric.nn import DenseGATConv, DenseGCNConv, DenseGINConv

    if kind == "gcn":
        return DenseGCNConv(c_in, c_out)
    if kind == "gat":
        return DenseGATConv(c_in, c_out, heads=gat_heads, concat=False)
    if kind == "gin":
        return DenseGINConv(nn.Sequential(nn.Linear(c_in, c_out), nn.GELU(), nn.Linear(c_out, c_out)),
                            train_eps=True)
    raise ValueError(f"unknown graph layer {kind!r}")


class PoseGroupEncoder(nn.Module):
    """One keypoint group: spatial encoder per frame, then the temporal Transformer."""

    def __init__(self, group: str, spatial: str, point_features: int, frame_dim: int, point_hidden: int,
                 gat_heads: int, depth: int, heads: int, dropout: float, attention: str, chunk: int):
        super().__init__()
        in_features = point_features + 1                                 # + the "found" flag
        if spatial == "mlp":
            self.spatial = SpatialMLP(GROUP_SIZES[group], in_features, frame_dim)
        else:
            self.spatial = SpatialGraph(spatial, group, in_features, frame_dim, point_hidden, gat_heads)
        self.temporal = TemporalTransformer(frame_dim, depth, heads, dropout, attention, chunk)

    def forward(self, x: torch.Tensor, point_mask: torch.Tensor, frame_mask: torch.Tensor) -> torch.Tensor:
        B, N, V, _ = x.shape
        found = point_mask.to(x.dtype).unsqueeze(-1)                      # (B, N, V, 1)
        x = torch.cat([x * found, found], dim=-1)                         # (B, N, V, F+1)
        frames = self.spatial(x.flatten(0, 1), point_mask.flatten(0, 1))  # (B*N, frame_dim)
        return self.temporal(frames.view(B, N, -1), frame_mask)           # (B, frame_dim)


class PoseEncoder(nn.Module):
    """The keypoint modality: batch `pose` (B, N, 137, F), `pose_point_mask` (B, N, 137),
    `pose_mask` (B, N) -> (B, dim)."""

    modality = "pose"

    def __init__(self, spatial: str = "mlp", dim: int = 256, point_features: int = 8,
                 groups: tuple[str, ...] = ("body", "face", "hands"), frame_dim: int = 256,
                 point_hidden: int = 16, gat_heads: int = 1, depth: int = 2, heads: int = 4,
                 dropout: float = 0.1, attention: str = "sdpa", chunk: int = 512):
        super().__init__()
        if spatial not in SPATIAL_KINDS:
            raise UserError(f"unknown spatial encoder {spatial!r}; choose one of {SPATIAL_KINDS}")
        unknown = [g for g in groups if g not in POSE_GROUPS]
        if unknown or not groups:
            raise UserError(f"pose groups {list(groups)} are not a non-empty subset of {list(POSE_GROUPS)}")
        self.groups, self.point_features = tuple(groups), point_features
        self.encoders = nn.ModuleDict({
            g: PoseGroupEncoder(g, spatial, point_features, frame_dim, point_hidden, gat_heads, depth,
                                heads, dropout, attention, chunk)
            for g in self.groups})
        self.proj = nn.Linear(len(self.groups) * frame_dim, dim)

    def forward_features(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        pose, point_mask, frame_mask = batch["pose"], batch["pose_point_mask"], batch["pose_mask"]
        if pose.dim() != 4 or pose.shape[2] != N_KEYPOINTS or pose.shape[3] != self.point_features:
            raise UserError(
                f"pose batch has shape {tuple(pose.shape)}, the encoder expects (B, N, {N_KEYPOINTS}, "
                f"{self.point_features}); point_features must be 2 + 2 * len(offsets) of the features")
        pooled = [self.encoders[g](pose[:, :, POSE_GROUPS[g]], point_mask[:, :, POSE_GROUPS[g]], frame_mask)
                  for g in self.groups]                                   # G x (B, frame_dim)
        return self.proj(torch.cat(pooled, dim=-1))                       # (B, dim)


for _kind in SPATIAL_KINDS:
    register_encoder(f"pose-{_kind}")(functools.partial(PoseEncoder, spatial=_kind))
