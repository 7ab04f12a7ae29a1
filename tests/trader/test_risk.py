from __future__ import annotations

from dataclasses import replace

import pandas as pd

from core.params import load_params
from core.types import Candle, Side
from features.spec import build_spec
from trader.brokers.simulated import FillModel, SimulatedBroker
from trader.engine import Engine
from trader.risk import RiskTracker, RiskView, check_order
from trader.strategy import ThresholdStrategy

LIMITS = load_params().risk
HOUR = 3_600_000
OK = RiskView(equity=10_000, peak_equity=10_000, day_start_equity=10_000, position_notional=0,
              orders_last_minute=0, candle_age_ms=0, candle_ms=HOUR)


def test_a_normal_buy_passes() -> None:
    assert check_order(Side.BUY, 4_000, OK, LIMITS) == ""


def test_each_limit_blocks_a_buy_with_its_reason() -> None:
    cases = {
        "kill switch": replace(OK, equity=8_400),                       # −16 % from peak
        "daily loss": replace(OK, equity=9_400, peak_equity=9_400),     # −6 % today, no drawdown
        "stale market data": replace(OK, candle_age_ms=4 * HOUR),
        "order rate limit": replace(OK, orders_last_minute=10),
        "would exceed 50%": replace(OK, position_notional=3_000),
    }
    for reason, view in cases.items():
        assert reason in check_order(Side.BUY, 4_000, view, LIMITS), reason
    assert "order notional" in check_order(Side.BUY, 60_000, replace(OK, equity=1e6, peak_equity=1e6,
                                                                      day_start_equity=1e6), LIMITS)


def test_selling_is_never_blocked() -> None:
    worst = replace(OK, equity=1_000, candle_age_ms=10 * HOUR, orders_last_minute=99)
    assert check_order(Side.SELL, 1_000, worst, LIMITS) == ""


def test_tracker_resets_day_and_forgets_old_orders() -> None:
    t = RiskTracker()
    t.observe(0, 100.0)
    t.observe(HOUR, 90.0)
    assert (t.peak_equity, t.day_start_equity) == (100.0, 100.0)
    t.observe(25 * HOUR, 80.0)
    assert t.day_start_equity == 80.0
    t.order_sent(0)
    t.order_sent(30_000)
    assert t.orders_in_last_minute(70_000) == 1


def test_engine_stops_buying_after_the_kill_switch(xrp_1h: pd.DataFrame) -> None:
    """Real candles, a scorer that alternates long and flat, a kill switch at 1 % drawdown: after the
    first losing stretch the engine halts with the reason and never buys again (it no longer waits to
    refuse a buy: the halt comes first, see test_kill_switch.py for the flatten)."""
    spec = build_spec([1], [3], 3, 3, 3)
    limits = LIMITS.model_copy(update={"max_drawdown": 0.01, "daily_loss_limit": 1.0})
    broker = SimulatedBroker(10_000.0, FillModel(0.004, 0))
    scores = iter([0.9, 0.1] * 2000)
    engine = Engine(spec, lambda _: next(scores), ThresholdStrategy(0.6, 0.4, 0.45), broker, risk=limits)
    for r in xrp_1h.iloc[:2000].itertuples(index=False):
        engine.on_candle("XRP/USD", Candle(int(r.date.value // 1_000_000), r.open, r.high, r.low, r.close, r.volume))
    halted = [d for d in engine.decisions if d.reason.startswith("halted: kill switch")]
    assert halted and engine.halted.startswith("kill switch: drawdown")
    first_halt = engine.decisions.index(halted[0])
    assert not any(d.action == "buy" for d in engine.decisions[first_halt:])
    assert not any(d.action == "blocked" for d in engine.decisions)
