"""History importers: Kraken OHLCVT CSV, Kraken trades CSV (aggregated into candles), CryptoDataDownload
CSV, freqtrade feather/parquet/json → one schema.

Files are read by their columns, not by one fixed header line: every source has shipped several
vintages (CryptoDataDownload alone: a banner line or none, `Date` or `date`, a unix column in seconds
or milliseconds or none, `07-PM` or ISO dates, newest- or oldest-first, `Volume XRP`/`Volume USD`).
Timestamps are inferred (an epoch column's unit by magnitude, date text in any of the known formats)
and checked for damage before anything else sees them: precision lost, times rounded into duplicates,
an epoch column shifted against its own date column. A damaged file is refused, never repaired.

Every importer only reshapes; `market.frame.check_candle_frame` then checks, and the quality gate
decides. Repairs are explicit rules, each reported as a sentence.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from core.timeframe import TIMEFRAMES, name_of, to_ms
from market.frame import PRICE_COLUMNS, CandleDataError, check_candle_frame

KRAKEN_OHLCVT = ("time", "open", "high", "low", "close", "volume", "trades")
KRAKEN_TRADES = ("time", "price", "volume")
FREQTRADE_JSON = ("date", "open", "high", "low", "close", "volume")

_EPOCH_NAMES = {"unix", "unix timestamp", "unix time", "epoch", "ts"}    # always a unix time
_TIME_NAMES = {"date", "datetime", "time", "timestamp", "open time", "date utc", "time utc"}  # by content
_TRADES_NAMES = {"trades", "tradecount", "trade count", "trades count", "count", "number of trades"}
_SYMBOL_NAMES = {"symbol", "pair", "ticker", "market"}
_QUOTES = ("USDT", "USDC", "BUSD", "ZUSD", "ZEUR", "USD", "EUR", "GBP", "JPY", "CAD", "CHF", "AUD", "XBT", "BTC",
           "ETH")                                     # a symbol's quote suffix, tried in this order
_FIAT_AND_STABLE = {"USD", "USDT", "USDC", "BUSD", "TUSD", "DAI", "EUR", "GBP", "JPY", "CAD", "CHF", "AUD"}
_ALIASES = {"XBT": "BTC", "XXBT": "BTC", "XDG": "DOGE", "XXDG": "DOGE", "XXRP": "XRP", "XETH": "ETH",
            "ZUSD": "USD", "ZEUR": "EUR"}                               # Kraken codes → the common ones
_QUOTE_VOLUME = "(quote)"                  # the currency of `Volume To`: never the base coin
_UNIT_LIMITS = (1e11, 1e14, 1e17)     # |epoch| below: seconds, milliseconds, microseconds; above: ns
_UNITS = (("s", 10**9), ("ms", 10**6), ("µs", 10**3), ("ns", 1))       # name, ns per unit
_EARLIEST = pd.Timestamp("2000-01-01", tz="UTC").value                  # ns; no candle is older
# date text formats, tried in order, each with the resolution it carries (ns; 1 = exact)
_DATE_FORMATS = (("%Y-%m-%d %I-%p", 3600 * 10**9), ("%Y-%m-%d %I:%M %p", 1), ("%Y-%m-%d", 86400 * 10**9),
                 ("ISO8601", 1))
_DATE_EXAMPLES = "2019-12-15 07-PM, 2019-12-15 19:00:00, 2019-12-15T19:00:00Z, 2019-12-15"


@dataclass(frozen=True)
class ImportResult:
    frame: pd.DataFrame
    format: str
    repairs: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    pair: str | None = None   # "XRP/USD": from the file's symbol column, else the pair the caller named


@dataclass(frozen=True)
class RawTable:
    """A file's rows as read, before any meaning is given to its columns."""
    frame: pd.DataFrame
    format: str
    first_line: int | None = None  # file line (1-based) of data row 0 for text files; None: rows only

    def where(self, row: int) -> str:
        return f"line {row + self.first_line}" if self.first_line is not None else f"row {row}"


