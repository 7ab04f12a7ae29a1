"""Risk that acts: the drawdown kill switch and the daily loss limit sell every position through the broker,
halt with the reason, and buy nothing after.

The candles are synthetic on purpose: a controlled fall (two pairs losing 0.5 % a candle, or one pair 3 %
a candle inside one UTC day) puts the breach on a known stretch of candles, with calm, finite features
before it and a recovery after it that a halted trader must NOT buy into. The bundled real candles have
drops too, but where a limit trips on them depends on the model and the fees; these tests pin behaviour.
Everything else is real: the engine, the SimulatedBroker's fill model, the Kraken emulator over HTTP with
ccxt, and a SQLite ledger in tmp_path.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests_support import EMULATOR_KEY, EMULATOR_SECRET

from core.params import load_params
from core.types import Candle, Side
from features.spec import build_spec
from trader.backtest import run_backtest
from trader.brokers.kraken import KrakenBroker
from trader.brokers.simulated import SimulatedBroker, fill_model
from trader.engine import FLATTEN_ATTEMPTS, Engine
from trader.ledger import Ledger
from trader.live import LiveLoop
from trader.strategy import ThresholdStrategy

PARAMS = load_params()
SPEC = build_spec([1], [3], 3, 3, 3)
HOUR = 3_600_000
DAY = 24 * HOUR
T0 = 1_767_225_600_000  # 2026-01-01 00:00 UTC
NO_DAILY_LIMIT = PARAMS.risk.model_copy(update={"daily_loss_limit": 1.0})
NO_KILL_SWITCH = PARAMS.risk.model_copy(update={"max_drawdown": 1.0})
PRICES = {"XRP/USD": 0.5, "DOGE/USD": 0.1}


def calm(n: int, level: float) -> list[float]:
    return [level * (1 + 0.002 * math.sin(i)) for i in range(n)]


def path(level: float, calm_n: int, step: float, moves: int, recovery: int) -> list[float]:
    """Calm, then `moves` candles moving by `step` (fraction) each, then a recovery as steep upwards."""
    closes = calm(calm_n, level)
    for _ in range(moves):
        closes.append(closes[-1] * (1 + step))
    for _ in range(recovery):
        closes.append(closes[-1] * (1 - step))
    return closes


def to_candles(closes: list[float], start: int = T0) -> list[Candle]:
    out, prev = [], closes[0]
    for i, close in enumerate(closes):
        out.append(Candle(start + i * HOUR, prev, max(prev, close) * 1.001, min(prev, close) * 0.999, close, 1e9))
        prev = close
    return out


def falling(calm_n: int = 740) -> dict[str, list[Candle]]:
    """Both pairs calm, then −0.5 % a candle for 60 candles (−26 %), then +0.5 % a candle for 60."""
    return {pair: to_candles(path(level, calm_n, -0.005, 60, 60)) for pair, level in PRICES.items()}


def engine_on(broker: SimulatedBroker | KrakenBroker, risk=NO_DAILY_LIMIT, **kw) -> Engine:  # type: ignore[no-untyped-def]
    """An engine whose model always wants to be long: only the risk limits can keep it out."""
    return Engine(SPEC, lambda _: 0.9, ThresholdStrategy(0.5, 0.4, PARAMS.trade.position_fraction), broker,
                  risk=risk, **kw)


def replay(engine: Engine, broker: SimulatedBroker, candles: dict[str, list[Candle]]) -> None:
    """Candles in time order, each timestamp's orders worked at its open before any decision (as live)."""
    for i in range(min(len(seq) for seq in candles.values())):
        for pair in sorted(candles):
            broker.on_candle(pair, candles[pair][i])
        for pair in sorted(candles):
            engine.on_candle(pair, candles[pair][i])


@pytest.fixture
def falling_market() -> Iterator:  # type: ignore[type-arg]
    from market.emulator.kraken_api import RateTier
    from market.emulator.server import running_emulator

    with running_emulator(candles=falling(), tier=RateTier(max_counter=1e9)) as handle:
        handle.add_key(EMULATOR_KEY, EMULATOR_SECRET)
        yield handle


