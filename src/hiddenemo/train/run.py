"""A run from end to end: `train_run` (both stages, selection, the run files) and `predict_run`.

The honest boundary: `train_run` reads the workspace once and passes on the labeled training rows
(`Workspace.training_split`); the other videos reach training only as ids with pseudo-labels
from a teacher. Test labels are read in one place, `test_metrics`, after everything is chosen and
only to report.
"""
from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from hiddenemo.data.store import atomic_write_text
from hiddenemo.data.workspace import Workspace
from hiddenemo.errors import UserError
from hiddenemo.eval.bootstrap import bootstrap_metrics
from hiddenemo.eval.labelshift import class_weights
from hiddenemo.eval.oof import key_parts
from hiddenemo.models.registry import reads_pooled
from hiddenemo.rundir import Run, class_probs
from hiddenemo.train.build import candidate_encoders, check_encoder_args, encoder_name
from hiddenemo.train.config import TrainConfig
from hiddenemo.train.data import input_dims, pooled_inputs, videos_without_input
from hiddenemo.train.predict import (apply_decision, apply_threshold, predict_videos, predictions_table, prob_columns,
                                     submission_table)
from hiddenemo.train.selection import make_folds
from hiddenemo.train.selftrain import self_train
from hiddenemo.train.stages import Context, chosen, run_stage1, run_stage2
from hiddenemo.train.workers import fit_workers

log = logging.getLogger(__name__)


