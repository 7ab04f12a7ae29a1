"""Repair rules on the real files that carry each defect: every change is one logged sentence."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
import pytest

from market.history import import_file
from quality.repairs import apply_repairs, drop_exact_duplicates, missing_candles, sort_by_date, zero_volume_flat_bars

ROOT = Path(__file__).resolve().parents[2]
CDD_XRP = ROOT / "data" / "sample" / "kraken" / "Kraken_XRPUSD_1h.csv"
KRAKEN_DAILY = ROOT / "data" / "sample" / "kraken" / "XRPUSD_1440.csv"
REAL = ROOT / "tests" / "fixtures" / "real"


def _cdd_in_file_order() -> pd.DataFrame:
    """The Kraken CDD rows exactly as the file lists them (newest first), in the canonical columns."""
    raw = pd.read_csv(CDD_XRP, skiprows=1)
    return pd.DataFrame({"date": pd.to_datetime(raw["Date"], format="%Y-%m-%d %I-%p", utc=True),
                         "open": raw["Open"], "high": raw["High"], "low": raw["Low"], "close": raw["Close"],
                         "volume": raw["Volume XRP"]})


def test_newest_first_kraken_file_is_sorted_and_the_repair_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    raw = _cdd_in_file_order()
    assert raw["date"].iloc[0] > raw["date"].iloc[-1]
    with caplog.at_level(logging.INFO, logger="quality.repairs"):
        report = apply_repairs(raw, "1h", "cdd")
    assert report.frame["date"].is_monotonic_increasing and len(report.frame) == len(raw)
    assert report.repairs == ("cdd: sorted 21537 rows by date (file was out of order)",)
    assert "repair: cdd: sorted 21537 rows" in caplog.text


def test_already_ascending_file_is_left_alone() -> None:
    frame = import_file(KRAKEN_DAILY).frame
    assert sort_by_date(frame, "daily") == (frame, None)
    assert drop_exact_duplicates(frame, "daily") == (frame, None)


def test_exact_duplicate_rows_are_dropped_keeping_the_first() -> None:
    """Duplicated real rows, as the emulator's `duplicate_candles` fault serves them."""
    frame = import_file(KRAKEN_DAILY).frame.iloc[:50]
    doubled = pd.concat([frame, frame.iloc[10:13]]).sort_values("date", kind="stable").reset_index(drop=True)
    out, note = drop_exact_duplicates(doubled, "daily")
    assert out.equals(frame) and note == f"daily: dropped 3 exact duplicate row(s), first at {frame['date'].iloc[10]}"


def test_zero_volume_flat_bars_of_the_kraken_outage_are_kept_with_a_warning() -> None:
    report = apply_repairs(import_file(CDD_XRP).frame, "1h", "cdd")
    assert len(report.frame) == 21537
    [flat] = [w for w in report.warnings if "zero-volume" in w]
    assert flat.startswith("cdd: 122 zero-volume flat bar(s) kept")


def test_missing_days_of_kraken_outages_are_reported_not_invented() -> None:
    frame = import_file(KRAKEN_DAILY).frame
    note = missing_candles(frame, "daily", "1d")
    assert note is not None and note.startswith("daily: 3 missing candle(s) in 2 gap(s), largest 2 after")
    assert len(apply_repairs(frame, "1d", "daily").frame) == len(frame)


def test_binance_34_hour_shutdown_is_reported_as_33_missing_candles() -> None:
    frame = pd.read_parquet(REAL / "BTC_USDT-1h-2018-02-05_12.parquet")
    assert "33 missing candle(s) in 1 gap(s), largest 33 after 2018-02-08 00:00:00+00:00" in str(
        missing_candles(frame, "btc", "1h"))
    assert zero_volume_flat_bars(frame, "btc") is None


def test_frames_the_gate_must_reject_are_passed_through_untouched() -> None:
    naive = pd.DataFrame({"date": pd.date_range("2024-01-02", periods=3, freq="h"), "open": 1.0, "high": 1.0,
                          "low": 1.0, "close": 1.0, "volume": 1.0}).iloc[::-1]
    report = apply_repairs(naive, "1h", "naive")
    assert report.frame is naive and report.repairs == () and report.warnings == ()
