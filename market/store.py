"""OHLCV Parquet store: one file per exchange/pair/timeframe/month, idempotent upsert, atomic writes.

Layout: `<root>/<exchange>/<PAIR-SLUG>/<timeframe>/<YYYY-MM>.parquet`, e.g.
`data/store/kraken/XRP-USD/1h/2024-01.parquet` (month of the candle's open time, UTC).

Functional core: `merge_candles` (stored frame + batch → merged frame + counts), `split_by_month` and
`find_gaps` are pure. The `CandleStore` shell reads the touched months, merges, and rewrites only the
months whose content changed, each through a temp file + fsync + rename in the same directory, so a crash
mid-write leaves every month file either old or new, never half-written; re-running the same upsert
finishes the job (it is idempotent). Writers of one series are serialised by an advisory file lock.
"""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from core.files import write_atomic
from core.timeframe import to_timedelta
from market.frame import CANDLE_COLUMNS, CandleDataError, check_candle_frame

STORE_COLUMNS = (*CANDLE_COLUMNS, "trades")
VALUE_COLUMNS = ("open", "high", "low", "close", "volume")
SAME_RTOL = 1e-9
"""Two candles are 'the same' when every OHLCV value agrees to this relative tolerance (a re-download
through a decimal string round trip must not count as a change)."""

GATE_CONTEXT_CANDLES = 24
"""Stored candles on each side of a batch that the validator sees with it."""

ConflictPolicy = Literal["replace", "keep"]
"""replace: the batch wins for a candle already stored (the exchange is the authority on its own candles);
keep: stored candles are never changed, the disagreement is only counted (history imports)."""
Validator = Callable[[pd.DataFrame], None]


@dataclass(frozen=True)
class MergeResult:
    """Outcome of merging a batch into stored candles. Counts are candles (rows)."""

    frame: pd.DataFrame
    added: int
    replaced: int
    unchanged: int
    conflicts_kept: int

    @property
    def changed(self) -> bool:
        return bool(self.added or self.replaced)


@dataclass(frozen=True)
class Gap:
    """A hole in a series: candles missing between `after` and `before` (both present), `missing` candles."""

    after: pd.Timestamp
    before: pd.Timestamp
    missing: int

    def __str__(self) -> str:
        return f"{self.missing} candle(s) missing between {self.after} and {self.before}"


@dataclass(frozen=True)
class UpsertReport:
    """What one upsert did: candle counts and the month files rewritten (empty on a no-op)."""

    pair: str
    timeframe: str
    rows_in: int
    added: int
    replaced: int
    unchanged: int
    conflicts_kept: int
    files_written: tuple[str, ...] = field(default=())


class StoreGapError(CandleDataError):
    """A contiguous read was asked for a window that has holes; the message names the first one."""


def pair_slug(pair: str) -> str:
    """'XRP/USD' → 'XRP-USD' (safe in file names)."""
    return pair.replace("/", "-")


