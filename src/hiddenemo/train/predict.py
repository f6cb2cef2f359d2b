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
def vote(model: torch.nn.Module, dataset: VideoDataset, batch_size: int = 8) -> pd.DataFrame:
    """video_id, p_positive (mean over the draws), n_votes, vote_std for every video of `dataset`."""
    model.eval()
    n = len(dataset.video_ids)
    probs = np.zeros((dataset.draws, n))
    loader = DataLoader(dataset, batch_size=batch_size, collate_fn=collate)   # ordered: draw-major
    seen = 0
    for batch in tqdm(loader, desc="predict", unit="batch", leave=False):
        p = torch.sigmoid(model(batch)).double().numpy()
        flat = np.arange(seen, seen + len(p))
        probs[flat // n, flat % n] = p
        seen += len(p)
    return pd.DataFrame({"video_id": dataset.video_ids, "p_positive": probs.mean(0),
                         "n_votes": dataset.draws, "vote_std": probs.std(0)})


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