def train_run(work: Path | Workspace, run: str, config: TrainConfig) -> dict:
    """Train, select and write WORK/runs/RUN/ (config.yaml, oof.csv, selection.json, metrics.json,
    predictions.csv for the test split). Returns the metrics."""
    ws = Workspace.of(work)
    work = ws.work
    run_dir = (handle := Run(work, run)).dir
    if not handle.same_config(config):
        raise UserError(f"{run_dir} was started with a different config ({run_dir / 'config.yaml'}); use another "
                        "--run name, or delete that directory to start over")
    check_encoder_args(config.model)
    _set_threads(config.threads)
    info = ws.info
    if not info.classes:
        raise UserError(f"{work} has no labels: training needs labeled videos. Re-create the workspace with "
                        "labels (`hiddenemo dataset folder --labels labels.csv ...`); extract, teach, embed and "
                        "`apply` with an exported model work without them")
    n_classes = len(info.classes)
    if n_classes > 2 and config.self_training.rounds:
        raise UserError(f"self_training.rounds is built for two classes, and {work} has {n_classes} {info.classes}: "
                        "train with --self_training.rounds 0")
    labeled, others = ws.training_split()             # label: 1 = positive class (two), the class index (more)
    store = ws.store
    pooled = pooled_inputs(work, ws.manifest, config, info.extra.get("event_groups"),
                           {m: candidate_encoders(config.model, m) for m in config.model.modalities})
    configured = {m: encoder_name(config.model, m) for m in config.model.modalities}
    dims = input_dims(store, labeled["video_id"].tolist() + others["video_id"].tolist(), configured, config, pooled)
    _check_class_sizes(labeled, ws)
    ctx = Context(work, run_dir, config, dims, class_weights(labeled["label"], max(n_classes, 2)), pooled,
                  n_classes=max(n_classes, 2))
    folds = make_folds(labeled, config.selection, config.seed)
    _warn_small_folds(folds, config.selection.folds)
    empty = videos_without_input(store, labeled["video_id"].tolist(), config.model.modalities,
                                 config.model.text_encoder)
    if empty:
        log.warning("%d of %d labeled training videos have none of the modalities %s (failed extraction, no "
                    "person found?): they train on no input: %s", len(empty), len(labeled),
                    config.model.modalities, empty[:10])
    # Only now, with inputs that can be trained on, does the run directory take this config and data.
    handle.save_config(config)
    _claim_training_set(run_dir, labeled, folds)
    log.info("%d labeled training videos (%s) in %d folds; modalities %s", len(labeled),
             ", ".join(f"{n} {ws.class_name(c)}" for c, n in sorted(labeled["label"].value_counts().items())),
             folds.max() + 1, config.model.modalities)

    if not (config.stage1_enabled or config.stage2_enabled):
        raise UserError("stage1_enabled and stage2_enabled are both false: there is nothing to train")
    with fit_workers(config) as workers:
        ctx = replace(ctx, workers=workers)
        stage1 = run_stage1(ctx, labeled, folds) if config.stage1_enabled else {}
        selections = {f"stage1/{m}": sel for m, sel in stage1.items()}
        if stage1:
            ctx = chosen(ctx, stage1)
        if config.stage2_enabled:
            pseudo = pseudo_labeled(ws, config, others)
            log.info("stage 2: %d pseudo-labeled videos from teacher %s", len(pseudo), config.pseudo.teacher)
            in_folds = pseudo_by_fold(ws, config, others, labeled, folds) if config.pseudo.in_folds and len(pseudo) else None
            selections["stage2"] = run_stage2(ctx, labeled, folds, pseudo, stage1, in_folds)
            if config.self_training.rounds:
                targets = others.loc[others["split"].isin(config.pseudo.splits), "video_id"].tolist()
                selections["stage2"] = self_train(ctx, labeled, folds, targets, selections["stage2"], stage1)
    final = "stage2" if config.stage2_enabled else max(stage1, key=lambda m: stage1[m]["cv_metrics"]["auroc"])
    final = final if final == "stage2" else f"stage1/{final}"

    _write_oof(handle, labeled, folds, selections, info.classes)
    kept = ("n_pseudo", "encoder", "dir", "candidates", "rounds", "pseudo_labels", "late_mix")
    selection = {key: {"epochs": sel["epochs"], "epoch_metric": sel["epoch_metric"], "threshold": sel["threshold"],
                       **{k: sel[k] for k in kept if k in sel}}
                 for key, sel in selections.items()}
    how = ("the mean of the k fold models at the selected epoch (the models whose out-of-fold predictions "
           "chose the threshold)" if config.selection.final_model == "fold-ensemble" else
           "retrained on all labeled training videos (+ pseudo-labeled ones in stage 2) for the selected epochs")
    selection["final"] = {"model": final, "how": how, "final_model": config.selection.final_model}
    selection["dims"] = ctx.dims
    selection["encoders"] = {m: encoder_name(ctx.config.model, m) for m in config.model.modalities}
    selection["transductive"] = transductive_inputs(ctx, selections.get("stage2", {}).get("n_pseudo", 0))
    selection["folds"] = {"k": int(folds.max()) + 1, "grouped_by_subject": bool(
        config.selection.group_by_subject and labeled["subject_id"].notna().all()), "n_labeled": len(labeled)}
    if n_classes > 2:
        selection["classes"] = list(info.classes)
    handle.write_json("selection.json", selection)

    metrics = {"cross_validated": {key: _with_intervals(sel["cv_metrics"], labeled, sel["oof"])
                                   for key, sel in selections.items()},
               **({"transductive": selection["transductive"]} if selection["transductive"] else {}),
               "note": "out-of-fold on the labeled training videos; the threshold was chosen on the same "
                       "out-of-fold predictions, so accuracy-type figures are slightly optimistic (AUROC is not affected)"
                       if n_classes <= 2 else "out-of-fold on the labeled training videos, predicted class = the arg-max "
                       "(no threshold chosen); AUROC is the mean one-vs-rest AUROC"}
    if "stage2" in selections and stage1:
        metrics["stage2_gain_accuracy"] = _gain(selections, "accuracy")
        metrics["stage2_gain_auroc"] = _gain(selections, "auroc")
    handle.write_json("metrics.json", metrics)

    predict_run(ws, run, split="test")
    metrics["test"] = test_metrics(ws, run)
    handle.write_json("metrics.json", metrics)
    return metrics


