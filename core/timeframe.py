"""Candle intervals: the one place that knows what '1h' means (Kraken's OHLC intervals).

Everything that steps through candles — the store, the importers, ingest, CV folds, the engine's
stale-data rule, Sharpe annualisation — converts a timeframe name here.
"""

from __future__ import annotations

import pandas as pd

TIMEFRAMES = {"1m": "1min", "5m": "5min", "15m": "15min", "30m": "30min", "1h": "1h", "4h": "4h",
              "1d": "1D", "1w": "7D", "15d": "15D"}
"""Kraken's OHLC intervals by their ccxt names (Kraken's own: 1, 5, 15, 30, 60, 240, 1440, 10080, 21600)."""

YEAR = pd.Timedelta(days=365)


class TimeframeError(ValueError):
    """A timeframe name Kraken does not offer."""


def to_timedelta(timeframe: str) -> pd.Timedelta:
    try:
        return pd.Timedelta(TIMEFRAMES[timeframe])
    except KeyError:
        raise TimeframeError(
            f"unknown timeframe {timeframe!r}; Kraken intervals are {', '.join(TIMEFRAMES)}") from None


def to_ms(timeframe: str) -> int:
    """Candle length in milliseconds (the engine's and the exchange's clock unit)."""
    return int(to_timedelta(timeframe) / pd.Timedelta(milliseconds=1))


def periods_per_year(timeframe: str) -> float:
    """Candles in 365 days: how per-candle Sharpe and Sortino are annualised."""
    return float(YEAR / to_timedelta(timeframe))


def name_of(step: pd.Timedelta) -> str | None:
    """'1h' for a one-hour step; None when the step is no Kraken interval."""
    return next((name for name in TIMEFRAMES if to_timedelta(name) == step), None)
