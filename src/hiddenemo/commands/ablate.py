"""`hiddenemo ablate`: the paper's ablation tables as seeded studies."""
from __future__ import annotations

from pathlib import Path

from hiddenemo.errors import not_built


def ablate(work: Path, study: str = "pose-encoders", seeds: int = 3) -> None:
    """Run a study (pose-encoders, frame-encoders, strategy) over seeds (not built yet).

    Args:
        work: The workspace directory.
        study: Study name.
        seeds: Number of seeds per variant.
    """
    raise not_built("ablate", 6)
