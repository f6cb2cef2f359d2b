"""From a teacher's verdicts to training targets: the pseudo-label policy, and how good the teacher
is on the videos whose labels we know (`hiddenemo teach --report`)."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from hiddenemo.data.workspace import Workspace
from hiddenemo.teacher.config import PseudoLabelPolicy
from hiddenemo.teacher.store import read_all, read_verdicts
from hiddenemo.words import count

log = logging.getLogger(__name__)


def pseudo_labels(work: str | Path | Workspace, teacher_id: str, policy: PseudoLabelPolicy,
                  as_unlabeled: frozenset[str] = frozenset()) -> pd.DataFrame:
    """`[video_id, target, weight]` for the unlabeled videos the policy keeps (failed verdicts never count);
    more than two classes: `[video_id, target_0 ... target_<C-1>, weight]` (`apply_class_policy`).
    `as_unlabeled`: labeled videos treated as unlabeled — pseudo-labeled too, and left out of the
    calibration (a cross-validation fold's held-out videos, `pseudo.in_folds`)."""
    ws = Workspace.of(work)
    manifest = ws.manifest
    unlabeled = set(manifest.loc[manifest["label"].isna(), "video_id"]) | set(as_unlabeled)
    verdicts = read_verdicts(ws.work, teacher_id)
    if not verdicts:
        others = sorted(p.stem for p in (Path(ws.work) / "teacher").glob("*.jsonl") if p.stem != teacher_id)
        log.warning("no pseudo-labels: teacher %s has no verdicts in %s/teacher/%s; choose a teacher with "
                    "--pseudo.teacher NAME (run `hiddenemo teach --teacher NAME` first), or --pseudo.teacher null "
                    "to say stage 2 learns from labeled videos only", teacher_id, ws.work,
                    f" (teachers there: {', '.join(others)})" if others else "")
    if not ws.is_binary:
        answers = {vid: d for vid, v in sorted(verdicts.items())
                   if vid in unlabeled and (d := class_distribution(v, ws.classes)) is not None}
        return apply_class_policy(answers, policy, len(ws.classes))
    answers = {vid: v.p_positive for vid, v in sorted(verdicts.items()) if vid in unlabeled and v.p_positive is not None}
    if not answers and any(vid in unlabeled for vid in verdicts):
        # An imported teacher of texts alone: its verdicts feed `embed` only.
        log.info("teacher %s gave texts but no p_positive for the unlabeled videos: no pseudo-labels", teacher_id)
    calibration = training_answers(ws, verdicts, exclude=as_unlabeled) if policy.calibrate else None
    return apply_policy(answers, policy, calibration)


def apply_policy(answers: dict[str, float], policy: PseudoLabelPolicy,
                 calibration: tuple[np.ndarray, np.ndarray] | None = None) -> pd.DataFrame:
    """`[video_id, target, weight]` from a teacher's p_positive per video. `calibration`: (p, y) of the
    teacher's answers on labeled videos, fitted when `policy.calibrate` (the caller decides which
    labeled videos may be used: the training ones, or in the teacher-noise study only its source part)."""
    rows = [(vid, p) for vid, p in answers.items() if max(p, 1 - p) >= policy.min_confidence]
    df = pd.DataFrame(rows, columns=["video_id", "p"])
    if policy.calibrate and len(df):
        df["p"] = platt(calibration, df["p"].to_numpy())
    threshold = float(np.mean(calibration[1])) if policy.balanced else policy.threshold
    positive = (df["p"] >= threshold).to_numpy()
    df["target"] = positive.astype(float) if policy.mode == "hard" else df["p"].astype(float)
    weight = np.full(len(df), float(policy.weight))
    if policy.class_balance and len(df):
        n_pos, n_neg = positive.sum(), (~positive).sum()
        if n_pos and n_neg:
            weight = np.where(positive, len(df) / (2 * n_pos), len(df) / (2 * n_neg)) * policy.weight
    df["weight"] = weight
    return df[["video_id", "target", "weight"]].reset_index(drop=True)


def class_distribution(verdict, classes: list[str]) -> np.ndarray | None:
    """(C,) the teacher's class probabilities for a task of more than two classes: its `probs` (class
    name -> probability, e.g. an imported teacher's p_<class> columns), else its `label` as a certain
    answer; None when it gave neither (a teacher of texts alone)."""
    probs = getattr(verdict, "probs", None)
    if probs:
        return np.array([float(probs.get(c, 0.0)) for c in classes])
    if verdict.label in classes:
        return np.eye(len(classes))[classes.index(verdict.label)]
    return None


def apply_class_policy(answers: dict[str, np.ndarray], policy: PseudoLabelPolicy, n_classes: int) -> pd.DataFrame:
    """`[video_id, target_0 ... target_<C-1>, weight]` from a teacher's class distribution per video:
    kept when its largest probability reaches `min_confidence`; hard = one-hot of the arg-max, soft =
    the distribution; `class_balance` gives each predicted class the same total weight. (`threshold`
    is a two-class notion and `calibrate` is built for two classes.)"""
    if policy.calibrate:
        raise ValueError("pseudo.policy.calibrate is built for two classes (Platt scaling of p_positive)")
    kept = {vid: d for vid, d in answers.items() if d.max() >= policy.min_confidence}
    dist = np.array(list(kept.values())).reshape(len(kept), n_classes)
    winner = dist.argmax(1) if len(dist) else np.zeros(0, int)
    targets = np.eye(n_classes)[winner] if policy.mode == "hard" else dist
    weight = np.full(len(kept), float(policy.weight))
    if policy.class_balance and len(kept):
        counts = np.bincount(winner, minlength=n_classes)
        weight = len(kept) / (np.count_nonzero(counts) * counts[winner]) * policy.weight
    out = pd.DataFrame({"video_id": list(kept), **{f"target_{k}": targets[:, k] for k in range(n_classes)}})
    return out.assign(weight=weight)


def calibrated(ws: Workspace, verdicts: dict, p: np.ndarray) -> np.ndarray:
    """`p` re-mapped by a logistic fit of the training labels on the teacher's answers for the labeled
    training videos (split == "train" only, so a labeled test split can never leak in)."""
    return platt(training_answers(ws, verdicts), p)


def platt(calibration: tuple[np.ndarray, np.ndarray], p: np.ndarray) -> np.ndarray:
    """`p` Platt-scaled on `calibration` = (the teacher's answers, labels) of labeled videos."""
    from hiddenemo.eval.labelshift import platt_calibrate

    p_fit, y_fit = calibration
    if len(np.unique(y_fit)) < 2:
        raise ValueError("pseudo-label calibration needs teacher answers on labeled training videos of both classes")
    return platt_calibrate(p_fit, y_fit, p)


def training_answers(ws: Workspace, verdicts: dict,
                     exclude: set[str] = frozenset()) -> tuple[np.ndarray, np.ndarray]:
    """(p, y): the teacher's answers and the labels (1 = positive) of the labeled training videos
    (split == "train" only, so a labeled test split can never leak in), minus `exclude`."""
    train, _ = ws.training_split()          # the one place that hands out training labels
    train = train[train["video_id"].map(lambda v: v not in exclude and v in verdicts
                                        and verdicts[v].p_positive is not None).astype(bool)]
    y = train["label"].to_numpy()
    return np.array([verdicts[v].p_positive for v in train["video_id"]], dtype=float), y


def teacher_report(work: str | Path | Workspace, teacher_id: str, threshold: float = 0.5) -> dict:
    """How the teacher does on the labeled videos: accuracy and AUROC over the videos it answered,
    coverage (the share it answered), failures, and its answers on the unlabeled ones."""
    from hiddenemo.eval.metrics import binary_metrics

    ws = Workspace.of(work)
    manifest, info = ws.truth(), ws.info
    verdicts = read_verdicts(ws.work, teacher_id)
    failed = {v.video_id for v in read_all(ws.work, teacher_id) if not v.ok} - set(verdicts)
    labeled = manifest[manifest["label"].notna()]
    # (a boolean mask even when nothing is labeled: an empty object Series would select columns)
    answered = labeled[labeled["video_id"].map(lambda v: v in verdicts and verdicts[v].p_positive is not None)
                       .astype(bool)]
    y = answered["y"].astype(int).to_numpy()
    p = np.array([verdicts[v].p_positive for v in answered["video_id"]], dtype=float)
    out = {"teacher_id": teacher_id, "n_videos": len(manifest), "n_verdicts": len(verdicts),
           "n_failed": len(failed), "n_labeled": len(labeled), "n_labeled_answered": len(answered),
           "coverage": len(answered) / len(labeled) if len(labeled) else float("nan"),
           "n_unlabeled_answered": int(sum(v in verdicts for v in manifest.loc[manifest["label"].isna(),
                                                                                "video_id"])),
           "input_tokens": sum(v.input_tokens for v in verdicts.values()),
           "cost_usd": sum(v.cost_usd for v in verdicts.values())}
    if len(answered):
        m = binary_metrics(y, p, threshold)
        out.update({k: m[k] for k in ("accuracy", "balanced_accuracy", "macro_f1", "auroc", "confusion")},
                   majority_baseline=max(y.mean(), 1 - y.mean()), positive=info.positive or info.classes[-1],
                   pleasant=info.pleasant, classes=list(info.classes))
        if len(np.unique(y)) == 2:
            from hiddenemo.eval.bootstrap import LEVEL, bootstrap_metrics
            subjects = answered["subject_id"]
            groups = subjects.astype(str).to_numpy() if subjects.notna().all() else None
            ci = bootstrap_metrics(y, p, threshold, groups)["ci"]["auroc"]
            out.update(auroc_low=ci["low"], auroc_high=ci["high"], level=LEVEL)
    return out


def backwards_warning(r: dict) -> str | None:
    """A loud warning when the teacher ranks the labeled videos the wrong way round (AUROC below 0.5):
    its pseudo-labels would teach the opposite. The teachers fit nothing on these labels, so this is an
    honest out-of-sample figure."""
    auroc = r.get("auroc")
    if auroc is None or not np.isfinite(auroc) or auroc >= 0.5:
        return None
    low, high = r.get("auroc_low", float("nan")), r.get("auroc_high", float("nan"))
    sure = np.isfinite(high) and high < 0.5
    other = next((c for c in r["classes"] if c != r["pleasant"]), None) if r.get("pleasant") else None
    valence = (f"the behaviour teacher's cues point to {r['pleasant']!r} as the pleasant class; if {other!r} is the "
               f"pleasant one, re-run `hiddenemo dataset folder ... --pleasant {other}` and teach again"
               if other else "the behaviour teacher's cues point to the class named by `--pleasant`; check it")
    return (f"WARNING: teacher {r['teacher_id']} ranks the labeled videos backwards: AUROC {auroc:.3f} "
            f"({r.get('level', 0.95):.0%} interval {low:.3f}-{high:.3f}, "
            + ("entirely below 0.5" if sure else "it includes 0.5: perhaps only chance")
            + f"; {count(r['n_labeled_answered'], 'video')}). "
            "Its pseudo-labels would teach the opposite of the labels. Fix: " + valence + "; a VLM teacher: "
            "check the class names it is given. Until then train with `--pseudo.teacher null`.")


def format_report(r: dict) -> str:
    lines = [f"teacher {r['teacher_id']}: {count(r['n_verdicts'], 'verdict')} for {count(r['n_videos'], 'video')}, "
             f"{r['n_failed']} failed (no label is taken from a failure)",
             f"labeled videos: {r['n_labeled']}, answered {r['n_labeled_answered']} "
             f"(coverage {r['coverage']:.1%}); unlabeled answered: {r['n_unlabeled_answered']}"]
    if "accuracy" in r:
        (tn, fp), (fn, tp) = r["confusion"]
        lines += [f"accuracy {r['accuracy']:.3f} (majority class: {r['majority_baseline']:.3f}), balanced "
                  f"accuracy {r['balanced_accuracy']:.3f}, macro-F1 {r['macro_f1']:.3f}, AUROC {r['auroc']:.3f}",
                  f"confusion (rows truth, columns teacher; positive = {r['positive']}): "
                  f"[[tn {tn}, fp {fp}], [fn {fn}, tp {tp}]]"]
        if "auroc_low" in r:
            lines[-2] += f" ({r['level']:.0%} interval {r['auroc_low']:.3f}-{r['auroc_high']:.3f})"
        warning = backwards_warning(r)
        if warning:
            lines.append(warning)
    if r["cost_usd"]:
        lines.append(f"tokens in {r['input_tokens']:,}, cost US${r['cost_usd']:.2f}")
    return "\n".join(lines)
