"""Baselines that stand beside every model, on the same inputs and the same folds.

- `majority`: the training set's positive fraction as a constant probability (so it predicts the
  majority class, and its AUROC is 0.5 by construction);
- `logistic`: logistic regression on one pooled vector per video, its regularisation C chosen by a
  cross-validation inside each training fold (grouped by subject), out-of-fold on the labeled
  training videos and refitted on all of them for the target videos.

Pooled features per modality (`pooled_features`):
- `events`: onsets per minute of each micro-gesture class, log1p (a run of 1s in `events.npy` is one
  event; `hiddenemo.data.pooled.events_vector`);
- `pose`: per keypoint and offset (8, 16, 24 frames), mean and std of the offset length over a fixed
  evaluation sampling of frames (`hiddenemo.data.pooled.pose_vector`);
- `frames`: the mean frame embedding;
- `text`: the text embedding `text.<encoder_id>` itself;
- `tfidf`: not an array but the teacher's texts themselves, the very texts that embedding encoded
  (teacher and variant read from its sidecar), as TF-IDF word and word-pair weights: the classic text
  classifier a student reading those texts has to beat. Its vocabulary and weights are fitted inside
  each training fold, as the logistic regression is.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from hiddenemo.data.pooled import events_vector, pose_vector
from hiddenemo.data.workspace import Workspace
from hiddenemo.errors import UserError

log = logging.getLogger(__name__)

C_GRID = np.logspace(-4, 2, 13)
COLUMNS = ["video_id", "baseline", "modality", "split", "fold", "p_positive", "label", "subject_id"]


def pooled_features(work: Path | Workspace, modality: str, video_ids, text_encoder: str | None = None) -> np.ndarray:
    """(n, d) float64 per-video features; a row of NaN where the video lacks the array or it is empty
    (no frame embedded: nobody found)."""
    ws = Workspace.of(work)
    store = ws.store
    name = ws.text_array(text_encoder, video_ids) if modality == "text" else modality
    pool = {"events": _events_rates, "pose": _pose_offsets, "frames": _mean_rows, "text": _as_vector}.get(modality)
    if pool is None:
        raise UserError(f"unknown modality {modality!r}: choose events, pose, frames or text")
    rows = []
    for vid in video_ids:
        array = store.load_if(vid, name)
        rows.append(None if array is None or len(array) == 0 else pool(array, store.meta(vid, name) or {}))
    width = next((len(r) for r in rows if r is not None), None)
    if width is None:
        raise UserError(f"no video in {ws.work} has the `{name}` array: run the stage that makes it first")
    return np.stack([np.full(width, np.nan) if r is None else r for r in rows])


def _events_rates(events: np.ndarray, meta: dict) -> np.ndarray:
    return events_vector(events, float(meta.get("params", {}).get("rate_hz", 0) or 0), None, ("class_rates",))


def _pose_offsets(pose: np.ndarray, meta: dict) -> np.ndarray:
    return pose_vector(pose)


def _mean_rows(frames: np.ndarray, meta: dict) -> np.ndarray:
    return np.asarray(frames, dtype=np.float64).mean(0)


def _as_vector(text: np.ndarray, meta: dict) -> np.ndarray:
    return np.asarray(text, dtype=np.float64).ravel()


def make_folds(y: np.ndarray, groups: np.ndarray | None, n_folds: int = 5, seed: int = 0) -> np.ndarray:
    """(n,) fold of each labeled video: stratified, and grouped by subject when groups are given."""
    from sklearn.model_selection import StratifiedGroupKFold

    groups = np.arange(len(y)) if groups is None else groups
    n_folds = min(n_folds, len(np.unique(groups)), int(np.bincount(y, minlength=2).min()))
    if n_folds < 2:
        raise UserError(f"cross-validation needs at least 2 folds; these {len(y)} labeled videos "
                        f"(class counts {np.bincount(y, minlength=2).tolist()}) allow fewer")
    folds = np.empty(len(y), dtype=np.int64)
    splitter = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    for k, (_, test) in enumerate(splitter.split(np.zeros(len(y)), y, groups)):
        folds[test] = k
    return folds


def fit_logistic(X: np.ndarray, y: np.ndarray, groups: np.ndarray | None, seed: int = 0, inner_folds: int = 5):
    """Imputer + scaler + logistic regression, C chosen on log-loss by an inner CV grouped by subject.
    The imputer and scaler see no labels, so fitting them once before the inner CV leaks nothing."""
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    # More than two classes: multinomial. Newton's Hessian grows with (classes x features)^2, which
    # for ~1000 pooled keypoint features is minutes per fit; lbfgs needs only gradients.
    head = _logistic_head(y, groups, seed, inner_folds, "newton-cholesky" if len(np.unique(y)) <= 2 else "lbfgs")
    return make_pipeline(SimpleImputer(keep_empty_features=True), StandardScaler(), head).fit(X, y)


def fit_tfidf(texts: np.ndarray, y: np.ndarray, groups: np.ndarray | None, seed: int = 0, inner_folds: int = 5):
    """TF-IDF (words and word pairs, sublinear counts) + the same logistic regression, both fitted on
    the given texts only. The vocabulary sees no labels, so fitting it before the inner CV leaks nothing."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import make_pipeline

    head = _logistic_head(y, groups, seed, inner_folds, "lbfgs")      # lbfgs takes sparse input
    return make_pipeline(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True), head).fit(texts, y)