def predict_run(work: Path | Workspace, run: str, split: str = "test", submission: bool = False,
                model: str | None = None) -> Path | None:
    """Voting inference with the run's final model on the videos of `split`; writes predictions.csv
    (predictions_<split>.csv for another split) and, with `submission`, submission.csv. `model`
    picks another of the run's models instead (e.g. `stage1/pose`, written as
    predictions_stage1-pose.csv), so each modality's stage-1 model can be compared on the same videos."""
    ws = Workspace.of(work)
    work = ws.work
    handle = Run(work, run)
    config = handle.config
    check_encoder_args(config.model)
    _set_threads(config.threads)
    info = ws.info
    rows = ws.rows(split)[["video_id"]]
    if rows.empty:
        log.warning("no videos in split %r; nothing to predict", split)
        return None
    final = handle.require_finished(model)
    modalities = handle.modalities(final)
    votes = predict_videos(work, ws.manifest, rows["video_id"].tolist(), config, handle.model_config(final), modalities,
                           handle.dims(final), handle.weights(final), fused=final == "stage2",
                           event_groups=info.extra.get("event_groups"), classes=handle.classes)
    if handle.classes:
        votes, decision = apply_decision(votes, handle.threshold(final), handle.classes)
        meta = {"split": split, "model": final, "decision": decision}
        table = predictions_table(votes, None, info.classes, None)
    else:
        threshold = apply_threshold(votes["p_positive"].to_numpy(), handle.threshold(final))
        meta = {"split": split, "model": final, "threshold": threshold}
        table = predictions_table(votes, threshold, info.classes, info.positive_index)
    empty = videos_without_input(ws.store, rows["video_id"].tolist(), modalities, config.model.text_encoder)
    if empty:
        log.warning("%d of %d videos have none of the modalities %s (failed extraction, no person found?): "
                    "their p_positive is the model's answer to no input, not a prediction (`without_input` in "
                    "the predictions' .json): %s", len(empty), len(rows), modalities, empty[:10])
    out = handle.write_predictions(table, {**meta, "threshold_method": handle.threshold(final)["method"],
                                           "without_input": empty}, final if model else None, split)
    if submission:
        handle.write_table("submission.csv", submission_table(table, None if handle.classes else ws.positive))
    log.info("wrote %s (%d videos, %s)", out, len(table),
             f"threshold {meta['threshold']:.3f}" if "threshold" in meta else f"arg-max, class prior {decision['class_prior']}")
    return out


def test_metrics(work: Path | Workspace, run: str) -> dict | None:
    """Metrics of predictions.csv against the test labels, when the manifest has them (report only:
    nothing is chosen from these)."""
    ws = Workspace.of(work)
    predictions = Run(ws.work, run).predictions()
    if predictions is None:
        return None
    truth = ws.truth()
    truth = truth.loc[(truth["split"] == "test") & truth["y"].notna(), ["video_id", "y"]]
    preds = predictions.table.merge(truth, on="video_id")
    if preds.empty:
        return None
    if not ws.is_binary:
        return bootstrap_metrics(preds["y"].astype(int).to_numpy(), class_probs(preds, ws.classes))
    return bootstrap_metrics(preds["y"].astype(int).to_numpy(), preds["p_positive"].to_numpy(), predictions.threshold)


def transductive_inputs(ctx: Context, n_pseudo: int = 0) -> list[str]:
    """What the run's final model learned from the unlabeled target videos (their features and teacher
    verdicts, never their labels)."""
    cfg = ctx.config
    out = [f"{m}: person-relative statistics (minus the mean of the same person's videos in the workspace, "
           "the unlabeled target videos included)" for m in cfg.model.modalities
           if m in ctx.pooled and ctx.pooled[m].transductive and reads_pooled(encoder_name(cfg.model, m))]
    if cfg.stage2_enabled and n_pseudo:
        out.append(f"stage 2: pseudo-labels of {n_pseudo} unlabeled target videos from teacher {cfg.pseudo.teacher}")
    if cfg.stage2_enabled and cfg.self_training.rounds:
        out.append(f"stage 2: {cfg.self_training.rounds} self-training round(s) on the target videos' own predictions")
    return out


def pseudo_labeled(work: Path | Workspace, config: TrainConfig, others: pd.DataFrame,
                   held_out: frozenset[str] = frozenset()) -> pd.DataFrame:
    """video_id, target, weight of the teacher-labeled videos in `pseudo.splits` (never their labels);
    more than two classes: target_0 ... target_<C-1> (the class distribution) instead of target.
    `held_out`: a fold's held-out labeled videos, pseudo-labeled as if they were targets (`pseudo.in_folds`)."""
    ws = Workspace.of(work)
    columns = ["video_id", *(["target"] if ws.is_binary else [f"target_{k}" for k in range(len(ws.classes))]), "weight"]
    if not config.pseudo.teacher:
        return pd.DataFrame(columns=columns)
    from hiddenemo.teacher.policy import pseudo_labels
    table = pseudo_labels(work, config.pseudo.teacher, config.pseudo.policy, as_unlabeled=held_out)
    allowed = set(others.loc[others["split"].isin(config.pseudo.splits), "video_id"]) | set(held_out)
    table = table[table["video_id"].isin(allowed)]
    return table[columns].reset_index(drop=True)


def pseudo_by_fold(work: Path | Workspace, config: TrainConfig, others: pd.DataFrame, labeled: pd.DataFrame,
                   folds: np.ndarray):
    """Stage 2's training rows beside the labeled ones, per fold (`pseudo.in_folds`): the target videos and
    the fold's own held-out videos, all with the teacher's pseudo-labels calibrated on the other folds."""
    by_fold = {fold: pseudo_labeled(work, config, others, frozenset(labeled.loc[folds == fold, "video_id"]))
               for fold in range(int(folds.max()) + 1)}
    return by_fold.get


