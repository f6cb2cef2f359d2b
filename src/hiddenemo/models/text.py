"""Text encoders: a precomputed sentence embedding projected to `dim` (`text-linear`), or a
`transformers` encoder fine-tuned end to end (`text-finetune`, the paper's BERT).

`text-finetune` reads tokens from the batch (`text_input_ids`, `text_attention_mask`, (B, L)); the
data loader tokenises with the matching tokenizer (`transformers.AutoTokenizer` on the same name or
path). Nothing is downloaded at run time here: give a local directory, or a name already in the
Hugging Face cache, or a config (as in the tests, a tiny random `BertConfig`).
"""
from __future__ import annotations

import torch
import torch.nn as nn

from hiddenemo.errors import UserError
from hiddenemo.models.layers import masked_mean
from hiddenemo.models.registry import register_encoder


@register_encoder("text-linear")
class TextLinear(nn.Module):
    """Batch `text` (B, in_dim) -> (B, dim)."""

    modality = "text"

    def __init__(self, in_dim: int = 384, dim: int = 256, dropout: float = 0.1):
        super().__init__()
        self.net = nn.Sequential(nn.LayerNorm(in_dim), nn.Dropout(dropout), nn.Linear(in_dim, dim))

    def forward_features(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.net(batch["text"])                                    # (B, dim)


@register_encoder("text-finetune")
class TextFinetune(nn.Module):
    """Batch `text_input_ids`, `text_attention_mask` (B, L) -> transformer -> masked mean -> (B, dim)."""

    modality = "text"

    def __init__(self, model: str | None = None, config=None, dim: int = 256, dropout: float = 0.1):
        super().__init__()
        from transformers import AutoConfig, AutoModel  # heavy: only when this encoder is chosen

        if config is not None:
            if isinstance(config, dict):
                config = AutoConfig.for_model(**config)
            self.backbone = AutoModel.from_config(config)
        elif model:
            try:
                self.backbone = AutoModel.from_pretrained(model)
            except OSError as err:
                raise UserError(f"text encoder {model!r} could not be loaded ({err}); nothing is "
                                "downloaded at run time: give a local directory holding the model") from None
        else:
            raise UserError("text-finetune needs `model` (a name or local path) or a `config`")
        self.drop = nn.Dropout(dropout)
        self.proj = nn.Linear(self.backbone.config.hidden_size, dim)

    def forward_features(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        mask = batch["text_attention_mask"]
        hidden = self.backbone(input_ids=batch["text_input_ids"], attention_mask=mask).last_hidden_state
        return self.proj(self.drop(masked_mean(hidden, mask.bool())))     # (B, dim)
