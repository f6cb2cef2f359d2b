"""Encoders of a sequence of per-step vectors: frame embeddings (`frames`) and timed micro-gesture
events (`events`, multi-hot).

    frames (B, N', D) --norm+linear--> (B, N', model_dim) --Transformer+masked mean--> --linear--> (B, dim)

`frames-clip16` is the honest stand-in for the paper's "16-frame clip" baseline (X-CLIP, 16 frames):
the same per-frame projection, but only 16 frames spread evenly over the valid ones, averaged, with
no long Transformer. It isolates what the long temporal model adds. `frames-xclip` is the paper's
baseline itself: it reads the X-CLIP clip embeddings (`frames_xclip`, one per 16-frame clip, written
by `hiddenemo extract --extract.frames xclip`) and pools them over the video's clips.
"""
from __future__ import annotations

import functools

import torch
import torch.nn as nn

from hiddenemo.models.layers import TemporalTransformer
from hiddenemo.models.registry import register_encoder


def step_projection(in_dim: int, model_dim: int, input_norm: bool) -> nn.Module:
    """Per-step input projection; LayerNorm first for embeddings whose scale is the extractor's."""
    return nn.Sequential(nn.LayerNorm(in_dim) if input_norm else nn.Identity(),
                         nn.Linear(in_dim, model_dim))


class SequenceEncoder(nn.Module):
    """Batch `<modality>` (B, N, in_dim) + `<modality>_mask` (B, N) -> (B, dim)."""

    def __init__(self, modality: str, in_dim: int, dim: int = 256, model_dim: int = 256, depth: int = 2,
                 heads: int = 4, dropout: float = 0.1, attention: str = "sdpa", chunk: int = 512,
                 input_norm: bool = True):
        super().__init__()
        self.modality = modality
        self.inp = step_projection(in_dim, model_dim, input_norm)
        self.temporal = TemporalTransformer(model_dim, depth, heads, dropout, attention, chunk)
        self.proj = nn.Linear(model_dim, dim)

    def forward_features(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        x, mask = batch[self.modality], batch[f"{self.modality}_mask"]
        return self.proj(self.temporal(self.inp(x), mask))               # (B, dim)


class ClipMeanEncoder(nn.Module):
    """Batch `<modality>` (B, N, in_dim) -> mean of the projections of `n_clip` evenly spread valid
    steps -> (B, dim)."""

    def __init__(self, modality: str, in_dim: int, dim: int = 256, model_dim: int = 256,
                 n_clip: int = 16, dropout: float = 0.1, input_norm: bool = True):
        super().__init__()
        self.modality, self.n_clip = modality, n_clip
        self.inp = step_projection(in_dim, model_dim, input_norm)
        self.drop = nn.Dropout(dropout)
        self.proj = nn.Sequential(nn.GELU(), nn.Linear(model_dim, dim))

    def forward_features(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        x, mask = batch[self.modality], batch[f"{self.modality}_mask"].bool()
        idx = evenly_spread_valid(mask, self.n_clip)                      # (B, n_clip)
        clip = x.gather(1, idx.unsqueeze(-1).expand(-1, -1, x.shape[-1]))  # (B, n_clip, in_dim)
        return self.proj(self.drop(self.inp(clip).mean(1)))               # (B, dim)


class ClipPoolEncoder(nn.Module):
    """Batch `<modality>` (B, N, in_dim) of clip embeddings -> masked mean over the clips -> (B, dim)."""

    array = "frames_xclip"          # the store array the dataset reads for this encoder's modality

    def __init__(self, modality: str, in_dim: int, dim: int = 256, model_dim: int = 256, dropout: float = 0.1,
                 input_norm: bool = True):
        super().__init__()
        self.modality = modality
        self.inp = step_projection(in_dim, model_dim, input_norm)
        self.drop = nn.Dropout(dropout)
        self.proj = nn.Sequential(nn.GELU(), nn.Linear(model_dim, dim))

    def forward_features(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        x, mask = batch[self.modality], batch[f"{self.modality}_mask"]
        keep = mask.to(x.dtype).unsqueeze(-1)                               # (B, N, 1)
        mean = (self.inp(x) * keep).sum(1) / keep.sum(1).clamp_min(1.0)     # (B, model_dim)
        return self.proj(self.drop(mean))                                   # (B, dim)


def evenly_spread_valid(mask: torch.Tensor, k: int) -> torch.Tensor:
    """Indices (B, k) of k steps spread evenly over the valid steps of each row of mask (B, N), in
    order, repeating steps when a row has fewer than k."""
    n_valid = mask.sum(1, keepdim=True)                                   # (B, 1)
    rank = ((torch.arange(k, device=mask.device) + 0.5) * n_valid / k).long()
    rank = torch.minimum(rank, (n_valid - 1).clamp_min(0))                # (B, k)
    valid_first = torch.sort((~mask).to(torch.int8), dim=1, stable=True).indices  # valid steps, in order
    return valid_first.gather(1, rank)


register_encoder("frames-transformer")(functools.partial(SequenceEncoder, modality="frames", in_dim=768))
register_encoder("frames-clip16")(functools.partial(ClipMeanEncoder, modality="frames", in_dim=768,
                                                    n_clip=16))
register_encoder("frames-xclip")(functools.partial(ClipPoolEncoder, modality="frames", in_dim=512))
register_encoder("events-transformer")(functools.partial(SequenceEncoder, modality="events", in_dim=32,
                                                         input_norm=False))
