"""A small registry of encoders, as timm's `@register_model`: one decorator fills a dict.

    @register_encoder("pose-mlp")
    def pose_mlp(**kwargs) -> nn.Module: ...

    encoder = build_encoder("pose-mlp", dim=256, point_features=8)

The built-in encoder modules register themselves when `hiddenemo.models` (the package, imported before
any of its modules) imports them; the registry imports none of them.
"""
from __future__ import annotations

import inspect
from typing import Callable

import torch.nn as nn

from hiddenemo.errors import UserError

_ENCODERS: dict[str, Callable[..., nn.Module]] = {}


def register_encoder(name: str):
    """Decorator: make a factory (function or class) buildable by `name`."""
    def add(factory):
        if name in _ENCODERS:
            raise ValueError(f"encoder {name!r} is registered twice")
        _ENCODERS[name] = factory
        return factory
    return add


def list_encoders() -> list[str]:
    return sorted(_ENCODERS)


def build_encoder(name: str, **kwargs) -> nn.Module:
    """Build the encoder registered as `name`; unknown names and options are a UserError naming the
    choices, so a typo in a config says what to write instead."""
    if name not in _ENCODERS:
        raise UserError(f"unknown encoder {name!r}; choose one of: {', '.join(sorted(_ENCODERS))}")
    factory = _ENCODERS[name]
    signature = inspect.signature(factory)
    try:
        signature.bind(**kwargs)
    except TypeError as err:
        options = ", ".join(p for p in signature.parameters if p not in ("self", "modality"))
        raise UserError(f"encoder {name!r}: {err}; its options are: {options}") from None
    return factory(**kwargs)


def encoder_options(name: str) -> dict[str, object]:
    """The options of an encoder with their defaults (for configs and docs)."""
    return {p.name: p.default for p in inspect.signature(_ENCODERS[name]).parameters.values()}


def reads_pooled(name: str) -> bool:
    """Whether the encoder reads one pooled vector per video (`<modality>_stats`) instead of a sequence."""
    factory = _ENCODERS.get(name)
    return getattr(getattr(factory, "func", factory), "reads", "sequence") == "pooled"


def reads_patches(name: str) -> bool:
    """Whether the encoder also reads the keypoints' bound patch features (`pose_patch`)."""
    factory = _ENCODERS.get(name)
    return bool(getattr(getattr(factory, "func", factory), "patches", False))


def reads_array(name: str) -> str | None:
    """The store array an encoder reads in place of its modality's own (`frames-xclip`: `frames_xclip`)."""
    factory = _ENCODERS.get(name)
    return getattr(getattr(factory, "func", factory), "array", None)
