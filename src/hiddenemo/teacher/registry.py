"""The teachers by name: `make_teacher(name, work)` builds one for a workspace (API clients are
imported only when their teacher is asked for)."""
from __future__ import annotations

from pathlib import Path

from hiddenemo.errors import UserError
from hiddenemo.teacher.config import VlmConfig

TEACHERS = ("behaviour", "annotations", "gemini", "openai")


def make_teacher(name: str, work: Path, vlm: VlmConfig | None = None, annotation_mode: str = "rules",
                 connect: bool = True):
    """The teacher called `name` for the workspace `work`."""
    from hiddenemo.data.manifest import DatasetInfo

    info = DatasetInfo.load(work)                 # a missing dataset.json is a UserError (ManifestError)
    if name == "behaviour":
        from hiddenemo.teacher.behaviour import BehaviourTeacher
        return BehaviourTeacher(work, info)
    if name == "annotations":
        from hiddenemo.teacher.annotations import AnnotationsTeacher
        return AnnotationsTeacher(work, info, mode=annotation_mode)
    if name == "gemini":
        from hiddenemo.teacher.gemini import GeminiTeacher
        return GeminiTeacher(work, info, vlm or VlmConfig(), connect)
    if name == "openai":
        from hiddenemo.teacher.openai_compat import OpenAITeacher
        return OpenAITeacher(work, info, vlm or VlmConfig(), connect)
    raise UserError(f"unknown teacher {name!r}: choose one of {', '.join(TEACHERS)}")


def teacher_kind(model: str) -> str:
    """Which teacher wrote verdicts with this `model` field: the offline ones name a fixed model; a
    VLM's is its model name (gemini-* from the gemini teacher, anything else an OpenAI-compatible one)."""
    offline = {"keypoint-rules": "behaviour", "gesture-annotations": "annotations"}
    return offline.get(model) or ("gemini" if model.startswith("gemini") else "openai")
