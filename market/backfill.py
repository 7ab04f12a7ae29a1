"""Ingestion of one pair and timeframe into the candle store: Kraken's OHLC window + Trades backfill.

Kraken's OHLC answers only the 720 most recent candles (the last one unfinished, dropped by
market.kraken). Anything older that the store lacks — the stretch between the newest stored candle and
the start of the window, an explicit `since`, and holes inside the stored series — is rebuilt from the
public Trades endpoint, page by page (≤ 1000 trades), aggregated into candles (`trades_to_candles`,
pure). Each page's complete candles are validated and upserted at once, so an interrupted backfill keeps
what it fetched and the next run continues from there. A candle is complete when a later trade exists or
the OHLC window starts after it; a bucket without any trade stays a gap (Kraken has no candle either).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from core.params import IngestParams
from core.timeframe import to_ms
from core.types import Candle
from market import errors
from market.history import trades_to_candles
from market.kraken import KrakenClient, TradesPage
from market.store import CandleStore, Gap, UpsertReport, Validator, find_gaps

Progress = Callable[[str, int], None]
"""progress(what, candles): called after every stored batch (what: 'ohlc' or 'trades')."""


@dataclass
class IngestReport:
    """What one ingestion run did for one pair/timeframe. Counts are candles unless named pages."""

    pair: str
    timeframe: str
    ohlc_candles: int = 0
    backfilled_candles: int = 0
    trade_pages: int = 0
    added: int = 0
    replaced: int = 0
    unchanged: int = 0
    files_written: int = 0
    gaps_before: list[str] = field(default_factory=list)
    gaps_after: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def count(self, upsert: UpsertReport) -> None:
        self.added += upsert.added
        self.replaced += upsert.replaced
        self.unchanged += upsert.unchanged
        self.files_written += len(upsert.files_written)


def parse_utc(text: str | None, option: str = "--from") -> pd.Timestamp | None:
    """'2024-01-01' or any pandas timestamp text (UTC unless it says otherwise) → a UTC timestamp."""
    if not text:
        return None
    try:
        ts = pd.Timestamp(text)
    except ValueError:
        raise ValueError(f"{option} {text!r} is not a date/time (e.g. 2024-01-01 or 2024-01-01T12:00Z)") from None
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def parse_since(since: str | None) -> int | None:
    """`--from` as epoch ms (see parse_utc)."""
    ts = parse_utc(since)
    return None if ts is None else int(ts.value // 1_000_000)


def candles_to_frame(candles: list[Candle]) -> pd.DataFrame:
    """Candle list (ts epoch ms) → candle frame (UTC dates); the trade count is unknown from OHLC via ccxt."""
    frame = pd.DataFrame([(c.ts, c.open, c.high, c.low, c.close, c.volume) for c in candles],
                         columns=["ts", "open", "high", "low", "close", "volume"])
    frame.insert(0, "date", pd.to_datetime(frame.pop("ts"), unit="ms", utc=True))
    return frame


@dataclass
class _Carry:
    """Trades of the newest, possibly incomplete bucket, held back until a later trade closes it."""

    ts: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    price: np.ndarray = field(default_factory=lambda: np.empty(0))
    amount: np.ndarray = field(default_factory=lambda: np.empty(0))

    def extend(self, page: TradesPage) -> None:
        self.ts = np.concatenate([self.ts, np.asarray(page.ts_ms, np.int64)])
        self.price = np.concatenate([self.price, np.asarray(page.price, float)])
        self.amount = np.concatenate([self.amount, np.asarray(page.amount, float)])

    def take_before(self, limit_ms: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        cut = int(np.searchsorted(self.ts, limit_ms, side="left"))
        out = (self.ts[:cut], self.price[:cut], self.amount[:cut])
        self.ts, self.price, self.amount = self.ts[cut:], self.price[cut:], self.amount[cut:]
        return out


def _page_with_pauses(client: KrakenClient, pair: str, cursor: str, limits: IngestParams,
                      sleep: Callable[[float], None]) -> TradesPage:
    """One Trades page; on Kraken's rate limit pause and retry (a public read is idempotent)."""
    for attempt in range(limits.rate_limit_retries + 1):
        try:
            return client.public_trades(pair, cursor)
        except errors.RateLimited:
            if attempt == limits.rate_limit_retries:
                raise
            sleep(limits.rate_limit_pause_s * (attempt + 1))
    raise AssertionError("unreachable")