def _logistic_head(y: np.ndarray, groups: np.ndarray | None, seed: int, inner_folds: int, solver: str):
    """Logistic regression whose C an inner CV (grouped by subject) chooses on log-loss."""
    from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
    from sklearn.model_selection import StratifiedGroupKFold

    groups = np.arange(len(y)) if groups is None else groups
    n_inner = min(inner_folds, len(np.unique(groups)), int(np.bincount(y, minlength=2).min()))
    if n_inner < 2:  # too few videos to choose C: keep sklearn's default
        return LogisticRegression(max_iter=5000)
    splits = list(StratifiedGroupKFold(n_splits=n_inner, shuffle=True, random_state=seed).split(np.zeros(len(y)), y, groups))
    return LogisticRegressionCV(Cs=C_GRID, cv=splits, scoring="neg_log_loss", max_iter=5000, solver=solver,
                                l1_ratios=(0.0,), use_legacy_attributes=False)


def teacher_texts(work: Path | Workspace, video_ids, text_encoder: str | None = None) -> np.ndarray:
    """(n,) the texts the `text.<encoder_id>` arrays encoded, as `embed` recorded them (teacher id and
    variant in each array's sidecar); "" for a video without one."""
    from hiddenemo.teacher.store import read_verdicts

    ws = Workspace.of(work)
    store, name = ws.store, ws.text_array(text_encoder, video_ids)
    verdicts, out = {}, []
    for vid in video_ids:
        params = (store.meta(vid, name) or {}).get("params", {})
        teacher_id = params.get("teacher_id")
        if teacher_id not in verdicts and teacher_id:
            verdicts[teacher_id] = read_verdicts(ws.work, teacher_id)
        verdict = verdicts.get(teacher_id, {}).get(vid)
        out.append(verdict.text_variant(params["variant"]) if verdict else "")
    if not any(out):
        raise UserError(f"no video in {ws.work} has a teacher text behind its `{name}` array: run `hiddenemo embed` first")
    return np.array(out, dtype=object)


def chosen_C(model) -> float:
    head = model[-1]
    return float(np.ravel(head.C_)[0]) if hasattr(head, "C_") else float(head.C)


