"""Sampling properties: count, minimum gap, determinism, masks for short videos, voting draws."""
from __future__ import annotations

import numpy as np
import pytest

from hiddenemo.data.sampling import gap_in_rows, sample_indices, video_rng, voting_samples


@pytest.mark.parametrize("n_available,n,gap", [(20000, 4000, 1), (20000, 800, 6), (1000, 800, 1),
                                               (5000, 800, 6), (4800, 800, 6), (801, 800, 1)])
@pytest.mark.parametrize("train", [True, False])
def test_count_gap_order_and_range(n_available, n, gap, train):
    rng = np.random.default_rng(0)
    idx, valid = sample_indices(n_available, n, train=train, rng=rng, gap=gap)
    assert idx.shape == valid.shape == (n,) and idx.dtype == np.int64
    picks = idx[valid]
    assert len(picks) == min(n, n_available // gap)
    assert picks.min() >= 0 and picks.max() < n_available
    assert (np.diff(picks) >= gap).all()


def test_one_pick_per_uniform_segment():
    idx, valid = sample_indices(100, 10, train=True, rng=np.random.default_rng(3))
    assert valid.all()
    np.testing.assert_array_equal(idx // 10, np.arange(10))
    # evaluation: the middle of each segment, every time
    idx, _ = sample_indices(100, 10, train=False)
    np.testing.assert_array_equal(idx, np.arange(10) * 10 + 4)


def test_short_video_is_padded_with_a_mask():
    idx, valid = sample_indices(5, 8, train=False)
    np.testing.assert_array_equal(valid, [True] * 5 + [False] * 3)
    np.testing.assert_array_equal(idx[:5], np.arange(5))
    assert (idx[5:] == idx[4]).all()                     # padding points at a real row
    idx, valid = sample_indices(12, 8, train=False, gap=6)  # the gap leaves room for two picks
    assert valid.sum() == 2 and idx[1] - idx[0] >= 6
    idx, valid = sample_indices(0, 4, train=False)
    assert not valid.any()


def test_training_draws_are_seeded_and_vary():
    a = sample_indices(10000, 50, train=True, rng=video_rng(1, "v", 0))[0]
    b = sample_indices(10000, 50, train=True, rng=video_rng(1, "v", 0))[0]
    c = sample_indices(10000, 50, train=True, rng=video_rng(1, "v", 1))[0]
    d = sample_indices(10000, 50, train=True, rng=video_rng(1, "w", 0))[0]
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c) and not np.array_equal(a, d)
    with pytest.raises(ValueError, match="random generator"):
        sample_indices(100, 5, train=True)
    with pytest.raises(ValueError):
        sample_indices(100, 0, train=False)


def test_voting_samples_are_distinct_seeded_and_start_with_the_fixed_one():
    idx, valid = voting_samples(20000, 400, 5, seed=7, video_id="298", gap=6)
    assert idx.shape == valid.shape == (5, 400) and valid.all()
    np.testing.assert_array_equal(idx[0], sample_indices(20000, 400, train=False, gap=6)[0])
    assert len({row.tobytes() for row in idx}) == 5
    again, _ = voting_samples(20000, 400, 5, seed=7, video_id="298", gap=6)
    np.testing.assert_array_equal(idx, again)
    other, _ = voting_samples(20000, 400, 5, seed=8, video_id="298", gap=6)
    assert not np.array_equal(idx[1:], other[1:])
    assert all((np.diff(row) >= 6).all() for row in idx)


def test_gap_in_rows_turns_raw_frame_gaps_into_row_gaps():
    assert gap_in_rows(None, 5) == 6                     # full-rate rows: > 5 frames apart
    assert gap_in_rows(np.arange(0, 100, 2), 5) == 3     # every 2nd frame stored: 3 rows = 6 frames
    assert gap_in_rows(np.arange(0, 100, 10), 5) == 1
    assert gap_in_rows(np.arange(10), 0) == 1
