"""What `hiddenemo evaluate` computes: a run's figures with their uncertainty, beside its baselines.

For a run `WORK/runs/RUN/` (oof.csv, selection.json, predictions.csv per docs/contracts.md) and/or
baseline modalities, it gives
- cross-validated figures on the labeled training videos (out-of-fold), each with a 95 % bootstrap
  interval resampling subjects when they are known;
- the target split's figures when its labels are known; when they are not (MiGA test), it says so
  and reports what needs no labels: the predicted positive fraction and the EM prior estimate
  (transductive, labelled so);
- the majority and logistic baselines on the same folds, and whether the model beats them (paired
  bootstrap + McNemar on the same videos).
A task of more than two classes gets the same figures at the arg-max (AUROC: mean one-vs-rest), with
per-class recall and the confusion matrix, the class prior estimated by EM on the target set
(transductive), and the majority and multinomial logistic baselines on the same folds; the paired
comparison with a baseline is two-class only.
Truth always comes from the manifest, never from a run's files.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from hiddenemo.data.workspace import Workspace
from hiddenemo.errors import UserError
from hiddenemo.eval.baselines import baseline_predictions
from hiddenemo.eval.bootstrap import LEVEL, N_BOOT, bootstrap_metrics
from hiddenemo.eval.compare import compare_runs
from hiddenemo.eval.labelshift import (TRANSDUCTIVE_NOTE, balanced_threshold, em_class_prior, em_prior,
                                       em_prior_interval, platt_calibrate)
from hiddenemo.eval.metrics import METRICS, binary_metrics
from hiddenemo.eval.oof import FUSED, by_model, key_parts
from hiddenemo.rundir import Run, class_probs

log = logging.getLogger(__name__)


def evaluate_predictions(df: pd.DataFrame, threshold: float = 0.5, n_boot: int = N_BOOT, level: float = LEVEL,
                         seed: int = 0, classes: list[str] | None = None) -> dict:
    """Figures for one table of predictions.

    Args:
        df: Columns video_id, p_positive, label (true 0/1, <NA> = unknown) and optionally subject_id
            (the bootstrap then resamples subjects).
        threshold: Predict positive when p_positive >= threshold.
        n_boot: Bootstrap replicates.
        level: Confidence level.
        seed: Seed of the resampling.
        classes: A task of more than two classes: its classes (df has p_<class> columns, label is the
            class index, the prediction is the arg-max; `threshold` is not used).

    Returns:
        {n_videos, n_labeled, threshold, labels ("known" / "unknown" / "partly known"),
        predicted_positive_fraction, metrics (None without labels: `bootstrap_metrics` output with
        `ci`), per_subject (list of {subject_id, n, n_positive, n_correct, accuracy, mean_p})}.
    """
    if classes:
        return _evaluate_classes(df, classes, n_boot, level, seed)
    p_all = df["p_positive"].to_numpy(float)
    out = {"n_videos": len(df), "threshold": float(threshold),
           "predicted_positive_fraction": float((p_all >= threshold).mean()) if len(df) else float("nan")}
    labeled = df[df["label"].notna()]
    out["n_labeled"] = len(labeled)
    out["labels"] = "unknown" if labeled.empty else "known" if len(labeled) == len(df) else "partly known"
    if labeled.empty:
        out.update(metrics=None, per_subject=[])
        return out
    y, p = labeled["label"].astype(int).to_numpy(), labeled["p_positive"].to_numpy(float)
    subjects = labeled["subject_id"] if "subject_id" in labeled else pd.Series([pd.NA] * len(labeled))
    groups = subjects.astype(str).to_numpy() if subjects.notna().all() else None
    out["metrics"] = bootstrap_metrics(y, p, threshold, groups, n_boot, level, seed)
    out["per_subject"] = _per_subject(labeled.assign(correct=(p >= threshold) == y)) if groups is not None else []
    return out


def _evaluate_classes(df: pd.DataFrame, classes: list[str], n_boot: int, level: float, seed: int) -> dict:
    """`evaluate_predictions` for more than two classes: arg-max of the p_<class> columns."""
    P = class_probs(df, classes)
    out = {"n_videos": len(df), "threshold": "arg-max", "classes": list(classes),
           "predicted_class_fraction": (np.bincount(P.argmax(1), minlength=len(classes)) / max(len(df), 1)).tolist()}
    labeled = df["label"].notna().to_numpy()
    out["n_labeled"] = int(labeled.sum())
    out["labels"] = "unknown" if not labeled.any() else "known" if labeled.all() else "partly known"
    out["per_subject"] = []
    if not labeled.any():
        out["metrics"] = None
        return out
    rows = df[labeled]
    subjects = rows["subject_id"] if "subject_id" in rows else pd.Series([pd.NA] * len(rows))
    groups = subjects.astype(str).to_numpy() if subjects.notna().all() else None
    out["metrics"] = bootstrap_metrics(rows["label"].astype(int).to_numpy(), P[labeled], groups=groups,
                                       n_boot=n_boot, level=level, seed=seed)
    return out


def class_shift_summary(P_target: np.ndarray, train_prior: list[float], oof_P: np.ndarray | None = None,
                        y_target: np.ndarray | None = None) -> dict:
    """More than two classes: the target set's class prior estimated by EM from its predicted class
    probabilities (transductive), the class fractions it implies, and EM's label-free self-check on
    the out-of-fold predictions (whose prior is the training prior)."""
    prior, adjusted = em_class_prior(P_target, train_prior)
    out = {"transductive": True, "note": TRANSDUCTIVE_NOTE, "n_target": len(P_target), "train_prior": list(train_prior),
           "em_prior": prior.tolist(), "predicted_fraction": {
               "at_argmax": (np.bincount(P_target.argmax(1), minlength=len(prior)) / len(P_target)).tolist(),
               "em_adjusted_argmax": (np.bincount(adjusted.argmax(1), minlength=len(prior)) / len(P_target)).tolist()}}
    if oof_P is not None and len(oof_P):
        out["em_prior_on_oof"] = em_class_prior(oof_P, train_prior)[0].tolist()
        drift = float(np.abs(np.subtract(out["em_prior_on_oof"], train_prior)).max())
        out["reliable"] = drift < 0.05
        if not out["reliable"]:
            out["warning"] = (f"EM is unreliable here: on the out-of-fold predictions, whose prior is known, it drifts "
                              f"by up to {drift:.3f} from the training prior")
    if y_target is not None:
        out["check_with_target_labels"] = {
            "true_prior": (np.bincount(y_target, minlength=len(prior)) / len(y_target)).tolist(),
            "accuracy_at_argmax": float((P_target.argmax(1) == y_target).mean()),
            "accuracy_em_adjusted_argmax": float((adjusted.argmax(1) == y_target).mean())}
    return out


def label_shift_summary(p_target: np.ndarray, train_prior: float, threshold: float,
                        oof_p: np.ndarray | None = None, oof_y: np.ndarray | None = None,
                        y_target: np.ndarray | None = None) -> dict:
    """EM prior estimate for unlabeled target probabilities and the positive fractions it implies.

    With out-of-fold predictions (`oof_p`, `oof_y`), the target probabilities are first Platt-calibrated
    on them, since EM assumes calibrated posteriors. With target labels (`y_target`, only for checking
    the method), it also gives the accuracy before and after re-weighting."""
    p = np.asarray(p_target, dtype=float)
    calibrated = oof_p is not None and len(np.unique(oof_y)) == 2
    p_cal = platt_calibrate(oof_p, oof_y, p) if calibrated else p
    prior, adjusted = em_prior(p_cal, train_prior)
    out = {"transductive": True, "note": TRANSDUCTIVE_NOTE, "n_target": len(p), "train_prior": train_prior,
           "calibrated_on_oof": calibrated, "em_prior": prior, "em_prior_interval": em_prior_interval(p_cal, train_prior),
           "em_prior_uncalibrated": em_prior(p, train_prior)[0] if calibrated else prior,
           "positive_fraction": {
               "at_run_threshold": float((p >= threshold).mean()),
               "at_0.5": float((p >= 0.5).mean()),
               "at_balanced_threshold": float((p_cal >= balanced_threshold(train_prior)).mean()),
               "em_adjusted_at_0.5": float((adjusted >= 0.5).mean())}}
    if calibrated:
        # Label-free self-check: on the out-of-fold predictions the true prior IS the training prior,
        # so EM should return it. A weak or miscalibrated model's flat likelihood lets EM drift.
        out["em_prior_on_oof"] = em_prior(platt_calibrate(oof_p, oof_y, oof_p), train_prior)[0]
        out["em_prior_on_oof_uncalibrated"] = em_prior(oof_p, train_prior)[0]
        low, high = out["em_prior_interval"]
        out["reliable"] = bool(abs(out["em_prior_on_oof"] - train_prior) < 0.05
                               and abs(out["em_prior_on_oof_uncalibrated"] - train_prior) < 0.1 and high - low < 0.3)
        if not out["reliable"]:
            out["warning"] = ("EM is unreliable here: on the out-of-fold predictions, whose prior is known "
                              f"({train_prior:.3f}), it returns {out['em_prior_on_oof']:.3f} (calibrated) / "
                              f"{out['em_prior_on_oof_uncalibrated']:.3f} (raw), or its interval is wide; "
                              "the classifier separates the classes too weakly to estimate a prior")
    if y_target is not None:
        out["check_with_target_labels"] = {
            "true_prior": float(np.mean(y_target)),
            "accuracy_at_run_threshold": binary_metrics(y_target, p, threshold)["accuracy"],
            "accuracy_em_adjusted_at_0.5": binary_metrics(y_target, adjusted, 0.5)["accuracy"]}
    return out


def evaluate_run(work: Path | Workspace, run: str, split: str = "test", baselines: list[str] | None = None,
                 threshold: float | None = None, n_boot: int = N_BOOT, level: float = LEVEL, seed: int = 0,
                 text_encoder: str | None = None) -> dict:
    """Evaluate WORK/runs/RUN (if it exists) and the baselines; see the module docstring.

    `baselines=None` means the modalities the run trained on (none when there is no run); a run
    that does not exist is fine when baseline modalities are given (baselines only)."""
    ws = Workspace.of(work)
    work = ws.work
    if split == "train":
        # The train split's honest figures are the out-of-fold ones, reported in every evaluation;
        # scoring its videos as a target would add the final models' in-sample predictions.
        raise UserError("--split train is the training split: its cross-validated (out-of-fold) figures are "
                        "already in every evaluation. --split names a target split (test, val, ...)")
    handle = Run(work, run)
    truth = ws.truth()
    labeled_train = truth[(truth["split"] == "train") & truth["y"].notna()]
    if labeled_train.empty:
        raise UserError(f"{work}: no labeled videos in the train split; nothing can be evaluated")
    classes = None if ws.is_binary else ws.classes
    train_y = labeled_train["y"].astype(int).to_numpy()
    train_prior = (np.bincount(train_y, minlength=len(classes)) / len(train_y)).tolist() if classes else float(train_y.mean())
    target = truth[truth["split"] == split]
    result = {"work": str(work), "run": run, "split": split, "level": level, "n_boot": n_boot,
              "train_prior": train_prior, "n_target": len(target),
              "target_labels": "unknown" if target["y"].isna().all() else "known",
              "notes": []}
    if result["target_labels"] == "unknown" and len(target):
        result["notes"].append(f"the labels of the {len(target)} `{split}` videos are unknown: figures with "
                               "labels are cross-validated on the labeled training videos; on the target "
                               "split only label-free quantities are reported")
    oof, predicted = handle.oof(), handle.predictions()
    if oof is None and predicted is None and not baselines:
        raise UserError(f"{handle.dir} has no oof.csv or predictions.csv: train the run first, or evaluate "
                        "baselines only with --baselines [events,text,...]")
    args = dict(n_boot=n_boot, level=level, seed=seed, classes=classes)
    if classes:
        result["classes"] = classes
    folds = None
    result["notes"] += [f"transductive input — {what} (label-free)" for what in handle.transductive]
    model = oof is not None or predicted is not None
    if model:
        result["model"] = _evaluate_model(handle, oof, predicted, truth, split, threshold, train_prior, args)
        if oof is not None and not oof.empty:
            first = oof[oof["stage"] == oof["stage"].iloc[0]]
            first = first[first["modality"] == first["modality"].iloc[0]]
            folds = first.set_index("video_id")["fold"]
        if baselines is None:
            baselines = sorted(set(oof["modality"]) - {FUSED}) if oof is not None else []
    result["baselines"], logistic_oof = {}, {}
    for modality in baselines or []:
        result["baselines"][modality], predictions = _evaluate_baselines(
            work, modality, folds, split, train_prior, seed, text_encoder, args)
        logistic_oof[modality] = predictions[(predictions["baseline"] == "logistic") & (predictions["split"] == "train")]
    if classes and logistic_oof:
        result["notes"].append("the paired comparison with the logistic baseline (bootstrap + McNemar) is built for "
                               "two classes: compare the intervals of the rows above")
    elif model and oof is not None and logistic_oof:
        result["versus_baseline"] = _versus_baselines(oof, truth, result, logistic_oof, args)
        result["notes"] += [v["verdict"] for v in result["versus_baseline"].values()]
    return result


def save_evaluation(result: dict, handle: Run) -> tuple[Path, Path]:
    """WORK/runs/RUN/evaluation.json and evaluation.md."""
    return handle.write_evaluation(result, render_markdown(result), default=_jsonable)


def render_markdown(result: dict) -> str:
    """The evaluation as a short markdown page: one row per (model or baseline, threshold)."""
    pct = int(round(100 * result["level"]))
    prior = result["train_prior"]
    prior = f"{prior:.3f}" if isinstance(prior, float) else "[" + ", ".join(f"{x:.3f}" for x in prior) + "]"
    lines = [f"# Evaluation of `{result['run']}` ({result['work']})", "",
             f"Cross-validated = out-of-fold on the labeled training videos (training prior "
             f"{prior}). Intervals: {pct} % bootstrap, {result['n_boot']} resamples.", ""]
    lines += [f"- {note}" for note in result["notes"]] + [""]
    header = ("| what | on | threshold | n | accuracy | balanced accuracy | macro-F1 | AUROC |\n"
              "| --- | --- | --- | --- | --- | --- | --- | --- |")
    rows = []
    model = result.get("model")
    if model:
        for key, ev in model["cross_validated"].items():
            rows.append(_row(f"model {key}", "cross-validated", ev))
        if model["target"]["metrics"]:
            rows.append(_row(f"model {model['final']}", result["split"], model["target"]))
    for modality, bl in result["baselines"].items():
        for name, ev in bl.items():
            if isinstance(ev, dict) and "cross_validated" in ev:
                for tag, e in ev["cross_validated"].items():
                    rows.append(_row(f"{name} ({modality})", f"cross-validated, {tag}", e))
                if ev["target"]["metrics"]:
                    rows.append(_row(f"{name} ({modality})", result["split"], ev["target"]))
    lines += [header, *rows, ""]
    lines += _class_sections(result)
    shifts = ([("model " + model["final"], model["label_shift"])] if model and model.get("label_shift") else [])
    shifts = [] if "classes" in result else shifts
    shifts += [(f"logistic ({m})", bl["logistic"]["label_shift"]) for m, bl in result["baselines"].items()
               if bl["logistic"].get("label_shift")]
    if shifts:
        lines += [f"## Label shift on `{result['split']}` (transductive)", "", TRANSDUCTIVE_NOTE + ".", "",
                  "| predictions | train prior | EM prior (calibrated) [95 % CI] | EM prior (raw) | positive at run threshold "
                  "| at 0.5 | at balanced threshold | EM-adjusted at 0.5 | EM on out-of-fold (should = train prior) |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        for name, s in shifts:
            f = s["positive_fraction"]
            lines.append(f"| {name} | {s['train_prior']:.3f} | {s['em_prior']:.3f} [{s['em_prior_interval'][0]:.3f}, "
                         f"{s['em_prior_interval'][1]:.3f}] | {s['em_prior_uncalibrated']:.3f} "
                         f"| {f['at_run_threshold']:.3f} | {f['at_0.5']:.3f} | {f['at_balanced_threshold']:.3f} "
                         f"| {f['em_adjusted_at_0.5']:.3f} | {_fmt(s.get('em_prior_on_oof'))} / "
                         f"{_fmt(s.get('em_prior_on_oof_uncalibrated'))} |")
        lines += [""] + [f"- {name}: {s['warning']}" for name, s in shifts if s.get("warning")] + [""]
    if result.get("versus_baseline"):
        lines += ["## Model versus logistic baseline (paired, same videos)", "",
                  "| model | baseline | AUROC difference [CI] | p | accuracy difference [CI] | p | McNemar p |",
                  "| --- | --- | --- | --- | --- | --- | --- |"]
        for key, v in result["versus_baseline"].items():
            m, a = v["comparison"]["metrics"]["auroc"], v["comparison"]["metrics"]["accuracy"]
            lines.append(f"| {key} | {v['baseline']} | {m['difference']:+.3f} [{m['low']:+.3f}, {m['high']:+.3f}] "
                         f"| {m['p_value']:.3f} | {a['difference']:+.3f} [{a['low']:+.3f}, {a['high']:+.3f}] "
                         f"| {a['p_value']:.3f} | {v['comparison']['mcnemar']['p_value']:.3f} |")
        lines.append("")
    if model and model["cross_validated"]:
        key = model["final"] if model["final"] in model["cross_validated"] else next(iter(model["cross_validated"]))
        per_subject = model["cross_validated"][key]["per_subject"]
        if per_subject:
            lines += [f"## Per subject, model {key}, cross-validated", "",
                      "| subject | videos | positive | correct | accuracy | mean p |", "| --- | --- | --- | --- | --- | --- |"]
            lines += [f"| {s['subject_id']} | {s['n']} | {s['n_positive']} | {s['n_correct']} | {s['accuracy']:.2f} "
                      f"| {s['mean_p']:.2f} |" for s in per_subject]
    return "\n".join(lines) + "\n"


def _class_sections(result: dict) -> list[str]:
    """More than two classes: the final model's per-class recall and confusion matrix, and the EM class prior."""
    model = result.get("model") or {}
    if "classes" not in result or not model:
        return []
    classes, lines = result["classes"], []
    for on, ev in [("cross-validated", model["cross_validated"].get(model["final"])), (result["split"], model["target"])]:
        if not ev or not ev.get("metrics"):
            continue
        m = ev["metrics"]
        lines += [f"## Model {model['final']}, {on}: per class", "",
                  "| truth \\ predicted | " + " | ".join(classes) + " | recall [CI] | AUROC (one vs rest) |",
                  "| --- |" + " --- |" * (len(classes) + 2)]
        for k, c in enumerate(classes):
            low, high = m["per_class_recall_ci"][k]
            lines.append(f"| {c} | " + " | ".join(str(x) for x in m["confusion"][k])
                         + f" | {m['per_class_recall'][k]:.3f} [{low:.3f}, {high:.3f}] | {m['per_class_auroc'][k]:.3f} |")
        lines.append("")
    shift = model.get("label_shift")
    if shift:
        lines += [f"## Class prior on `{result['split']}` (transductive)", "", TRANSDUCTIVE_NOTE + ".", "",
                  "| | " + " | ".join(classes) + " |", "| --- |" + " --- |" * len(classes),
                  "| train prior | " + " | ".join(f"{x:.3f}" for x in shift["train_prior"]) + " |",
                  "| EM prior | " + " | ".join(f"{x:.3f}" for x in shift["em_prior"]) + " |",
                  "| predicted (arg-max) | " + " | ".join(f"{x:.3f}" for x in shift["predicted_fraction"]["at_argmax"]) + " |"]
        if "em_prior_on_oof" in shift:
            lines.append("| EM on out-of-fold (should = train prior) | "
                         + " | ".join(f"{x:.3f}" for x in shift["em_prior_on_oof"]) + " |")
        lines += [""] + ([f"- {shift['warning']}", ""] if shift.get("warning") else [])
    return lines


