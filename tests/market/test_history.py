"""History importers on the real bundled files: one schema out, repairs reported, timeframe inferred,
unknown layouts refused with the file named."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from market.frame import CandleDataError
from market.history import import_file, infer_timeframe

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"
SHARED = Path("/work/shared/data")


@pytest.mark.parametrize(("name", "fmt", "rows", "timeframe"), [
    ("kraken/XRPUSD_1440.csv", "kraken_ohlcvt", 2507, "1d"),
    ("binance/XRP_USDT-1h.parquet", "parquet", 22267, "1h"),
    ("binance/DOGE_USDT-5m.feather", "feather", 72029, "5m"),
])
def test_real_files_import_to_one_schema_with_their_timeframe(name: str, fmt: str, rows: int, timeframe: str) -> None:
    result = import_file(SAMPLE / name)
    assert result.format == fmt and len(result.frame) == rows
    assert str(result.frame["date"].dtype) == "datetime64[ns, UTC]"
    assert result.frame["date"].is_monotonic_increasing and result.frame["date"].is_unique
    assert infer_timeframe(result.frame, name) == timeframe


def test_cryptodatadownload_newest_first_is_sorted_and_the_repair_reported() -> None:
    result = import_file(SAMPLE / "kraken" / "Kraken_XRPUSD_1h.csv")
    assert result.format == "cdd"
    assert any("sorted rows by date" in r for r in result.repairs)
    assert result.frame["date"].iloc[0] == pd.Timestamp("2017-07-01 11:00", tz="UTC")
    assert infer_timeframe(result.frame, "cdd") == "1h"


def test_kraken_ohlcvt_without_header_as_kraken_ships_it(tmp_path: Path) -> None:
    """Kraken's own OHLCVT downloads have no header line; the bundled copy has one: strip it."""
    lines = (SAMPLE / "kraken" / "XRPUSD_1440.csv").read_text().splitlines()
    bare = tmp_path / "XRPUSD_1440.csv"
    bare.write_text("\n".join(lines[1:]) + "\n")
    with_header, without = import_file(SAMPLE / "kraken" / "XRPUSD_1440.csv").frame, import_file(bare).frame
    pd.testing.assert_frame_equal(with_header, without)
    assert without["trades"].dtype.kind == "i"


def test_unknown_layouts_and_formats_name_the_file(tmp_path: Path) -> None:
    odd = tmp_path / "odd.csv"
    odd.write_text("symbol;price\nXRP;0.5\n")
    with pytest.raises(CandleDataError, match=r"odd.csv: unknown CSV layout"):
        import_file(odd)
    (tmp_path / "candles.json").write_text("{}")
    with pytest.raises(CandleDataError, match=r"candles.json: unknown candle file format"):
        import_file(tmp_path / "candles.json")
    with pytest.raises(CandleDataError, match="file not found"):
        import_file(tmp_path / "missing.csv")


def test_timeframe_of_irregular_candles_is_refused(xrp_1h: pd.DataFrame) -> None:
    every_90_min = xrp_1h.iloc[:100].copy()
    every_90_min["date"] = pd.date_range("2024-01-01", periods=len(every_90_min), freq="90min", tz="UTC")
    with pytest.raises(CandleDataError, match="match no Kraken interval"):
        infer_timeframe(every_90_min, "odd spacing")


@pytest.mark.skipif(not (SHARED / "binance" / "XRP_USDT-1m.feather").exists(),
                    reason="/work/shared/data (the team's staged originals) is not on this machine")
def test_shared_one_minute_file_starting_off_the_hour_is_1m() -> None:
    frame = import_file(SHARED / "binance" / "XRP_USDT-1m.feather").frame
    assert len(frame) == 43_200 and infer_timeframe(frame, "1m") == "1m"


def _trades_csv_from_real_candles(frame: pd.DataFrame, path: Path) -> Path:
    """Kraken's trade-history layout (unix s, price, volume; no header) with four prints per real candle
    (open, high, low, close at quarter-hour offsets, a quarter of its volume each) — the same deterministic
    derivation the emulator uses: no Kraken tick file is bundled, so the prints are shaped by real candles."""
    rows = []
    for c in frame.itertuples():
        t0 = c.date.value // 1_000_000_000
        rows += [f"{t0 + i * 900},{p!r},{c.volume / 4!r}" for i, p in enumerate((c.open, c.high, c.low, c.close))]
    path.write_text("\n".join(rows) + "\n")
    return path


def test_kraken_trades_file_aggregates_into_the_candles_of_the_asked_timeframe(
        xrp_1h: pd.DataFrame, tmp_path: Path) -> None:
    real = xrp_1h.iloc[:48].reset_index(drop=True)
    path = _trades_csv_from_real_candles(real, tmp_path / "XRPUSD.csv")
    hourly = import_file(path, "1h")
    assert hourly.format == "kraken_trades" and "aggregated 192 trades into 48 1h candles" in hourly.repairs[0]
    pd.testing.assert_frame_equal(hourly.frame.drop(columns="trades"), real, check_exact=False, rtol=1e-12)
    four_hourly = import_file(path, "4h").frame
    expected = real.resample("4h", on="date").agg(
        {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}).reset_index()
    pd.testing.assert_frame_equal(four_hourly.drop(columns="trades"), expected, check_exact=False, rtol=1e-12)
    assert four_hourly["trades"].tolist() == [16] * 12


def test_kraken_trades_file_needs_a_timeframe_and_clean_rows(xrp_1h: pd.DataFrame, tmp_path: Path) -> None:
    path = _trades_csv_from_real_candles(xrp_1h.iloc[:3], tmp_path / "XRPUSD.csv")
    with pytest.raises(CandleDataError, match="pass --timeframe"):
        import_file(path)
    lines = path.read_text().splitlines()
    (tmp_path / "bad.csv").write_text("\n".join([*lines[:5], "1698800000,abc,1.0", *lines[5:]]) + "\n")
    with pytest.raises(CandleDataError, match=r"bad.csv: row 5: .*not time,price,volume"):
        import_file(tmp_path / "bad.csv", "1h")
    (tmp_path / "shuffled.csv").write_text("\n".join([lines[1], lines[0], *lines[2:]]) + "\n")
    with pytest.raises(CandleDataError, match=r"shuffled.csv: row 1: trades not in time order"):
        import_file(tmp_path / "shuffled.csv", "1h")
