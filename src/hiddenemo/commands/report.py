"""`hiddenemo report`: one self-contained HTML page per run."""
from __future__ import annotations

from pathlib import Path


def report(work: Path, run: str = "default") -> None:
    """Write one self-contained HTML page for a run: WORK/runs/RUN/report.html.

    Metrics with intervals, ROC/PR curves, confusion matrix, per-video votes, training curves, teacher
    vs student, and the data (video lengths, keypoint coverage, a frame with its skeleton). Missing
    pieces are noted on the page, not fatal.

    Args:
        work: The workspace directory.
        run: Name of the run under WORK/runs.
    """
    from hiddenemo.report.page import build_report

    out = build_report(work, run)
    print(f"report: {out}")
