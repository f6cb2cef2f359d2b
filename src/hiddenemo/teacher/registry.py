"""The teachers by name: `make_teacher(name, work)` builds one for a workspace (API clients are
imported only when their teacher is asked for)."""
from __future__ import annotations

from pathlib import Path

from hiddenemo.errors import UserError
from hiddenemo.teacher.config import VlmConfig

TEACHERS = ("behaviour", "annotations", "gemini", "openai", "import")


def make_teacher(name: str, work: Path, vlm: VlmConfig | None = None, annotation_mode: str = "rules",
                 connect: bool = True, source: Path | None = None, batch: bool = False):
    """The teacher called `name` for the workspace `work` (`source`: the file the import teacher reads;
    `batch`: a VLM teacher asking through its provider's batch API)."""
    from hiddenemo.data.manifest import DatasetInfo

    info = DatasetInfo.load(work)                 # a missing dataset.json is a UserError (ManifestError)
    if batch and name not in ("gemini", "openai"):
        raise UserError(f"--batch asks a provider's batch API: only the gemini and openai teachers have one, not {name}")
    if name == "behaviour":
        from hiddenemo.teacher.behaviour import BehaviourTeacher
        return BehaviourTeacher(work, info)
    if name == "annotations":
        from hiddenemo.teacher.annotations import AnnotationsTeacher
        return AnnotationsTeacher(work, info, mode=annotation_mode)
    if name == "gemini":
        from hiddenemo.teacher.gemini import GeminiTeacher
        return GeminiTeacher(work, info, vlm or VlmConfig(), connect, batch)
    if name == "openai":
        from hiddenemo.teacher.openai_compat import OpenAITeacher
        return OpenAITeacher(work, info, vlm or VlmConfig(), connect, batch)
    if name == "import":
        from hiddenemo.teacher.imported import ImportedTeacher
        return ImportedTeacher(work, info, source)
    raise UserError(f"unknown teacher {name!r}: choose one of {', '.join(TEACHERS)}")


def teacher_kind(model: str) -> str:
    """Which teacher wrote verdicts with this `model` field: the offline ones name a fixed model; a
    VLM's is its model name (gemini-* from the gemini teacher, anything else an OpenAI-compatible one)."""
    offline = {"keypoint-rules": "behaviour", "gesture-annotations": "annotations", "imported": "import"}
    return offline.get(model) or ("gemini" if model.startswith("gemini") else "openai")
