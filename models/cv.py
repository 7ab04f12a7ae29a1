"""Purged walk-forward cross-validation over time-stamped rows (pure, no I/O).

Why purged: a row's label is the return over the next `horizon` candles, so a training row that sits
less than `horizon` candles before the test block already "knows" part of the test period. Why an
embargo on top: features and returns are serially correlated beyond the label window, so a few more
candles are dropped as a buffer. Walk-forward (expanding window): every fold trains strictly on the
past, exactly as the model will be used.

Rows are located by their candle index on a common time grid (`candle_index`), so several pairs stacked
in one table are purged together: an XRP row never trains on a window that overlaps a DOGE test row.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Fold:
    """Row positions (into the table the candle indices came from) used to train and to test one fold."""

    train: np.ndarray
    test: np.ndarray


def epoch_ns(dates: np.ndarray) -> np.ndarray:
    """Nanoseconds since the epoch (UTC) of datetime-like values, tz-aware or naive-as-UTC."""
    utc = pd.DatetimeIndex(pd.to_datetime(np.asarray(dates), utc=True)).as_unit("ns").tz_localize(None)
    return utc.to_numpy(dtype="datetime64[ns]").astype(np.int64)


def candle_index(dates: np.ndarray, candle: np.timedelta64) -> np.ndarray:
    """Integer candle number of each row since the earliest row (0, 1, 2, … on the `candle` grid)."""
    ns = epoch_ns(dates)
    if ns.size == 0:
        return np.empty(0, dtype=np.int64)
    return ((ns - ns.min()) // int(np.timedelta64(candle, "ns").astype(np.int64))).astype(np.int64)


def purged_walk_forward(index: np.ndarray, n_folds: int, horizon: int, embargo: int) -> list[Fold]:
    """Expanding-window folds: the candle range is cut into `n_folds + 1` equal blocks; fold k tests on
    block k and trains on every row at least `horizon + embargo + 1` candles before the block's start,
    so no training row lies within `horizon + embargo` candles of any test row.

    `index` is each row's candle number (see `candle_index`); units of horizon and embargo: candles.
    Raises ValueError naming the problem when a fold would have no training or no test rows."""
    if n_folds < 1:
        raise ValueError(f"cv.n_folds must be ≥ 1 (got {n_folds})")
    idx = np.asarray(index, dtype=np.int64)
    if idx.size == 0:
        raise ValueError("purged walk-forward CV: no rows to split")
    edges = np.linspace(int(idx.min()), int(idx.max()) + 1, n_folds + 2).round().astype(np.int64)
    gap = horizon + embargo
    return [_fold(idx, int(edges[k]), int(edges[k + 1]), gap, k) for k in range(1, n_folds + 1)]


def _fold(idx: np.ndarray, start: int, stop: int, gap: int, k: int) -> Fold:
    """One fold: test = candles [start, stop); train = candles < start − gap."""
    test = np.flatnonzero((idx >= start) & (idx < stop))
    train = np.flatnonzero(idx < start - gap)
    if test.size == 0 or train.size == 0:
        raise ValueError(
            f"purged walk-forward CV fold {k}: {train.size} training and {test.size} test rows "
            f"(candles {start}..{stop - 1}, purge+embargo {gap}): lower cv.n_folds or provide more history")
    return Fold(train=train, test=test)
