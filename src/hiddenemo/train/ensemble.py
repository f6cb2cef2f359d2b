"""An ensemble of finished runs (typically one config trained with several seeds): their
probabilities averaged, the threshold chosen again on the averaged out-of-fold predictions.

Why: on a few hundred labeled videos one run's threshold and predicted class balance move with the
seed (docs/training.md); the mean of several runs is steadier. Nothing here looks at test labels:
the threshold comes from the members' out-of-fold predictions on the labeled training videos, whose
labels come from `Workspace.training_split`, as in training.

The ensemble is a run directory of its own, `WORK/runs/<run>/`, with the files `evaluate` and
`report` read (oof.csv, selection.json, metrics.json, predictions.csv/.json) and `ensemble.json`
naming its members. It has no weights: to predict other videos, predict with each member and
ensemble again. More than two classes: the members' class probabilities are averaged and the
prediction is their arg-max (the members' predictions as they wrote them, so EM-adjusted ones stay so).
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from hiddenemo.data.workspace import Workspace
from hiddenemo.errors import UserError
from hiddenemo.eval.metrics import binary_metrics, multiclass_metrics
from hiddenemo.eval.oof import key_parts
from hiddenemo.train.predict import apply_threshold, predictions_table, prob_columns, submission_table
from hiddenemo.rundir import Run
from hiddenemo.train.run import test_metrics
from hiddenemo.train.selection import choose_threshold

log = logging.getLogger(__name__)


def ensemble_runs(work: Path | Workspace, run: str, members: list[str], submission: bool = False) -> dict:
    """Average the members' out-of-fold and test probabilities; write WORK/runs/RUN/. Returns the metrics."""
    ws = Workspace.of(work)
    work = ws.work
    if len(set(members)) < 2:
        raise UserError(f"an ensemble needs two or more different runs, got {members}")
    if run in members:
        raise UserError(f"the ensemble's --run {run!r} is one of its members; give it a name of its own")
    info = ws.info
    columns = ["p_positive"] if ws.is_binary else prob_columns(info.classes)
    runs = {m: _read_member(work, m, columns) for m in members}
    final = _common_final(runs)
    first = runs[members[0]]

    labeled, _ = ws.training_split()                                     # label 1 = positive
    y = pd.Series(labeled["label"].to_numpy(), index=labeled["video_id"])
    keys = [k for k in first["oof"] if all(k in r["oof"] for r in runs.values())]
    oof = {key: _mean_oof(runs, key, y.index) for key in keys}
    if not ws.is_binary:
        return _ensemble_classes(ws, Run(work, run), members, runs, final, y, oof, submission)
    thresholds = {key: choose_threshold(p.to_numpy(), y.to_numpy(), first["config"].selection, seed=first["config"].seed)
                  for key, p in oof.items()}

    votes = _pooled_votes(runs)
    threshold = apply_threshold(votes["p_positive"].to_numpy(), thresholds[final])
    table = predictions_table(votes, threshold, info.classes, info.positive_index)

    handle = Run(work, run)
    out = handle.dir
    description = {"members": list(members), "final_model": final,
                   "how": f"mean of the {len(members)} runs' probabilities (each run's own voting over its "
                          "models and draws); thresholds chosen again on the mean out-of-fold predictions "
                          f"with the first member's selection.threshold = {first['config'].selection.threshold!r}"}
    _claim(handle, description)
    handle.write_json("ensemble.json", description)
    folds = first["fold"]
    handle.write_table("oof.csv", pd.concat([
        pd.DataFrame({"video_id": p.index, "stage": key_parts(key)[0], "modality": key_parts(key)[1],
                      "fold": folds.reindex(p.index).to_numpy(), "p_positive": p.to_numpy(), "y_true": y.to_numpy()})
        for key, p in oof.items()]))
    selection = {key: {"threshold": thresholds[key], "epochs": [r["selection"][key]["epochs"] for r in runs.values()]}
                 for key in keys}
    selection["final"] = {"model": final, "how": description["how"], "final_model": "run-ensemble"}
    selection["folds"] = {**first["selection"]["folds"], "note": "the fold column of oof.csv is the first "
                          "member's (each member cut its own folds from its seed)"}
    handle.write_json("selection.json", selection)
    handle.write_predictions(table, {"split": "test", "model": final, "threshold": threshold,
                                     "threshold_method": thresholds[final]["method"]})
    if submission:
        handle.write_table("submission.csv", submission_table(table, ws.positive))

    metrics = {"cross_validated": {key: binary_metrics(y.to_numpy(), p.to_numpy(), thresholds[key]["threshold"])
                                   for key, p in oof.items()},
               "members": {m: _member_summary(r, final) for m, r in runs.items()},
               "predicted_positive_fraction": float((table["predicted_class"] == ws.positive).mean()),
               "note": "out-of-fold on the labeled training videos, averaged over the members; the thresholds "
                       "were chosen on the same predictions, so accuracy-type figures are slightly optimistic"}
    handle.write_json("metrics.json", metrics)
    metrics["test"] = test_metrics(ws, run)
    handle.write_json("metrics.json", metrics)
    log.info("wrote %s (%d members, %d videos, threshold %.3f)", out, len(members), len(table), threshold)
    return metrics


