"""The `annotations` teacher: a dataset's own timed gesture labels (`events.npy`, multi-hot at
`params.rate_hz` over `params.classes`) read the way the paper asks its VLM to read a video (CoT +
reflection): (1) what happened and when, (2) each body-part group's rate against the person's own
baseline, (3) the evidence for each class under prior rules, (4) a reflection that applies the
paper's face-scratching rule — then a verdict with a confidence.

The person's baseline is the mean, over all of that person's videos in the workspace (by
`subject_id`), of each group's log rate: label-free, but it reads the unlabeled target videos'
gestures, so the teacher is transductive (its params and texts say so). A person seen in one video
only is their own baseline.

How `p_positive` is made (`mode`):
- `rules`: fixed prior weights per body-part group (RULES, each with the reason for its direction;
  docs/teacher.md), never fitted: score = sum of weight x (group log rate - the person's usual).
- `fitted`: a logistic regression on the same person-relative group rates, fitted on the labeled
  training videos and cross-fitted — a labeled video's verdict comes from a fit on the other folds
  (grouped by subject), never from one that saw its label; other videos use the fit on all of them.
- `none`: text only.
Groups come from the workspace (dataset.json `extra.event_groups`, iMiGUE's taxonomy); a dataset
without them gets a per-class timeline and no rule verdict.
"""
from __future__ import annotations

import hashlib
import json
import math

import numpy as np
import pandas as pd

from hiddenemo.data.workspace import Workspace
from hiddenemo.data.pooled import PooledFeatures, video_timings
from hiddenemo.data.store import Store
from hiddenemo.errors import UserError
from hiddenemo.teacher.cues import episodes_of
from hiddenemo.teacher.runner import MissingInput, Teacher, Video
from hiddenemo.teacher.schema import Observation, Verdict
from hiddenemo.teacher.store import file_hash
from hiddenemo.teacher.texts import fmt_time

VERSION = "annotations_v4"
MODES = ("rules", "fitted", "none")
TIMELINE_MAX = 120
FIT_FOLDS = 5
# Prior rules per body-part group of the iMiGUE taxonomy: (weight towards the pleasant class, what the
# group is, why it points that way). The references are the literature's general findings, not
# measured on iMiGUE; docs/teacher.md lists them.
RULES: dict[str, tuple[float, str, str]] = {
    "body": (1.0, "whole-body movement (moving torso, shaking shoulders, posture)",
             "expansive, animated movement goes with pride and positive high-arousal states; defeat displays "
             "are slumped and still (Tracy & Matsumoto 2008)"),
    "illustrative": (0.5, "illustrative gestures that accompany speech",
                     "illustrators rise with fluent, engaged speech and fall when a speaker withdraws "
                     "(Ekman & Friesen 1969)"),
    "head": (-1.0, "head and mouth tension (pressing lips, bulging face / deep breath, head up, turtle neck)",
             "lip pressing holds an emotion back (FACS AU24) and deep sighing breaths follow negative "
             "emotion; both are suppression cues"),
    "body-hand": (-0.5, "self-touches of the body (neck, hair, collar, folding arms)",
                  "self-directed touches of neck and body soothe stress; folded arms protect (adaptors, "
                  "Ekman & Friesen 1969)"),
    "hand": (-0.5, "hand-to-hand self-soothing (rubbing or holding hands, crossing fingers, objects)",
             "hand-to-hand adaptors and fiddling rise with anxiety (Ekman & Friesen 1969)"),
    "head-hand": (0.0, "hand-to-face and head touches (scratching face, head, forehead, jaw)",
                  "neutral by the paper's prior rule: after a match sweat makes skin itch, so face-scratching "
                  "is not read as tension"),
}


def class_names(info_extra: dict, classes: list) -> list[str]:
    """Readable names of the event columns: the workspace's own, then iMiGUE's, then `class N`."""
    from hiddenemo.data.imigue import MICRO_GESTURE_NAMES

    names = {**{str(k): v for k, v in MICRO_GESTURE_NAMES.items()},
             **{str(k): v for k, v in (info_extra.get("event_names") or {}).items()}}
    return [names.get(str(c), f"class {c}") for c in classes]


