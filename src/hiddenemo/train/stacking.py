"""Late fusion's starting mix from the stage-1 models' out-of-fold predictions (`model.late_mix: stacked`).

Stage 2 trains on the labeled videos that each stage-1 model was fitted on, where every modality
looks good (a text model with 384 inputs fits 45 videos whatever it learns). The out-of-fold
predictions are the one honest record of how far each modality carries to videos its model never
saw, so the mix starts from a logistic regression of the labels on them (stacking): non-negative —
a modality that does worse than chance out of fold gets nothing rather than a negative vote — and
scaled to sum to 1, the scale of the equal mix it replaces. In stage-2 fold k the regression sees
the other folds' videos only, so fold k's labels reach its model through no door.
"""
from __future__ import annotations

import numpy as np

from hiddenemo.errors import UserError
from hiddenemo.eval.labelshift import logit


def stacked_mix(oof: dict[str, np.ndarray], y: np.ndarray, rows: np.ndarray) -> dict[str, float]:
    """modality -> starting weight, from the stage-1 out-of-fold probabilities `oof` (modality -> (n,))
    and labels `y` (n,) of the labeled videos, using `rows` (bool (n,)) of them."""
    from sklearn.linear_model import LogisticRegression

    if any(np.ndim(p) != 1 for p in oof.values()):
        raise UserError("model.late_mix: stacked is built for two classes; use late_mix: equal")
    modalities = list(oof)
    x = np.column_stack([logit(np.asarray(oof[m][rows], dtype=np.float64)) for m in modalities])
    weights = np.clip(LogisticRegression(C=1.0).fit(x, y[rows]).coef_[0], 0.0, None)
    if weights.sum() <= 0:                           # no modality beats chance out of fold: the plain average
        weights = np.ones(len(modalities))
    return {m: float(w) for m, w in zip(modalities, weights / weights.sum())}
