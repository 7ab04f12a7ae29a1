"""The one candle frame schema used across the project, and its checks.

A candle frame is a pandas DataFrame with `date` (datetime64[ns, UTC], candle open time) and
`open, high, low, close, volume` (float64), optional `trades` (int64); ascending, unique dates.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.types import Candle

CANDLE_COLUMNS = ("date", "open", "high", "low", "close", "volume")
PRICE_COLUMNS = ("open", "high", "low", "close")


class CandleDataError(ValueError):
    """Candles that cannot be trusted; the message names the source, the row and the problem."""


def _first_bad_row(mask: np.ndarray | pd.Series, frame: pd.DataFrame) -> str:
    idx = int(np.flatnonzero(np.asarray(mask))[0])
    return f"row {idx} ({frame['date'].iloc[idx] if 'date' in frame else '?'})"


def check_candle_frame(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    """Validate the schema and basic sanity; returns a clean copy with exact dtypes."""
    missing = [c for c in CANDLE_COLUMNS if c not in frame.columns]
    if missing:
        raise CandleDataError(f"{source}: missing column(s) {missing}; expected {list(CANDLE_COLUMNS)}")
    extra = [c for c in frame.columns if c not in (*CANDLE_COLUMNS, "trades")]
    if extra:
        raise CandleDataError(f"{source}: unexpected column(s) {extra}")
    if frame.empty:
        raise CandleDataError(f"{source}: no candles")
    out = frame.loc[:, [c for c in frame.columns]].copy()
    if not isinstance(out["date"].dtype, pd.DatetimeTZDtype):
        raise CandleDataError(f"{source}: column 'date' must be timezone-aware UTC timestamps, got {out['date'].dtype}")
    out["date"] = out["date"].dt.tz_convert("UTC").astype("datetime64[ns, UTC]")
    for col in (*PRICE_COLUMNS, "volume"):
        numeric = pd.to_numeric(out[col], errors="coerce")
        bad = numeric.isna() & out[col].notna()
        if bad.any():
            value = out[col][bad].iloc[0]
            raise CandleDataError(f"{source}: {_first_bad_row(bad, out)}: {col}={value!r} is not a number")
        out[col] = numeric.astype("float64")
    values = out[[*PRICE_COLUMNS, "volume"]].to_numpy()
    nonfinite = ~np.isfinite(values).all(axis=1)
    if nonfinite.any():
        raise CandleDataError(f"{source}: {_first_bad_row(nonfinite, out)}: NaN or infinite value")
    nonpositive = (out[list(PRICE_COLUMNS)] <= 0).any(axis=1)
    if nonpositive.any():
        raise CandleDataError(f"{source}: {_first_bad_row(nonpositive, out)}: prices must be > 0")
    if (out["volume"] < 0).any():
        raise CandleDataError(f"{source}: {_first_bad_row(out['volume'] < 0, out)}: negative volume")
    body_top, body_bottom = out[["open", "close"]].max(axis=1), out[["open", "close"]].min(axis=1)
    inverted = (out["high"] < body_top) | (out["low"] > body_bottom) | (out["high"] < out["low"])
    if inverted.any():
        raise CandleDataError(f"{source}: {_first_bad_row(inverted, out)}: high/low do not bracket open/close")
    steps = out["date"].diff().iloc[1:]
    if (steps <= pd.Timedelta(0)).any():
        where = _first_bad_row(np.concatenate([[False], (steps <= pd.Timedelta(0)).to_numpy()]), out)
        raise CandleDataError(f"{source}: {where}: dates not strictly increasing (duplicate or out of order)")
    return out.reset_index(drop=True)


def to_candles(frame: pd.DataFrame) -> list[Candle]:
    """Frame → Candle list (ts in epoch ms) for the trader engine."""
    ts = (frame["date"].astype("int64") // 1_000_000).to_numpy().tolist()
    cols = [frame[c].to_numpy(dtype=np.float64).tolist() for c in ("open", "high", "low", "close", "volume")]
    return [Candle(t, o, h, lo, c, v) for t, o, h, lo, c, v in zip(ts, *cols, strict=True)]
