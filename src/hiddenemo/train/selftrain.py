"""Confidence-filtered self-training after stage 2 (the paper's limitation 3: its semi-supervised
rounds did not help, "potentially because we failed to filter high-confidence samples").

Round r (1..rounds) repeats the stage-2 cross-validation — each fold again from its own stage-1
encoders — on the labeled videos plus the target videos as that fold's round r-1 model labels them,
keeping only the `keep` most confident share (by the distance of the logit from the decision
threshold) as hard labels of weight `weight`. Each fold has its own chain of models, so no fold's
held-out labels reach its training, not even through pseudo-labels: the out-of-fold figures of every
round stay honest. The one number the folds share is the previous round's threshold (chosen on the
pooled out-of-fold predictions, as every threshold is). The last round is the stage-2 model; every
round's out-of-fold AUROC is kept in selection.json. A killed round resumes like any fit (each fit
has its done.json), and the pseudo-labels of a round are written to `round<r>/pseudo_fold<k>.csv`.
"""
from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import torch

from hiddenemo.data.store import atomic_write_text
from hiddenemo.eval.labelshift import logit
from hiddenemo.train.build import build_model, load_weights
from hiddenemo.train.predict import vote
from hiddenemo.train.stages import Context, cross_validate, stage1_encoders, starting_mix, write_metrics

log = logging.getLogger(__name__)


def confident_labels(p: pd.DataFrame, threshold: float, keep: float, weight: float) -> pd.DataFrame:
    """video_id, target (0/1), weight of the `keep` share of `p` (video_id, p_positive) farthest from
    `threshold` in logit."""
    distance = np.abs(logit(p["p_positive"].to_numpy()) - logit(np.asarray(threshold)))
    n_keep = int(round(keep * len(p)))
    order = np.argsort(-distance, kind="stable")[:n_keep]
    kept = p.iloc[order]
    return pd.DataFrame({"video_id": kept["video_id"].to_numpy(),
                         "target": (kept["p_positive"].to_numpy() >= threshold).astype(np.float32),
                         "weight": np.float32(weight)}).reset_index(drop=True)


def self_train(ctx: Context, labeled: pd.DataFrame, folds: np.ndarray, targets: list[str], first: dict,
               stage1: dict[str, dict]) -> dict:
    """Rounds of self-training after `first` (the stage-2 selection, fits in run/stage2); returns the
    last round's selection with `rounds` (out-of-fold AUROC per round) and `dir`, and what `first`
    recorded beside its model (`n_pseudo`, `pseudo_labels`, `late_mix`)."""
    cfg = ctx.config.self_training
    out = ctx.run_dir / "stage2"
    modalities = ctx.config.model.modalities
    k = int(folds.max()) + 1
    previous, previous_dir = first, ctx.run_dir / first.get("dir", "stage2")
    mix = starting_mix(ctx, stage1, labeled, folds)
    history = {0: round(float(first["cv_metrics"]["auroc"]), 4)}
    for r in range(1, cfg.rounds + 1):
        round_dir = out / f"round{r}"
        pseudo_by_fold = {}
        for fold in range(k):
            path = round_dir / f"pseudo_fold{fold}.csv"
            if not path.exists():
                net = build_model(ctx.config.model, modalities, ctx.dims, fused=True, dropout=0.0)
                load_weights(net, previous_dir / f"fold{fold}" / f"epoch-{previous['epochs']}.safetensors")
                rows = pd.DataFrame({"video_id": targets})
                with torch.inference_mode():
                    p = vote([net], ctx.dataset(modalities, rows, train=False), batch_size=ctx.config.stage2.batch_size)
                labels = confident_labels(p, previous["threshold"]["threshold"], cfg.keep, cfg.weight)
                atomic_write_text(path, labels.to_csv(index=False))
            pseudo_by_fold[fold] = pd.read_csv(path, dtype={"video_id": str})
        sel = cross_validate(ctx, modalities, ctx.config.stage2, labeled, folds, pseudo_by_fold.get, round_dir,
                             fused=True, init_for_fold=lambda fold: stage1_encoders(ctx, stage1, f"fold{fold}",
                                                                                    mix.get(f"fold{fold}")))
        write_metrics(round_dir / "metrics.csv", sel["history"])
        history[r] = round(float(sel["cv_metrics"]["auroc"]), 4)
        log.info("self-training round %d: %d confident target videos per fold; out-of-fold AUROC %.3f (round %d: %.3f)",
                 r, len(pseudo_by_fold[0]), history[r], r - 1, history[r - 1])
        previous, previous_dir = sel, round_dir
    # The first stage 2's record (its pseudo-labels, starting mix) with the last round's model over it.
    return {**first, **previous, "rounds": history, "dir": str(previous_dir.relative_to(ctx.run_dir))}