class AnnotationsTeacher(Teacher):
    name = "annotations"
    model = "gesture-annotations"
    prompt_version = VERSION

    def __init__(self, work, info, mode: str = "rules"):
        super().__init__(work, info)
        self.store = Store(work)
        self.mode = mode
        if self.mode not in MODES:
            raise UserError(f"unknown annotations teacher mode {self.mode!r}; choose one of {MODES}")
        self.groups = {str(k): v for k, v in (info.extra.get("event_groups") or {}).items()}
        self._table: pd.DataFrame | None = None

    def params(self) -> dict:
        return {**super().params(), "mode": self.mode, "rules": {g: w for g, (w, _, _) in RULES.items()},
                "workspace": self.table().attrs["fingerprint"],
                "transductive": "person baseline over all of a person's videos in the workspace"}

    def content_hash(self, video: Video) -> str:
        path = self.store.path(video.video_id, "events")
        meta = self.store.meta(video.video_id, "events")
        if not path.exists() or meta is None:
            raise MissingInput(f"video {video.video_id}: no events.npy at {path}; the annotations teacher "
                               "needs a dataset with timed gesture labels (e.g. `hiddenemo dataset imigue`)")
        return file_hash(path) + str(sorted(meta.get("params", {}).items()))

    def ask(self, video: Video) -> Verdict:
        events = np.asarray(self.store.load(video.video_id, "events", mmap=False))
        params = self.store.meta(video.video_id, "events")["params"]
        classes = params.get("classes") or list(range(events.shape[1]))
        names = class_names(self.info.extra, classes)
        if len(names) != events.shape[1]:
            raise ValueError(f"video {video.video_id}: events has {events.shape[1]} columns but its sidecar "
                             f"lists {len(names)} classes; re-run `hiddenemo dataset`")
        row = self.table().loc[video.video_id] if video.video_id in self.table().index else None
        # The rules point towards the pleasant class: without groups, or without knowing which class is
        # the pleasant one (a folder workspace made without --pleasant), only the text is written.
        pleasant = self.info.pleasant
        mode = self.mode if self.groups and (pleasant is not None or self.mode == "fitted") else "none"
        return render(video.video_id, events, float(params["rate_hz"]), names,
                      [self.groups.get(str(c)) for c in classes], self.info.classes, self.positive,
                      pleasant_is_positive=pleasant in (None, self.positive), person=row, mode=mode,
                      duration_s=video.duration_s)

    def table(self) -> pd.DataFrame:
        """Per video: group log rates, the person's usual ones, and (fitted mode) the fitted p_positive."""
        if self._table is None:
            self._table = person_table(self.work, self.store, self.groups, self.info, self.mode)
        return self._table


def person_table(work, store: Store, groups: dict[str, str], info, mode: str) -> pd.DataFrame:
    """Index video_id; columns `rate:<group>` (log1p onsets/min), `usual:<group>` (the person's mean
    over their videos) and, in fitted mode, `p_fitted`. attrs['fingerprint'] changes with any input."""
    videos = video_timings(Workspace.of(work).manifest)
    pooled = PooledFeatures(work, "events", videos, events_features=("group_rates",), event_groups=groups)
    names = sorted(set(groups.values()))
    rows, digest = {}, hashlib.sha256()
    for vid, timing in videos.items():
        rate = pooled.vector(vid) if names else None
        if rate is None:
            continue
        usual = pooled.subject_baseline(vid)
        rows[vid] = {**{f"rate:{g}": rate[i] for i, g in enumerate(names)},
                     **{f"usual:{g}": usual[i] for i, g in enumerate(names)}}
        digest.update(f"{vid}|{timing.subject_id}|{file_hash(store.path(vid, 'events'))};".encode())
    table = pd.DataFrame.from_dict(rows, orient="index")
    if mode == "fitted" and len(table):
        table["p_fitted"], fit_note = cross_fitted(work, table, names, info)
        digest.update(fit_note.encode())
    table.attrs["fingerprint"] = digest.hexdigest()[:16]
    return table


def cross_fitted(work, table: pd.DataFrame, names: list[str], info) -> tuple[pd.Series, str]:
    """p_positive of a logistic regression on the person-relative group rates: out-of-fold for the
    labeled training videos (folds grouped by subject), the fit on all of them for the others."""
    from hiddenemo.eval.baselines import fit_logistic, make_folds

    labeled, _ = Workspace.of(work).training_split()                     # label 1 = positive
    labeled = labeled[labeled["video_id"].isin(table.index)].reset_index(drop=True)
    y = labeled["label"].to_numpy()
    X_all = np.stack([table[f"rate:{g}"] - table[f"usual:{g}"] for g in names], axis=1)
    position = {v: i for i, v in enumerate(table.index)}
    X = X_all[[position[v] for v in labeled["video_id"]]]
    groups = labeled["subject_id"].astype(str).to_numpy() if labeled["subject_id"].notna().all() else None
    folds = make_folds(y, groups, FIT_FOLDS, seed=0)
    p = pd.Series(fit_logistic(X, y, groups).predict_proba(X_all)[:, 1], index=table.index)
    for k in np.unique(folds):
        held = folds == k
        model = fit_logistic(X[~held], y[~held], None if groups is None else groups[~held])
        p[labeled["video_id"][held].to_numpy()] = model.predict_proba(X[held])[:, 1]
    note = json.dumps(sorted(zip(labeled["video_id"], y.tolist(), folds.tolist())))
    return p, note


