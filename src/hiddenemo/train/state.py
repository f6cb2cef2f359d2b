"""A fit's seeds and its `state.json` (the epochs done and their history, written by
`module.EpochCheckpoint`), without Lightning: the `train` process that hands its fits to worker
processes reads them, and importing Lightning would cost it seconds before the first fit starts."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path


def epoch_seed(seed: int, tag: str, epoch: int) -> int:
    digest = hashlib.sha256(f"{seed}/{tag}/{epoch}".encode()).digest()
    return int.from_bytes(digest[:4], "little")


def read_state(directory: Path) -> dict:
    path = Path(directory) / "state.json"
    return json.loads(path.read_text()) if path.exists() else {"epochs_done": 0, "history": []}
