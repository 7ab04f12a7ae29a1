"""Trading performance metrics: pure functions over equity curves and per-period returns."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def max_drawdown(equity: Sequence[float] | np.ndarray) -> float:
    """Largest peak-to-trough fall, as a positive fraction of the peak (0.25 = −25 %)."""
    eq = np.asarray(equity, dtype=np.float64)
    if eq.size == 0:
        return 0.0
    peaks = np.maximum.accumulate(eq)
    return float(np.max((peaks - eq) / peaks))


def period_returns(equity: Sequence[float] | np.ndarray) -> np.ndarray:
    eq = np.asarray(equity, dtype=np.float64)
    if eq.size < 2:
        return np.empty(0)
    return np.asarray(eq[1:] / eq[:-1] - 1.0)


def sharpe(returns: Sequence[float] | np.ndarray, periods_per_year: float) -> float:
    """Annualised Sharpe ratio of per-period simple returns (risk-free rate 0); 0 when flat."""
    r = np.asarray(returns, dtype=np.float64)
    if r.size < 2 or float(r.std(ddof=1)) == 0.0:
        return 0.0
    return float(r.mean() / r.std(ddof=1) * math.sqrt(periods_per_year))


def total_return(equity: Sequence[float] | np.ndarray) -> float:
    """Final over initial equity, minus one (fraction)."""
    if len(equity) == 0:
        return 0.0
    return float(equity[-1] / equity[0] - 1.0)