def render(video_id: str, events: np.ndarray, rate_hz: float, names: list[str], groups: list[str | None],
           classes: list[str], positive: str, *, pleasant_is_positive: bool = True, person=None,
           mode: str = "rules", duration_s: float | None = None) -> Verdict:
    """The verdict for one video's events (T'', C) at `rate_hz` with column `names` and `groups`;
    `person` is the video's row of `person_table` (its group rates and the person's usual ones)."""
    duration = max(duration_s or 0.0, len(events) / rate_hz)
    minutes = max(duration / 60.0, 1e-9)
    runs = sorted((e.start_s, e.end_s, name) for col, name in enumerate(names)
                  for e in episodes_of(events[:, col] > 0, np.ones(len(events)), rate_hz, min_s=0.0, merge_s=0.0))
    counts: dict[str, int] = {}
    for _, _, name in runs:
        counts[name] = counts.get(name, 0) + 1
    summary = ", ".join(f"{name} x{n}" for name, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
    thirds = _by_thirds(runs, duration)
    timeline = [f"- {fmt_time(a)}-{fmt_time(b)} {name}" for a, b, name in runs[:TIMELINE_MAX]]
    more = [f"- ... and {len(runs) - TIMELINE_MAX} more"] if len(runs) > TIMELINE_MAX else []
    step1 = [f"Step 1, what happened: {len(runs)} annotated gestures over {fmt_time(duration)} "
             f"({len(runs) / minutes:.1f}/min). Most frequent: {summary or 'none'}.",
             f"By thirds of the interview: {thirds}."]
    # The timeline goes last: text encoders truncate (MiniLM at 256 tokens), and the comparison with
    # the person's usual behaviour must survive the cut.
    timeline = ["Timeline:", *(timeline or ["- none"]), *more]
    observations = [Observation(code=name, description=f"annotated gesture: {name}", start_s=round(a, 2),
                                end_s=round(b, 2)) for a, b, name in runs]
    step2, score_terms = [], {}
    if person is not None and mode != "none":
        step2 = ["Step 2, against this person's usual behaviour (the mean of their videos here):"]
        for group, (weight, what, _) in RULES.items():
            if f"rate:{group}" not in person:
                continue
            now, usual = float(person[f"rate:{group}"]), float(person[f"usual:{group}"])
            members = sorted({n for n, g in zip(names, groups) if g == group and counts.get(n)})
            step2.append(f"- {what}: {math.expm1(now):.2f}/min vs usual {math.expm1(usual):.2f}/min "
                         f"({_compared(now - usual)}){': ' + ', '.join(members) if members else ''}")
            score_terms[group] = now - usual
    observed = "\n".join(step1 + step2 + timeline)
    if mode == "none" or not score_terms:
        return Verdict(video_id=video_id, teacher_id="annotations", observations=observations,
                       text=observed, text_verdict_free=observed, raw=summary)

    negative = next((c for c in classes if c != positive), "not " + positive)
    pleasant, unpleasant = (positive, negative) if pleasant_is_positive else (negative, positive)
    score = sum(RULES[g][0] * d for g, d in score_terms.items())
    if mode == "fitted":
        p = float(person["p_fitted"])
        how = "weights fitted on the labeled training videos (cross-fitted: never on this video's label)"
    else:
        p_pleasant = 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, score))))
        p = p_pleasant if pleasant_is_positive else 1.0 - p_pleasant
        how = "the prior rules' fixed weights"
    evidence = {pleasant: [], unpleasant: []}
    for group, d in score_terms.items():
        weight, what, why = RULES[group]
        if weight == 0 or abs(d) < 0.05:
            continue
        side = pleasant if weight * d > 0 else unpleasant
        evidence[side].append(f"{_compared(d)} {what} than usual: {why}")
    face = sum(n for name, n in counts.items() if groups[names.index(name)] == "head-hand")
    label = positive if p >= 0.5 else negative
    full = "\n".join([*step1, *step2, "Step 3, evidence under the prior rules:",
                      f"For {pleasant}:", *[f"- {e}" for e in evidence[pleasant] or ["none"]],
                      f"For {unpleasant}:", *[f"- {e}" for e in evidence[unpleasant] or ["none"]],
                      f"Step 4, reflection: {face or 'no'} hand-to-face or head touch(es) left neutral "
                      "(itching after a match is as likely as tension); only changes against the person's own "
                      f"usual rates count as evidence. Confidence from {how}.",
                      f"Verdict: {label} (confidence {positive}: {p:.2f})", *timeline])
    return Verdict(video_id=video_id, teacher_id="annotations", p_positive=p, label=label,
                   observations=observations, text=full, text_verdict_free=observed,
                   raw=json.dumps({"score": round(score, 4), "terms": {g: round(d, 4) for g, d in score_terms.items()}}))


def _compared(difference: float) -> str:
    if abs(difference) < 0.05:
        return "about as usual"
    return ("much " if abs(difference) >= 0.4 else "") + ("more" if difference > 0 else "less")


def _by_thirds(runs: list[tuple[float, float, str]], duration: float) -> str:
    """How many gestures began in each third of the interview, with the most frequent of each."""
    parts = []
    for i, label in enumerate(("early", "middle", "late")):
        names = [n for a, _, n in runs if i * duration / 3 <= a < (i + 1) * duration / 3 or (i == 2 and a >= duration)]
        # the most frequent, ties to the first name alphabetically: never a set's order, which changes
        # from process to process with Python's string hashing (and with it the text the student reads)
        top = min(set(names), key=lambda n: (-names.count(n), n)) if names else None
        parts.append(f"{label} {len(names)}" + (f" (mostly {top})" if top else ""))
    return ", ".join(parts)
