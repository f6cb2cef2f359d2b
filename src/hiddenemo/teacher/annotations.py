"""The `annotations` teacher: a dataset's own timed gesture labels (`events.npy`, multi-hot at
`params.rate_hz` over `params.classes`) rendered as text, with an optional rule-based `p_positive`.

The rule is fixed in advance and never fitted: gestures are grouped by their names into those the
hidden-emotion literature reads as tension or self-protection, those it reads as confidence, and
the rest (self-touches of face, head and neck are neutral by the paper's face-scratching rule:
itching after a match). The log-odds of the positive class move by `RATE_WEIGHT` per gesture per
minute of difference between the two groups.
"""
from __future__ import annotations

import math

import numpy as np

from hiddenemo.data.store import Store
from hiddenemo.teacher.cues import episodes_of
from hiddenemo.teacher.runner import MissingInput, Teacher, Video
from hiddenemo.teacher.schema import Observation, Verdict
from hiddenemo.teacher.store import file_hash
from hiddenemo.teacher.texts import fmt_time

VERSION = "annotations_v1"
RATE_WEIGHT = 0.4
TIMELINE_MAX = 200
# Matched against the lower-case class name; the first group that matches wins.
TENSE = ("folding arms", "holding back arms", "pressing lips", "biting nails", "covering face", "rubbing eyes",
         "bowing head", "rubbing hands", "crossing fingers", "fiddling", "shaking head", "turtle neck")
CONFIDENT = ("head up", "sitting straightly", "arms akimbo", "minaret", "arms over shoulders", "nodding")


def class_names(info_extra: dict, classes: list) -> list[str]:
    """Readable names of the event columns: the workspace's own, then iMiGUE's, then `class N`."""
    names = {str(k): v for k, v in (info_extra.get("event_names") or {}).items()}
    try:
        from hiddenemo.data.imigue import MICRO_GESTURE_NAMES
        names = {**{str(k): v for k, v in MICRO_GESTURE_NAMES.items()}, **names}
    except ImportError:
        pass
    return [names.get(str(c), f"class {c}") for c in classes]


def group_of(name: str) -> str:
    low = name.lower()
    if any(k in low for k in TENSE):
        return "tense"
    if any(k in low for k in CONFIDENT):
        return "confident"
    return "neutral"


class AnnotationsTeacher(Teacher):
    name = "annotations"
    model = "gesture-annotations"
    prompt_version = VERSION

    def __init__(self, work, info, rules: bool = True):
        super().__init__(work, info)
        self.store = Store(work)
        self.rules = rules

    def params(self) -> dict:
        return {**super().params(), "rules": self.rules, "weight": RATE_WEIGHT, "tense": TENSE,
                "confident": CONFIDENT}

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
        names = class_names(self.info.extra, params.get("classes") or list(range(events.shape[1])))
        if len(names) != events.shape[1]:
            raise ValueError(f"video {video.video_id}: events has {events.shape[1]} columns but its sidecar "
                             f"lists {len(names)} classes; re-run `hiddenemo dataset`")
        return render(video.video_id, events, float(params["rate_hz"]), names, self.info.classes, self.positive,
                      self.rules, duration_s=video.duration_s)


def render(video_id: str, events: np.ndarray, rate_hz: float, names: list[str], classes: list[str],
           positive: str, rules: bool = True, duration_s: float | None = None) -> Verdict:
    """The verdict for one video's events (T'', C) at `rate_hz` with column `names`."""
    duration = max(duration_s or 0.0, len(events) / rate_hz)
    minutes = max(duration / 60.0, 1e-9)
    runs = sorted((e.start_s, e.end_s, name) for col, name in enumerate(names)
                  for e in episodes_of(events[:, col] > 0, np.ones(len(events)), rate_hz, min_s=0.0, merge_s=0.0))
    counts: dict[str, int] = {}
    for _, _, name in runs:
        counts[name] = counts.get(name, 0) + 1
    summary = ", ".join(f"{name} x{n}" for name, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
    timeline = [f"- {fmt_time(a)}-{fmt_time(b)} {name}" for a, b, name in runs[:TIMELINE_MAX]]
    more = [f"- ... and {len(runs) - TIMELINE_MAX} more"] if len(runs) > TIMELINE_MAX else []
    observed = "\n".join([f"Annotated gestures over {fmt_time(duration)}: {len(runs)} "
                          f"({len(runs) / minutes:.1f}/min). Most frequent: {summary or 'none'}.",
                          "Timeline:", *(timeline or ["- none"]), *more])
    observations = [Observation(code=name, description=f"annotated gesture: {name}", start_s=round(a, 2),
                                end_s=round(b, 2)) for a, b, name in runs]
    if not rules:
        return Verdict(video_id=video_id, teacher_id="annotations", observations=observations,
                       text=observed, text_verdict_free=observed, raw=summary)
    rate = {g: sum(n for name, n in counts.items() if group_of(name) == g) / minutes
            for g in ("tense", "confident", "neutral")}
    logit = RATE_WEIGHT * (rate["confident"] - rate["tense"])
    p = 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, logit))))
    negative = next((c for c in classes if c != positive), "not " + positive)
    label = positive if p >= 0.5 else negative
    full = "\n".join([observed, "Prior rules:",
                      f"- tension / self-protection gestures: {rate['tense']:.2f}/min (towards {negative})",
                      f"- confident gestures: {rate['confident']:.2f}/min (towards {positive})",
                      f"- self-touches and other gestures: {rate['neutral']:.2f}/min (neutral: itching after a "
                      "match is as likely as tension)",
                      f"Verdict: {label} (confidence {positive}: {p:.2f})"])
    return Verdict(video_id=video_id, teacher_id="annotations", p_positive=p, label=label,
                   observations=observations, text=full, text_verdict_free=observed,
                   raw=str({k: round(v, 4) for k, v in rate.items()}))