def _fmt(x) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def _row(what: str, on: str, ev: dict) -> str:
    m = ev["metrics"]
    cells = [f"{m['ci'][k]['estimate']:.3f} [{m['ci'][k]['low']:.3f}, {m['ci'][k]['high']:.3f}]"
             if np.isfinite(m["ci"][k]["estimate"]) else "n/a" for k in METRICS]
    cut = ev["threshold"] if isinstance(ev["threshold"], str) else f"{ev['threshold']:.3f}"
    return f"| {what} | {on} | {cut} | {m['n']} | " + " | ".join(cells) + " |"


def _chosen_threshold(handle: Run, key: str, override: float | None) -> float:
    """Evaluation scores what selection chose (not a quantile cut computed on the target videos)."""
    return float(override) if override is not None else handle.chosen_threshold(key)


def _with_truth(df: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame:
    """Predictions joined with the manifest's true labels (label = 0/1 or <NA>) and subjects."""
    joined = df.drop(columns=[c for c in ("label", "subject_id") if c in df]).merge(
        truth[["video_id", "y", "subject_id"]], on="video_id", how="left")
    unknown = joined["video_id"][joined["y"].isna() & ~joined["video_id"].isin(truth["video_id"])]
    if len(unknown):
        raise UserError(f"predictions name videos the manifest does not know, e.g. {unknown.tolist()[:5]}: "
                        "was the run made on another workspace?")
    return joined.rename(columns={"y": "label"})


def _evaluate_model(handle: Run, oof, predicted, truth, split, threshold, train_prior, args) -> dict:
    final = handle.selection_or_empty.get("final", {}).get("model", "final")
    out = {"final": final, "cross_validated": {}}
    for key, group in (by_model(oof).items() if oof is not None else []):
        out["cross_validated"][key] = evaluate_predictions(_with_truth(group, truth),
                                                           _chosen_threshold(handle, key, threshold), **args)
    if predicted is None:
        out["target"] = {"metrics": None, "note": "no predictions.csv"}
        return out
    preds = _with_truth(predicted.table, truth)
    preds = preds[preds["video_id"].isin(truth.loc[truth["split"] == split, "video_id"])]
    cut = _chosen_threshold(handle, final, threshold)
    out["target"] = evaluate_predictions(preds, cut, **args)
    if len(preds) and args["classes"]:
        if "decision" in predicted.meta:
            out["target"]["decision"] = predicted.meta["decision"]
        final_rows = by_model(oof).get(final) if oof is not None else None
        out["label_shift"] = class_shift_summary(
            class_probs(preds, args["classes"]), train_prior,
            None if final_rows is None else class_probs(final_rows, args["classes"]),
            preds["label"].astype(int).to_numpy() if preds["label"].notna().all() else None)
    elif len(preds):
        final_rows = by_model(oof).get(final) if oof is not None else None
        final_oof = None if final_rows is None else _with_truth(final_rows, truth)
        out["label_shift"] = label_shift_summary(
            preds["p_positive"].to_numpy(float), train_prior, cut,
            None if final_oof is None or final_oof.empty else final_oof["p_positive"].to_numpy(float),
            None if final_oof is None or final_oof.empty else final_oof["label"].astype(int).to_numpy(),
            preds["label"].astype(int).to_numpy() if preds["label"].notna().all() else None)
    return out


def _evaluate_baselines(work, modality, folds, split, train_prior, seed, text_encoder, args) -> tuple[dict, pd.DataFrame]:
    log.info("baselines for %s", modality)
    df = baseline_predictions(work, modality, folds=folds, seed=seed, target_split=split, text_encoder=text_encoder)
    out = {"C": {str(k): v for k, v in df.attrs["C"].items()}, "videos_without_array": df.attrs["missing"]}
    if args["classes"]:
        for name in ("majority", "logistic"):
            rows = df[df["baseline"] == name]
            out[name] = {"cross_validated": {"arg-max": evaluate_predictions(rows[rows["split"] == "train"], **args)},
                         "target": evaluate_predictions(rows[rows["split"] == split], **args)}
        return out, df
    cut = balanced_threshold(train_prior)
    for name in ("majority", "logistic"):
        rows = df[df["baseline"] == name]
        oof, target = rows[rows["split"] == "train"], rows[rows["split"] == split]
        entry = {"cross_validated": {"at 0.5": evaluate_predictions(oof, 0.5, **args)}}
        if name == "logistic":
            entry["cross_validated"]["balanced threshold"] = evaluate_predictions(oof, cut, **args)
        entry["target"] = evaluate_predictions(target, cut if name == "logistic" else 0.5, **args)
        if name == "logistic" and len(target):
            entry["label_shift"] = label_shift_summary(
                target["p_positive"].to_numpy(float), train_prior, cut, oof["p_positive"].to_numpy(float),
                oof["label"].astype(int).to_numpy(),
                target["label"].astype(int).to_numpy() if target["label"].notna().all() else None)
        out[name] = entry
    return out, df


def _versus_baselines(oof, truth, result, logistic, args) -> dict:
    """Each model row against the logistic baseline of its modality (the fused model: the best one); a
    single-modality model whose baseline was not asked for (--baselines) is not compared."""
    model = result["model"]
    auroc = {m: result["baselines"][m]["logistic"]["cross_validated"]["at 0.5"]["metrics"]["auroc"] for m in logistic}
    best = max(auroc, key=lambda m: np.nan_to_num(auroc[m], nan=-1))
    out = {}
    for key, group in by_model(oof).items():
        _, modality = key_parts(key)
        if modality != FUSED and modality not in logistic:
            continue
        base, whose = (best, "the best logistic baseline") if modality == FUSED else (modality, "its logistic baseline")
        threshold = model["cross_validated"][key]["threshold"]
        cmp = compare_runs(_with_truth(group, truth), logistic[base], threshold, balanced_threshold(result["train_prior"]),
                           alpha=1 - args["level"], n_boot=args["n_boot"], seed=args["seed"])
        d = cmp["metrics"]["auroc"]
        beats = d["difference"] > 0
        verdict = (f"{key} {'beats' if beats else 'does NOT beat'} {whose} ({base}) on cross-validated "
                   f"AUROC: {d['a']:.3f} vs {d['b']:.3f} (difference {d['difference']:+.3f}, "
                   f"{'significant' if d['significant'] else 'not significant'} at {1 - args['level']:.2f}, p = {d['p_value']:.3f})")
        out[key] = {"baseline": f"logistic/{base}", "beats": beats, "comparison": cmp, "verdict": verdict}
    return out


def _per_subject(df: pd.DataFrame) -> list[dict]:
    grouped = df.groupby(df["subject_id"].astype(str))
    table = pd.DataFrame({"n": grouped.size(), "n_positive": grouped["label"].sum().astype(int),
                          "n_correct": grouped["correct"].sum().astype(int), "mean_p": grouped["p_positive"].mean()})
    table["accuracy"] = table["n_correct"] / table["n"]
    return [{"subject_id": sid, **{k: (int(v) if k.startswith("n") else float(v)) for k, v in row.items()}}
            for sid, row in table.sort_values(["accuracy", "n"]).iterrows()]


def _jsonable(value):
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    raise TypeError(f"cannot write {type(value).__name__} to JSON")