def to_store_schema(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    """Checked candle frame with the store's exact columns; `trades` (count) is nullable Int64."""
    clean = check_candle_frame(frame, source)
    trades = clean["trades"] if "trades" in clean else pd.Series(pd.NA, index=clean.index)
    numeric = pd.to_numeric(trades, errors="coerce")
    if (numeric.isna() & trades.notna()).any():
        bad = int(np.flatnonzero((numeric.isna() & trades.notna()).to_numpy())[0])
        raise CandleDataError(f"{source}: row {bad}: trades={trades.iloc[bad]!r} is not a number")
    clean["trades"] = numeric.astype("Int64")
    return clean.loc[:, list(STORE_COLUMNS)]


def _same_rows(old: pd.DataFrame, new: pd.DataFrame) -> np.ndarray:
    """Row-wise: OHLCV agree within SAME_RTOL and trades agree (or one side does not know)."""
    a, b = old[list(VALUE_COLUMNS)].to_numpy(), new[list(VALUE_COLUMNS)].to_numpy()
    values = np.isclose(a, b, rtol=SAME_RTOL, atol=0.0).all(axis=1)
    ta, tb = old["trades"].to_numpy(dtype="float64", na_value=np.nan), new["trades"].to_numpy(
        dtype="float64", na_value=np.nan)
    trades = np.isnan(ta) | np.isnan(tb) | (ta == tb)
    return np.asarray(values & trades)


def merge_candles(stored: pd.DataFrame, batch: pd.DataFrame, policy: ConflictPolicy = "replace") -> MergeResult:
    """Pure upsert keyed on `date`. Both frames are in the store schema (ascending, unique dates).
    New dates are added; a stored date is replaced only under `replace` and only when it differs.
    A known trade count is never replaced by an unknown one."""
    if stored.empty:
        return MergeResult(batch.reset_index(drop=True), len(batch), 0, 0, 0)
    in_store = batch["date"].isin(stored["date"]).to_numpy()
    overlap_new = batch.loc[in_store].reset_index(drop=True)
    overlap_old = stored.loc[stored["date"].isin(overlap_new["date"])].reset_index(drop=True)
    same = _same_rows(overlap_old, overlap_new)
    differing = int((~same).sum())
    added = int((~in_store).sum())
    replace = policy == "replace" and differing > 0
    if not added and not replace:
        return MergeResult(stored, 0, 0, int(same.sum()), differing)
    incoming = batch.loc[~in_store]
    if replace:
        fresh = overlap_new.loc[~same].copy()
        old_trades = overlap_old.loc[~same, "trades"].to_numpy()
        fresh["trades"] = fresh["trades"].fillna(pd.Series(old_trades, index=fresh.index, dtype="Int64"))
        incoming = pd.concat([incoming, fresh], ignore_index=True)
    kept = stored.loc[~stored["date"].isin(incoming["date"])]
    merged = pd.concat([kept, incoming], ignore_index=True).sort_values("date", kind="stable")
    return MergeResult(merged.reset_index(drop=True), added, differing if replace else 0, int(same.sum()),
                       0 if replace else differing)


def month_key(ts: pd.Timestamp) -> str:
    return f"{ts.year:04d}-{ts.month:02d}"


def split_by_month(frame: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Ascending frame → {'YYYY-MM': rows of that month}; slices by sorted boundaries (no groupby)."""
    if frame.empty:
        return {}
    dates = frame["date"]
    codes = dates.dt.tz_convert(None).to_numpy().astype("datetime64[M]")
    starts = np.flatnonzero(np.concatenate([[True], codes[1:] != codes[:-1]]))
    ends = [*starts[1:], len(frame)]
    return {month_key(dates.iloc[s]): frame.iloc[s:e] for s, e in zip(starts, ends, strict=True)}


def find_gaps(frame: pd.DataFrame, timeframe: str) -> list[Gap]:
    """Holes between consecutive candles (steps longer than one timeframe), oldest first."""
    if len(frame) < 2:
        return []
    step = to_timedelta(timeframe)
    dates = frame["date"]
    steps = dates.diff().iloc[1:]
    idx = np.flatnonzero((steps > step).to_numpy()) + 1
    return [Gap(dates.iloc[i - 1], dates.iloc[i], int((dates.iloc[i] - dates.iloc[i - 1]) / step) - 1) for i in idx]


_ARROW_SCHEMA = pa.schema([("date", pa.timestamp("ns", tz="UTC")), *((c, pa.float64()) for c in VALUE_COLUMNS),
                           ("trades", pa.int64())])


def _write_month(path: Path, frame: pd.DataFrame) -> None:
    """Durable: temp file → fsync → rename → fsync the directory; a crash leaves the old month or the new."""
    table = pa.Table.from_pandas(frame, schema=_ARROW_SCHEMA, preserve_index=False)
    write_atomic(path, lambda tmp: pq.write_table(table, tmp, compression="zstd"), durable=True)


def _read_month(path: Path) -> pd.DataFrame:
    try:
        frame = pq.read_table(path, schema=_ARROW_SCHEMA).to_pandas()
    except (OSError, pa.ArrowException) as err:
        raise CandleDataError(f"{path}: unreadable store file ({err}); restore it or delete and re-ingest") from None
    frame["trades"] = frame["trades"].astype("Int64")
    return frame


def _empty() -> pd.DataFrame:
    return _ARROW_SCHEMA.empty_table().to_pandas().assign(trades=lambda f: f["trades"].astype("Int64"))


class CandleStore:
    """The thin I/O shell around the pure merge: one directory per exchange."""

    def __init__(self, root: Path, exchange: str = "kraken") -> None:
        self.root = Path(root)
        self.exchange = exchange

    def series_dir(self, pair: str, timeframe: str) -> Path:
        to_timedelta(timeframe)  # reject unknown timeframes early
        return self.root / self.exchange / pair_slug(pair) / timeframe

    def month_files(self, pair: str, timeframe: str) -> list[Path]:
        folder = self.series_dir(pair, timeframe)
        return sorted(folder.glob("[0-9][0-9][0-9][0-9]-[0-9][0-9].parquet")) if folder.exists() else []

    @contextlib.contextmanager
    def _locked(self, pair: str, timeframe: str) -> Iterator[None]:
        folder = self.series_dir(pair, timeframe)
        folder.mkdir(parents=True, exist_ok=True)
        with (folder / ".lock").open("a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def upsert(self, pair: str, timeframe: str, batch: pd.DataFrame, source: str,
               policy: ConflictPolicy = "replace", validate: Validator | None = None,
               progress: Callable[[int], None] | None = None) -> UpsertReport:
        """Check the batch (and run `validate`, e.g. the quality gate) before anything is touched, then
        merge month by month; months whose content is unchanged are not written at all. `progress` is
        told the candles of each month as it is done."""
        clean = to_store_schema(batch, source)
        if validate is not None:
            validate(self.with_neighbours(pair, timeframe, clean))
        folder = self.series_dir(pair, timeframe)
        totals = np.zeros(4, dtype=int)
        written: list[str] = []
        with self._locked(pair, timeframe):
            for month, part in split_by_month(clean).items():
                path = folder / f"{month}.parquet"
                stored = _read_month(path) if path.exists() else _empty()
                result = merge_candles(stored, part.reset_index(drop=True), policy)
                totals += (result.added, result.replaced, result.unchanged, result.conflicts_kept)
                if result.changed:
                    _write_month(path, result.frame)
                    written.append(str(path))
                if progress is not None:
                    progress(len(part))
        added, replaced, unchanged, kept = (int(x) for x in totals)
        return UpsertReport(pair, timeframe, len(clean), added, replaced, unchanged, kept, tuple(written))

    def with_neighbours(self, pair: str, timeframe: str, batch: pd.DataFrame) -> pd.DataFrame:
        """The batch between the stored candles just outside it (up to GATE_CONTEXT_CANDLES each side),
        so the gate sees a jump or hole at the seams and a one-candle batch still has a step to measure."""
        step = to_timedelta(timeframe)
        first, last = batch["date"].iloc[0], batch["date"].iloc[-1]
        before = self.read(pair, timeframe, first - GATE_CONTEXT_CANDLES * step, first - step)
        after = self.read(pair, timeframe, last + step, last + GATE_CONTEXT_CANDLES * step)
        if before.empty and after.empty:
            return batch
        return pd.concat([before, batch, after], ignore_index=True)

    def read(self, pair: str, timeframe: str, start: pd.Timestamp | None = None, end: pd.Timestamp | None = None,
             contiguous: bool = False) -> pd.DataFrame:
        """Stored candles in [start, end] (UTC, inclusive), ascending, one frame across months. With
        `contiguous=True` a hole inside the window raises StoreGapError naming it."""
        files = [p for p in self.month_files(pair, timeframe) if _month_overlaps(p.stem, start, end)]
        frame = pd.concat([_read_month(p) for p in files], ignore_index=True) if files else _empty()
        if start is not None:
            frame = frame.loc[frame["date"] >= start]
        if end is not None:
            frame = frame.loc[frame["date"] <= end]
        frame = frame.reset_index(drop=True)
        if contiguous:
            gaps = find_gaps(frame, timeframe)
            if gaps:
                raise StoreGapError(f"{self.series_dir(pair, timeframe)}: {len(gaps)} gap(s); first: {gaps[0]} "
                                    "(run `krakenflow ingest` to backfill it)")
        return frame

    def last_date(self, pair: str, timeframe: str) -> pd.Timestamp | None:
        """Open time of the newest stored candle (reads only the newest month file)."""
        files = self.month_files(pair, timeframe)
        return None if not files else _read_month(files[-1])["date"].iloc[-1]

    def gap_report(self, pair: str, timeframe: str) -> list[Gap]:
        return find_gaps(self.read(pair, timeframe), timeframe)


def _month_overlaps(stem: str, start: pd.Timestamp | None, end: pd.Timestamp | None) -> bool:
    first = pd.Timestamp(f"{stem}-01", tz="UTC")
    after_end = first + pd.offsets.MonthBegin(1)
    return (start is None or after_end > start) and (end is None or first <= end)
