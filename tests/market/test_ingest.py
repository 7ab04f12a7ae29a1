"""Ingestion against the local Kraken emulator (real HTTP, unmodified ccxt) replaying the bundled real
candles: the 720-candle window, the unfinished last candle, incremental runs, the 2-year Trades backfill,
rate-limit and data faults, the quality gate, and the request budget."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.params import IngestParams, QualityParams
from market import errors
from market.backfill import ingest_pair, trades_to_candles
from market.emulator.faults import Fault
from market.frame import check_candle_frame, to_candles
from market.store import CandleStore
from quality.expectations import DataQualityError, gate

LIMITS = IngestParams(rate_limit_pause_s=0.5)
YEAR_OF_HOURS = 365 * 24


@pytest.fixture
def store(tmp_path: Path) -> CandleStore:
    return CandleStore(tmp_path / "store")


def _replayed(emulator, pair: str = "XRP/USD") -> pd.DataFrame:  # type: ignore[no-untyped-def]
    """The real candles the emulator replays, as a frame (the ground truth for what ingest must store)."""
    seq = emulator.venue.candles[pair]
    frame = pd.DataFrame([(c.ts, c.open, c.high, c.low, c.close, c.volume) for c in seq],
                         columns=["ts", "open", "high", "low", "close", "volume"])
    frame.insert(0, "date", pd.to_datetime(frame.pop("ts"), unit="ms", utc=True))
    return frame


def _assert_same_candles(stored: pd.DataFrame, truth: pd.DataFrame) -> None:
    assert stored["date"].tolist() == truth["date"].tolist()
    for col in ("open", "high", "low", "close"):
        np.testing.assert_array_equal(stored[col].to_numpy(), truth[col].to_numpy())
    np.testing.assert_allclose(stored["volume"].to_numpy(), truth["volume"].to_numpy(), rtol=1e-9, atol=4e-8)


def test_first_ingest_stores_the_720_window_minus_the_unfinished_candle(emulator, kraken_client, store) -> None:
    report = ingest_pair(kraken_client, store, "XRP/USD", "1h", LIMITS)
    cursor = emulator.venue.cursor
    assert report.ohlc_candles == 719 and report.added == 719 and report.trade_pages == 0
    stored = store.read("XRP/USD", "1h", contiguous=True)
    _assert_same_candles(stored, _replayed(emulator).iloc[cursor - 719 : cursor].reset_index(drop=True))


def test_incremental_run_adds_only_new_finished_candles_and_a_rerun_writes_nothing(
        emulator, kraken_client, store) -> None:
    ingest_pair(kraken_client, store, "XRP/USD", "1h", LIMITS)
    emulator.advance(5)
    more = ingest_pair(kraken_client, store, "XRP/USD", "1h", LIMITS)
    assert (more.added, more.replaced, more.trade_pages) == (5, 0, 0)
    files = {p: p.stat().st_mtime_ns for p in store.month_files("XRP/USD", "1h")}
    again = ingest_pair(kraken_client, store, "XRP/USD", "1h", LIMITS)
    assert (again.added, again.replaced, again.files_written) == (0, 0, 0)
    assert {p: p.stat().st_mtime_ns for p in store.month_files("XRP/USD", "1h")} == files
    assert store.last_date("XRP/USD", "1h") == _replayed(emulator)["date"].iloc[emulator.venue.cursor - 1]


def test_a_two_year_gap_is_filled_from_trades(emulator, kraken_client, store) -> None:
    ingest_pair(kraken_client, store, "XRP/USD", "1h", LIMITS)
    first = store.read("XRP/USD", "1h")["date"].iloc[0]
    emulator.advance(2 * YEAR_OF_HOURS)
    report = ingest_pair(kraken_client, store, "XRP/USD", "1h", LIMITS)
    gap = 2 * YEAR_OF_HOURS - 719
    assert report.ohlc_candles == 719 and report.backfilled_candles == gap
    assert report.trade_pages == -(-gap * 4 // 1000)  # 4 prints per candle, ≤ 1000 per page; the last page
    # reaches into the OHLC window, which ends the backfill
    assert report.gaps_after == [] and report.added == 2 * YEAR_OF_HOURS
    stored = store.read("XRP/USD", "1h", contiguous=True)
    truth = _replayed(emulator)
    truth = truth.loc[(truth["date"] >= first) & (truth["date"] < truth["date"][emulator.venue.cursor])]
    _assert_same_candles(stored, truth.reset_index(drop=True))
    backfilled = stored.iloc[719:-719]
    assert (backfilled["trades"] == 4).all() and stored["trades"].iloc[-719:].isna().all()


def test_since_older_than_the_window_backfills_then_stops_at_the_window(emulator, kraken_client, store) -> None:
    emulator.advance(1000)
    truth = _replayed(emulator)
    since = truth["date"][emulator.venue.cursor - 900]
    report = ingest_pair(kraken_client, store, "XRP/USD", "1h", LIMITS, since_ms=since.value // 1_000_000)
    assert report.backfilled_candles == 900 - 719 and report.ohlc_candles == 719
    assert store.read("XRP/USD", "1h", start=since, contiguous=True)["date"].iloc[0] == since


def test_rate_limited_trades_pause_and_retry(emulator, kraken_client, store) -> None:
    emulator.advance(1000)
    emulator.add_fault(Fault("Trades", "kraken_error", times=2, error="EAPI:Rate limit exceeded"))
    pauses: list[float] = []
    since = _replayed(emulator)["date"][emulator.venue.cursor - 800].value // 1_000_000
    report = ingest_pair(kraken_client, store, "XRP/USD", "1h", LIMITS, since_ms=since, sleep=pauses.append)
    assert pauses == [0.5, 1.0] and report.backfilled_candles == 81 and report.gaps_after == []


def test_persistent_rate_limit_raises_and_keeps_the_window(emulator, kraken_client, store) -> None:
    emulator.advance(1000)
    emulator.add_fault(Fault("Trades", "kraken_error", times=10, error="EAPI:Rate limit exceeded"))
    since = _replayed(emulator)["date"][emulator.venue.cursor - 800].value // 1_000_000
    with pytest.raises(errors.RateLimited, match="Rate limit"):
        ingest_pair(kraken_client, store, "XRP/USD", "1h", LIMITS, since_ms=since, sleep=lambda s: None)
    assert len(store.read("XRP/USD", "1h")) == 719  # the OHLC window was stored before the backfill


@pytest.mark.parametrize("kind", ["duplicate_candles", "out_of_order_candles"])
def test_duplicated_or_shuffled_ohlc_rows_still_store_the_true_candles(emulator, kraken_client, store, kind) -> None:
    emulator.add_fault(Fault("OHLC", kind))
    ingest_pair(kraken_client, store, "XRP/USD", "1h", LIMITS)
    cursor = emulator.venue.cursor
    _assert_same_candles(store.read("XRP/USD", "1h"), _replayed(emulator).iloc[cursor - 719 : cursor]
                         .reset_index(drop=True))


def test_malformed_answer_is_an_error_and_changes_nothing(emulator, kraken_client, store) -> None:
    ingest_pair(kraken_client, store, "XRP/USD", "1h", LIMITS)
    before = {p: p.read_bytes() for p in store.month_files("XRP/USD", "1h")}
    emulator.advance(3)
    emulator.add_fault(Fault("OHLC", "malformed_json"))
    with pytest.raises(errors.ExchangeError):
        ingest_pair(kraken_client, store, "XRP/USD", "1h", LIMITS)
    assert {p: p.read_bytes() for p in store.month_files("XRP/USD", "1h")} == before


def test_quality_gate_refusal_stores_nothing_and_quarantines(emulator, kraken_client, store, tmp_path) -> None:
    strict = QualityParams(max_gap_candles=24, max_abs_log_return=0.001, max_zero_volume_share=0.02)

    def validate(frame: pd.DataFrame) -> None:
        gate(frame, strict, "1h", "XRP-USD", tmp_path / "quarantine", "t1")

    with pytest.raises(DataQualityError, match="quality gate failed"):
        ingest_pair(kraken_client, store, "XRP/USD", "1h", LIMITS, validate=validate)
    assert store.month_files("XRP/USD", "1h") == []
    assert (tmp_path / "quarantine" / "t1" / "XRP-USD" / "batch.parquet").exists()


def test_a_hole_inside_the_stored_history_is_filled_from_trades(emulator, kraken_client, store) -> None:
    emulator.advance(2000)
    truth = _replayed(emulator).iloc[: emulator.venue.cursor]
    store.upsert("XRP/USD", "1h", truth.drop(index=range(300, 340)).iloc[:1500], "holed history")
    report = ingest_pair(kraken_client, store, "XRP/USD", "1h", LIMITS)
    assert report.gaps_before[0].startswith("40 candle(s) missing")
    assert report.gaps_after == [] and report.backfilled_candles == 40 + (len(truth) - 719 - 1540)
    _assert_same_candles(store.read("XRP/USD", "1h", contiguous=True), truth.reset_index(drop=True))


def test_budget_exhausted_keeps_what_was_fetched_and_the_next_run_continues(emulator, kraken_client, store) -> None:
    ingest_pair(kraken_client, store, "XRP/USD", "1h", LIMITS)
    emulator.advance(3000)
    small = IngestParams(max_trade_pages=3)
    first = ingest_pair(kraken_client, store, "XRP/USD", "1h", small)
    # 3 pages of 1000 prints = 750 candles, the newest held back: no later trade proves it complete yet
    assert first.trade_pages == 3 and first.backfilled_candles == 3 * 250 - 1 and "budget" in first.notes[0]
    assert len(first.gaps_after) == 1
    second = ingest_pair(kraken_client, store, "XRP/USD", "1h", IngestParams())
    assert second.gaps_after == [] and second.backfilled_candles == 3000 - 719 - 749


def test_trades_aggregate_into_the_candles_they_came_from(xrp_1h: pd.DataFrame) -> None:
    """Pure aggregation on prints shaped like the emulator's (o, h, l, c at quarter-candle offsets)."""
    candles = to_candles(check_candle_frame(xrp_1h.iloc[:48], "sample"))
    ts = np.array([c.ts + i * 900_000 for c in candles for i in range(4)], dtype=np.int64)
    price = np.array([p for c in candles for p in (c.open, c.high, c.low, c.close)])
    amount = np.array([c.volume / 4 for c in candles for _ in range(4)])
    out = trades_to_candles(ts, price, amount, 3_600_000)
    _assert_same_candles(out, xrp_1h.iloc[:48].reset_index(drop=True))
    assert out["trades"].tolist() == [4] * 48


