"""Frame sampling as pure, seeded functions.

A video of `n_available` rows gives `n` positions, one per uniform segment: a random offset inside
each segment in training (the paper's resampling augmentation), a fixed one at evaluation. A
minimum gap (in rows) between consecutive picks is kept by construction: segment i spans
[s_i, s_{i+1}) and the pick inside it stays at least `gap` rows before the next segment starts.
Short videos give fewer picks, padded to `n` with a validity mask.
"""
from __future__ import annotations

import hashlib

import numpy as np


def sample_indices(n_available: int, n: int, *, train: bool, rng: np.random.Generator | None = None,
                   gap: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """(idx (n,) int64, valid (n,) bool). `gap` is the minimum difference between chosen rows."""
    if n <= 0:
        raise ValueError(f"number of samples must be positive, got {n}")
    gap = max(int(gap), 1)
    idx = np.zeros(n, dtype=np.int64)
    valid = np.zeros(n, dtype=bool)
    if n_available <= 0:
        return idx, valid
    n_eff = max(1, min(n, n_available // gap))
    starts = np.floor(np.arange(n_eff + 1) * (n_available / n_eff)).astype(np.int64)
    width = np.diff(starts)                                  # >= gap, since n_eff <= n_available // gap
    room = np.maximum(width - gap, 0)                        # how far a pick may move inside its segment
    if train:
        if rng is None:
            raise ValueError("training samples need an explicit random generator")
        jitter = (rng.random(n_eff) * (room + 1)).astype(np.int64)
    else:
        jitter = room // 2
    picks = np.minimum(starts[:-1] + jitter, n_available - 1)
    idx[:n_eff], valid[:n_eff] = picks, True
    idx[n_eff:] = picks[-1]
    return idx, valid


def gap_in_rows(positions: np.ndarray | None, min_raw_gap: int) -> int:
    """Rows needed between picks so that their raw frame numbers differ by more than `min_raw_gap`
    (the paper's "> 5 frames"), given the raw frame number of each stored row."""
    if min_raw_gap <= 0:
        return 1
    if positions is None or len(positions) < 2:
        return min_raw_gap + 1
    stride = max(float(np.median(np.diff(np.asarray(positions, dtype=np.int64)))), 1.0)
    return int(min_raw_gap // stride) + 1


def video_rng(seed: int, video_id: str, draw: int) -> np.random.Generator:
    """A generator that depends only on (seed, video, draw): the same run makes the same samples in
    any order, on any worker."""
    digest = int.from_bytes(hashlib.sha256(str(video_id).encode()).digest()[:8], "little")
    return np.random.default_rng([int(seed), digest, int(draw)])


def voting_samples(n_available: int, n: int, k: int, *, seed: int, video_id: str,
                   gap: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """k samplings for voting: the first is the fixed evaluation one, the rest are seeded random
    draws. Returns (idx (k, n), valid (k, n))."""
    draws = [sample_indices(n_available, n, train=False, gap=gap)]
    draws += [sample_indices(n_available, n, train=True, gap=gap, rng=video_rng(seed, video_id, d))
              for d in range(1, k)]
    return np.stack([d[0] for d in draws]), np.stack([d[1] for d in draws])