def test_kill_switch_sells_every_position_through_the_live_broker_and_halts(falling_market, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from market.kraken import KrakenClient, make_exchange

    client = KrakenClient(make_exchange(falling_market.url, EMULATOR_KEY, EMULATOR_SECRET, throttle=False))
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    broker = KrakenBroker(client, ledger, model_version=1)
    halts: list[str] = []
    engine = engine_on(broker, risk_memory=ledger, on_halt=halts.append)
    loop = LiveLoop(client, engine, sorted(PRICES), "1h")
    loop.warm_up()
    for _ in range(130):
        falling_market.advance(1)
        loop.poll()

    assert engine.halted.startswith("kill switch: drawdown") and engine.halted.endswith("≥ 15%")
    assert halts == [engine.halted]  # told once
    for pair in PRICES:
        sides = [f.side for f in ledger.fills(pair)]
        assert sides[0] is Side.BUY and sides[-1] is Side.SELL, (pair, sides)
        assert broker.position(pair) == 0.0
    balances = client.balances()
    assert balances.get("XRP", 0.0) == 0.0 and balances.get("DOGE", 0.0) == 0.0  # flat on the exchange too
    flatten = [d for d in engine.decisions if d.reason.startswith("flatten: kill switch")]
    assert sorted(d.pair for d in flatten) == sorted(PRICES) and all(d.action == "sell" for d in flatten)
    after = engine.decisions[engine.decisions.index(flatten[0]):]
    assert not any(d.action == "buy" for d in after)  # the recovery is not bought into
    records = [ledger.intent(cid) for cid in ledger.client_ids()]
    assert sorted(r.intent.side.value for r in records if r) == ["buy", "buy", "sell", "sell"]  # every intent ever
    ((_, detail),) = ledger.audit_trail("kill_switch")
    assert detail["reason"] == engine.halted and detail["equity"] <= 0.85 * detail["peak_equity"]
    assert ledger.risk_state().halted == engine.halted


def test_daily_loss_limit_flattens_and_halts_for_the_rest_of_the_day(tmp_path: Path) -> None:
    # one pair, calm until 08:00 of day 2, then −3 % a candle for 5 candles (−14 %: 6 % of equity), then up
    closes = path(PRICES["XRP/USD"], 32, -0.03, 5, 40)
    candles = {"XRP/USD": to_candles(closes)}
    broker = SimulatedBroker(10_000.0, fill_model(PARAMS.fees))
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    engine = engine_on(broker, risk=NO_KILL_SWITCH, risk_memory=ledger)
    replay(engine, broker, candles)

    (tripped_at, reason), = engine.risk_halts
    assert reason.startswith("daily loss limit: lost") and reason.endswith("≥ 5%")
    sells = [f for f in broker.fills if f.side is Side.SELL]
    assert len(sells) == 1 and sells[0].quantity == pytest.approx(broker.fills[0].quantity)
    trip_day = tripped_at // DAY
    same_day = [d for d in engine.decisions if d.ts >= tripped_at and d.ts // DAY == trip_day]
    assert same_day and not any(d.action == "buy" for d in same_day)
    assert all(d.reason.startswith(("flatten: daily loss", "halted: daily loss")) for d in same_day)
    # a limit per day: the next UTC day trades again, from the flat account's equity
    next_day = [d for d in engine.decisions if d.ts // DAY == trip_day + 1]
    assert next_day[0].action == "buy" and not engine.halted
    kinds = [k for k, _ in ledger.audit_trail() if k in ("daily_loss_halt", "risk_halt_lifted")]
    assert kinds == ["daily_loss_halt", "risk_halt_lifted"]


def test_backtest_result_shows_when_the_kill_switch_tripped() -> None:
    candles = falling(calm_n=200)
    trade = PARAMS.trade.model_copy(update={"enter_threshold": 0.5, "exit_threshold": 0.4})
    result = run_backtest(candles, SPEC, lambda _: 0.9, trade, PARAMS.fees, T0 + 50 * HOUR, 8760, risk=NO_DAILY_LIMIT,
                          candle_ms=HOUR)

    first_flatten = next(d for d in result.decisions if d.reason.startswith("flatten: kill switch"))
    assert result.kill_switch_tripped_at == first_flatten.ts + HOUR  # the close of the breaching candle
    assert T0 + 200 * HOUR < result.kill_switch_tripped_at < T0 + 260 * HOUR  # inside the fall
    assert result.kill_switch_reason.startswith("kill switch: drawdown")
    assert result.metrics["kill_switch_trips"] == 1.0 and isinstance(result.metrics["kill_switch_trips"], float)
    assert all(isinstance(v, float) for v in result.metrics.values())
    assert [f.side for f in result.fills] == [Side.BUY, Side.BUY, Side.SELL, Side.SELL]
    assert not any(d.action == "buy" for d in result.decisions if d.ts >= first_flatten.ts)


def test_without_a_fall_nothing_trips() -> None:
    candles = {pair: to_candles(calm(300, level)) for pair, level in PRICES.items()}
    result = run_backtest(candles, SPEC, lambda _: 0.9, PARAMS.trade, PARAMS.fees, T0 + 50 * HOUR, 8760,
                          risk=PARAMS.risk, candle_ms=HOUR)
    assert result.kill_switch_tripped_at is None and result.metrics["kill_switch_trips"] == 0.0
    assert [f.side for f in result.fills] == [Side.BUY, Side.BUY]


def feed_with_clock(limits, clock_ms) -> tuple[Engine, SimulatedBroker, list[Candle]]:  # type: ignore[no-untyped-def]
    """One pair falling 1 % a candle after 40 calm ones, on an engine judging freshness by `clock_ms(i, candle)`."""
    seq = to_candles(path(PRICES["XRP/USD"], 40, -0.01, 40, 0))
    broker = SimulatedBroker(10_000.0, fill_model(PARAMS.fees))
    now = {"ms": 0}
    engine = engine_on(broker, risk=limits, clock=lambda: now["ms"])
    for i, candle in enumerate(seq):
        broker.on_candle("XRP/USD", candle)
        now["ms"] = clock_ms(i, candle)
        engine.on_candle("XRP/USD", candle)
    return engine, broker, seq


def test_flatten_goes_out_on_stale_candles() -> None:
    """Live, a buy waits for a fresh candle; a flatten does not: a market sell needs no fresh price, and a
    tripped trader wants out rather than sit through the feed's outage with the position."""
    limits = NO_DAILY_LIMIT.model_copy(update={"max_drawdown": 0.05})
    # fresh until candle 45, then the feed lags 10 candles behind the exchange clock
    engine, broker, seq = feed_with_clock(limits, lambda i, c: c.ts + HOUR + (10 * HOUR if i > 45 else 0))
    assert engine.halted.startswith("kill switch")
    (flatten,) = [d for d in engine.decisions if d.reason.startswith("flatten:")]
    assert flatten.ts > seq[45].ts  # sent on a stale candle
    assert broker.position("XRP/USD") == 0.0


def test_flatten_is_not_held_back_by_the_order_rate() -> None:
    """The exchange clock stands still (all orders in the same minute, limit 1 a minute): the buy uses up the
    rate, and the flatten still goes (one sell per pair per candle at most: it cannot run away)."""
    limits = NO_DAILY_LIMIT.model_copy(update={"max_drawdown": 0.05, "max_orders_per_minute": 1})
    frozen = T0 + 41 * HOUR  # candles from 37 on are fresh by this clock, and stay so
    engine, broker, _ = feed_with_clock(limits, lambda i, c: frozen)
    assert [d.action for d in engine.decisions if d.action in ("buy", "sell")] == ["buy", "sell"]
    assert engine.halted.startswith("kill switch") and broker.position("XRP/USD") == 0.0


def test_no_second_sell_while_the_pair_has_a_pending_order() -> None:
    fees = PARAMS.fees.model_copy(update={"latency_candles": 3})  # every order waits 3 candles at the venue
    broker = SimulatedBroker(10_000.0, fill_model(fees))
    engine = engine_on(broker, risk=NO_DAILY_LIMIT.model_copy(update={"max_drawdown": 0.05}))
    replay(engine, broker, {"XRP/USD": to_candles(path(PRICES["XRP/USD"], 40, -0.01, 30, 0))})
    flatten = [d for d in engine.decisions if d.reason.startswith("flatten:")]
    assert len(flatten) == 1
    after = engine.decisions[engine.decisions.index(flatten[0]) + 1:]
    assert len(after) > 3 and all(d.reason.startswith("halted: kill switch") for d in after)
    assert broker.position("XRP/USD") == 0.0 and [f.side for f in broker.fills] == [Side.BUY, Side.SELL]


def test_a_position_the_venue_keeps_refusing_is_left_for_a_human_after_a_few_sells() -> None:
    broker = SimulatedBroker(10_000.0, fill_model(PARAMS.fees))
    engine = engine_on(broker, risk=NO_DAILY_LIMIT.model_copy(update={"max_drawdown": 0.05}))
    seq = to_candles(path(PRICES["XRP/USD"], 40, -0.01, 40, 0))
    for candle in seq[:45]:
        broker.on_candle("XRP/USD", candle)
        engine.on_candle("XRP/USD", candle)
    broker.positions["XRP/USD"] = 1e-9  # dust under the lot size: every sell of it is refused
    engine.halted = engine.risk_halt = "kill switch: drawdown 20.0% ≥ 15%"
    for candle in seq[45:]:
        broker.on_candle("XRP/USD", candle)
        engine.on_candle("XRP/USD", candle)
    assert sum(1 for d in engine.decisions if d.reason.startswith("flatten:")) == FLATTEN_ATTEMPTS
    assert "sell it by hand" in engine.decisions[-1].reason


def test_a_halt_for_another_reason_does_not_sell() -> None:
    """A reconciliation halt means the ledger is not to be trusted: no order at all, not even a flatten."""
    broker = SimulatedBroker(10_000.0, fill_model(PARAMS.fees))
    engine = engine_on(broker, risk=NO_DAILY_LIMIT.model_copy(update={"max_drawdown": 0.05}))
    seq = to_candles(path(PRICES["XRP/USD"], 40, -0.01, 40, 0))
    for i, candle in enumerate(seq):
        if i == 41:
            engine.halted = "ledger differs from the exchange by 99.00 USD"
        broker.on_candle("XRP/USD", candle)
        engine.on_candle("XRP/USD", candle)
    assert broker.position("XRP/USD") > 0 and [f.side for f in broker.fills] == [Side.BUY]
    assert not engine.risk_halts and engine.halted.startswith("ledger differs")
