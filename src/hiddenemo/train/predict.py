"""Voting inference: k samplings per video, their mean probability and spread, the threshold from
selection, and the files `predict` writes (`predictions.csv`, and `submission.csv` with
`--submission`).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from hiddenemo.train.data import VideoDataset, collate


@torch.no_grad()
def vote(models: torch.nn.Module | list[torch.nn.Module], dataset: VideoDataset, batch_size: int = 8) -> pd.DataFrame:
    """video_id, p_positive (mean over every model's draws), n_votes, vote_std for every video of
    `dataset`. Several models (a fold ensemble) each vote on every draw."""
    models = models if isinstance(models, list) else [models]
    n = len(dataset.video_ids)
    probs = np.zeros((len(models), dataset.draws, n))
    for i, model in enumerate(models):
        model.eval()
        loader = DataLoader(dataset, batch_size=batch_size, collate_fn=collate)   # ordered: draw-major
        seen = 0
        for batch in tqdm(loader, desc=f"predict (model {i + 1}/{len(models)})", unit="batch", leave=False):
            p = torch.sigmoid(model(batch)).double().numpy()
            flat = np.arange(seen, seen + len(p))
            probs[i, flat // n, flat % n] = p
            seen += len(p)
    probs = probs.reshape(-1, n)
    return pd.DataFrame({"video_id": dataset.video_ids, "p_positive": probs.mean(0),
                         "n_votes": len(probs), "vote_std": probs.std(0)})


def apply_threshold(p: np.ndarray, threshold: dict) -> float:
    """The threshold for these target probabilities: the selected one, or for the quantile method
    the one that makes `prior` of them positive (computed on the target videos, as the paper did)."""
    if threshold["method"] == "quantile":
        from hiddenemo.train.selection import quantile_threshold
        return quantile_threshold(p, threshold["prior"])
    return float(threshold["threshold"])


def predictions_table(votes: pd.DataFrame, threshold: float, classes: list[str], positive_index: int) -> pd.DataFrame:
    """predictions.csv: video_id, p_positive, label (the predicted class name), n_votes, vote_std."""
    negative_index = 1 - positive_index
    positive = votes["p_positive"] >= threshold
    label = np.where(positive, classes[positive_index], classes[negative_index])
    return votes.assign(label=label)[["video_id", "p_positive", "label", "n_votes", "vote_std"]]


def submission_table(predictions: pd.DataFrame, positive_name: str) -> pd.DataFrame:
    """The challenge layout: video_id, prediction with 1 = the positive class (iMiGUE: win), 0 = the other."""
    return pd.DataFrame({"video_id": predictions["video_id"],
                         "prediction": (predictions["label"] == positive_name).astype(int)})
