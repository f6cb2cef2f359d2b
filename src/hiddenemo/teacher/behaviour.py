"""The `behaviour` teacher: offline and deterministic, from `pose.npy` alone.

It detects the cue proxies of `cues.py` with their times, then applies explicit prior rules (below,
and in docs/teacher.md) to give `p_positive` and a text in the verdict schema. The rules were set
from the hidden-emotion literature and the paper's face-scratching rule before looking at any
labels; they are never fitted. The output is a rule score, not a calibrated probability: read its
quality off `hiddenemo teach --report`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hiddenemo.data.keypoints import anyone_seen
from hiddenemo.data.store import Store
from hiddenemo.errors import UserError
from hiddenemo.teacher.cues import Cue, detect_all
from hiddenemo.teacher.runner import MissingInput, Teacher, Video
from hiddenemo.teacher.schema import Observation, Verdict
from hiddenemo.teacher.store import file_hash
from hiddenemo.teacher.texts import fmt_time

VERSION = "behaviour_v2"   # v2: head nods, shakes, turns and tilts from the face mesh or the body points
MAX_OBSERVATIONS_PER_CUE = 50      # the text gives full counts; the list keeps the first ones
EXAMPLES_IN_TEXT = 3
CO_OCCURRENCE_S = 2.0
FIDGET_REFERENCE = 0.1             # box units per second: a middling median hand speed (real iMiGUE
                                   # video 298: 0.046; the synthetic figures: 0.07-0.25)


@dataclass(frozen=True)
class Rule:
    feature: str
    weight: float          # change of the log-odds of the positive class per unit of feature
    typical: float         # the feature's value for a video that says nothing either way
    why: str


# Weights point to the pleasant outcome, the one with nothing to hide (iMiGUE: win); a workspace whose
# positive class is the unpleasant one (`DatasetInfo.positive_valence`) negates them. Shares are
# fractions of the video.
RULES = (
    Rule("smile_share", +3.0, 0.10, "smiles (AU12), more frequent in the pleasant outcome"),
    Rule("arms_crossed_share", -4.0, 0.05, "a closed, self-protective posture held for long"),
    Rule("gaze_aversion_share", -3.0, 0.08, "looking away from the interviewer"),
    Rule("tense_touch_share", -3.0, 0.02,
         f"face touches within {CO_OCCURRENCE_S:.0f} s of gaze aversion or crossed arms; a touch alone counts "
         "for nothing (the paper's rule: after a match sweat and dust make the skin itch)"),
    Rule("fidget_log2", -0.3, 0.0, f"restlessness: log2 of the median fidgeting energy over {FIDGET_REFERENCE}"),
)
NOT_WEIGHTED = ("head nods and shakes are conversational; blink and mouth-opening rates follow speech and light; "
                "head turns, tilts and shoulder rises occur in both outcomes: described, not weighted")


def features(cues: dict[str, Cue], duration_s: float) -> dict[str, float]:
    share = lambda name: cues[name].seconds() / duration_s if duration_s > 0 else 0.0
    tension = [e for n in ("gaze aversion", "arms crossed / folded") for e in cues[n].episodes]
    tense = [e for e in cues["hand-to-face contact"].episodes
             if any(t.start_s - CO_OCCURRENCE_S <= e.end_s and e.start_s <= t.end_s + CO_OCCURRENCE_S
                    for t in tension)]
    energy = cues["fidgeting"].value
    return {
        "smile_share": share("smile"),
        "arms_crossed_share": share("arms crossed / folded"),
        "gaze_aversion_share": share("gaze aversion"),
        "tense_touch_share": sum(e.end_s - e.start_s for e in tense) / duration_s if duration_s > 0 else 0.0,
        "touch_share": share("hand-to-face contact"),
        "fidget_log2": float(np.clip(math.log2(energy / FIDGET_REFERENCE), -2, 2))
        if energy and np.isfinite(energy) and energy > 0 else 0.0,
    }


def apply_rules(feats: dict[str, float], sign: int = 1) -> tuple[float, list[tuple[Rule, float]]]:
    """(p_positive, [(rule, its contribution to the log-odds of the positive class)])."""
    parts = [(r, sign * r.weight * (feats[r.feature] - r.typical)) for r in RULES]
    logit = sum(c for _, c in parts)
    return 1.0 / (1.0 + math.exp(-logit)), parts


def describe(cues: dict[str, Cue], duration_s: float) -> str:
    """One line per cue: count, rate, share of time and the first few times (no judgement)."""
    minutes = max(duration_s / 60.0, 1e-9)
    lines = [f"Video of {fmt_time(duration_s)} (keypoint cues):"]
    for cue in cues.values():
        if cue.name == "fidgeting":
            lines.append(f"- fidgeting: median energy {cue.value or 0:.3f} box/s, "
                         f"{cue.count()} restless stretches ({cue.seconds():.0f} s)")
            continue
        if not cue.count():
            lines.append(f"- {cue.name} ({cue.code}): none")
            continue
        examples = ", ".join(f"{fmt_time(e.start_s)}-{fmt_time(e.end_s)}" + (f" {e.detail}" if e.detail else "")
                             for e in cue.episodes[:EXAMPLES_IN_TEXT])
        lines.append(f"- {cue.name} ({cue.code}): {cue.count()} times, {cue.count() / minutes:.1f}/min, "
                     f"{100 * cue.seconds() / duration_s:.1f}% of the time; e.g. {examples}")
    return "\n".join(lines)


class BehaviourTeacher(Teacher):
    name = "behaviour"
    model = "keypoint-rules"
    prompt_version = VERSION

    def __init__(self, work, info):
        super().__init__(work, info)
        if info.positive_valence is None:
            # Guessing would invert every verdict half the time, silently: ask instead.
            raise UserError(f"the behaviour teacher's cues point to the pleasant class, and {work} does not say which "
                            f"of {info.classes} that is: re-run `hiddenemo dataset folder ... --pleasant CLASS` "
                            "(extracted arrays are kept), then teach again")
        self.store = Store(work)

    def params(self) -> dict:
        return {**super().params(), "rules": [r.__dict__ for r in RULES], "fidget_ref": FIDGET_REFERENCE,
                **({} if self.sign > 0 else {"positive_valence": "unpleasant"})}   # old cache keys stay valid

    @property
    def sign(self) -> int:
        """+1 when the positive class is the pleasant one the rules point to, -1 when it is the other."""
        return -1 if self.info.positive_valence == "unpleasant" else 1

    def content_hash(self, video: Video) -> str:
        path = self.store.path(video.video_id, "pose")
        if not path.exists():
            raise MissingInput(f"video {video.video_id}: no pose.npy at {path}; run `hiddenemo extract` "
                               "(or ingest OpenPose JSON) before the behaviour teacher")
        if not anyone_seen(self.store.load(video.video_id, "pose")):
            raise MissingInput(f"video {video.video_id}: pose.npy holds no keypoint in any frame (nobody was "
                               "found): nothing to judge; look at it with `hiddenemo extract --preview`")
        return file_hash(path) + f"@{video.fps}"

    def ask(self, video: Video) -> Verdict:
        pose = np.asarray(self.store.load(video.video_id, "pose", mmap=False), dtype=np.float32)
        return judge(video.video_id, pose, video.fps, self.info.classes, self.positive, self.sign)


def judge(video_id: str, pose: np.ndarray, fps: float, classes: list[str], positive: str, sign: int = 1) -> Verdict:
    """The behaviour verdict for one pose sequence (T, 137, 3) at `fps`; `sign` -1 when the positive
    class is the unpleasant one (the rules' log-odds then point to the other class)."""
    duration = len(pose) / fps
    cues = detect_all(pose, fps)
    feats = features(cues, duration)
    p, parts = apply_rules(feats, sign)
    negative = next((c for c in classes if c != positive), "not " + positive)
    observed = describe(cues, duration)
    reasoning = [f"- {r.why}: {feats[r.feature]:.3f} vs typical {r.typical:.3f} -> {c:+.2f} log-odds"
                 for r, c in parts]
    label = positive if p >= 0.5 else negative
    full = "\n".join([observed, "Prior rules (log-odds towards " + positive + "):", *reasoning,
                      f"- {NOT_WEIGHTED}.", f"Verdict: {label} (confidence {positive}: {p:.2f})"])
    observations = [Observation(code=c.code, description=c.name + (f", {e.detail}" if e.detail else ""),
                                start_s=round(e.start_s, 2), end_s=round(e.end_s, 2), intensity=round(e.intensity, 3))
                    for c in cues.values() for e in c.episodes[:MAX_OBSERVATIONS_PER_CUE]]
    return Verdict(video_id=video_id, teacher_id="behaviour", p_positive=p, label=label, observations=observations,
                   text=full, text_verdict_free=observed, model=BehaviourTeacher.model, prompt_version=VERSION,
                   raw=str({k: round(v, 4) for k, v in feats.items()}))
