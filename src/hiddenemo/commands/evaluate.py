"""`hiddenemo evaluate`: metrics with confidence intervals beside baselines."""
from __future__ import annotations

from pathlib import Path

from hiddenemo.errors import not_built


def evaluate(work: Path, run: str = "default", split: str = "test") -> None:
    """Accuracy, balanced accuracy, macro-F1, AUROC with bootstrap CIs, and baselines (not built yet).

    Args:
        work: The workspace directory.
        run: Name of the run.
        split: Which split to evaluate.
    """
    raise not_built("evaluate", 9)
