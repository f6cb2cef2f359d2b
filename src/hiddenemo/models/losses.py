"""Losses: the binary focal loss the paper trains with, its softmax form for tasks of more than two
classes, and the small supervised contrastive term of its "contrastive" ablation row."""
from __future__ import annotations

import torch
import torch.nn.functional as F

REDUCTIONS = ("mean", "sum", "none")


def focal_loss(logits: torch.Tensor, targets: torch.Tensor, alpha: float = 0.25, gamma: float = 2.0,
               weight: torch.Tensor | None = None, reduction: str = "mean") -> torch.Tensor:
    """Binary focal loss (Lin et al.), the formula of torchvision's `sigmoid_focal_loss`.

    Args:
        logits: (B,) raw scores.
        targets: (B,) in [0, 1]; soft targets (pseudo-label probabilities) are allowed.
        alpha: Weight of the positive class in (0, 1); a negative value turns the weighting off.
        gamma: Focusing exponent; 0 gives (alpha-weighted) binary cross-entropy.
        weight: (B,) per-sample weights (e.g. the teacher's confidence in a pseudo-label).
        reduction: `mean` (weighted mean: sum(w * loss) / sum(w)), `sum`, or `none` (per sample,
            weights applied).
    """
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    targets = targets.to(logits.dtype)
    p = torch.sigmoid(logits)
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p_t = p * targets + (1 - p) * (1 - targets)
    loss = ce * (1 - p_t) ** gamma
    if alpha >= 0:
        loss = loss * (alpha * targets + (1 - alpha) * (1 - targets))
    return _reduce(loss, weight, reduction)


def softmax_focal_loss(logits: torch.Tensor, targets: torch.Tensor, gamma: float = 2.0,
                       weight: torch.Tensor | None = None, reduction: str = "mean") -> torch.Tensor:
    """Multi-class focal loss: -sum_c t_c (1 - p_c)^gamma log p_c over softmax probabilities p.

    Args:
        logits: (B, C) raw scores.
        targets: (B, C) class probabilities (one-hot for a label; a teacher's soft distribution allowed).
        gamma: Focusing exponent; 0 gives cross-entropy (class-weighted through `weight`).
        weight: (B,) per-sample weights (class balance, a pseudo-label's confidence).
        reduction: as `focal_loss`.
    """
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    log_p = F.log_softmax(logits, dim=-1)                                 # (B, C)
    targets = targets.to(log_p.dtype)
    loss = -(targets * (1 - log_p.exp()) ** gamma * log_p).sum(-1)      # (B,)
    return _reduce(loss, weight, reduction)


def _reduce(loss: torch.Tensor, weight: torch.Tensor | None, reduction: str) -> torch.Tensor:
    if weight is not None:
        loss = loss * weight.to(loss.dtype)
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    total = weight.to(loss.dtype).sum() if weight is not None else loss.new_tensor(loss.numel())
    return loss.sum() / total.clamp_min(1e-12)


def supervised_contrastive_loss(features: torch.Tensor, targets: torch.Tensor,
                                temperature: float = 0.1, weight: torch.Tensor | None = None) -> torch.Tensor:
    """Supervised contrastive loss (Khosla et al.) over one batch of features (B, D) with binary
    targets (B,) (soft targets are rounded) or class distributions (B, C) (their arg-max): each sample
    is pulled towards the others of its class.
    Samples with no other sample of their class in the batch do not contribute; returns 0 when none do.
    """
    z = F.normalize(features, dim=-1)
    labels = targets.argmax(-1) if targets.ndim == 2 else (targets >= 0.5).long()
    B = z.shape[0]
    self_mask = torch.eye(B, dtype=torch.bool, device=z.device)
    sim = (z @ z.T / temperature).masked_fill(self_mask, float("-inf"))  # (B, B)
    log_prob = sim - torch.logsumexp(sim, dim=1, keepdim=True)
    positives = (labels[:, None] == labels[None, :]) & ~self_mask        # (B, B)
    n_pos = positives.sum(1)
    per_sample = -(log_prob.masked_fill(~positives, 0.0)).sum(1) / n_pos.clamp_min(1)
    w = (n_pos > 0).to(z.dtype)
    if weight is not None:
        w = w * weight.to(z.dtype)
    return (per_sample * w).sum() / w.sum().clamp_min(1e-12)
