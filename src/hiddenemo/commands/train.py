"""`hiddenemo train` and `hiddenemo predict`: two-stage weak-to-strong training, voting inference."""
from __future__ import annotations

from pathlib import Path

from hiddenemo.errors import not_built


def train(work: Path, run: str = "default") -> None:
    """Stage 1 per modality, then stage 2 with pseudo-labels (not built yet).

    Args:
        work: The workspace directory.
        run: Name of the run directory under WORK/runs.
    """
    raise not_built("train", 5)


def predict(work: Path, run: str = "default", split: str = "test") -> None:
    """Voting inference; writes WORK/runs/RUN/predictions.csv (not built yet).

    Args:
        work: The workspace directory.
        run: Name of the trained run.
        split: Which split to predict.
    """
    raise not_built("predict", 5)
