"""How well the inserted cues separate Lose from Win, from the generator's ground truth
(`truth/cues.csv`): what `hiddenemo dataset synthetic` prints about a set it made."""
from __future__ import annotations

import pandas as pd

from hiddenemo.synthetic.plan import CLASSES, CUES, LOSE


def separability(truth: pd.DataFrame, folds: int = 5, seed: int = 0) -> pd.DataFrame:
    """How well the inserted cues separate Lose from Win, from the ground truth (`truth/cues.csv`):
    the AUC of each cue alone, and a cross-validated logistic regression on the cues each modality
    shows clearly (visibility 2) — an upper bound for a model of that modality on this set."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    y = (truth["win_or_lose"] == CLASSES[LOSE]).to_numpy(int)
    rows = []
    for c in CUES:
        rows.append({"what": c.name, "auc": roc_auc_score(y, truth[f"{c.name}_frac"])})
    rows.append({"what": "fidget", "auc": roc_auc_score(y, truth["fidget"])})
    groups = {m: [f"{c.name}_frac" for c in CUES if getattr(c, m) == 2] for m in ("keypoints", "pixels", "annotations")}
    groups["keypoints"].append("fidget")
    groups["teacher"] = [f"{c.name}_frac" for c in CUES if c.teacher] + ["fidget"]
    groups["all"] = [f"{c.name}_frac" for c in CUES] + ["fidget"]
    k = min(folds, int(y.sum()), int((1 - y).sum()))
    for name, cols in groups.items():
        x = truth[cols].to_numpy(float)
        model = LogisticRegression(C=1.0, max_iter=1000)
        p = cross_val_predict(model, (x - x.mean(0)) / (x.std(0) + 1e-9), y,
                              cv=StratifiedKFold(k, shuffle=True, random_state=seed), method="predict_proba")[:, 1]
        rows.append({"what": f"modality:{name}", "auc": roc_auc_score(y, p)})
    return pd.DataFrame(rows)
