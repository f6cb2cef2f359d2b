"""A run's `oof.csv`: out-of-fold predictions, one block of rows per model.

A model is named by a key, `stage1/<modality>` for one modality alone or `stage2` for the fused
model, whose rows carry the modality `fusion`. Training and ensembles write these rows; evaluation,
the report and the ablations read them back by key.
"""
from __future__ import annotations

import pandas as pd

FUSED = "fusion"          # the `modality` column of the fused (stage-2) model's rows


def model_key(stage: str, modality: str) -> str:
    """`stage2` for the fused model's rows, `stage1/<modality>` for one modality's."""
    return stage if modality == FUSED else f"{stage}/{modality}"


def key_parts(key: str) -> tuple[str, str]:
    """(stage, modality column) of a model key: the inverse of `model_key`."""
    stage, _, modality = key.partition("/")
    return stage, modality or FUSED


def by_model(oof: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """oof.csv's rows per model key, in the file's order."""
    return {model_key(stage, modality): group
            for (stage, modality), group in oof.groupby(["stage", "modality"], sort=False)}
