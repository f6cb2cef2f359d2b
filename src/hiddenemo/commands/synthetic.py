"""`hiddenemo dataset synthetic`: a seeded synthetic interview dataset in the real formats."""
from __future__ import annotations

from pathlib import Path

from hiddenemo.errors import not_built


def synthetic(out: Path, seed: int = 0) -> None:
    """A seeded synthetic interview dataset in the real formats (not built yet).

    Args:
        out: Where the dataset goes.
        seed: Random seed.
    """
    raise not_built("dataset synthetic", 6)
