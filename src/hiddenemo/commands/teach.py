"""`hiddenemo teach` and `hiddenemo embed`: a teacher's verdicts and their text embeddings."""
from __future__ import annotations

from pathlib import Path

from hiddenemo.errors import not_built


def teach(work: Path, teacher: str = "behaviour") -> None:
    """Ask a teacher (a VLM, or the offline rule-based one) about every video (not built yet).

    Args:
        work: The workspace directory.
        teacher: Teacher name: behaviour, annotations, gemini or openai.
    """
    raise not_built("teach", 4)


def embed(work: Path, encoder: str = "minilm") -> None:
    """Encode the teacher's reasoning texts into the `text` modality (not built yet).

    Args:
        work: The workspace directory.
        encoder: Text encoder name or path.
    """
    raise not_built("embed", 4)
