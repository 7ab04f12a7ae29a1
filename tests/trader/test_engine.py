"""Engine behaviour with a scripted scorer: the model is not under test here, the engine is."""

from __future__ import annotations

import math

import pandas as pd

from core.params import load_params
from core.types import Candle
from features.spec import build_spec
from trader.backtest import merge_by_time, run_backtest
from trader.brokers.simulated import FillModel, SimulatedBroker
from trader.engine import Engine
from trader.strategy import ThresholdStrategy

PARAMS = load_params()
SPEC = build_spec([1], [3], 3, 3, 3)


def _real_candles(frame: pd.DataFrame, n: int) -> list[Candle]:
    return [Candle(int(r.date.value // 1_000_000), r.open, r.high, r.low, r.close, r.volume)
            for r in frame.iloc[:n].itertuples(index=False)]


def test_strategy_hysteresis() -> None:
    s = ThresholdStrategy(enter=0.6, exit=0.4, position_fraction=0.5)
    assert not s.wants_long(0.5, is_long=False) and s.wants_long(0.5, is_long=True)
    assert s.wants_long(0.6, is_long=False) and not s.wants_long(0.39, is_long=True)
    assert not s.wants_long(math.nan, is_long=True)


def test_engine_buys_on_high_score_then_sells_on_low(xrp_1h: pd.DataFrame) -> None:
    candles = _real_candles(xrp_1h, 80)
    scores = iter([0.9] * 10 + [0.1] * 200)
    broker = SimulatedBroker(10_000.0, FillModel(0.004, 0))
    engine = Engine(SPEC, lambda _: next(scores), ThresholdStrategy(0.6, 0.4, 0.5), broker,
                    trade_from_ts=candles[SPEC.warmup + 1].ts)
    for c in candles:
        engine.on_candle("XRP/USD", c)
    actions = [d.action for d in engine.decisions]
    assert actions[0] == "buy" and "sell" in actions
    assert [f.side.value for f in broker.fills] == ["buy", "sell"]
    assert broker.position("XRP/USD") == 0.0


def test_engine_stands_aside_during_warmup_and_on_nan_features() -> None:
    broker = SimulatedBroker(1000.0, FillModel(0.004, 0))
    engine = Engine(SPEC, lambda _: 0.99, ThresholdStrategy(0.6, 0.4, 0.5), broker)
    engine.on_candle("XRP/USD", Candle(0, 1.0, 1.0, 1.0, 1.0, 1.0))
    assert engine.decisions[-1].action == "stand_aside"
    assert engine.decisions[-1].reason == "features warming up"
    for i in range(1, SPEC.warmup + 2):
        engine.on_candle("XRP/USD", Candle(i, 1.0, 1.0, 1.0, 1.0, 1.0))
    engine.on_candle("XRP/USD", Candle(99, 1.0, math.inf, 1.0, 1.0, 1.0))
    assert engine.decisions[-1] .reason == "non-finite feature"


def test_merge_by_time_interleaves_pairs(xrp_1h: pd.DataFrame, doge_1h: pd.DataFrame) -> None:
    merged = list(merge_by_time({"XRP/USD": _real_candles(xrp_1h, 3), "DOGE/USD": _real_candles(doge_1h, 3)}))
    assert [p for p, _, _ in merged] == ["DOGE/USD", "XRP/USD"] * 3
    assert [i for _, i, _ in merged] == [0, 0, 1, 1, 2, 2]
    assert [c.ts for _, _, c in merged] == sorted(c.ts for _, _, c in merged)


def test_backtest_with_always_flat_model_keeps_cash(xrp_1h: pd.DataFrame) -> None:
    candles = {"XRP/USD": _real_candles(xrp_1h, 500)}
    result = run_backtest(candles, SPEC, lambda _: 0.0, PARAMS.trade, PARAMS.fees, candles["XRP/USD"][100].ts, 8760)
    assert result.fills == [] and result.metrics["net_return"] == 0.0
    assert result.metrics["max_drawdown"] == 0.0


def test_backtest_always_long_tracks_market_minus_fees(xrp_1h: pd.DataFrame) -> None:
    candles = {"XRP/USD": _real_candles(xrp_1h, 500)}
    start = candles["XRP/USD"][100].ts
    result = run_backtest(candles, SPEC, lambda _: 1.0, PARAMS.trade, PARAMS.fees, start, 8760)
    assert len(result.fills) == 1
    buy = result.fills[0]
    held = buy.quantity * candles["XRP/USD"][-1].close
    assert math.isclose(result.equity[-1], PARAMS.trade.starting_cash - buy.quantity * buy.price - buy.fee + held)