def backfill_batches(client: KrakenClient, pair: str, step_ms: int, start_ms: int, until_ms: int,
                     limits: IngestParams, pages_left: list[int],
                     sleep: Callable[[float], None] = time.sleep) -> Iterator[pd.DataFrame]:
    """Complete candles in [start_ms, until_ms) rebuilt from Trades, one frame per page. `pages_left` is
    the shared request budget (a one-item list, decremented); exhausting it stops with BudgetExhausted."""
    cursor, carry = str(start_ms * 1_000_000 - 1), _Carry()  # Kraken: trades strictly after `since` (ns)
    while True:
        if pages_left[0] <= 0:
            raise BudgetExhausted(f"{pair}: Trades page budget (ingest.max_trade_pages) used up before "
                                  f"{pd.Timestamp(int(carry.ts[0]) if len(carry.ts) else start_ms, unit='ms')}")
        page = _page_with_pauses(client, pair, cursor, limits, sleep)
        pages_left[0] -= 1
        cursor = page.cursor
        carry.extend(page)
        done = not page.ts_ms or page.ts_ms[-1] >= until_ms
        limit = until_ms if done else min(until_ms, int(carry.ts[-1]) // step_ms * step_ms)
        ts, price, amount = carry.take_before(limit)
        if len(ts):
            yield trades_to_candles(ts, price, amount, step_ms)
        if done:
            return


class BudgetExhausted(errors.ExchangeError):
    """The run's Trades request budget ran out; what was fetched is stored, the next run continues."""


def _ranges_to_fill(gaps: list[Gap], stored_ms: tuple[int, int] | None, since_ms: int | None, window_ms: int,
                    step_ms: int) -> list[tuple[int, int]]:
    """[from, to) ms ranges older than the OHLC window that the store lacks: holes in the stored series,
    the stretch from `since` to the oldest stored candle, and from the newest stored one to the window.
    `stored_ms` is (oldest, newest) stored candle open time, None for an empty series."""
    ranges = [(int(g.after.value // 1_000_000) + step_ms, int(g.before.value // 1_000_000)) for g in gaps]
    if stored_ms is None:
        ranges += [(since_ms, window_ms)] if since_ms is not None else []
    else:
        oldest, newest = stored_ms
        ranges += [(since_ms, oldest)] if since_ms is not None and since_ms < oldest else []
        ranges.append((newest + step_ms, window_ms))
    return sorted({(lo, min(hi, window_ms)) for lo, hi in ranges if lo < min(hi, window_ms)})


def ingest_pair(client: KrakenClient, store: CandleStore, pair: str, timeframe: str, limits: IngestParams,
                since_ms: int | None = None, validate: Validator | None = None,
                progress: Progress | None = None, sleep: Callable[[float], None] = time.sleep) -> IngestReport:
    """OHLC window first (the newest finished candles), then Trades backfill of everything older the store
    lacks; every batch passes `validate` (the quality gate) before it is merged."""
    step_ms = to_ms(timeframe)
    report = IngestReport(pair, timeframe)
    stored = store.read(pair, timeframe)
    gaps = find_gaps(stored, timeframe)
    report.gaps_before = [str(g) for g in gaps]
    stored_ms = None if stored.empty else (int(stored["date"].iloc[0].value // 1_000_000),
                                           int(stored["date"].iloc[-1].value // 1_000_000))
    ask_from = stored_ms[1] if stored_ms is not None else since_ms
    window = client.fetch_candles(pair, timeframe, since_ms=ask_from)
    if window:
        report.ohlc_candles = len(window)
        report.count(store.upsert(pair, timeframe, candles_to_frame(window), f"Kraken OHLC {pair} {timeframe}",
                                  "replace", validate))
        if progress:
            progress("ohlc", len(window))
    window_ms = window[0].ts if window else (ask_from or 0) + step_ms
    pages_left = [limits.max_trade_pages]
    for lo, hi in _ranges_to_fill(gaps, stored_ms, since_ms, window_ms, step_ms):
        try:
            _backfill_range(client, store, report, pair, timeframe, (lo, hi), limits, pages_left, validate,
                            progress, sleep)
        except BudgetExhausted as err:
            report.notes.append(str(err))
            break
    report.gaps_after = [str(g) for g in store.gap_report(pair, timeframe)]
    return report


def _backfill_range(client: KrakenClient, store: CandleStore, report: IngestReport, pair: str, timeframe: str,
                    span: tuple[int, int], limits: IngestParams, pages_left: list[int],
                    validate: Validator | None, progress: Progress | None,
                    sleep: Callable[[float], None]) -> None:
    """Backfill one range, storing every `store_every_candles` candles (one gate run per stored batch);
    on an exchange error what was already fetched is stored before the error propagates."""
    step_ms, before = to_ms(timeframe), pages_left[0]
    buffer: list[pd.DataFrame] = []

    def flush() -> None:
        if not buffer:
            return
        batch = pd.concat(buffer, ignore_index=True)
        buffer.clear()
        report.count(store.upsert(pair, timeframe, batch, f"Kraken Trades {pair} → {timeframe} candles",
                                  "replace", validate))
        report.backfilled_candles += len(batch)
        if progress:
            progress("trades", len(batch))

    try:
        for batch in backfill_batches(client, pair, step_ms, span[0], span[1], limits, pages_left, sleep):
            buffer.append(batch)
            if sum(len(b) for b in buffer) >= limits.store_every_candles:
                flush()
    except errors.ExchangeError:
        flush()
        raise
    finally:
        report.trade_pages += before - pages_left[0]
    flush()
