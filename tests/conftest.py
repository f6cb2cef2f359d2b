"""Shared fixtures. Tests make their own small data; the real iMiGUE files are read in place from
`../shared/data/imigue` and tests that need them skip when they are absent."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
IMIGUE = Path(os.environ.get("HIDDENEMO_IMIGUE", ROOT.parent / "shared" / "data" / "imigue"))

# Keep the test suite off the network and from fighting over the 2 cores.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("OMP_NUM_THREADS", "2")


@pytest.fixture
def imigue_dir() -> Path:
    """The shared iMiGUE reference files, or a skip with the reason."""
    if not (IMIGUE / "labels_masked.csv").exists():
        pytest.skip(f"iMiGUE reference data not found at {IMIGUE} (only on the team's machines)")
    return IMIGUE


@pytest.fixture
def work(tmp_path: Path) -> Path:
    """An empty workspace directory."""
    path = tmp_path / "work"
    path.mkdir()
    return path
