"""`pose-patch`: keypoints with the DINOv2 patch each one falls in (the paper's future work 2) —
semantic, spatial and temporal cues per point, through the very design of `pose-mlp`.

    pose (B, N, 137, F)  +  pose_patch (B, N, 137, P), pose_patch_mask (B, N, 137)
    patch --LayerNorm+linear--> (B, N, 137, patch_dim), zeroed where no patch was bound
    per point [x, y, offsets, patch feature, bound flag] (B, N, 137, F + patch_dim + 1) --PoseEncoder--> (B, dim)

The patch feature of a sampled frame is that of the nearest embedded frame (the embedding stride),
given by the data; a point found in the pose but without a patch (no embedded frame near, or the
array missing) keeps its position and offsets with a 0 bound flag.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from hiddenemo.data.layout import N_KEYPOINTS
from hiddenemo.errors import UserError
from hiddenemo.models.pose import PoseEncoder
from hiddenemo.models.registry import register_encoder


@register_encoder("pose-patch")
class PosePatchEncoder(PoseEncoder):
    """Batch `pose` (B, N, 137, F), `pose_patch` (B, N, 137, P), `pose_patch_mask` (B, N, 137),
    `pose_point_mask`, `pose_mask` -> (B, dim). The MLP spatial encoder, as `pose-mlp`."""

    patches = True          # the data adds the `pose_patch` keys (`hiddenemo.models.registry.reads_patches`)

    def __init__(self, dim: int = 256, point_features: int = 8, patch_features: int = 16, patch_dim: int = 8,
                 groups: tuple[str, ...] = ("body", "face", "hands"), frame_dim: int = 256, point_hidden: int = 16,
                 depth: int = 2, heads: int = 4, dropout: float = 0.1, attention: str = "sdpa", chunk: int = 512):
        super().__init__("mlp", dim, point_features + patch_dim + 1, groups, frame_dim, point_hidden, depth=depth,
                         heads=heads, dropout=dropout, attention=attention, chunk=chunk)
        self.pose_features, self.patch_features = point_features, patch_features
        # Learned in the encoder, on the training videos only: the stored width -> a smaller one.
        self.patch_proj = nn.Sequential(nn.LayerNorm(patch_features), nn.Linear(patch_features, patch_dim))

    def forward_features(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        pose, patch, bound = batch["pose"], batch["pose_patch"], batch["pose_patch_mask"]
        if pose.dim() != 4 or pose.shape[2:] != (N_KEYPOINTS, self.pose_features):
            raise UserError(f"pose batch has shape {tuple(pose.shape)}, pose-patch expects (B, N, {N_KEYPOINTS}, "
                            f"{self.pose_features}); point_features must be 2 + 2 * len(offsets) of the features")
        if patch.shape[-1] != self.patch_features:
            raise UserError(f"pose_patch has width {patch.shape[-1]}, pose-patch was built for {self.patch_features}; "
                            "set model.encoder_args.pose-patch.patch_features to the extraction's patches_dim")
        # A point missing from the sampled frame is masked whatever its patch says.
        flag = (bound & batch["pose_point_mask"]).to(pose.dtype).unsqueeze(-1)   # (B, N, 137, 1)
        visual = self.patch_proj(patch) * flag                              # (B, N, 137, patch_dim)
        points = torch.cat([pose, visual, flag], dim=-1)                    # (B, N, 137, F + patch_dim + 1)
        return super().forward_features({**batch, "pose": points})
