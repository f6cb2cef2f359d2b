"""Voting inference: k samplings per video, their mean probability and spread, the threshold from
selection (more than two classes: the arg-max, optionally at the target set's EM class prior), and
the files `predict` writes (`predictions.csv`, and `submission.csv` with `--submission`).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from hiddenemo.train.config import ModelConfig, TrainConfig
from hiddenemo.train.data import VideoDataset, collate


def predict_videos(work: Path, manifest: pd.DataFrame, video_ids: list[str], config: TrainConfig,
                   model_config: ModelConfig, modalities: list[str], dims: dict[str, int], weights: list[Path], *,
                   fused: bool, event_groups: dict | None = None, leave_out: list[str] = (),
                   classes: list[str] | None = None) -> pd.DataFrame:
    """`vote` of the models in `weights` (a fold ensemble, or one) over the store's videos: what
    `predict` and an exported model's `apply` both run. `model_config` names the encoders the run
    chose; the pooled statistics are taken over the `manifest`'s videos. `leave_out` modalities are
    given to the model as missing (as for a video without them), to see how much each one moved a
    prediction. `classes`: the task's classes; with more than two, the models have one logit per class
    and the votes one `p_<class>` column each."""
    from hiddenemo.train.build import build_model, encoder_name, load_weights
    from hiddenemo.train.data import pooled_inputs

    nets = []
    for path in weights:
        nets.append(build_model(model_config, modalities, dims, fused=fused, dropout=0.0,
                                n_classes=len(classes) if classes else 2))
        load_weights(nets[-1], path)
    pooled = pooled_inputs(work, manifest, config, event_groups, {m: [encoder_name(model_config, m)] for m in modalities})
    dataset = VideoDataset(work, pd.DataFrame({"video_id": video_ids}), modalities, config.sampling, train=False,
                           seed=config.seed, dims=dims, text_encoder=config.model.text_encoder, pooled=pooled,
                           leave_out=tuple(leave_out), encoders={m: encoder_name(model_config, m) for m in modalities})
    with torch.inference_mode():
        return vote(nets, dataset, batch_size=config.stage2.batch_size, classes=classes)


@torch.no_grad()
def vote(models: torch.nn.Module | list[torch.nn.Module], dataset: VideoDataset, batch_size: int = 8,
         classes: list[str] | None = None) -> pd.DataFrame:
    """video_id, p_positive (mean over every model's draws), n_votes, vote_std for every video of
    `dataset`. Several models (a fold ensemble) each vote on every draw. Models of more than two
    `classes` give p_<class> per class instead of p_positive (softmax, averaged), and vote_std is the
    spread of the winning class's probability."""
    models = models if isinstance(models, list) else [models]
    n = len(dataset.video_ids)
    many = classes is not None and len(classes) > 2
    probs = np.zeros((len(models), dataset.draws, n) + ((len(classes),) if many else ()))
    for i, model in enumerate(models):
        model.eval()
        loader = DataLoader(dataset, batch_size=batch_size, collate_fn=collate)   # ordered: draw-major
        seen = 0
        for batch in tqdm(loader, desc=f"predict (model {i + 1}/{len(models)})", unit="batch", leave=False):
            logits = model(batch)
            p = (torch.softmax(logits, -1) if many else torch.sigmoid(logits)).double().numpy()
            flat = np.arange(seen, seen + len(p))
            probs[i, flat // n, flat % n] = p
            seen += len(p)
    if many:
        probs = probs.reshape(-1, n, len(classes))                     # (votes, n, C)
        mean = probs.mean(0)
        spread = probs[:, np.arange(n), mean.argmax(1)].std(0)
        return pd.DataFrame({"video_id": dataset.video_ids, **dict(zip(prob_columns(classes), mean.T)),
                             "n_votes": len(probs), "vote_std": spread})
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


def prob_columns(classes: list[str]) -> list[str]:
    """The p_<class> columns of a task of more than two classes, in class order."""
    return [f"p_{c}" for c in classes]


def apply_decision(votes: pd.DataFrame, decision: dict, classes: list[str]) -> tuple[pd.DataFrame, dict]:
    """More than two classes: the votes as they are decided (arg-max), re-weighted to the target videos'
    class prior estimated by EM when the decision says `class_prior: em` (transductive); and the
    decision as it was applied (with the estimated `target_prior`) for the predictions' .json."""
    if decision.get("class_prior") != "em":
        return votes, dict(decision)
    from hiddenemo.eval.labelshift import TRANSDUCTIVE_NOTE, em_class_prior

    columns = prob_columns(classes)
    prior, adjusted = em_class_prior(votes[columns].to_numpy(np.float64), decision["train_prior"])
    applied = {**decision, "target_prior": prior.tolist(),
               "note": TRANSDUCTIVE_NOTE + "; p_<class> are the probabilities re-weighted to that prior"}
    return votes.assign(**dict(zip(columns, adjusted.T))), applied


def predictions_table(votes: pd.DataFrame, threshold: float | None, classes: list[str],
                      positive_index: int | None) -> pd.DataFrame:
    """predictions.csv: video_id, p_positive, predicted_class (a class name), n_votes, vote_std; more
    than two classes: video_id, p_<class>..., predicted_class (the arg-max), n_votes, vote_std."""
    if len(classes) > 2:
        columns = prob_columns(classes)
        predicted = np.asarray(classes, dtype=object)[votes[columns].to_numpy().argmax(1)]
        return votes.assign(predicted_class=predicted)[["video_id", *columns, "predicted_class", "n_votes", "vote_std"]]
    negative_index = 1 - positive_index
    positive = votes["p_positive"] >= threshold
    predicted = np.where(positive, classes[positive_index], classes[negative_index])
    return votes.assign(predicted_class=predicted)[["video_id", "p_positive", "predicted_class", "n_votes", "vote_std"]]


def submission_table(predictions: pd.DataFrame, positive_name: str | None) -> pd.DataFrame:
    """The challenge layout: video_id, prediction with 1 = the positive class (iMiGUE: win), 0 = the other;
    more than two classes (`positive_name` None): the predicted class's name."""
    if positive_name is None:
        return pd.DataFrame({"video_id": predictions["video_id"], "prediction": predictions["predicted_class"]})
    return pd.DataFrame({"video_id": predictions["video_id"],
                         "prediction": (predictions["predicted_class"] == positive_name).astype(int)})
