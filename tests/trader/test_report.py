"""The backtest report model: baselines on hand-checkable series, trades per pair, months, metrics with units,
and the three renderings. The tiny series are synthetic on purpose: a few prices whose right answers can be
worked out by hand in the comments; the realistic report is the engine over the bundled real candles."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from trader_helpers import PARAMS, train_small_booster

from core.types import Candle, Fill, Side
from features.spec import spec_from_params
from market.frame import to_candles
from trader.backtest import BacktestResult, ReplayConfig, replay
from trader.model import batch_predict, booster_scorer
from trader.report import (
    baseline_curves,
    buy_and_hold_curve,
    closes_on_clock,
    drawdown_series,
    format_metric,
    momentum_curve,
    monthly_returns,
    pair_table,
    report_model,
    round_trips,
    write_reports,
)
from trader.report_render import render_html, render_json, render_markdown

H = 3_600_000
ROOT = Path(__file__).resolve().parents[2]


def _candles(closes: list[float], start: int = 0) -> list[Candle]:
    return [Candle(start + i * H, c, c, c, c, 1.0) for i, c in enumerate(closes)]


def _fill(pair: str, side: Side, qty: float, price: float, fee: float, hour: int) -> Fill:
    return Fill(f"c{hour}{pair}", pair, side, qty, price, fee, hour * H)


# ---- baselines ----------------------------------------------------------------------------------------

def test_buy_and_hold_pays_the_taker_fee_in_and_out() -> None:
    # 100 USD, 1 % fee: 99 coins at 1.0; marked 198 at 2.0; at 1.5 less the exit fee: 148.5 · 0.99
    assert buy_and_hold_curve(np.array([1.0, 2.0, 1.5]), 100.0, 0.01).tolist() == pytest.approx(
        [100.0, 198.0, 147.015])


def test_momentum_is_long_over_the_next_candle_after_a_rise_and_pays_each_switch() -> None:
    # lookback 1: long after 11 > 10 (fee: 99), rides 11 → 12 (108), long again after 12 > 11 and rides
    # 12 → 11 (99), goes flat after 11 < 12 (fee: 98.01) and stays flat at 11 = 11
    assert momentum_curve(np.array([10.0, 11, 12, 11, 11]), 100.0, 0.01, 1).tolist() == pytest.approx(
        [100.0, 99.0, 108.0, 98.01, 98.01])


def test_momentum_still_long_at_the_end_pays_its_exit_fee_on_the_last_candle() -> None:
    assert momentum_curve(np.array([10.0, 11, 12]), 100.0, 0.01, 1).tolist() == pytest.approx(
        [100.0, 99.0, 108.0 * 0.99])


def test_a_missing_candle_keeps_the_previous_close_on_the_report_clock() -> None:
    seq = [Candle(0, 1, 1, 1, 1.0, 1), Candle(2 * H, 3, 3, 3, 3.0, 1)]
    assert closes_on_clock(seq, np.array([0, H, 2 * H])).tolist() == [1.0, 1.0, 3.0]


def test_baselines_are_buy_and_hold_per_pair_equal_weight_momentum_and_flat() -> None:
    candles = {"XRP/USD": _candles([1.0, 2.0, 1.0]), "DOGE/USD": _candles([1.0, 1.0, 3.0])}
    curves = {c.name: c.equity for c in baseline_curves(candles, [0, H, 2 * H], 100.0, 0.0, 1)}
    assert list(curves) == ["buy & hold DOGE/USD", "buy & hold XRP/USD", "buy & hold (equal weight)",
                            "momentum (1 candles)", "flat"]
    assert curves["buy & hold XRP/USD"] == pytest.approx((100.0, 200.0, 100.0))
    assert curves["buy & hold (equal weight)"] == pytest.approx((100.0, 150.0, 200.0))  # 50 in each
    # 50 per sleeve: XRP long after 1 → 2, rides 2 → 1 (25); DOGE never rises before its last candle
    assert curves["momentum (1 candles)"] == pytest.approx((100.0, 100.0, 75.0))
    assert curves["flat"] == (100.0, 100.0, 100.0)


def test_drawdown_is_the_fall_from_the_running_peak() -> None:
    assert drawdown_series([100.0, 120, 90, 120]).tolist() == pytest.approx([0.0, 0.0, 0.25, 0.0])


# ---- trades, months, units ---------------------------------------------------------------------------

FILLS = [
    _fill("XRP/USD", Side.BUY, 10.0, 1.0, 0.04, 0),       # cost 10.04
    _fill("DOGE/USD", Side.BUY, 100.0, 0.1, 0.04, 1),     # cost 10.04
    _fill("XRP/USD", Side.SELL, 5.0, 1.2, 0.024, 2),      # partial exit
    _fill("XRP/USD", Side.SELL, 5.0, 1.2, 0.024, 3),      # XRP flat: 12 − 10 − 0.088 = +1.912 after 3 h
    _fill("DOGE/USD", Side.SELL, 100.0, 0.09, 0.036, 6),  # DOGE flat: 9 − 10 − 0.076 = −1.076 after 5 h
    _fill("XRP/USD", Side.BUY, 1.0, 1.0, 0.004, 7),       # still open at the end: not a trade
]


def test_round_trips_add_partial_fills_and_leave_an_open_position_out() -> None:
    trips = round_trips(FILLS)
    assert [(t.pair, t.opened, t.closed) for t in trips] == [("XRP/USD", 0, 3 * H), ("DOGE/USD", H, 6 * H)]
    assert [t.profit for t in trips] == pytest.approx([1.912, -1.076])
    assert trips[0].profit_fraction == pytest.approx(1.912 / 10.04)


def test_pair_table_is_freqtrades_backtest_table_with_units() -> None:
    doge, xrp, total = pair_table(FILLS, ["XRP/USD", "DOGE/USD"], 100.0)
    assert xrp.cells == ("XRP/USD", "1", "100.00 %", "+19.04 %", "+1.91 USD", "+1.91 %", "3 h 00 min")
    assert doge.cells == ("DOGE/USD", "1", "0.00 %", "-10.72 %", "-1.08 USD", "-1.08 %", "5 h 00 min")
    assert total.cells[:3] == ("TOTAL", "2", "50.00 %") and total.total_profit_usd == pytest.approx(0.836)
    assert total.avg_duration_h == pytest.approx(4.0)


def test_monthly_returns_chain_month_end_marks() -> None:
    jan31 = int(pd.Timestamp("2026-01-31 22:00", tz="UTC").value // 1_000_000)
    ts = (jan31, jan31 + H, jan31 + 3 * H, jan31 + 30 * H)  # the last two are in February
    from trader.report import Curve

    rows = monthly_returns([Curve("model", ts, (100.0, 110.0, 121.0, 99.0))])
    assert [(r.month, r.cells[1]) for r in rows] == [("2026-01", "+10.00 %"), ("2026-02", "-10.00 %")]


@pytest.mark.parametrize(("key", "value", "text", "unit"), [
    ("net_return", 0.07962, "+7.96 %", "%"),
    ("max_drawdown", 0.15391, "15.39 %", "%"),
    ("sharpe", 1.14755, "1.15", "ratio"),
    ("n_fills", 20.0, "20", "count"),
    ("n_round_trips", 6.0, "6", "count"),
    ("kill_switch_trips", 2.0, "2", "count"),
    ("fees_paid", 235.16507, "235.17 USD", "USD"),
    ("final_equity", 10752.8675, "10,752.87 USD", "USD"),
    ("sharpe", math.inf, "n/a", "ratio"),
])
def test_metrics_read_with_their_units_not_as_raw_fractions(key: str, value: float, text: str, unit: str) -> None:
    metric = format_metric(key, value)
    assert (metric.text, metric.unit) == (text, unit)


# ---- the model over a tiny run and over the real engine ---------------------------------------------

def _tiny_result() -> BacktestResult:
    ts = [0, H, 2 * H, 3 * H]
    fills = [_fill("XRP/USD", Side.BUY, 10.0, 1.0, 0.04, 1), _fill("XRP/USD", Side.SELL, 10.0, 2.0, 0.08, 3)]
    return BacktestResult(ts, [100.0, 99.96, 109.96, 109.88], fills, [], 0.12,
                          metrics={"net_return": 0.0988, "n_fills": 2.0, "profit_factor": math.inf})


def test_report_model_puts_the_model_first_and_marks_fills_on_its_equity() -> None:
    report = report_model(_tiny_result(), "t", {"pairs": "XRP/USD"}, candles={"XRP/USD": _candles([1, 1, 2, 2])},
                          taker_fee=0.004, starting_cash=100.0, momentum_lookback=1)
    assert [c.name for c in report.curves] == ["model", "buy & hold XRP/USD", "momentum (1 candles)", "flat"]
    assert [(m.side, m.equity) for m in report.markers] == [("buy", 99.96), ("sell", 109.88)]
    assert [d.name for d in report.drawdown] == ["model", "buy & hold XRP/USD"]
    assert report.strategies[0].metrics[0].text == "+9.88 %" and not report.notes


def test_engine_momentum_replaces_the_vectorised_rule_and_no_candles_says_what_is_missing() -> None:
    report = report_model(_tiny_result(), "t", {}, candles={"XRP/USD": _candles([1, 1, 2, 2])},
                          momentum=[100.0, 100.0, 101.0, 102.0], momentum_lookback=3)
    assert [c.name for c in report.curves] == ["model", "buy & hold XRP/USD", "momentum (3 candles, engine)", "flat"]
    assert report.curves[2].equity == (100.0, 100.0, 101.0, 102.0)
    bare = report_model(_tiny_result(), "t", {})
    assert [c.name for c in bare.curves] == ["model", "flat"] and "not drawn" in bare.notes[0]


@pytest.fixture(scope="module")
def real_run() -> tuple[BacktestResult, dict[str, list[Candle]]]:
    """A tiny real LightGBM model on the bundled real XRP candles, traded by the engine on XRP and DOGE."""
    spec = spec_from_params(PARAMS.features)
    sample = ROOT / "data" / "sample" / "binance"
    xrp, doge = (pd.read_parquet(sample / f"{name}_USDT-1h.parquet") for name in ("XRP", "DOGE"))
    booster = train_small_booster(spec, xrp)
    candles = {"XRP/USD": to_candles(xrp.iloc[-2500:]), "DOGE/USD": to_candles(doge.iloc[-2500:])}
    start = candles["XRP/USD"][500].ts
    result = replay(candles, ReplayConfig.from_params(PARAMS, start), spec, booster_scorer(booster),
                    batch_predict(booster))
    return result, candles


def test_real_backtest_report_agrees_with_the_engine_and_with_buy_and_hold_by_hand(real_run) -> None:  # type: ignore[no-untyped-def]
    result, candles = real_run
    fee, cash = PARAMS.fees.taker, PARAMS.trade.starting_cash
    report = report_model(result, "real", {}, candles=candles, taker_fee=fee, starting_cash=cash)
    assert result.fills, "the tiny model should trade on these candles"
    assert report.curves[0].equity[-1] == result.metrics["final_equity"]
    start = result.equity_ts[0]
    for pair, seq in candles.items():
        traded = [c.close for c in seq if c.ts >= start]
        by_hand = traded[-1] / traded[0] * (1 - fee) ** 2 - 1
        row = next(r for r in report.strategies if r.name == f"buy & hold {pair}")
        assert row.metrics[0].value == pytest.approx(by_hand)
    *pairs, total = report.pairs
    assert sum(r.trades for r in pairs) == total.trades and len(report.markers) == len(result.fills)
    held = sum(f.quantity if f.side is Side.BUY else -f.quantity for f in result.fills)
    if abs(held) < 1e-9:  # flat at the end: the closed trades are the whole P&L
        assert total.total_profit_usd == pytest.approx(result.metrics["final_equity"] - cash)


# ---- renderings ----------------------------------------------------------------------------------------

EXTERNAL = re.compile(r"<(?:script|link|img|iframe)[^>]+(?:src|href)\s*=\s*[\"']?(?:https?:)?//", re.I)


def test_html_is_self_contained_escaped_and_carries_every_table() -> None:
    report = report_model(_tiny_result(), "<b>t</b>", {"pairs": "XRP/USD"}, candles={"XRP/USD": _candles([1, 1, 2, 2])},
                          starting_cash=100.0, momentum_lookback=1)
    page = render_html(report)
    assert not EXTERNAL.search(page), "the report must not load anything from the network"
    from plotly.offline import get_plotlyjs

    assert get_plotlyjs()[:2000] in page  # plotly.js inlined from the Python package
    assert "<title>&lt;b&gt;t&lt;/b&gt;</title>" in page
    for table in ("strategies", "pairs", "months", "fills"):
        assert f'<table id="{table}">' in page
    assert "+9.88 %" in page and "n_fills" in page and "2</b>" in page  # the count reads 2, not 2.0000


def test_markdown_and_json_carry_the_same_numbers() -> None:
    report = report_model(_tiny_result(), "t", {}, candles={"XRP/USD": _candles([1, 1, 2, 2])}, starting_cash=100.0,
                          momentum_lookback=1)
    md = render_markdown(report)
    assert "| model | +9.88 % |" in md and "| TOTAL | 1 | 100.00 % |" in md
    data = json.loads(render_json(report, _tiny_result()))
    assert data["metrics"]["n_fills"] == 2.0 and data["metrics"]["profit_factor"] is None  # JSON has no inf
    assert data["curves"]["model"] == [100.0, 99.96, 109.96, 109.88] and len(data["fills"]) == 2
    assert data["metrics_formatted"][0]["text"] == "+9.88 %"


def test_write_reports_writes_html_json_and_markdown(tmp_path: Path) -> None:
    files = write_reports(_tiny_result(), tmp_path / "out", "t", {}, candles={"XRP/USD": _candles([1, 1, 2, 2])})
    assert [p.name for p in (files.html, files.json, files.markdown)] == ["backtest.html", "backtest.json",
                                                                           "backtest.md"]
    assert all(p.stat().st_size > 0 for p in (files.html, files.json, files.markdown))
    assert not list((tmp_path / "out").glob(".*tmp"))
