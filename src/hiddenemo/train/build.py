"""Models from a `ModelConfig`: the registry's encoders with the widths the data has.

Stage 1 is one encoder with its own head (`models.fusion.Classifier`); stage 2 fuses several
(`models.fusion.FusionModel`) and starts from the stage-1 encoders' weights.
"""
from __future__ import annotations

from pathlib import Path

import torch.nn as nn
from safetensors.torch import load_file

from hiddenemo.models.fusion import Classifier, FusionModel, load_encoder_weights
from hiddenemo.models.registry import build_encoder, encoder_options
from hiddenemo.train.config import ModelConfig

DEFAULT_ENCODERS = {"pose": "pose-mlp", "frames": "frames-transformer", "text": "text-linear",
                    "events": "events-transformer"}


def build_model(config: ModelConfig, modalities: list[str], dims: dict[str, int], *, fused: bool,
                dropout: float = 0.1) -> nn.Module:
    """A `Classifier` over one modality (fused=False) or a `FusionModel` over `modalities`."""
    encoders = {m: modality_encoder(config, m, dims[m], dropout) for m in modalities}
    if not fused:
        (encoder,) = encoders.values()
        return Classifier(encoder, config.dim, dropout)
    return FusionModel(encoders, config.dim, config.fusion, dropout)


def encoder_name(config: ModelConfig, modality: str) -> str:
    return config.encoders.get(modality, DEFAULT_ENCODERS[modality])


def candidate_encoders(config: ModelConfig, modality: str) -> list[str]:
    """The configured encoder of a modality first, then its other candidates (no repeats)."""
    names = [encoder_name(config, modality), *config.candidates.get(modality, [])]
    return list(dict.fromkeys(names))


def modality_encoder(config: ModelConfig, modality: str, in_dim: int, dropout: float) -> nn.Module:
    name = encoder_name(config, modality)
    options = encoder_options(name)
    kwargs = {"dim": config.dim, "dropout": dropout}
    # The input width comes from the data: keypoint features per point, or the array's last axis.
    width_key = "point_features" if "point_features" in options else "in_dim"
    if width_key in options:
        kwargs[width_key] = in_dim
    kwargs.update(config.encoder_args.get(name, config.encoder_args.get(modality, {})))
    return build_encoder(name, **kwargs)


def load_weights(model: nn.Module, path: Path, strict: bool = True) -> None:
    """Safetensors weights into a model built by `build_model` (no pickle anywhere)."""
    model.load_state_dict(load_file(str(path)), strict=strict)


def load_encoders(model: FusionModel, paths: dict[str, Path]) -> None:
    """Stage-1 checkpoints (safetensors of a `Classifier`) -> the fusion model's encoders."""
    load_encoder_weights(model, {m: load_file(str(p)) for m, p in paths.items()})
