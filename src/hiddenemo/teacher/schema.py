"""The verdict: what a teacher says about one video, one JSON line in `WORK/teacher/<teacher_id>.jsonl`.

A failed ask (refused, truncated, malformed, an HTTP error that outlived its retries) is a verdict
with `status="failed"` and a `reason`: recorded so that a re-run skips it unless asked to retry,
and never turned into a label (`p_positive` and `label` stay None).

Class probabilities: a two-class teacher gives `p_positive`; a teacher of any number of classes (an
imported file's `p_<class>` columns) gives `probs`, class name -> probability, and, on a two-class
task, `p_positive` as well. `class_probs` is the one reader of either. `probs` is left out of a line
when None, so the verdicts of the two-class teachers stay byte for byte what they were.
"""
from __future__ import annotations

import time
from typing import Literal

from pydantic import BaseModel, Field, field_validator

PROB_TOLERANCE = 1e-3     # probabilities written with three decimals still sum to one


class Observation(BaseModel):
    """One coded cue: a FACS action unit, a body/gesture code, or a keypoint cue proxy, with its time."""
    code: str = Field(description="Short code, e.g. 'AU12', 'AU45', 'folding arms', 'hand_face_contact'.")
    description: str = Field(description="What is seen, in plain words, without judging the outcome.")
    start_s: float | None = Field(default=None, description="Start time in seconds from the video start.")
    end_s: float | None = Field(default=None, description="End time in seconds.")
    intensity: float | None = Field(default=None, description="Strength 0-1 (or a rate, as the code says).")


class VlmAnswer(BaseModel):
    """The JSON a VLM is asked to return (its `response_schema`); the prompt walks it field by field:
    observe and code, reason per class with the prior rules, reflect, then decide."""
    observations: list[Observation] = Field(description="Coded action units and gestures with times.")
    evidence_positive: list[str] = Field(description="Evidence for the positive class.")
    evidence_negative: list[str] = Field(description="Evidence for the negative class.")
    reflection: str = Field(description="Check of the evidence against the prior rules; what was revised.")
    verdict: str = Field(description="One of the class names.")
    confidence_positive: float = Field(description="Confidence 0-1 that the positive class is right.")


class Verdict(BaseModel):
    """One teacher's answer (or failure) for one video."""
    video_id: str
    teacher_id: str
    status: Literal["ok", "failed"] = "ok"
    reason: str | None = None
    p_positive: float | None = None
    label: str | None = None
    probs: dict[str, float] | None = Field(default=None, exclude_if=lambda v: v is None)
    observations: list[Observation] = Field(default_factory=list)
    text: str = ""
    text_verdict_free: str = ""
    model: str = ""
    prompt_version: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    thinking_tokens: int = 0
    cost_usd: float = 0.0
    raw: str = ""
    cache_key: str = ""
    seconds: float = 0.0
    created: float = Field(default_factory=time.time)

    @field_validator("p_positive")
    @classmethod
    def _probability(cls, v: float | None) -> float | None:
        if v is not None and not 0.0 <= v <= 1.0:
            raise ValueError(f"p_positive must lie in [0, 1], got {v}")
        return v

    @field_validator("probs")
    @classmethod
    def _distribution(cls, v: dict[str, float] | None) -> dict[str, float] | None:
        if v is not None and (any(not 0.0 <= p <= 1.0 for p in v.values()) or abs(sum(v.values()) - 1.0) > PROB_TOLERANCE):
            raise ValueError(f"probs must lie in [0, 1] and sum to 1, got {v}")
        return v

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def class_probs(self, classes: list[str], positive: str | None = None) -> dict[str, float] | None:
        """Probability per class name (in `classes` order), from `probs`, or on a two-class task from
        `p_positive` (`positive` = the positive class, default the last); None when the teacher gave none."""
        if self.probs is not None:
            return {c: float(self.probs.get(c, 0.0)) for c in classes}
        if self.p_positive is None or len(classes) != 2:
            return None
        positive = positive or classes[-1]
        return {c: self.p_positive if c == positive else 1.0 - self.p_positive for c in classes}

    def text_variant(self, variant: str) -> str:
        """The text the student reads: `full` (reasoning and verdict) or `verdict_free`."""
        if variant == "full":
            return self.text
        if variant == "verdict_free":
            return self.text_verdict_free
        raise ValueError(f"unknown text variant {variant!r}: use 'verdict_free' or 'full'")


def failed(video_id: str, teacher_id: str, reason: str, **fields) -> Verdict:
    """A failure record: the reason says what went wrong, no label is ever derived from it."""
    return Verdict(video_id=video_id, teacher_id=teacher_id, status="failed", reason=reason, **fields)
