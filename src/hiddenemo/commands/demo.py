"""`hiddenemo demo`: the whole pipeline on a built-in synthetic dataset."""
from __future__ import annotations

from pathlib import Path

from hiddenemo.errors import not_built


def demo(out: Path = Path("demo-work")) -> None:
    """From nothing to a report on synthetic interview videos (not built yet).

    Args:
        out: Where the demo workspace goes.
    """
    raise not_built("demo", 6)
