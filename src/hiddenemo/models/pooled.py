"""Pooled-statistics encoders: one vector per video (`hiddenemo.data.pooled`) instead of a long
sequence — the small models that small data wants (the paper's "MLP-ified" lesson).

    <modality>_stats (B, F) --standardise (running statistics)--> dropout --> linear [--> GELU --> linear] --> (B, dim)

Standardisation uses running mean and variance (a BatchNorm without affine terms), so the scale of
each statistic travels with the weights and needs no fit outside the model. A batch of one video in
training uses the running statistics instead of its own (a batch of one has no variance).
"""
from __future__ import annotations

import functools

import torch
import torch.nn as nn
import torch.nn.functional as F

from hiddenemo.models.registry import register_encoder


class Standardise(nn.BatchNorm1d):
    """(B, F) -> (B, F) with zero mean and unit variance per statistic, by running estimates."""

    def __init__(self, width: int):
        super().__init__(width, affine=False, momentum=None)   # momentum None: a cumulative average

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and x.shape[0] < 2:
            return F.batch_norm(x, self.running_mean, self.running_var, training=False, eps=self.eps)
        return super().forward(x)


class PooledEncoder(nn.Module):
    """Batch `<modality>_stats` (B, in_dim) -> (B, dim); `hidden` 0 = one linear map (a logistic
    regression once the head is on), else an MLP with one hidden layer of that width."""

    reads = "pooled"

    def __init__(self, modality: str, in_dim: int, dim: int = 256, hidden: int = 0, dropout: float = 0.1,
                 input_dropout: float = 0.1):
        super().__init__()
        self.modality = modality
        self.norm = Standardise(in_dim)
        self.drop = nn.Dropout(input_dropout)
        if hidden:
            self.net = nn.Sequential(nn.Linear(in_dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, dim))
        else:
            self.net = nn.Linear(in_dim, dim)

    def forward_features(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        x = batch[f"{self.modality}_stats"]                              # (B, in_dim)
        return self.net(self.drop(self.norm(x)))                         # (B, dim)


for _modality in ("events", "pose", "frames"):
    register_encoder(f"{_modality}-stats")(functools.partial(PooledEncoder, modality=_modality))
