"""Explicit repair rules for real candle defects, decided one by one. Pure functions over frames;
each returns the frame and one sentence (or None when it did nothing). `apply_repairs` runs them
in order and logs every sentence, so nothing is fixed silently.

Defect (where we met it for real)                        → decision
- newest-first file (Kraken CDD hourly)                  → repair: sort by date (stable)
- exact duplicate rows (emulator `duplicate_candles`)    → repair: drop the later copies
- same timestamp, different content                      → reject (GX "dates are unique")
- zero-volume flat bars filling an outage (CDD 122 rows,
  Binance 2023-03-24 12:00)                              → keep, warn with count and dates; the
                                                            zero-volume share limit in params.yaml
                                                            rejects a file made mostly of them
- missing candles (Binance maintenance windows,
  Kraken Jan 2018 outage)                                → keep, report count and the largest hole;
                                                            never invent candles; a hole longer than
                                                            quality.max_gap_candles is rejected by GX
- local-time rows interleaved with UTC rows
  (Kraken CDD 2017-11-11/12)                             → reject: after sorting they show up as
                                                            traded candles whose OHLCV repeats under
                                                            another time (GX compound-unique rule);
                                                            the labels cannot be trusted, so no fix
- rolling download window starting off the hour
  (Binance 1m file starts at 12:09)                      → accept as long as every candle sits on its
                                                            own timeframe's UTC grid (12:09 is on the
                                                            1m grid); a frame off its timeframe's grid
                                                            is rejected by GX, never shifted
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.timeframe import to_timedelta

log = logging.getLogger(__name__)

Repair = Callable[[pd.DataFrame, str], tuple[pd.DataFrame, str | None]]


@dataclass(frozen=True)
class RepairReport:
    frame: pd.DataFrame
    repairs: tuple[str, ...]   # what was changed, one sentence each
    warnings: tuple[str, ...]  # what was kept but deserves a look


def sort_by_date(frame: pd.DataFrame, source: str) -> tuple[pd.DataFrame, str | None]:
    """Newest-first (or shuffled) files → ascending; stable so equal dates keep file order."""
    if frame["date"].is_monotonic_increasing:
        return frame, None
    newest_first = frame["date"].is_monotonic_decreasing
    out = frame.sort_values("date", kind="stable").reset_index(drop=True)
    how = "newest-first" if newest_first else "out of order"
    return out, f"{source}: sorted {len(frame)} rows by date (file was {how})"


def drop_exact_duplicates(frame: pd.DataFrame, source: str) -> tuple[pd.DataFrame, str | None]:
    """Rows equal in every column carry no information twice; the first copy is kept."""
    dupes = frame.duplicated(keep="first")
    if not dupes.any():
        return frame, None
    first = frame.loc[dupes, "date"].iloc[0]
    return (frame[~dupes].reset_index(drop=True),
            f"{source}: dropped {int(dupes.sum())} exact duplicate row(s), first at {first}")


def zero_volume_flat_bars(frame: pd.DataFrame, source: str) -> str | None:
    """Warn about O=H=L=C bars with zero volume: exchanges forward-fill outages with them."""
    flat = (frame["volume"] == 0) & (frame["open"] == frame["high"]) & (frame["high"] == frame["low"]) & (
        frame["low"] == frame["close"])
    if not flat.any():
        return None
    dates = ", ".join(str(d) for d in frame.loc[flat, "date"].iloc[:3])
    return (f"{source}: {int(flat.sum())} zero-volume flat bar(s) kept (outage fill, not trades), "
            f"e.g. {dates}")


def missing_candles(frame: pd.DataFrame, source: str, timeframe: str) -> str | None:
    """Report holes in the grid (count of missing candles, largest hole); nothing is filled in."""
    step = to_timedelta(timeframe)
    seconds = (frame["date"] - frame["date"].iloc[0]).dt.total_seconds().to_numpy()
    gaps = np.diff(seconds) / step.total_seconds()
    holes = gaps[gaps > 1] - 1
    if holes.size == 0:
        return None
    worst = int(np.argmax(gaps))
    start = frame["date"].iloc[worst]
    return (f"{source}: {int(holes.sum())} missing candle(s) in {holes.size} gap(s), largest "
            f"{int(holes.max())} after {start}; kept as gaps (not invented)")


REPAIRS: tuple[Repair, ...] = (sort_by_date, drop_exact_duplicates)


def _usable(frame: pd.DataFrame) -> bool:
    """Repairs need parseable UTC dates and the OHLCV columns; otherwise the gate reports the cause."""
    needed = {"date", "open", "high", "low", "close", "volume"}
    return bool(needed <= set(frame.columns) and len(frame) > 0
                and isinstance(frame["date"].dtype, pd.DatetimeTZDtype) and frame["date"].notna().all())


def apply_repairs(frame: pd.DataFrame, timeframe: str, source: str) -> RepairReport:
    """Run every repair rule in order, then the warnings; log each sentence."""
    if not _usable(frame):
        return RepairReport(frame, (), ())
    done = []
    for repair in REPAIRS:
        frame, note = repair(frame, source)
        if note:
            done.append(note)
    warnings = [w for w in (zero_volume_flat_bars(frame, source), missing_candles(frame, source, timeframe)) if w]
    for line in done:
        log.info("repair: %s", line)
    for line in warnings:
        log.warning("data warning: %s", line)
    return RepairReport(frame, tuple(done), tuple(warnings))
