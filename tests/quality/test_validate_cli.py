"""`krakenflow validate FILE` runs the prepare stage's repair rules and GX suite on any file."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from cli.app import app

ROOT = Path(__file__).resolve().parents[2]
RUNNER = CliRunner()


def _validate(*args: str) -> tuple[int, str]:
    result = RUNNER.invoke(app, ["validate", *args, "--params", str(ROOT / "params.yaml")], terminal_width=400)
    return result.exit_code, " ".join(result.output.split())  # Rich wraps long lines


def test_clean_file_passes_with_exit_code_0() -> None:
    code, out = _validate(str(ROOT / "data" / "sample" / "binance" / "DOGE_USDT-1h.parquet"))
    assert code == 0 and "passed — 22267 candles passed" in out


def test_real_defective_file_fails_names_the_rule_and_is_quarantined(tmp_path: Path) -> None:
    code, out = _validate(str(ROOT / "data" / "sample" / "kraken" / "Kraken_XRPUSD_1h.csv"), "--quarantine",
                          str(tmp_path))
    assert code == 1 and "FAILED" in out and "10 of 21537 rows" in out
    assert "repair: " in out and "sorted rows by date" in out and "122 zero-volume flat bar(s) kept" in out
    assert (tmp_path / "Kraken_XRPUSD_1h" / "data_docs" / "index.html").exists()


def test_unreadable_file_is_rejected_with_the_reason() -> None:
    code, out = _validate(str(ROOT / "tests" / "quality" / "corpus" / "garbage_layout.csv"))
    assert code == 1 and "unknown CSV layout" in out


def test_timeframe_is_inferred_from_the_candles_as_import_does() -> None:
    code, out = _validate(str(ROOT / "data" / "sample" / "binance" / "XRP_USDT-5m.feather"))
    assert code == 0 and "(feather, 5m): passed — 72028 candles passed" in out
    code, out = _validate(str(ROOT / "data" / "sample" / "kraken" / "XRPUSD_1440.csv"))
    assert code == 0 and "(kraken_ohlcvt, 1d): passed" in out


def test_timeframe_option_overrides_the_inferred_one() -> None:
    daily = str(ROOT / "data" / "sample" / "kraken" / "XRPUSD_1440.csv")
    assert _validate(daily, "--timeframe", "1d")[0] == 0
    code, out = _validate(daily, "--timeframe", "1h")
    assert code == 1 and "the typical step is one candle" in out