@dataclass(frozen=True)
class Columns:
    """What each column of a file means, by its (case- and spacing-insensitive) name."""
    time: list[str]
    prices: dict[str, str]                  # canonical price name → file column
    volume: list[tuple[str, str | None]]    # (file column, currency or None for plain `volume`)
    trades: str | None
    symbol: str | None
    unknown: list[str]


def _norm(name: object) -> str:
    return re.sub(r"[\s_]+", " ", str(name)).strip().lower()


def map_columns(names: list[str]) -> Columns:
    """Each column's meaning from its name alone; what a time column holds (unix or date) is decided by
    its content later, and names that mean nothing here are kept as `unknown` (to be refused)."""
    time: list[str] = []
    volume: list[tuple[str, str | None]] = []
    unknown: list[str] = []
    prices: dict[str, str] = {}
    trades: str | None = None
    symbol: str | None = None
    for name in names:
        norm = _norm(name)
        if norm in PRICE_COLUMNS:
            prices[norm] = name
        elif norm in _EPOCH_NAMES or norm in _TIME_NAMES:
            time.append(name)
        elif norm in ("volume", "volume from"):  # CDD's oldest vintage: Volume From (base), Volume To (quote)
            volume.append((name, None))
        elif norm.startswith("volume "):
            volume.append((name, _QUOTE_VOLUME if norm == "volume to" else norm[len("volume "):].upper()))
        elif norm in _TRADES_NAMES and trades is None:
            trades = name
        elif norm in _SYMBOL_NAMES and symbol is None:
            symbol = name
        else:
            unknown.append(name)
    return Columns(time, prices, volume, trades, symbol, unknown)


# ---- reading files into raw tables -------------------------------------------------------------------

def _cell(value: object) -> str:
    """A file's value as its text shows it: `'2019-12-15 07-PM'`, `1576436400`, never `np.int64(…)`."""
    return repr(value) if isinstance(value, str) else str(value)


def _is_banner(line: str) -> bool:
    """CryptoDataDownload's first line: `https://www.CryptoDataDownload.com`, or a note and that URL."""
    low = line.lower()
    return "://" in low or "www." in low or "cryptodatadownload" in low


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _read_csv(path: Path) -> RawTable:
    with path.open(encoding="utf-8-sig") as fh:
        head = [fh.readline(), fh.readline()]
    skip = 1 if _is_banner(head[0]) else 0
    first = head[skip].strip()
    fields = [f.strip() for f in first.split(",")]
    if not first:
        raise CandleDataError(f"{path}: unknown CSV layout (first line {head[0].strip()[:80]!r})")
    if _is_number(fields[0]):
        return _read_headerless(path, fields, skip)
    frame = pd.read_csv(path, skiprows=skip, encoding="utf-8-sig", skipinitialspace=True,
                        float_precision="round_trip")
    frame = frame.drop(columns=[c for c in frame.columns if str(c).startswith("Unnamed: ") and frame[c].isna().all()])
    cols = map_columns(list(frame.columns))  # (an empty unnamed column: a trailing comma on every line)
    if not cols.prices:
        raise CandleDataError(f"{path}: unknown CSV layout (first line {first[:80]!r}): no open, high, low, "
                              "close columns; expected a header naming them, or Kraken's headerless layouts")
    return RawTable(frame, _csv_format(head[0] if skip else "", cols), first_line=skip + 2)


def _read_headerless(path: Path, fields: list[str], skip: int) -> RawTable:
    layouts = {7: ("kraken_ohlcvt", KRAKEN_OHLCVT), 3: ("kraken_trades", KRAKEN_TRADES)}
    if len(fields) not in layouts:
        raise CandleDataError(
            f"{path}: unknown CSV layout: cannot read a headerless file of {len(fields)} columns (first line "
            f"{','.join(fields)[:80]!r}); Kraken OHLCVT has 7 ({', '.join(KRAKEN_OHLCVT)}), Kraken trades 3 "
            f"({', '.join(KRAKEN_TRADES)}). Add a header line naming the columns")
    fmt, names = layouts[len(fields)]
    frame = pd.read_csv(path, header=None, names=list(names), skiprows=skip, encoding="utf-8-sig",
                        float_precision="round_trip")
    return RawTable(frame, fmt, first_line=skip + 1)


