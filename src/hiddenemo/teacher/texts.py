"""The texts a student reads, rendered from a teacher's answer in two variants.

- `full`: observations, evidence for each class, reflection and the verdict with its confidence —
  the paper's text (it feeds BERT with everything Gemini wrote).
- `verdict_free`: the coded observations only (what was seen, when, how strongly), with no evidence
  lists, no reflection and no verdict. This is the default for `embed`: a pseudo-labeled video's
  target *is* the teacher's verdict, so a text that states it lets the student copy the teacher
  instead of learning from behaviour (label leakage), and on labeled videos it teaches the student
  to trust the teacher's stated answer. `full` stays available for the paper replication and the
  leakage ablation.
"""
from __future__ import annotations

from hiddenemo.teacher.schema import Observation, VlmAnswer


def fmt_time(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    m, s = divmod(max(0.0, float(seconds)), 60)
    return f"{int(m)}:{s:04.1f}"


def render_observations(observations: list[Observation]) -> str:
    if not observations:
        return "No coded cues."
    lines = []
    for o in sorted(observations, key=lambda o: (o.start_s is None, o.start_s or 0.0)):
        span = fmt_time(o.start_s) if o.end_s is None else f"{fmt_time(o.start_s)}-{fmt_time(o.end_s)}"
        strength = "" if o.intensity is None else f" (intensity {o.intensity:.2f})"
        lines.append(f"- {span} {o.code}{strength}: {o.description}")
    return "\n".join(lines)


def answer_texts(answer: VlmAnswer, classes: list[str], positive: str) -> tuple[str, str]:
    """(full, verdict_free) texts of a VLM answer."""
    negative = next((c for c in classes if c != positive), "not " + positive)
    observed = "Observations:\n" + render_observations(answer.observations)
    full = "\n".join([
        observed,
        f"Evidence for {positive}:", *[f"- {e}" for e in answer.evidence_positive or ["none"]],
        f"Evidence for {negative}:", *[f"- {e}" for e in answer.evidence_negative or ["none"]],
        f"Reflection: {answer.reflection}",
        f"Verdict: {answer.verdict} (confidence {positive}: {answer.confidence_positive:.2f})",
    ])
    return full, observed
