"""The backtest report as a user opens it: from disk (file://) in headless Debian chromium with every request off
the machine blocked. A real backtest (a tiny real model on the bundled real candles, traded by the engine) must
draw its three plotly charts — equity with every baseline and the trade markers, drawdown, monthly returns —
with no console error and no external request. Screenshots go to tests/artifacts/screenshots."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from browser_support import browser, not_blank, watch
from trader_helpers import PARAMS, train_small_booster

from features.spec import spec_from_params
from market.frame import to_candles
from trader.backtest import ReplayConfig, replay
from trader.model import batch_predict, booster_scorer
from trader.report import ReportFiles, report_model, write_reports

pytestmark = pytest.mark.slow
SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample" / "binance"


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> tuple[ReportFiles, int]:
    spec = spec_from_params(PARAMS.features)
    xrp, doge = (pd.read_parquet(SAMPLE / f"{name}_USDT-1h.parquet") for name in ("XRP", "DOGE"))
    candles = {"XRP/USD": to_candles(xrp.iloc[-2500:]), "DOGE/USD": to_candles(doge.iloc[-2500:])}
    booster = train_small_booster(spec, xrp)
    result = replay(candles, ReplayConfig.from_params(PARAMS, candles["XRP/USD"][500].ts), spec,
                    booster_scorer(booster), batch_predict(booster))
    kwargs: dict[str, Any] = {"candles": candles, "taker_fee": PARAMS.fees.taker,
                              "starting_cash": PARAMS.trade.starting_cash}
    curves = len(report_model(result, "x", {}, **kwargs).curves)
    files = write_reports(result, tmp_path_factory.mktemp("report"), "backtest on the bundled candles",
                          {"pairs": "XRP/USD, DOGE/USD"}, **kwargs)
    return files, curves


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    with browser() as launched:
        yield launched


def test_report_opens_offline_from_disk_and_every_chart_draws(written: tuple[ReportFiles, int], chromium: Any) -> None:
    files, curves = written
    page = chromium.new_page(viewport={"width": 1300, "height": 900})
    seen = watch(page)
    page.goto(files.html.as_uri())
    try:
        for chart in ("#equity-chart", "#drawdown-chart", "#monthly-chart"):
            page.wait_for_selector(f"{chart} .main-svg", timeout=20_000)
    except Exception as err:
        seen.screenshot("backtest-report-failed")
        raise AssertionError(f"the report's charts did not draw: {seen.problems()}") from err
    assert page.eval_on_selector("#equity-chart", "el => el.data.length") == curves + 2  # + buys, sells
    drawn = page.eval_on_selector_all("#equity-chart .scatterlayer .trace", "els => els.length")
    assert drawn == curves + 2
    assert page.eval_on_selector("#drawdown-chart", "el => el.data.length") >= 2  # model + buy & hold
    assert page.locator("#pairs tr").count() >= 3  # header, a pair, TOTAL
    assert seen.problems() == []
    assert not_blank(seen.screenshot("backtest-report"))


def test_a_report_that_needs_the_network_is_caught(written: tuple[ReportFiles, int], chromium: Any,
                                                   tmp_path: Path) -> None:
    """The check above can fail: the same page with plotly.js swapped for a CDN script is blocked and blank."""
    files, _ = written
    page_text = files.html.read_text(encoding="utf-8")
    start = page_text.index("<script>")
    end = page_text.index("</script>", start) + len("</script>")
    online = tmp_path / "online.html"
    online.write_text(page_text[:start] + '<script src="https://cdn.plot.ly/plotly-2.35.2.min.js"></script>'
                      + page_text[end:], encoding="utf-8")
    page = chromium.new_page()
    seen = watch(page)
    page.goto(online.as_uri())
    page.wait_for_timeout(500)
    assert page.locator("#equity-chart .main-svg").count() == 0
    assert any("cdn.plot.ly" in url for url in seen.external) and any("Plotly" in e for e in seen.errors)