def baseline_predictions(work: Path | Workspace, modality: str, folds: pd.Series | None = None, n_folds: int = 5,
                         seed: int = 0, target_split: str = "test", text_encoder: str | None = None) -> pd.DataFrame:
    """Out-of-fold predictions on the labeled training videos and predictions on the target split,
    for the majority and logistic baselines.

    Args:
        work: The workspace.
        modality: events, pose, frames, text, or tfidf (the texts behind `text`).
        folds: Fold of each training video (index video_id), e.g. a run's oof.csv folds, so the
            baselines see the model's exact splits; None = `make_folds` (stratified, grouped by subject).
        n_folds: Number of folds when `folds` is None.
        seed: Seed of the folds and of the inner CV.
        target_split: Split whose videos get predictions from the models fitted on all training videos.
        text_encoder: Encoder id of the `text.<id>` array (None = the only one present).

    Returns:
        DataFrame with COLUMNS (label = true 0/1 — more than two classes: the class index, and p_<class>
        columns in place of p_positive; <NA> when unknown; fold = -1 on the target split)
        and `attrs["C"]`: the C chosen per fold ("all" = the final fit), `attrs["train_prior"]`.
    """
    ws = Workspace.of(work)
    manifest = ws.truth()
    train = manifest[(manifest["split"] == "train") & manifest["y"].notna()].reset_index(drop=True)
    target = manifest[manifest["split"] == target_split].reset_index(drop=True)
    if train.empty:
        raise UserError(f"{work}: no labeled videos in the train split, so no baseline can be fitted")
    y = train["y"].astype(int).to_numpy()
    groups = train["subject_id"].astype(str).to_numpy() if train["subject_id"].notna().all() else None
    if folds is None:
        fold = make_folds(y, groups, n_folds, seed)
    else:
        fold = train["video_id"].map(folds.astype(int))
        if fold.isna().any():
            raise UserError(f"folds given for the baselines miss {int(fold.isna().sum())} labeled training "
                            f"videos, e.g. {train['video_id'][fold.isna()].tolist()[:5]}")
        fold = fold.to_numpy(np.int64)
    fit = fit_tfidf if modality == "tfidf" else fit_logistic
    features = (lambda ids: teacher_texts(ws, ids, text_encoder)) if modality == "tfidf" else (
        lambda ids: pooled_features(ws, modality, ids, text_encoder))
    X = features(train["video_id"].tolist())
    X_target = features(target["video_id"].tolist()) if len(target) else None

    many = not ws.is_binary                      # more than two classes: multinomial, p_<class> columns
    p_logistic, chosen = np.empty((len(y), len(ws.classes)) if many else len(y)), {}
    for k in np.unique(fold):
        fit_on, held = fold != k, fold == k
        model = fit(X[fit_on], y[fit_on], None if groups is None else groups[fit_on], seed)
        p_logistic[held] = _proba(model, X[held], many)
        chosen[int(k)] = chosen_C(model)
    prior = np.bincount(y, minlength=len(ws.classes)) / len(y) if many else float(y.mean())
    majority = lambda n: np.tile(prior, (n, 1)) if many else np.full(n, prior)   # noqa: E731
    frames = [_frame(train, "majority", modality, "train", fold, majority(len(y)), ws.classes),
              _frame(train, "logistic", modality, "train", fold, p_logistic, ws.classes)]
    if X_target is not None:
        final = fit(X, y, groups, seed)
        chosen["all"] = chosen_C(final)
        minus_one = np.full(len(target), -1)
        frames += [_frame(target, "majority", modality, target_split, minus_one, majority(len(target)), ws.classes),
                   _frame(target, "logistic", modality, target_split, minus_one, _proba(final, X_target, many), ws.classes)]
    out = pd.concat(frames, ignore_index=True)
    missing = (X == "").sum() if modality == "tfidf" else np.isnan(X).all(1).sum()
    out.attrs.update(C=chosen, train_prior=prior.tolist() if many else prior, missing=int(missing))
    return out


def _proba(model, X: np.ndarray, many: bool) -> np.ndarray:
    """P(positive) (n,), or with more than two classes the multinomial class probabilities (n, C)."""
    proba = model.predict_proba(X)
    return proba if many else proba[:, 1]


def _frame(rows: pd.DataFrame, baseline: str, modality: str, split: str, fold, p, classes: list[str]) -> pd.DataFrame:
    probs = {"p_positive": p} if np.ndim(p) == 1 else {f"p_{c}": p[:, k] for k, c in enumerate(classes)}
    return pd.DataFrame({"video_id": rows["video_id"].to_numpy(), "baseline": baseline, "modality": modality,
                         "split": split, "fold": np.asarray(fold, dtype=np.int64), **probs,
                         "label": rows["y"].astype("Int64").to_numpy(), "subject_id": rows["subject_id"].to_numpy()})
