"""Building blocks shared by the encoders: a nanoGPT-style Transformer block over a padded sequence,
masked pooling and positions counted over the valid steps only.

Attention is `F.scaled_dot_product_attention`, non-causal, with a key padding mask. Two ways to run it
(`attention=`), both exact full attention as in the paper:

- `"sdpa"`: one call over the whole sequence. On CPU, torch (2.13) picks its fused flash kernel for
  this call (float32, boolean mask, no attention dropout), whose memory grows linearly with the
  length. Should torch fall back to its math kernel (attention dropout, an older torch, some masks),
  the (B, H, N, N) weights are materialised and kept for backward: quadratic memory.
- `"chunked"`: queries in blocks of `chunk` rows, each block recomputed in backward
  (activation checkpointing), so at most (B, H, chunk, N) scores exist at a time whatever kernel
  torch picks: linear memory by construction, at the cost of one more attention forward.

`benchmarks/train_step.py` measures both against the forced math kernel.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

ATTENTION_MODES = ("sdpa", "chunked")


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of x (B, N, C) over the steps where mask (B, N) is True -> (B, C); zeros for an empty row."""
    weights = mask.to(x.dtype).unsqueeze(-1)                              # (B, N, 1)
    return (x * weights).sum(1) / weights.sum(1).clamp_min(1.0)


def valid_positions(mask: torch.Tensor) -> torch.Tensor:
    """Rank of each valid step among the valid steps of its row (B, N) -> (B, N) long, so that
    positions do not depend on where padding sits."""
    return (mask.long().cumsum(1) - 1).clamp_min(0)


def sinusoidal_embedding(positions: torch.Tensor, dim: int) -> torch.Tensor:
    """Transformer sine/cosine position code for integer positions (B, N) -> (B, N, dim); any length."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=positions.device) / half)
    angles = positions.to(torch.float32).unsqueeze(-1) * freqs           # (B, N, half)
    emb = torch.cat([angles.sin(), angles.cos()], dim=-1)
    return F.pad(emb, (0, dim - 2 * half))


def key_padding_mask(mask: torch.Tensor) -> torch.Tensor:
    """Boolean attention mask (B, 1, 1, N) from a padding mask (B, N).

    A row with no valid step at all (a video without this modality) attends to every step instead:
    its output is ignored downstream, and an all-False row would make softmax return NaN, which
    poisons the gradients even when the value is masked away later."""
    empty = ~mask.any(dim=1, keepdim=True)                                # (B, 1)
    return (mask | empty)[:, None, None, :]


class SelfAttention(nn.Module):
    def __init__(self, dim: int, heads: int, dropout: float = 0.0, attention: str = "sdpa",
                 chunk: int = 512):
        super().__init__()
        if dim % heads:
            raise ValueError(f"model width {dim} is not divisible by {heads} heads")
        if attention not in ATTENTION_MODES:
            raise ValueError(f"attention must be one of {ATTENTION_MODES}, got {attention!r}")
        self.heads, self.attention, self.chunk = heads, attention, chunk
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor) -> torch.Tensor:
        B, N, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)                             # 3 x (B, N, C)
        q, k, v = (t.view(B, N, self.heads, C // self.heads).transpose(1, 2) for t in (q, k, v))
        if self.attention == "chunked" and N > self.chunk:                # (B, H, N, C/H)
            y = torch.cat([_checkpointed_attention(q[:, :, i:i + self.chunk], k, v, attn_mask)
                           for i in range(0, N, self.chunk)], dim=2)
        else:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
        y = y.transpose(1, 2).reshape(B, N, C)
        return self.dropout(self.proj(y))


def _checkpointed_attention(q, k, v, attn_mask):
    if torch.is_grad_enabled() and q.requires_grad:
        return checkpoint(F.scaled_dot_product_attention, q, k, v, attn_mask, use_reentrant=False)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)


class Block(nn.Module):
    """Pre-norm Transformer block (nanoGPT), non-causal, with a key padding mask."""

    def __init__(self, dim: int, heads: int, dropout: float = 0.0, attention: str = "sdpa",
                 chunk: int = 512, mlp_ratio: int = 4):
        super().__init__()
        self.ln_1 = nn.LayerNorm(dim)
        self.attn = SelfAttention(dim, heads, dropout, attention, chunk)
        self.ln_2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_ratio * dim), nn.GELU(),
                                 nn.Linear(mlp_ratio * dim, dim), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x), attn_mask)
        x = x + self.mlp(self.ln_2(x))
        return x


class TemporalTransformer(nn.Module):
    """Frame vectors (B, N, dim) + padding mask (B, N) -> pooled (B, dim).

    Positions count valid steps only and the pool is a masked mean, so the result does not depend on
    how much padding follows (or sits between) the valid steps."""

    def __init__(self, dim: int = 256, depth: int = 2, heads: int = 4, dropout: float = 0.1,
                 attention: str = "sdpa", chunk: int = 512):
        super().__init__()
        self.blocks = nn.ModuleList(Block(dim, heads, dropout, attention, chunk) for _ in range(depth))
        self.ln_f = nn.LayerNorm(dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        mask = mask.bool()
        x = self.drop(x + sinusoidal_embedding(valid_positions(mask), x.shape[-1]).to(x.dtype))
        attn_mask = key_padding_mask(mask)                                # (B, 1, 1, N)
        for block in self.blocks:
            x = block(x, attn_mask)                                       # (B, N, dim)
        return masked_mean(self.ln_f(x), mask)                            # (B, dim)
