"""History importers: Kraken OHLCVT CSV, Kraken trades CSV (aggregated into candles), CryptoDataDownload
CSV, freqtrade feather/parquet → one schema.

Every importer only reshapes; `market.frame.check_candle_frame` then checks, and the quality gate
decides. Repairs are explicit rules, each reported as a sentence.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from market.frame import CandleDataError, check_candle_frame

KRAKEN_OHLCVT = ("time", "open", "high", "low", "close", "volume", "trades")


@dataclass(frozen=True)
class ImportResult:
    frame: pd.DataFrame
    format: str
    repairs: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def detect_format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".feather"):
        return suffix.lstrip(".")
    if suffix != ".csv":
        raise CandleDataError(f"{path}: unknown candle file format {suffix!r} (parquet, feather or csv)")
    with path.open() as fh:
        first = fh.readline()
    if "cryptodatadownload" in first.lower():
        return "cdd"
    head = first.strip().split(",")
    if head and head[0].strip().lower() in ("time", "timestamp"):
        return "kraken_ohlcvt"
    try:
        float(head[0])
        return "kraken_trades" if len(head) == 3 else "kraken_ohlcvt"
    except ValueError:
        raise CandleDataError(f"{path}: unknown CSV layout (first line {first.strip()[:80]!r})") from None


def _freqtrade(path: Path, fmt: str) -> pd.DataFrame:
    frame = pd.read_parquet(path) if fmt == "parquet" else pd.read_feather(path)
    return frame


def _kraken_ohlcvt(path: Path) -> pd.DataFrame:
    with path.open() as fh:
        has_header = not fh.readline().split(",")[0].strip().replace(".", "").isdigit()
    frame = pd.read_csv(path, header=0 if has_header else None, names=list(KRAKEN_OHLCVT))
    frame.insert(0, "date", pd.to_datetime(frame.pop("time"), unit="s", utc=True))
    return frame


def _cdd(path: Path) -> pd.DataFrame:
    raw = pd.read_csv(path, skiprows=1)
    volume_col = next((c for c in raw.columns if c.startswith("Volume") and not c.endswith("USD")), None)
    if volume_col is None:
        raise CandleDataError(f"{path}: CryptoDataDownload file without a base volume column")
    dates = pd.to_datetime(raw["Date"], format="%Y-%m-%d %I-%p", utc=True)
    return pd.DataFrame({"date": dates, "open": raw["Open"], "high": raw["High"], "low": raw["Low"],
                         "close": raw["Close"], "volume": raw[volume_col]})


def trades_to_candles(ts_ms: np.ndarray, price: np.ndarray, amount: np.ndarray, step_ms: int) -> pd.DataFrame:
    """Trades (epoch ms, quote per base, base amount; time-ordered) → one candle per bucket that has
    trades: open = first price, high/low = extremes, close = last, volume = Σ amount, trades = count."""
    buckets = ts_ms // step_ms * step_ms
    starts = np.flatnonzero(np.concatenate([[True], buckets[1:] != buckets[:-1]])) if len(buckets) else np.array([])
    ends = np.append(starts[1:], len(buckets)).astype(int)
    starts = starts.astype(int)
    frame = pd.DataFrame({
        "date": pd.to_datetime(buckets[starts], unit="ms", utc=True),
        "open": price[starts], "high": np.maximum.reduceat(price, starts) if len(starts) else [],
        "low": np.minimum.reduceat(price, starts) if len(starts) else [], "close": price[ends - 1],
        "volume": np.add.reduceat(amount, starts) if len(starts) else [], "trades": ends - starts,
    })
    return frame.astype({"open": "float64", "high": "float64", "low": "float64", "close": "float64",
                         "volume": "float64", "trades": "int64"})


def _kraken_trades(path: Path, timeframe: str | None) -> tuple[pd.DataFrame, str]:
    """Kraken's trade-history CSV (`unix_seconds,price,volume`, no header, oldest first) → candles."""
    from market.frame import timeframe_to_timedelta

    if timeframe is None:
        raise CandleDataError(f"{path}: a Kraken trades file has no timeframe of its own; pass --timeframe")
    raw = pd.read_csv(path, header=None, names=["time", "price", "volume"])
    values = raw.apply(pd.to_numeric, errors="coerce")
    bad = values.isna().any(axis=1).to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise CandleDataError(f"{path}: row {row}: {raw.iloc[row].tolist()} is not time,price,volume numbers")
    ts = (values["time"].to_numpy() * 1000).round().astype(np.int64)
    if (np.diff(ts) < 0).any():
        row = int(np.flatnonzero(np.diff(ts) < 0)[0]) + 1
        raise CandleDataError(f"{path}: row {row}: trades not in time order")
    step_ms = int(timeframe_to_timedelta(timeframe) / pd.Timedelta(milliseconds=1))
    candles = trades_to_candles(ts, values["price"].to_numpy(float), values["volume"].to_numpy(float), step_ms)
    return candles, f"{path}: aggregated {len(raw)} trades into {len(candles)} {timeframe} candles"


def _sort_and_dedupe(frame: pd.DataFrame, source: str) -> tuple[pd.DataFrame, list[str]]:
    repairs = []
    if not frame["date"].is_monotonic_increasing:
        frame = frame.sort_values("date", kind="stable")
        repairs.append(f"{source}: sorted rows by date (file was not in ascending order)")
    dupes = frame.duplicated(keep="first")
    if dupes.any():
        frame = frame[~dupes]
        repairs.append(f"{source}: dropped {int(dupes.sum())} exact duplicate row(s)")
    return frame.reset_index(drop=True), repairs


def infer_timeframe(frame: pd.DataFrame, source: str) -> str:
    """The Kraken interval name of the most common step between candles (a few gaps do not matter)."""
    from market.frame import _TIMEFRAMES, timeframe_to_timedelta

    if len(frame) < 2:
        raise CandleDataError(f"{source}: fewer than 2 candles, cannot tell the timeframe (pass --timeframe)")
    step = frame["date"].diff().iloc[1:].mode().iloc[0]
    for name in _TIMEFRAMES:
        if timeframe_to_timedelta(name) == step:
            return name
    raise CandleDataError(f"{source}: candles {step} apart match no Kraken interval ({', '.join(_TIMEFRAMES)})")


def import_file(path: str | Path, timeframe: str | None = None) -> ImportResult:
    """Read any supported candle file into the canonical frame (checked). `timeframe` is needed only
    for a Kraken trades file, whose trades are aggregated into candles of that interval."""
    path = Path(path)
    if not path.exists():
        raise CandleDataError(f"{path}: file not found")
    fmt = detect_format(path)
    if fmt == "kraken_trades":
        candles, note = _kraken_trades(path, timeframe)
        return ImportResult(check_candle_frame(candles, str(path)), fmt, [note])
    try:
        readers = {"parquet": lambda: _freqtrade(path, "parquet"), "feather": lambda: _freqtrade(path, "feather"),
                   "kraken_ohlcvt": lambda: _kraken_ohlcvt(path), "cdd": lambda: _cdd(path)}
        frame = readers[fmt]()
    except CandleDataError:
        raise
    except (ValueError, KeyError, OSError) as err:
        raise CandleDataError(f"{path}: cannot read as {fmt}: {err}") from None
    if "date" in frame and len(frame):
        frame, repairs = _sort_and_dedupe(frame, str(path))
    else:
        repairs = []
    return ImportResult(check_candle_frame(frame, str(path)), fmt, repairs)
