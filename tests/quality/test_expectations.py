"""The GX candle gate on real files: clean files pass, each real defect is caught or repaired with a
logged rule, and a failing batch is quarantined with its GX result and Data Docs."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from core.params import QualityParams, load_params
from market.history import import_file
from pipeline.paths import DataPaths
from pipeline.prepare import prepare_pair
from quality.expectations import DataQualityError, gate, validate_candles

ROOT = Path(__file__).resolve().parents[2]
RULES = load_params(ROOT / "params.yaml").quality
REAL = ROOT / "tests" / "fixtures" / "real"
CDD_XRP = ROOT / "data" / "sample" / "kraken" / "Kraken_XRPUSD_1h.csv"
KRAKEN_DAILY = ROOT / "data" / "sample" / "kraken" / "XRPUSD_1440.csv"
NOW = pd.Timestamp("2026-11-24", tz="UTC")


def _names(result) -> set[str]:  # type: ignore[no-untyped-def]
    return {f.meaning for f in result.failures}


def test_bundled_hourly_sample_passes_every_expectation(xrp_1h: pd.DataFrame) -> None:
    result = validate_candles(xrp_1h, RULES, "1h", "XRP-USD", now=NOW)
    assert result.success, result.summary()
    assert result.checked >= 30 and result.gx_result["success"] is True


def test_kraken_daily_file_with_outage_gaps_passes_and_gaps_stay_gaps() -> None:
    frame = import_file(KRAKEN_DAILY).frame
    assert validate_candles(frame, RULES, "1d", "XRP-USD", now=NOW).success
    assert len(frame) == 2507  # 2018-01-11/12 and 2022-05-11/12 are missing, nothing was invented


def test_cdd_local_time_rows_interleaved_with_utc_are_rejected_naming_the_rows() -> None:
    result = validate_candles(import_file(CDD_XRP).frame, RULES, "1h", "XRP-USD", now=NOW)
    assert not result.success
    [failure] = result.failures
    assert failure.expectation == "expect_compound_columns_to_be_unique" and failure.unexpected_count == 10
    assert failure.examples[0].startswith("2017-11-11 23:00")


def test_btc_34_hour_exchange_shutdown_fails_the_gap_rule() -> None:
    frame = pd.read_parquet(REAL / "BTC_USDT-1h-2018-02-05_12.parquet")
    result = validate_candles(frame, RULES, "1h", "BTC-USD", now=NOW)
    assert _names(result) == {"no gap longer than 24 candles"}
    assert result.failures[0].unexpected_count == 1 and "2018-02-09 10:00" in result.failures[0].examples[0]
    looser = QualityParams(**{**RULES.model_dump(), "max_gap_candles": 48})
    assert validate_candles(frame, looser, "1h", "BTC-USD", now=NOW).success


def test_rolling_window_starting_at_12_09_is_on_the_minute_grid_but_not_the_hour_grid() -> None:
    frame = pd.read_parquet(REAL / "XRP_USDT-1m-first600.parquet")
    assert validate_candles(frame, RULES, "1m", "XRP-USD", now=NOW).success
    wrong = validate_candles(frame, RULES, "1h", "XRP-USD", now=NOW)
    assert {"candles sit on the timeframe grid", "the typical step is one candle (right timeframe)"} <= _names(wrong)


def test_candles_after_now_are_from_the_future(xrp_1h: pd.DataFrame) -> None:
    before_last = xrp_1h["date"].iloc[-2]
    result = validate_candles(xrp_1h, RULES, "1h", "XRP-USD", now=before_last)
    assert _names(result) == {"no candle from the future"} and result.failures[0].unexpected_count == 1


def test_failing_batch_is_quarantined_with_gx_result_and_data_docs(tmp_path: Path) -> None:
    frame = import_file(CDD_XRP).frame
    with pytest.raises(DataQualityError, match=r"expect_compound_columns_to_be_unique .*10 of 21537 rows"):
        gate(frame, RULES, "1h", "XRP-USD", tmp_path / "quarantine", "run-1", now=NOW)
    target = tmp_path / "quarantine" / "run-1" / "XRP-USD"
    assert pd.read_parquet(target / "batch.parquet").equals(frame)
    stored = json.loads((target / "validation.json").read_text())
    assert stored["success"] is False and stored["statistics"]["unsuccessful_expectations"] == 1
    index = (target / "data_docs" / "index.html").read_text()
    pages = list((target / "data_docs" / "validations").rglob("*.html"))
    assert "candles-" in index and len(pages) == 1
    assert "must be unique together" in pages[0].read_text() and "10 unexpected values found" in pages[0].read_text()


def test_prepare_stage_quarantines_the_real_defective_file_and_writes_nothing_validated(tmp_path: Path) -> None:
    params = load_params(ROOT / "params.yaml")
    paths = DataPaths(tmp_path / "data")
    with pytest.raises(DataQualityError, match="quarantined in"):
        prepare_pair("XRP/USD", CDD_XRP, params, paths, "run-2")
    assert not paths.validated("XRP/USD", "1h").exists()
    assert (paths.quarantine / "run-2" / "XRP-USD" / "data_docs" / "index.html").exists()


def test_prepare_stage_reports_repairs_and_warnings_of_a_passing_file(tmp_path: Path) -> None:
    params = load_params(ROOT / "params.yaml")
    paths = DataPaths(tmp_path / "data")
    prepared = prepare_pair("BTC/USD", REAL / "XRP_USDT-1m-first600.parquet", params.model_copy(
        update={"data": params.data.model_copy(update={"timeframe": "1m"})}), paths, "run-3")
    assert prepared.rows == 600
    assert prepared.repairs == ()  # nothing repaired, no warning
    assert prepared.store == ("store: 600 candle(s) of " f"{REAL / 'XRP_USDT-1m-first600.parquet'} added to "
                              f"{paths.root / 'store' / 'kraken' / 'BTC-USD' / '1m'}",)
    assert paths.validated("BTC/USD", "1m").exists()


def test_a_lone_real_candle_passes_but_not_off_its_grid(xrp_1h: pd.DataFrame) -> None:
    """The newest candle of a new series arrives alone: there is no step to judge, but the grid still is."""
    lone = xrp_1h.iloc[100:101].reset_index(drop=True)
    assert validate_candles(lone, RULES, "1h", "XRP-USD", now=NOW).success
    shifted = lone.assign(date=lone["date"] + pd.Timedelta(minutes=7))
    assert "candles sit on the timeframe grid" in _names(validate_candles(shifted, RULES, "1h", "XRP-USD", now=NOW))