def _csv_format(banner: str, cols: Columns) -> str:
    if "cryptodatadownload" in banner.lower() or cols.symbol or any(c for _, c in cols.volume):
        return "cdd"
    names = {_norm(n) for n in [*cols.time, *cols.prices.values(), *(n for n, _ in cols.volume),
                                *([cols.trades] if cols.trades else [])]}
    return "kraken_ohlcvt" if names <= set(KRAKEN_OHLCVT) else "csv"


def _read_json(path: Path) -> RawTable:
    """freqtrade's json candles: a list of [epoch ms, open, high, low, close, volume] rows."""
    layout = "JSON candles must be a list of [epoch ms, open, high, low, close, volume] rows (freqtrade's layout)"
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise CandleDataError(f"{path}: unknown candle file format: not JSON ({err}); {layout}") from None
    if not isinstance(rows, list):
        raise CandleDataError(f"{path}: unknown candle file format: a JSON {type(rows).__name__}; {layout}")
    bad = next((i for i, r in enumerate(rows) if not isinstance(r, list) or len(r) != len(FREQTRADE_JSON)), None)
    if bad is not None:
        raise CandleDataError(f"{path}: row {bad}: {str(rows[bad])[:80]} is not a candle row; {layout}")
    return RawTable(pd.DataFrame(rows, columns=list(FREQTRADE_JSON)), "json")


def read_table(path: Path) -> RawTable:
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return RawTable(pd.read_parquet(path), "parquet")
    if suffix == ".feather":
        return RawTable(pd.read_feather(path), "feather")
    if suffix == ".json":
        return _read_json(path)
    if suffix == ".csv":
        return _read_csv(path)
    raise CandleDataError(f"{path}: unknown candle file format {suffix!r} (parquet, feather, json or csv)")


# ---- timestamps: inferred, cross-checked, damage refused ----------------------------------------------

def epoch_to_ns(values: pd.Series, name: str, where: Callable[[int], str],
                source: str) -> tuple[np.ndarray, str | None]:
    """A unix-time column → (epoch ns int64, a note when units were mixed). The unit (s, ms, µs, ns) of
    each value follows from its magnitude (the ranges are 1000× apart, so 2000–2100 is never ambiguous):
    a column that switches unit part-way (as exchanges did from ms to µs) is converted row by row and
    the switch reported. Values before 2000 are refused with the row named."""
    numeric = pd.to_numeric(values, errors="coerce")
    if numeric.isna().any():
        row = int(np.flatnonzero(numeric.isna().to_numpy())[0])
        raise CandleDataError(f"{source}: {where(row)}: {name}={_cell(values.iloc[row])} is not a unix time")
    v = numeric.to_numpy(dtype=np.float64)
    unit = np.searchsorted(_UNIT_LIMITS, np.abs(v), side="right")
    scale = np.array([ns for _, ns in _UNITS], dtype=np.int64)[unit]
    integral = bool(np.all(v == np.floor(v)))
    ns = numeric.to_numpy(dtype=np.int64) * scale if integral else np.round(v * scale).astype(np.int64)
    early = np.flatnonzero(ns < _EARLIEST)
    if early.size:
        row = int(early[0])
        raise CandleDataError(f"{source}: {where(row)}: {name}={_cell(values.iloc[row])} is before 2000 as unix "
                              f"{_UNITS[unit[row]][0]}: not a candle time")
    return ns, _mixed_units_note(unit, name, values, where, source)


def _mixed_units_note(unit: np.ndarray, name: str, values: pd.Series, where: Callable[[int], str],
                      source: str) -> str | None:
    counts = np.bincount(unit, minlength=len(_UNITS))
    if np.count_nonzero(counts) < 2:
        return None
    common = int(counts.argmax())
    first = int(np.flatnonzero(unit != common)[0])
    split = ", ".join(f"{counts[i]} in {_UNITS[i][0]}" for i in np.flatnonzero(counts))
    return (f"{source}: column {name!r} mixes unix units ({split}; first {_UNITS[unit[first]][0]} value at "
            f"{where(first)}: {_cell(values.iloc[first])}); each value converted by its magnitude")


