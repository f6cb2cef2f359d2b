"""`hiddenemo extract`: person boxes, keypoints and frame embeddings for every video."""
from __future__ import annotations

from pathlib import Path

from hiddenemo.errors import not_built


def extract(work: Path) -> None:
    """Turn every video of the manifest into box.npy, pose.npy and frames.npy (not built yet).

    Args:
        work: The workspace directory made by `hiddenemo dataset`.
    """
    raise not_built("extract", 3)
