"""`hiddenemo dataset imigue|folder|synthetic`: create a workspace."""
from __future__ import annotations

from pathlib import Path

from hiddenemo.errors import not_built


def imigue(labels: Path, splits: Path, out: Path, protocol: str = "miga") -> None:
    """Workspace from iMiGUE's annotation CSV and split table (not built yet).

    Args:
        labels: iMiGUE annotation CSV (labels_20200831.csv format).
        splits: Split table CSV.
        out: Workspace directory to create.
        protocol: miga (255 train / 104 test) or cvpr21.
    """
    raise not_built("dataset imigue", 2)


def folder(videos: Path, labels: Path, out: Path) -> None:
    """Workspace from a folder of videos and a CSV video_id,label[,split,subject_id] (not built yet).

    Args:
        videos: Folder of video files.
        labels: CSV of labels.
        out: Workspace directory to create.
    """
    raise not_built("dataset folder", 2)

