"""Purged walk-forward CV on the real candle calendar of the bundled sample (two pairs stacked)."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pandas as pd
import pytest

from models.cv import candle_index, purged_walk_forward

HOUR = np.timedelta64(1, "h")


def _two_pair_index(frame: pd.DataFrame) -> np.ndarray:
    """XRP and DOGE rows stacked as the training table stacks them (same calendar, pair after pair)."""
    dates = frame["date"].to_numpy()
    return candle_index(np.concatenate([dates, dates]), HOUR)


def _nearest_distance(train: np.ndarray, test: np.ndarray) -> int:
    """Smallest |train candle − test candle| over all pairs of rows (both directions in time)."""
    u = np.unique(train)
    pos = np.clip(np.searchsorted(u, np.unique(test)), 1, len(u) - 1)
    t = np.unique(test)
    return int(np.minimum(np.abs(t - u[pos - 1]), np.abs(t - u[pos])).min())


@pytest.mark.parametrize(("n_folds", "horizon", "embargo"), [(4, 4, 24), (5, 4, 4), (2, 12, 48), (8, 1, 1)])
def test_no_train_row_within_horizon_plus_embargo_of_any_test_row(
        xrp_1h: pd.DataFrame, n_folds: int, horizon: int, embargo: int) -> None:
    idx = _two_pair_index(xrp_1h)
    folds = purged_walk_forward(idx, n_folds, horizon, embargo)
    assert len(folds) == n_folds
    for fold in folds:
        assert _nearest_distance(idx[fold.train], idx[fold.test]) > horizon + embargo
        assert idx[fold.train].max() < idx[fold.test].min()  # walk-forward: only the past trains


def test_the_gap_is_exactly_the_purge_plus_embargo_not_more(xrp_1h: pd.DataFrame) -> None:
    idx = _two_pair_index(xrp_1h)
    for fold in purged_walk_forward(idx, 4, 4, 24):
        assert idx[fold.test].min() - idx[fold.train].max() == 4 + 24 + 1


def test_test_blocks_are_disjoint_ordered_and_expanding(xrp_1h: pd.DataFrame) -> None:
    idx = _two_pair_index(xrp_1h)
    folds = purged_walk_forward(idx, 4, 4, 24)
    for a, b in pairwise(folds):
        assert idx[a.test].max() < idx[b.test].min()
        assert set(a.train) < set(b.train)
    tested = np.concatenate([f.test for f in folds])
    assert len(tested) == len(set(tested.tolist()))
    both_pairs = len(xrp_1h)
    assert all(((f.test < both_pairs).any() and (f.test >= both_pairs).any()) for f in folds)


def test_candle_index_follows_the_calendar_through_gaps() -> None:
    dates = pd.to_datetime(["2024-01-01 00:00", "2024-01-01 01:00", "2024-01-01 05:00"], utc=True).to_numpy()
    assert candle_index(dates, HOUR).tolist() == [0, 1, 5]


def test_too_many_folds_for_the_history_is_a_clear_error() -> None:
    idx = np.arange(60)
    with pytest.raises(ValueError, match=r"fold 1: 0 training .*lower cv.n_folds"):
        purged_walk_forward(idx, 5, 4, 24)
