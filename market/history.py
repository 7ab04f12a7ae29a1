"""History importers: Kraken OHLCVT CSV, CryptoDataDownload CSV, freqtrade feather/parquet → one schema.

Every importer only reshapes; `market.frame.check_candle_frame` then checks, and the quality gate
decides. Repairs are explicit rules, each reported as a sentence.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

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
        return "kraken_ohlcvt"
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


def import_file(path: str | Path) -> ImportResult:
    """Read any supported candle file into the canonical frame (checked)."""
    path = Path(path)
    if not path.exists():
        raise CandleDataError(f"{path}: file not found")
    fmt = detect_format(path)
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