def _ensemble_classes(ws: Workspace, handle: Run, members: list[str], runs: dict, final: str, y: pd.Series,
                      oof: dict[str, pd.DataFrame], submission: bool) -> dict:
    """`ensemble_runs` for more than two classes: mean class probabilities, their arg-max."""
    classes, first = ws.classes, runs[members[0]]
    columns = prob_columns(classes)
    decision = {"method": "argmax", "class_prior": "as in the members' predictions",
                "train_prior": (np.bincount(y.to_numpy(), minlength=len(classes)) / len(y)).tolist()}
    description = {"members": list(members), "final_model": final,
                   "how": f"mean of the {len(members)} runs' class probabilities (each run's own voting over its "
                          "models and draws); the prediction is their arg-max"}
    _claim(handle, description)
    handle.write_json("ensemble.json", description)
    folds = first["fold"]
    handle.write_table("oof.csv", pd.concat([
        pd.DataFrame({"video_id": p.index, "stage": key_parts(key)[0], "modality": key_parts(key)[1],
                      "fold": folds.reindex(p.index).to_numpy(), **{c: p[c].to_numpy() for c in columns},
                      "y_true": y.to_numpy()}) for key, p in oof.items()]))
    selection = {key: {"threshold": decision, "epochs": [r["selection"][key]["epochs"] for r in runs.values()]}
                 for key in oof}
    selection["final"] = {"model": final, "how": description["how"], "final_model": "run-ensemble"}
    selection["folds"] = {**first["selection"]["folds"], "note": "the fold column of oof.csv is the first "
                          "member's (each member cut its own folds from its seed)"}
    selection["classes"] = list(classes)
    handle.write_json("selection.json", selection)
    table = predictions_table(_pooled_votes(runs, columns), None, classes, None)
    handle.write_predictions(table, {"split": "test", "model": final, "decision": decision, "threshold_method": "argmax"})
    if submission:
        handle.write_table("submission.csv", submission_table(table, None))
    metrics = {"cross_validated": {key: multiclass_metrics(y.to_numpy(), p.to_numpy()) for key, p in oof.items()},
               "members": list(members),
               "predicted_class_fraction": table["predicted_class"].value_counts(normalize=True).to_dict(),
               "note": "out-of-fold on the labeled training videos, averaged over the members; arg-max"}
    handle.write_json("metrics.json", metrics)
    metrics["test"] = test_metrics(ws, handle.name)
    handle.write_json("metrics.json", metrics)
    log.info("wrote %s (%d members, %d videos, arg-max)", handle.dir, len(members), len(table))
    return metrics


def _read_member(work: Path, run: str, columns: list[str]) -> dict:
    """A finished run's config, selection, out-of-fold predictions per model key (`columns`: p_positive, or
    the p_<class> columns) and test predictions."""
    member = Run(work, run)
    config, selection = member.config, member.selection
    oof, predicted = member.oof(), member.predictions()
    if oof is None:
        raise UserError(f"run {run} has no oof.csv; finish it with `hiddenemo train` --run {run}")
    if predicted is None:
        raise UserError(f"run {run} has no predictions.csv; finish it with `hiddenemo predict` --run {run}")
    groups = {key: g.set_index("video_id")[columns[0] if len(columns) == 1 else columns]
              for key, g in member.oof_by_model().items()}
    fold = oof.drop_duplicates("video_id").set_index("video_id")["fold"]
    return {"config": config, "selection": selection, "oof": groups, "fold": fold,
            "predictions": predicted.table, "threshold": predicted.threshold}