def parse_dates(values: pd.Series, name: str, where: Callable[[int], str],
                source: str) -> tuple[np.ndarray, np.ndarray]:
    """A date column (datetimes, or text in any known format; text without a zone is UTC, as the
    sources document) → (epoch ns, resolution ns of each row's text: 1 h for `07-PM`, 1 day for a date)."""
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return values.dt.tz_convert("UTC").astype("datetime64[ns, UTC]").astype("int64").to_numpy(), np.ones(
            len(values), dtype=np.int64)
    if pd.api.types.is_datetime64_dtype(values.dtype):
        raise CandleDataError(f"{source}: column {name!r} must be timezone-aware UTC timestamps, got {values.dtype}")
    text = values.astype(str).str.strip()
    out = pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns, UTC]")
    resolution = np.ones(len(values), dtype=np.int64)
    for fmt, step in _DATE_FORMATS:
        todo = out.isna().to_numpy()
        if not todo.any():
            break
        parsed = pd.to_datetime(text[todo], format=fmt, utc=True, errors="coerce")
        out[todo] = parsed
        resolution[np.flatnonzero(todo)[parsed.notna().to_numpy()]] = step
    if out.isna().any():
        row = int(np.flatnonzero(out.isna().to_numpy())[0])
        raise CandleDataError(f"{source}: {where(row)}: {name}={_cell(values.iloc[row])} is neither a unix time nor a "
                              f"date in a known format ({_DATE_EXAMPLES})")
    return out.astype("int64").to_numpy(), resolution


def _is_epoch_column(name: str, values: pd.Series) -> bool:
    if _norm(name) in _EPOCH_NAMES:
        return True
    return pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values.dtype)