def _claim_training_set(run_dir: Path, labeled: pd.DataFrame, folds: np.ndarray) -> None:
    """Record which labeled videos, labels and folds the run trains on; refuse to resume it when they
    changed (a relabeled or added video would mix two training sets in one run's folds)."""
    rows = sorted(zip(labeled["video_id"].astype(str), labeled["label"].astype(int).tolist(), folds.astype(int).tolist()))
    fingerprint = hashlib.sha256(json.dumps(rows).encode()).hexdigest()[:16]
    path = run_dir / "training_set.json"
    if path.exists():
        before = json.loads(path.read_text())
        if before["fingerprint"] != fingerprint:
            raise UserError(f"{run_dir} was trained on other labeled videos ({before['n_labeled']} then, {len(rows)} "
                            "now, or changed labels/folds): the workspace's labels changed since. Use another --run "
                            "name, or delete that directory to start over")
        return
    atomic_write_text(path, json.dumps({"n_labeled": len(rows), "fingerprint": fingerprint}))


def _set_threads(threads: int | None) -> None:
    if threads:
        import torch
        torch.set_num_threads(threads)


def _check_class_sizes(labeled: pd.DataFrame, ws: Workspace) -> None:
    """Cross-validation needs two labeled training videos of each class (one to train on while the
    other validates); name the class that falls short and what to do."""
    counts = labeled["label"].value_counts().reindex(range(max(len(ws.classes), 2)), fill_value=0)
    short = {ws.class_name(c): int(n) for c, n in counts.items() if n < 2}
    if short:
        raise UserError(f"cross-validation needs at least 2 labeled training videos of each class, and "
                        f"{', '.join(f'{name!r} has {n}' for name, n in short.items())} (of {len(labeled)} "
                        "labeled): label more videos of that class (rows in the labels CSV, split train)")


def _warn_small_folds(folds: np.ndarray, requested: int) -> None:
    """Tiny folds make every per-fold figure noise, and a class smaller than the folds cuts their
    number: say so, and which `--selection.folds` fits the data."""
    sizes = np.bincount(folds)
    k = len(sizes)
    if sizes.min() > 3 and k == requested:
        return
    fewer = max(2, min(k, len(folds) // 4))
    advice = (f"pass --selection.folds {fewer} to choose that yourself" if fewer < requested else
              "more labeled videos are what would help")
    small = (f"; folds of {sizes.min()}-{sizes.max()} videos give per-fold figures (val AUROC 0.000 or 1.000) "
             "that are noise: judge the run by the pooled out-of-fold figures and their intervals") if sizes.min() <= 3 else ""
    log.warning("%d labeled videos in %d folds (selection.folds = %d)%s; %s", len(folds), k, requested, small, advice)


def _with_intervals(cv_metrics: dict, labeled: pd.DataFrame, oof: np.ndarray) -> dict:
    """The out-of-fold metrics with bootstrap intervals (over subjects when every video has one), so
    that small data shows how little it can tell."""
    subjects = labeled["subject_id"]
    groups = subjects.astype(str).to_numpy() if subjects.notna().all() else None
    return bootstrap_metrics(labeled["label"].to_numpy(), oof, cv_metrics.get("threshold", 0.5), groups)


def _gain(selections: dict, metric: str) -> dict:
    stage1 = {k: s["cv_metrics"][metric] for k, s in selections.items() if k.startswith("stage1/")}
    best = max(stage1, key=stage1.get)
    return {"stage2": selections["stage2"]["cv_metrics"][metric], "best_stage1": best,
            "best_stage1_value": stage1[best], "gain": selections["stage2"]["cv_metrics"][metric] - stage1[best]}


def _write_oof(handle: Run, labeled: pd.DataFrame, folds: np.ndarray, selections: dict, classes: list[str]) -> None:
    parts = []
    for key, sel in selections.items():
        stage, modality = key_parts(key)
        probs = ({"p_positive": sel["oof"]} if np.ndim(sel["oof"]) == 1 else
                 dict(zip(prob_columns(classes), np.asarray(sel["oof"]).T)))
        parts.append(pd.DataFrame({"video_id": labeled["video_id"], "stage": stage, "modality": modality,
                                   "fold": folds, **probs, "y_true": labeled["label"]}))
    handle.write_table("oof.csv", pd.concat(parts))
