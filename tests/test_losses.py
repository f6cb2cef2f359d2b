"""Focal loss against torchvision's formula, and the supervised contrastive term."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from hiddenemo.models.losses import focal_loss, supervised_contrastive_loss


def torchvision_sigmoid_focal_loss(inputs, targets, alpha=0.25, gamma=2.0, reduction="none"):
    """torchvision.ops.sigmoid_focal_loss (v0.20), copied: torchvision does not install here."""
    p = torch.sigmoid(inputs)
    ce_loss = F.binary_cross_entropy_with_logits(inputs, targets, reduction="none")
    p_t = p * targets + (1 - p) * (1 - targets)
    loss = ce_loss * ((1 - p_t) ** gamma)
    if alpha >= 0:
        alpha_t = alpha * targets + (1 - alpha) * (1 - targets)
        loss = alpha_t * loss
    if reduction == "mean":
        loss = loss.mean()
    elif reduction == "sum":
        loss = loss.sum()
    return loss


@pytest.mark.parametrize("alpha,gamma", [(0.25, 2.0), (0.75, 0.0), (-1, 1.5), (0.5, 3.0)])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_focal_loss_matches_torchvision(alpha, gamma, reduction):
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(64, generator=g) * 4
    hard = (torch.rand(64, generator=g) > 0.3).float()
    soft = torch.rand(64, generator=g)
    for targets in (hard, soft):
        ours = focal_loss(logits, targets, alpha, gamma, reduction=reduction)
        ref = torchvision_sigmoid_focal_loss(logits, targets, alpha, gamma, reduction=reduction)
        torch.testing.assert_close(ours, ref)


def test_focal_loss_with_gamma_zero_is_weighted_bce():
    logits, targets = torch.randn(16), torch.rand(16)
    torch.testing.assert_close(focal_loss(logits, targets, alpha=-1, gamma=0.0),
                               F.binary_cross_entropy_with_logits(logits, targets))


def test_per_sample_weights():
    logits, targets = torch.randn(8), (torch.rand(8) > 0.5).float()
    weight = torch.tensor([1.0, 0.5, 0.0, 2.0, 1.0, 1.0, 0.25, 1.0])
    per = torch_per = torchvision_sigmoid_focal_loss(logits, targets)
    torch.testing.assert_close(focal_loss(logits, targets, weight=weight, reduction="none"), per * weight)
    torch.testing.assert_close(focal_loss(logits, targets, weight=weight),
                               (torch_per * weight).sum() / weight.sum())
    # A zero-weight sample has no gradient; a weight of 2 counts as the sample twice.
    x = logits.clone().requires_grad_(True)
    focal_loss(x, targets, weight=weight).backward()
    assert x.grad[2] == 0
    twice = focal_loss(torch.cat([logits, logits[3:4]]), torch.cat([targets, targets[3:4]]),
                       weight=torch.cat([weight.index_fill(0, torch.tensor([3]), 1.0), torch.ones(1)]))
    torch.testing.assert_close(focal_loss(logits, targets, weight=weight), twice)
    with pytest.raises(ValueError, match="reduction"):
        focal_loss(logits, targets, reduction="avg")


def test_supervised_contrastive_prefers_clustered_classes():
    targets = torch.tensor([1.0, 1.0, 0.0, 0.0, 0.9, 0.2])
    clustered = torch.stack([torch.tensor([1.0, 0.0]) if t >= 0.5 else torch.tensor([0.0, 1.0])
                             for t in targets]) + 0.01 * torch.randn(6, 2)
    mixed = torch.stack([torch.tensor([1.0, 0.0]) if i % 2 else torch.tensor([0.0, 1.0]) for i in range(6)])
    assert supervised_contrastive_loss(clustered, targets) < supervised_contrastive_loss(mixed, targets)
    features = torch.randn(6, 8, requires_grad=True)
    loss = supervised_contrastive_loss(features, targets, weight=torch.rand(6))
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(features.grad).all()
    lone = supervised_contrastive_loss(torch.randn(2, 4), torch.tensor([1.0, 0.0]))
    assert lone == 0                                                       # no pair of one class