def _check_against_dates(epoch: np.ndarray, dates: np.ndarray, resolution: np.ndarray, names: tuple[str, str],
                         raw: pd.DataFrame, where: Callable[[int], str], source: str) -> None:
    """An epoch column and a date column in one file must name the same candle (the date text to its
    own resolution: `07-PM` names the hour); any disagreement means one of them was shifted."""
    off = np.flatnonzero(epoch // resolution * resolution != dates)
    if not off.size:
        return
    e, d = names
    first = ", ".join(
        f"{where(int(i))}: {e}={_cell(raw[e].iloc[i])} is {pd.Timestamp(int(epoch[i]), tz='UTC')} but {d}="
        f"{_cell(raw[d].iloc[i])}" for i in off[:3])
    raise CandleDataError(
        f"{source}: timestamps damaged, shifted against the date column: {e!r} and {d!r} disagree on {off.size} "
        f"of {len(epoch)} rows, first {first}; fix: re-download the file (which of the two is right cannot be told)")


def _timestamps(raw: pd.DataFrame, time_cols: list[str], where: Callable[[int], str],
                source: str) -> tuple[np.ndarray, str | None]:
    """Epoch ns of each row, from the unix column (checked against the date column when there is one),
    else from the date column; plus the mixed-units note, if any."""
    epochs = [c for c in time_cols if _is_epoch_column(c, raw[c])]
    dates = [c for c in time_cols if c not in epochs]
    if len(epochs) > 1 or len(dates) > 1:
        raise CandleDataError(f"{source}: several time columns {time_cols}; keep one unix and one date column")
    if not epochs:
        return parse_dates(raw[dates[0]], dates[0], where, source)[0], None
    ns, note = epoch_to_ns(raw[epochs[0]], epochs[0], where, source)
    if dates:
        day_ns, resolution = parse_dates(raw[dates[0]], dates[0], where, source)
        _check_against_dates(ns, day_ns, resolution, (epochs[0], dates[0]), raw, where, source)
    return ns, note


def _is_power_of_ten(n: int) -> bool:
    while n > 1 and n % 10 == 0:
        n //= 10
    return n == 1


def _lines(frame: pd.DataFrame, mask: np.ndarray, where: Callable[[int], str], n: int = 3) -> str:
    return ", ".join(f"{where(int(r))} ({d})" for r, d in zip(frame["_row"][mask][:n], frame["date"][mask][:n],
                                                                   strict=True))


def _check_precision(frame: pd.DataFrame, where: Callable[[int], str], source: str) -> None:
    """Every Kraken interval is a multiple of 60 s, so the steps between real candles never share a
    power of ten as their greatest common divisor; steps that do (e.g. 3000 s and 4000 s for hourly
    candles) were rounded: the file lost the precision that tells its candles apart."""
    ns = frame["date"].astype("int64").to_numpy()
    steps = np.diff(np.unique(ns))
    if not steps.size:
        return
    gcd = int(np.gcd.reduce(steps))
    if gcd < 100 * 10**9 or not _is_power_of_ten(gcd):
        return
    raise CandleDataError(
        f"{source}: timestamps damaged, precision lost: every candle time is a multiple of {gcd / 1e9:g} s, which "
        f"no candle interval is ({_precision_detail(frame, where)}); fix: export full-precision unix times "
        "(integer seconds or milliseconds, not rounded and not in scientific notation)")


def _precision_detail(frame: pd.DataFrame, where: Callable[[int], str]) -> str:
    """Where rounding shows first: candles collapsed onto one time, else the first uneven step."""
    shared = frame["date"].duplicated(keep=False).to_numpy()
    if shared.any():
        return f"{int(shared.sum())} candles collapse onto shared times, first {_lines(frame, shared, where)}"
    steps = np.diff(frame["date"].astype("int64").to_numpy()) / 1e9
    uneven = np.flatnonzero(steps != steps[0])
    at = int(uneven[0]) if uneven.size else 0
    rows = np.isin(np.arange(len(frame)), [max(at - 1, 0), at, at + 1])
    return f"steps of {steps[max(at - 1, 0)]:g} s and {steps[at]:g} s at {_lines(frame, rows, where)}"


def _check_duplicates(frame: pd.DataFrame, where: Callable[[int], str], source: str) -> None:
    """Two different candles at one time: the times were rounded or truncated (a date without its
    hour), or two series were mixed. Exact duplicate rows were already dropped as a repair."""
    shared = frame["date"].duplicated(keep=False).to_numpy()
    if not shared.any():
        return
    times = frame["date"][shared].nunique()
    raise CandleDataError(
        f"{source}: timestamps damaged, rounded into duplicates: {times} time(s) carry {int(shared.sum())} "
        f"different candles, so dates are not strictly increasing; first {_lines(frame, shared, where)}; fix: "
        "export each candle's own open time (with its hour and minute, or a unix column)")


# ---- pairs, volume, trade counts ------------------------------------------------------------------------

def canonical_pair(text: str) -> str | None:
    """`XRPUSD`, `XRP/USD`, `xrp-usd`, `XXRPZUSD`, `XBTUSD` → `XRP/USD`, `BTC/USD`; None if no known quote."""
    t = text.strip().upper()
    parts = [p for p in re.split(r"[/\-_:]", t) if p]
    if len(parts) == 2:
        base, quote = parts
    else:
        quote = next((q for q in _QUOTES if t.endswith(q) and len(t) > len(q)), "")
        if not quote or len(parts) != 1:
            return None
        base = t[: -len(quote)]
    return f"{_ALIASES.get(base, base)}/{_ALIASES.get(quote, quote)}"


def _file_pair(raw: pd.DataFrame, column: str, source: str) -> str | None:
    symbols = [str(s).strip() for s in raw[column].dropna().unique()]
    if len(symbols) > 1:
        raise CandleDataError(f"{source}: column {column!r} names several pairs ({', '.join(symbols[:5])}); "
                              "split the file into one file per pair")
    if not symbols:
        return None
    pair = canonical_pair(symbols[0])
    if pair is None:
        raise CandleDataError(f"{source}: column {column!r} says {symbols[0]!r}, which is not a pair like "
                              "XRP/USD or XRPUSD; fix the column or drop it and pass --pair")
    return pair


def _confirm_pair(file_pair: str | None, given: str | None, column: str | None, source: str) -> None:
    if file_pair is None or given is None or canonical_pair(given) == file_pair:
        return
    raise CandleDataError(f"{source}: the file's {column!r} column says {file_pair} but --pair is {given}; "
                          f"pass --pair {file_pair} (or leave --pair out) if the file is the one you meant")


def _base_volume(volumes: list[tuple[str, str | None]], pair: str | None, source: str) -> str:
    """The candle schema's volume is in the base coin: plain `volume`, else the `Volume <coin>` column
    named after the pair's base coin (without a pair: the one coin that is not a fiat or stable coin)."""
    plain = [n for n, c in volumes if c is None]
    if plain:
        return plain[0]
    names = [n for n, _ in volumes]
    if pair is not None:
        base = pair.split("/")[0]
        match = [n for n, c in volumes if _ALIASES.get(c or "", c) == base]
        if match:
            return match[0]
        raise CandleDataError(f"{source}: none of the volume columns {names} is named after {base}, the base coin "
                              f"of {pair}; the candles need base-coin volume")
    coins = [n for n, c in volumes if _ALIASES.get(c or "", c) not in {*_FIAT_AND_STABLE, _QUOTE_VOLUME}]
    if len(coins) == 1:
        return coins[0]
    if not coins:
        raise CandleDataError(f"{source}: the volume columns {names} are all in a quote currency; the candles need "
                              "base-coin volume (a plain 'volume' or 'Volume <base coin>' column)")
    raise CandleDataError(f"{source}: cannot tell which of the volume columns {names} is in the base coin; "
                          "pass --pair (e.g. --pair XRP/USD): the column named after its base coin is used")


def _trade_counts(values: pd.Series, name: str, where: Callable[[int], str], source: str) -> pd.Series:
    counts = pd.to_numeric(values, errors="coerce")
    bad = (counts.isna() & values.notna()) | (counts < 0) | (counts.notna() & (counts != counts.round()))
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise CandleDataError(f"{source}: {where(row)}: {name}={_cell(values.iloc[row])} is not a count of trades")
    return counts.astype("int64") if counts.notna().all() else counts.astype("Int64")


# ---- raw table → candle frame ----------------------------------------------------------------------------

def _volume_column(raw: pd.DataFrame, cols: Columns, pair: str | None, source: str) -> tuple[str, str | None]:
    """Refuse unknown or missing columns; → (the base-volume column, the file's pair from its symbol
    column, confirmed against `pair`)."""
    if cols.unknown:
        raise CandleDataError(f"{source}: unexpected column(s) {cols.unknown}; drop or rename them (known: date/unix/"
                              "timestamp/time, open, high, low, close, volume or 'Volume <coin>', tradecount, symbol)")
    missing = [c for c, ok in (("date", cols.time), *((p, p in cols.prices) for p in PRICE_COLUMNS),
                               ("volume", cols.volume)) if not ok]
    if missing:
        raise CandleDataError(f"{source}: missing column(s) {missing}; expected ['date' (or unix/time), 'open', "
                              "'high', 'low', 'close', 'volume']")
    file_pair = _file_pair(raw, cols.symbol, source) if cols.symbol else None
    _confirm_pair(file_pair, pair, cols.symbol, source)
    return _base_volume(cols.volume, file_pair or (canonical_pair(pair) if pair else None), source), file_pair


def _candles(table: RawTable, source: str, pair: str | None) -> tuple[pd.DataFrame, str | None, list[str]]:
    """Raw columns → `date, open, high, low, close, volume[, trades]` plus `_row` (the file row of each
    candle, for messages); the file's pair; notes on how the times were read."""
    raw, cols = table.frame, map_columns(list(table.frame.columns))
    volume, file_pair = _volume_column(raw, cols, pair, source)
    if raw.empty:
        raise CandleDataError(f"{source}: no candles")
    ns, note = _timestamps(raw, cols.time, table.where, source)
    frame = pd.DataFrame({"date": pd.to_datetime(ns, unit="ns", utc=True),
                          **{p: raw[cols.prices[p]].to_numpy() for p in PRICE_COLUMNS},
                          "volume": raw[volume].to_numpy()})
    if cols.trades:
        frame["trades"] = _trade_counts(raw[cols.trades], cols.trades, table.where, source).to_numpy()
    frame["_row"] = np.arange(len(raw))
    return frame, file_pair, [note] if note else []


def _sort_and_dedupe(frame: pd.DataFrame, source: str) -> tuple[pd.DataFrame, list[str]]:
    repairs = []
    if not frame["date"].is_monotonic_increasing:
        frame = frame.sort_values("date", kind="stable")
        repairs.append(f"{source}: sorted rows by date (file was not in ascending order)")
    dupes = frame.duplicated(subset=[c for c in frame.columns if c != "_row"], keep="first")
    if dupes.any():
        frame = frame[~dupes]
        repairs.append(f"{source}: dropped {int(dupes.sum())} exact duplicate row(s)")
    return frame.reset_index(drop=True), repairs


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


def _kraken_trades(table: RawTable, timeframe: str | None, source: str) -> tuple[pd.DataFrame, list[str]]:
    """Kraken's trade-history CSV (`unix time,price,volume`, no header, oldest first) → candles; the unix
    unit (s, ms, µs, ns) is inferred like every epoch column's."""
    if timeframe is None:
        raise CandleDataError(f"{source}: a Kraken trades file has no timeframe of its own; pass --timeframe")
    raw = table.frame
    values = raw.apply(pd.to_numeric, errors="coerce")
    bad = values.isna().any(axis=1).to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise CandleDataError(f"{source}: row {row}: {raw.iloc[row].tolist()} is not time,price,volume numbers")
    ts_ns, mixed = epoch_to_ns(values["time"], "time", table.where, source)
    ts = ts_ns // 10**6
    if (np.diff(ts) < 0).any():
        row = int(np.flatnonzero(np.diff(ts) < 0)[0]) + 1
        raise CandleDataError(f"{source}: row {row}: trades not in time order")
    step_ms = to_ms(timeframe)
    candles = trades_to_candles(ts, values["price"].to_numpy(float), values["volume"].to_numpy(float), step_ms)
    note = f"{source}: aggregated {len(raw)} trades into {len(candles)} {timeframe} candles"
    return candles, [note, *([mixed] if mixed else [])]


def infer_timeframe(frame: pd.DataFrame, source: str) -> str:
    """The Kraken interval name of the most common step between candles (a few gaps do not matter)."""
    if len(frame) < 2:
        raise CandleDataError(f"{source}: fewer than 2 candles, cannot tell the timeframe (pass --timeframe)")
    step = frame["date"].diff().iloc[1:].mode().iloc[0]
    name = name_of(pd.Timedelta(step))
    if name is None:
        raise CandleDataError(f"{source}: candles {step} apart match no Kraken interval ({', '.join(TIMEFRAMES)})")
    return name


def _read(path: Path) -> RawTable:
    try:
        return read_table(path)
    except CandleDataError:
        raise
    except (ValueError, KeyError, OSError) as err:
        raise CandleDataError(f"{path}: cannot read as {path.suffix.lstrip('.') or 'a candle file'}: {err}") from None


def import_file(path: str | Path, timeframe: str | None = None, pair: str | None = None) -> ImportResult:
    """Read any supported candle file into the canonical frame (checked). `timeframe` is needed only
    for a Kraken trades file, whose trades are aggregated into candles of that interval. `pair` (e.g.
    XRP/USD) must agree with the file's symbol column when it has one, and tells which `Volume <coin>`
    column is the base volume when it has none."""
    path = Path(path)
    if not path.exists():
        raise CandleDataError(f"{path}: file not found")
    table, source = _read(path), str(path)
    if table.format == "kraken_trades":
        candles, notes = _kraken_trades(table, timeframe, source)
        return ImportResult(check_candle_frame(candles, source), table.format, notes, pair=pair)
    frame, file_pair, notes = _candles(table, source, pair)
    frame, repairs = _sort_and_dedupe(frame, source)
    _check_precision(frame, table.where, source)
    _check_duplicates(frame, table.where, source)
    checked = check_candle_frame(frame.drop(columns="_row"), source)
    return ImportResult(checked, table.format, [*notes, *repairs], pair=file_pair or pair)
