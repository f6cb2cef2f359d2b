"""`hiddenemo report`: one self-contained HTML page per run."""
from __future__ import annotations

from pathlib import Path

from hiddenemo.errors import not_built


def report(work: Path, run: str = "default") -> None:
    """Write WORK/runs/RUN/report.html with curves, confusion matrix and the data (not built yet).

    Args:
        work: The workspace directory.
        run: Name of the run.
    """
    raise not_built("report", 6)