def _common_final(runs: dict[str, dict]) -> str:
    finals = {m: r["selection"]["final"]["model"] for m, r in runs.items()}
    if len(set(finals.values())) > 1:
        raise UserError(f"the runs' final models differ ({finals}): ensemble runs of one configuration "
                        "(several seeds), whose final model is the same")
    return next(iter(finals.values()))


def _mean_oof(runs: dict[str, dict], key: str, labeled_ids: pd.Index) -> pd.Series:
    """Mean out-of-fold probability of `key` per labeled video; every member must cover the same videos."""
    columns = {}
    for m, r in runs.items():
        p = r["oof"][key]
        if set(p.index) != set(labeled_ids):
            raise UserError(f"run {m} was trained on other labeled videos than the workspace has now "
                            f"({len(p)} vs {len(labeled_ids)}): retrain it, or leave it out")
        columns[m] = p.reindex(labeled_ids)
    if isinstance(p, pd.DataFrame):                   # class probabilities: the mean frame
        return sum(columns.values()) / len(columns)
    return pd.DataFrame(columns).mean(axis=1)


def _pooled_votes(runs: dict[str, dict], columns: tuple[str, ...] = ("p_positive",)) -> pd.DataFrame:
    """One row per test video: the mean over all members' votes, their count and their spread (more
    than two classes: per p_<class> column; the spread is the winning class's)."""
    tables = [r["predictions"].set_index("video_id") for r in runs.values()]
    ids = tables[0].index
    for m, t in zip(runs, tables):
        if set(t.index) != set(ids):
            raise UserError(f"run {m} predicted other videos than {next(iter(runs))}: predict every member "
                            "on the same split")
    n = np.stack([t.loc[ids, "n_votes"].to_numpy(float) for t in tables])           # (M, V)
    s = np.stack([t.loc[ids, "vote_std"].to_numpy(float) for t in tables])
    if len(columns) > 1:
        P = np.stack([t.loc[ids, list(columns)].to_numpy(float) for t in tables])    # (M, V, C)
        mean = (n[..., None] * P).sum(0) / n.sum(0)[:, None]
        winner = P[:, np.arange(len(ids)), mean.argmax(1)]                          # (M, V)
        std = np.sqrt((n * (s ** 2 + (winner - mean.max(1)) ** 2)).sum(0) / n.sum(0))
        return pd.DataFrame({"video_id": ids, **dict(zip(columns, mean.T)), "n_votes": n.sum(0).astype(int),
                             "vote_std": std})
    p = np.stack([t.loc[ids, "p_positive"].to_numpy(float) for t in tables])
    mean = (n * p).sum(0) / n.sum(0)
    # The spread of all votes together: within each member's votes plus between the members.
    std = np.sqrt((n * (s ** 2 + (p - mean) ** 2)).sum(0) / n.sum(0))
    return pd.DataFrame({"video_id": ids, "p_positive": mean, "n_votes": n.sum(0).astype(int), "vote_std": std})


def _member_summary(run: dict, final: str) -> dict:
    """What each member alone said: its threshold and predicted positive share on the test videos."""
    threshold = run["threshold"] if run["threshold"] is not None else run["selection"][final]["threshold"]["threshold"]
    return {"threshold": float(threshold), "epochs": run["selection"][final]["epochs"],
            "predicted_positive_fraction": float((run["predictions"]["p_positive"] >= threshold).mean())}


def _claim(handle: Run, description: dict) -> None:
    """Refuse to overwrite a run directory that holds something else (a trained run, another ensemble)."""
    if handle.config_text() is not None:
        raise UserError(f"{handle.dir} is a trained run; give the ensemble another --run name")
    existing = handle.ensemble
    if existing is not None and existing["members"] != description["members"]:
        raise UserError(f"{handle.dir} is an ensemble of other runs ({handle.dir / 'ensemble.json'}); use another "
                        "--run name, or delete that directory to start over")
