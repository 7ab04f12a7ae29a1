"""`krakenflow import` / `krakenflow ingest` through the real CLI, and the Prefect ingest flow (artifact,
caching) under prefect_test_harness — against the local Kraken emulator and the bundled real files."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from cli.app import app
from market.emulator.faults import Fault
from market.store import CandleStore

ROOT = Path(__file__).resolve().parents[2]
DAILY = ROOT / "data" / "sample" / "kraken" / "XRPUSD_1440.csv"
CDD = ROOT / "data" / "sample" / "kraken" / "Kraken_XRPUSD_1h.csv"
PARAMS = str(ROOT / "params.yaml")


def _cli(*args: str) -> tuple[int, str]:
    done = CliRunner().invoke(app, [*args, "--params", PARAMS])
    return done.exit_code, done.output


def _store(data_dir: Path) -> CandleStore:
    return CandleStore(data_dir / "store", "kraken")


def test_import_real_kraken_daily_file_then_again_changes_nothing(data_dir: Path) -> None:
    code, out = _cli("import", str(DAILY), "--pair", "XRP/USD")
    assert code == 0, out
    assert "as XRP/USD 1d: 2507 added" in out and "2 gap(s)" in out
    files = {p: p.stat().st_mtime_ns for p in _store(data_dir).month_files("XRP/USD", "1d")}
    code, out = _cli("import", str(DAILY), "--pair", "XRP/USD")
    assert code == 0 and "0 added, 2507 already stored" in out and "0 month file(s) written" in out
    assert {p: p.stat().st_mtime_ns for p in _store(data_dir).month_files("XRP/USD", "1d")} == files


def test_import_refuses_bad_files_with_the_file_named_and_stores_nothing(data_dir: Path, tmp_path: Path) -> None:
    unknown = tmp_path / "candles.xlsx"
    unknown.write_text("not a candle file")
    code, out = _cli("import", str(unknown), "--pair", "XRP/USD")
    assert code == 2 and "candles.xlsx: unknown candle file format" in out
    # the real CDD export interleaves local-time and UTC rows in 2017-11: the gate refuses the whole file
    code, out = _cli("import", str(CDD), "--pair", "XRP/USD")
    assert code == 2 and "quality gate failed" in out and "quarantined" in out
    assert not (data_dir / "store" / "kraken" / "XRP-USD" / "1h").exists() or not _store(data_dir).month_files(
        "XRP/USD", "1h")


def test_cli_ingest_fills_a_two_year_gap_from_trades(emulator, data_dir: Path) -> None:  # type: ignore[no-untyped-def]
    code, out = _cli("ingest", "--pair", "XRP/USD", "--timeframe", "1h", "--url", emulator.url)
    assert code == 0, out
    emulator.advance(2 * 365 * 24)
    code, out = _cli("ingest", "--pair", "XRP/USD", "--timeframe", "1h", "--url", emulator.url)
    assert code == 0, out
    row = re.search(r"XRP/USD\s*│\s*1h\s*│\s*(\d+)\s*│\s*0\s*│\s*719\s*│\s*(\d+) \((\d+)\)\s*│\s*0\s*│\s*0", out)
    assert row, out
    assert (int(row[1]), int(row[2])) == (2 * 365 * 24, 2 * 365 * 24 - 719)
    stored = _store(data_dir).read("XRP/USD", "1h", contiguous=True)
    assert len(stored) == 719 + 2 * 365 * 24
    assert stored["date"].iloc[-1].value // 1_000_000 == emulator.venue.candles["XRP/USD"][emulator.venue.cursor - 1].ts


def test_cli_ingest_reports_exchange_errors_clearly(emulator, data_dir: Path) -> None:  # type: ignore[no-untyped-def]
    emulator.add_fault(Fault("OHLC", "kraken_error", times=10, error="EQuery:Unknown asset pair"))
    code, out = _cli("ingest", "--pair", "XRP/USD", "--url", emulator.url)
    assert code == 2 and "Unknown asset pair" in out
    assert not _store(data_dir).month_files("XRP/USD", "1h")


def _artifact(key: str) -> str:
    """The newest artifact with this key, read over the Prefect REST API (the pinned client's filter
    helper sends null filters that this server version rejects or mis-reads)."""
    import httpx
    from prefect.settings import PREFECT_API_URL

    found = httpx.post(f"{PREFECT_API_URL.value().rstrip('/')}/artifacts/filter", timeout=30,
                       json={"artifacts": {"key": {"any_": [key]}}, "sort": "CREATED_DESC", "limit": 1})
    found.raise_for_status()
    return str(found.json()[0]["data"])


def _deployment(deployment_id: object) -> dict:
    import httpx
    from prefect.settings import PREFECT_API_URL

    found = httpx.get(f"{PREFECT_API_URL.value().rstrip('/')}/deployments/{deployment_id}", timeout=30)
    found.raise_for_status()
    return dict(found.json())


@pytest.mark.slow
def test_ingest_flow_writes_an_artifact_is_cached_within_a_candle_and_deploys_on_schedules(
        emulator, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from prefect.testing.utilities import prefect_test_harness

    from flows.ingest import ingest_deployments, ingest_flow

    data = tmp_path / "data"
    with prefect_test_harness(server_startup_timeout=180):
        first = ingest_flow(params_file=PARAMS, data_dir=str(data), kraken_url=emulator.url,
                            since=str(pd.Timestamp(emulator.venue.candles["XRP/USD"][0].ts, unit="ms", tz="UTC")))
        assert [(r["pair"], r["added"], r["backfilled_candles"]) for r in first] == [("XRP/USD", 720, 1),
                                                                                       ("DOGE/USD", 720, 1)]
        emulator.add_fault(Fault("OHLC", "delay", times=1, delay_ms=1))  # fires only if OHLC is called again
        second = ingest_flow(params_file=PARAMS, data_dir=str(data), kraken_url=emulator.url,
                             since=str(pd.Timestamp(emulator.venue.candles["XRP/USD"][0].ts, unit="ms", tz="UTC")))
        assert second == first and emulator.faults.pending()  # cached: Kraken was not asked again

        markdown = _artifact("krakenflow-ingest")
        deployments = {d.name: d for d in ingest_deployments("params.yaml", "data")}
        ids = {name: d.apply() for name, d in deployments.items()}
        schedules = {name: _deployment(i)["schedules"][0]["schedule"]["cron"] for name, i in ids.items()}
        assert _deployment(ids["ingest-5m"])["parameters"]["timeframes"] == ["5m"]
    assert schedules == {"ingest-5m": "*/5 * * * *", "ingest-1h": "2 * * * *"}
    assert "| XRP/USD | 1h | 720 |" in markdown and "rebuilt from Trades" in markdown
    assert len(CandleStore(data / "store").read("DOGE/USD", "1h", contiguous=True)) == 720


def test_import_a_kraken_trades_file_needs_and_uses_the_timeframe(data_dir: Path, xrp_1h: pd.DataFrame,
                                                                  tmp_path: Path) -> None:
    # Four prints per real candle (o, h, l, c): no Kraken tick file is bundled (see test_history.py).
    lines = [f"{c.date.value // 10**9 + i * 900},{p!r},{c.volume / 4!r}" for c in xrp_1h.iloc[:24].itertuples()
             for i, p in enumerate((c.open, c.high, c.low, c.close))]
    trades = tmp_path / "XRPUSD.csv"
    trades.write_text("\n".join(lines) + "\n")
    code, out = _cli("import", str(trades), "--pair", "XRP/USD")
    assert code == 2 and "pass --timeframe" in out
    code, out = _cli("import", str(trades), "--pair", "XRP/USD", "--timeframe", "1h")
    assert code == 0 and "(kraken_trades) as XRP/USD 1h: 24 added" in out
    assert _store(data_dir).read("XRP/USD", "1h")["trades"].tolist() == [4] * 24
