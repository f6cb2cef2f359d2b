"""Models from a `ModelConfig`: the registry's encoders with the widths the data has.

Stage 1 is one encoder with its own head (`models.fusion.Classifier`); stage 2 fuses several
(`models.fusion.FusionModel`) and starts from the stage-1 encoders' weights.
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn
from safetensors.torch import load_file

from hiddenemo.models.fusion import Classifier, FusionModel, load_encoder_weights
from hiddenemo.data.store import MODALITIES
from hiddenemo.errors import UserError
from hiddenemo.models.registry import build_encoder, encoder_options, list_encoders
from hiddenemo.train.config import ModelConfig

DEFAULT_ENCODERS = {"pose": "pose-mlp", "frames": "frames-transformer", "text": "text-linear",
                    "events": "events-transformer"}


def build_model(config: ModelConfig, modalities: list[str], dims: dict[str, int], *, fused: bool,
                dropout: float = 0.1, n_classes: int = 2) -> nn.Module:
    """A `Classifier` over one modality (fused=False) or a `FusionModel` over `modalities`; one logit
    for two classes, `n_classes` logits for more."""
    encoders = {m: modality_encoder(config, m, dims[m], dropout) for m in modalities}
    if not fused:
        (encoder,) = encoders.values()
        return Classifier(encoder, config.dim, dropout, n_classes=n_classes)
    return FusionModel(encoders, config.dim, config.fusion, dropout, n_classes=n_classes)


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
    kwargs.update(encoder_args(config, name, modality))
    return build_encoder(name, **kwargs)


def encoder_args(config: ModelConfig, name: str, modality: str) -> dict:
    """The extra arguments `model.encoder_args` gives encoder `name` for `modality` (a key naming the
    encoder wins over the modality's); an option the encoder does not have is an error naming those it has."""
    key = name if name in config.encoder_args else modality
    args = config.encoder_args.get(key, {})
    options = [o for o in encoder_options(name) if o != "modality"]      # modality: fixed by the registration
    unknown = sorted(set(args) - set(options))
    if unknown:
        raise UserError(f"model.encoder_args.{key}: encoder {name!r} has no option(s) {unknown}; its options are: "
                        f"{', '.join(options)}")
    return args


def check_encoder_args(config: ModelConfig) -> None:
    """Every `model.encoder_args` key is a modality or an encoder name, and every encoder the run will
    build (each modality's encoder and candidates) knows the options it is given: checked before any
    data is read, so a misspelled option stops the run at once."""
    keys = [*MODALITIES, *list_encoders()]
    stray = sorted(set(config.encoder_args) - set(keys))
    if stray:
        raise UserError(f"model.encoder_args: {stray} names neither a modality nor an encoder; keys are a modality "
                        f"({', '.join(MODALITIES)}) or an encoder ({', '.join(list_encoders())})")
    for modality in config.modalities:
        for name in candidate_encoders(config, modality):
            encoder_args(config, name, modality)


def load_weights(model: nn.Module, path: Path, strict: bool = True) -> None:
    """Safetensors weights into a model built by `build_model` (no pickle anywhere)."""
    model.load_state_dict(load_file(str(path)), strict=strict)


def load_encoders(model: FusionModel, paths: dict[str, Path], mix: dict[str, float] | None = None) -> None:
    """Stage-1 checkpoints (safetensors of a `Classifier`) -> the fusion model's encoders; `mix`: late
    fusion's starting weight per modality (`train.stacking`), else the equal mix it is built with."""
    load_encoder_weights(model, {m: load_file(str(p)) for m, p in paths.items()})
    if mix is not None:
        with torch.no_grad():
            model.head.mix.copy_(torch.tensor([mix[m] for m in model.modalities]))
