"""Whole models: one encoder with its own head (stage 1) and several encoders fused (stage 2).

Both hold their encoders under fixed names, so stage 2 loads stage-1 weights by state_dict prefix:

    Classifier:   encoder.<...>              head.<...>
    FusionModel:  encoders.<modality>.<...>  missing.<modality>  fuse.<...>  head.<...>
    (late)        encoders.<modality>.<...>  missing.<modality>  head.heads.<modality>.<...>  head.mix

`load_encoder_weights(fusion, {modality: classifier_state_dict})` copies every `encoder.*` tensor of
a stage-1 checkpoint to `encoders.<modality>.*` of the fusion model, and for `late` fusion its
`head.*` to `head.heads.<modality>.*` too.

A video without a modality (`<modality>_present` False) keeps its place in the batch: the encoder's
output for it is replaced by a learned "missing" embedding of that modality.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from hiddenemo.errors import UserError
from hiddenemo.models.layers import Block, key_padding_mask

FUSIONS = ("concat", "cross-attention", "late")


def present_mask(batch: dict[str, torch.Tensor], modality: str, like: torch.Tensor) -> torch.Tensor:
    """(B,) bool: which videos have `modality`; all of them when the batch has no `<m>_present`."""
    present = batch.get(f"{modality}_present")
    if present is None:
        return torch.ones(like.shape[0], dtype=torch.bool, device=like.device)
    return present.bool().to(like.device)


def head_outputs(n_classes: int) -> int:
    """Logits a head gives: one for two classes (sigmoid), one per class for more (softmax)."""
    return 1 if n_classes <= 2 else n_classes


def logits_out(h: torch.Tensor) -> torch.Tensor:
    """(B, 1) -> (B,) for a one-logit head; (B, C) stays."""
    return h.squeeze(-1) if h.shape[-1] == 1 else h


class Classifier(nn.Module):
    """Stage 1: one encoder + its own head. forward(batch) -> logits (B,) for two classes, (B, C) for more."""

    def __init__(self, encoder: nn.Module, dim: int = 256, dropout: float = 0.1, n_classes: int = 2):
        super().__init__()
        self.encoder = encoder
        self.modality = encoder.modality
        self.head = classifier_head(dim, dropout, n_classes)

    def forward_features(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.encoder.forward_features(batch)                      # (B, dim)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return logits_out(self.head(self.forward_features(batch)))       # (B,) or (B, C)


def classifier_head(dim: int, dropout: float, n_classes: int) -> nn.Sequential:
    """The head a stage-1 model puts on its encoder (and late fusion keeps per modality)."""
    return nn.Sequential(nn.LayerNorm(dim), nn.Dropout(dropout), nn.Linear(dim, head_outputs(n_classes)))


class LateHead(nn.Module):
    """Late fusion: each modality's own head on its slice of the concatenated features, the logits
    mixed by learned weights that start equal. Loaded with the stage-1 heads, stage 2 starts as the
    average of the stage-1 models' logits (their ensemble) and fine-tunes from there, instead of
    from a fresh head that a few epochs on a small set cannot train."""

    def __init__(self, modalities: list[str], dim: int, dropout: float, n_classes: int):
        super().__init__()
        self.dim = dim
        self.heads = nn.ModuleDict({m: classifier_head(dim, dropout, n_classes) for m in modalities})
        self.mix = nn.Parameter(torch.full((len(modalities),), 1.0 / len(modalities)))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        chunks = h.split(self.dim, dim=-1)                                # M x (B, dim)
        logits = torch.stack([head(c) for head, c in zip(self.heads.values(), chunks)], dim=-1)  # (B, out, M)
        return logits @ self.mix                                          # (B, out)


class FusionModel(nn.Module):
    """Stage 2: encoders keyed by modality, fused. forward(batch) -> logits (B,), or (B, C) for C > 2 classes.

    `concat` (the paper's): features concatenated (B, M*dim) -> linear with a residual connection ->
    head. `cross-attention` (the paper's variant that overfit): the M modality vectors as tokens
    through one Transformer block, mean over the tokens -> head. `late`: the concatenated features
    -> `LateHead` (per-modality heads, logits mixed by learned weights)."""

    def __init__(self, encoders: dict[str, nn.Module], dim: int = 256, fusion: str = "concat",
                 dropout: float = 0.1, heads: int = 4, n_classes: int = 2):
        super().__init__()
        if fusion not in FUSIONS:
            raise UserError(f"unknown fusion {fusion!r}; choose one of {FUSIONS}")
        if not encoders:
            raise UserError("a fusion model needs at least one encoder")
        for key, encoder in encoders.items():
            if key != encoder.modality:
                raise UserError(f"encoder for {key!r} reads modality {encoder.modality!r}; key them alike")
        self.modalities = list(encoders)
        self.fusion, self.dim = fusion, dim
        self.encoders = nn.ModuleDict(encoders)
        self.missing = nn.ParameterDict({m: nn.Parameter(torch.zeros(dim)) for m in self.modalities})
        width = len(self.modalities) * dim
        if fusion == "concat":
            self.fuse = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, width), nn.GELU(), nn.Dropout(dropout))
            self.head = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, head_outputs(n_classes)))
        elif fusion == "late":
            self.head = LateHead(self.modalities, dim, dropout, n_classes)
        else:
            self.token_type = nn.Parameter(torch.zeros(len(self.modalities), dim))
            nn.init.normal_(self.token_type, std=0.02)
            self.fuse = Block(dim, heads, dropout)
            self.head = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, head_outputs(n_classes)))

    def forward_features(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Fused features: (B, M*dim) for concat, (B, dim) for cross-attention."""
        feats = []
        for m, encoder in self.encoders.items():
            f = encoder.forward_features(batch)                           # (B, dim)
            present = present_mask(batch, m, f).unsqueeze(-1)             # (B, 1)
            feats.append(torch.where(present, f, self.missing[m].to(f.dtype)))
        if self.fusion == "late":
            return torch.cat(feats, dim=-1)                               # (B, M*dim)
        if self.fusion == "concat":
            h = torch.cat(feats, dim=-1)                                  # (B, M*dim)
            return h + self.fuse(h)
        tokens = torch.stack(feats, dim=1) + self.token_type             # (B, M, dim)
        everyone = torch.ones(tokens.shape[:2], dtype=torch.bool, device=tokens.device)
        return self.fuse(tokens, key_padding_mask(everyone)).mean(1)      # (B, dim)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return logits_out(self.head(self.forward_features(batch)))       # (B,) or (B, C)


def load_encoder_weights(model: FusionModel, stage1: dict[str, dict[str, torch.Tensor]],
                         strict: bool = True) -> None:
    """Copy stage-1 encoder weights into a fusion model.

    Args:
        model: The stage-2 fusion model.
        stage1: modality -> state_dict of a stage-1 `Classifier` (its `encoder.*` entries are used;
            with `late` fusion its `head.*` entries too).
        strict: Every encoder tensor must match in name and shape.
    """
    for modality, state in stage1.items():
        if modality not in model.encoders:
            raise UserError(f"stage-1 weights for {modality!r}, but the fusion model has only "
                            f"{model.modalities}")
        encoder_state = {k.removeprefix("encoder."): v for k, v in state.items() if k.startswith("encoder.")}
        if not encoder_state:
            raise UserError(f"the stage-1 weights for {modality!r} hold no `encoder.*` tensors")
        try:
            model.encoders[modality].load_state_dict(encoder_state, strict=strict)
            if model.fusion == "late":
                head_state = {k.removeprefix("head."): v for k, v in state.items() if k.startswith("head.")}
                model.head.heads[modality].load_state_dict(head_state, strict=strict)
        except RuntimeError as err:
            raise UserError(f"stage-1 {modality} model does not fit the stage-2 one (were they built "
                            f"with the same options?): {err}") from None