def test_rerun_with_since_asks_only_for_what_the_store_lacks(emulator, kraken_client, store) -> None:
    emulator.advance(1000)
    dates = _replayed(emulator)["date"]
    since = dates[emulator.venue.cursor - 900].value // 1_000_000
    ingest_pair(kraken_client, store, "XRP/USD", "1h", LIMITS, since_ms=since)
    again = ingest_pair(kraken_client, store, "XRP/USD", "1h", LIMITS, since_ms=since)
    assert (again.trade_pages, again.added, again.files_written) == (0, 0, 0)
    older = ingest_pair(kraken_client, store, "XRP/USD", "1h", LIMITS,
                        since_ms=dates[emulator.venue.cursor - 1000].value // 1_000_000)
    assert (older.backfilled_candles, older.added, older.gaps_after) == (100, 100, [])


def test_two_different_candles_at_one_time_are_refused(kraken_client, store) -> None:  # type: ignore[no-untyped-def]
    from market.kraken import finished_candles

    rows = [[c.ts, c.open, c.high, c.low, c.close, c.volume] for c in kraken_client.fetch_candles("XRP/USD", "1h")]
    assert len(finished_candles([*rows, rows[-3]], "1h")) == len(rows) - 1  # an identical repeat is harmless
    # the same candle time with its close moved by 1 %: stands in for a venue answering two versions
    conflicting = [*rows, [*rows[-3][:4], rows[-3][4] * 1.01, rows[-3][5]]]
    with pytest.raises(errors.BadMarketData, match="two different candles at"):
        finished_candles(conflicting, "1h")
