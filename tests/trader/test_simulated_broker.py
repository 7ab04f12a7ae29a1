import pytest

from core.params import load_params
from core.types import Candle, OrderIntent, Side
from market.emulator.venue import Venue, VenueConfig, VenueError
from trader.brokers.simulated import KRAKEN_SPOT_TIERS, FillModel, PairLimits, SimulatedBroker, fill_model


def _candle(ts: int, open_: float) -> Candle:
    return Candle(ts, open_, open_ * 1.01, open_ * 0.99, open_, 100.0)


def test_market_buy_fills_at_next_open_plus_slippage_and_pays_taker_fee() -> None:
    broker = SimulatedBroker(cash=1000.0, model=FillModel(taker_fee=0.004, slippage_bps=10))
    broker.submit(OrderIntent("a", "XRP/USD", Side.BUY, 100.0))
    assert broker.position("XRP/USD") == 0.0  # nothing happens before the next candle
    (fill,) = broker.on_candle("XRP/USD", _candle(1, 2.0))
    assert fill.price == pytest.approx(2.002)
    assert fill.fee == pytest.approx(100 * 2.002 * 0.004)
    assert broker.cash == pytest.approx(1000 - 200.2 - 0.8008)
    assert broker.position("XRP/USD") == 100.0


def test_a_buy_the_cash_cannot_pay_incl_fee_is_refused_at_the_next_open_like_kraken() -> None:
    broker = SimulatedBroker(cash=100.0, model=FillModel(0.004, 0))
    broker.submit(OrderIntent("a", "XRP/USD", Side.BUY, 100.0))   # 100 × 1.0 + 0.4 fee > 100 USD
    assert broker.has_pending("XRP/USD")  # it reaches the venue with the next candle
    assert broker.on_candle("XRP/USD", _candle(1, 1.0)) == []
    assert [(i.client_id, why) for i, why in broker.rejected] == [("a", "EOrder:Insufficient funds")]
    assert broker.cash == 100.0 and not broker.has_pending("XRP/USD")
    broker.submit(OrderIntent("b", "XRP/USD", Side.BUY, 99.0))
    (fill,) = broker.on_candle("XRP/USD", _candle(2, 1.0))
    assert fill.quantity == 99.0 and broker.cash == pytest.approx(100 - 99 * 1.004)


def test_a_sell_above_the_position_is_refused_never_short_and_other_pairs_wait() -> None:
    broker = SimulatedBroker(cash=0.0, model=FillModel(0.004, 0), positions={"XRP/USD": 5.0})
    broker.submit(OrderIntent("s", "XRP/USD", Side.SELL, 50.0))
    broker.submit(OrderIntent("t", "XRP/USD", Side.SELL, 5.0))
    assert broker.on_candle("DOGE/USD", _candle(1, 1.0)) == []
    (fill,) = broker.on_candle("XRP/USD", _candle(1, 2.0))
    assert [(i.client_id, why) for i, why in broker.rejected] == [("s", "EOrder:Insufficient funds")]
    assert (fill.client_id, fill.quantity) == ("t", 5.0) and broker.position("XRP/USD") == 0.0
    assert broker.cash == pytest.approx(10.0 * 0.996)


def test_kraken_pairs_trade_whole_lots_on_the_price_tick() -> None:
    broker = SimulatedBroker(1000.0, fill_model(load_params().fees))   # XRP/USD: 8 lot, 5 price decimals
    broker.submit(OrderIntent("a", "XRP/USD", Side.BUY, 100.123456789))
    (fill,) = broker.on_candle("XRP/USD", _candle(1, 0.61071))
    assert (fill.quantity, fill.price) == (100.12345678, 0.61102)   # 0.61071 × 1.0005 = 0.611015… → tick


def test_a_candle_is_worked_once_even_when_the_replay_opens_it_before_the_engine_does() -> None:
    broker = SimulatedBroker(cash=1000.0, model=FillModel(0.004, 0))
    broker.submit(OrderIntent("a", "XRP/USD", Side.BUY, 10.0))
    assert len(broker.on_candle("XRP/USD", _candle(1, 1.0))) == 1
    broker.submit(OrderIntent("b", "XRP/USD", Side.BUY, 10.0))
    assert broker.on_candle("XRP/USD", _candle(1, 1.0)) == []     # the same candle again: nothing new
    assert [f.client_id for f in broker.on_candle("XRP/USD", _candle(2, 1.0))] == ["b"]


def _bar(ts: int, open_: float, high: float, low: float, close: float, volume: float = 1e9) -> Candle:
    return Candle(ts, open_, high, low, close, volume)


def test_limit_buy_rests_until_the_price_trades_through_and_pays_the_maker_fee() -> None:
    broker = SimulatedBroker(1000.0, FillModel(taker_fee=0.004, slippage_bps=10, maker_fee=0.0025))
    broker.submit(OrderIntent("l", "XRP/USD", Side.BUY, 100.0, limit_price=0.95))
    assert broker.on_candle("XRP/USD", _bar(1, 1.00, 1.02, 0.96, 1.0)) == []  # low 0.96 > limit
    assert broker.has_pending("XRP/USD")
    (fill,) = broker.on_candle("XRP/USD", _bar(2, 0.99, 1.0, 0.94, 0.97))
    assert fill.price == 0.95 and fill.fee == pytest.approx(100 * 0.95 * 0.0025)  # no slippage on a limit
    gap_down = SimulatedBroker(1000.0, FillModel(0.004, 10, maker_fee=0.0025))
    gap_down.submit(OrderIntent("g", "XRP/USD", Side.BUY, 10.0, limit_price=0.95))
    assert gap_down.on_candle("XRP/USD", _bar(1, 0.90, 0.92, 0.89, 0.9))[0].price == 0.90  # opens below: at open


def test_limit_sell_fills_at_the_limit_or_a_better_open() -> None:
    broker = SimulatedBroker(0.0, FillModel(0.004, 0, maker_fee=0.0025), positions={"XRP/USD": 10.0})
    broker.submit(OrderIntent("s", "XRP/USD", Side.SELL, 10.0, limit_price=1.10))
    assert broker.on_candle("XRP/USD", _bar(1, 1.0, 1.09, 0.99, 1.05)) == []
    assert broker.on_candle("XRP/USD", _bar(2, 1.2, 1.25, 1.15, 1.2))[0].price == 1.2


def test_an_order_larger_than_its_share_of_candle_volume_fills_over_several_candles() -> None:
    broker = SimulatedBroker(10_000.0, FillModel(0.004, 0, max_volume_share=0.1))
    broker.submit(OrderIntent("p", "XRP/USD", Side.BUY, 250.0))
    sizes = [sum(f.quantity for f in broker.on_candle("XRP/USD", _bar(t, 1.0, 1.0, 1.0, 1.0, 1000.0)))
             for t in range(1, 5)]
    assert sizes == [100.0, 100.0, 50.0, 0.0] and broker.position("XRP/USD") == 250.0
    assert not broker.has_pending("XRP/USD")


def test_latency_delays_the_fill_by_whole_candles() -> None:
    broker = SimulatedBroker(1000.0, FillModel(0.004, 0, latency_candles=2))
    broker.submit(OrderIntent("a", "XRP/USD", Side.BUY, 10.0))
    fills = [broker.on_candle("XRP/USD", _bar(t, float(t), t, t, t)) for t in range(1, 5)]
    assert [len(f) for f in fills] == [0, 0, 1, 0] and fills[2][0].price == 3.0


def test_orders_below_kraken_minimums_are_refused_when_they_reach_the_venue() -> None:
    broker = SimulatedBroker(1000.0, FillModel(0.004, 0, limits={"DOGE/USD": PairLimits(50.0, 0.5)}))
    broker.submit(OrderIntent("small", "DOGE/USD", Side.BUY, 49.0))
    broker.submit(OrderIntent("cheap", "DOGE/USD", Side.BUY, 60.0))  # 60 × 0.005 = 0.30 USD < 0.5
    broker.on_candle("DOGE/USD", _bar(1, 0.005, 0.005, 0.005, 0.005))
    assert [(i.client_id, why) for i, why in broker.rejected] == [
        ("small", "EOrder:Order minimum not met"), ("cheap", "EOrder:Cost minimum not met")]
    assert not broker.has_pending("DOGE/USD") and broker.fills == []


def test_fee_tier_falls_as_30_day_volume_grows_and_rises_again_when_it_rolls_off() -> None:
    broker = SimulatedBroker(1e6, FillModel(0.004, 0, fee_tiers=KRAKEN_SPOT_TIERS))
    day = 86_400_000

    def buy_sell(ts: int) -> list[float]:
        broker.submit(OrderIntent(f"b{ts}", "XRP/USD", Side.BUY, 30_000.0))
        (buy,) = broker.on_candle("XRP/USD", _bar(ts, 1.0, 1.0, 1.0, 1.0))
        broker.submit(OrderIntent(f"s{ts}", "XRP/USD", Side.SELL, 30_000.0))
        (sell,) = broker.on_candle("XRP/USD", _bar(ts + 1, 1.0, 1.0, 1.0, 1.0))
        return [round(f.fee / (f.quantity * f.price), 6) for f in (buy, sell)]

    assert buy_sell(0) == [0.004, 0.0035]          # 0 USD traded, then 30k: the 10k tier
    assert buy_sell(day) == [0.0024, 0.0024]       # 60k and 90k: the 50k tier
    assert buy_sell(2 * day) == [0.0022, 0.0022]   # 120k and 150k: the 100k tier
    assert buy_sell(40 * day) == [0.004, 0.0035]   # the earlier trades rolled out of the 30 days


def _plan_bars(n: int) -> list[Candle]:
    hour = 3_600_000
    return [Candle(i * hour, 0.60 + 0.005 * i, (0.60 + 0.005 * i) * 1.01, (0.60 + 0.005 * i) * 0.99,
                   0.60 + 0.005 * i, 1000.0) for i in range(n)]


def test_the_simulated_broker_and_the_emulator_venue_fill_the_same_orders_identically() -> None:
    """Latency, volume-share partial fills, a limit order, tiers, a refusal: one fill model, same fills."""
    fees = load_params().fees.model_copy(update={"latency_candles": 1, "max_volume_share": 0.3,
                                                   "volume_tiers": True})
    bars = _plan_bars(20)
    plan = {1: (Side.BUY, 1000.0, None), 3: (Side.BUY, 10**6, None), 8: (Side.SELL, 500.0, 0.66),
            12: (Side.SELL, 500.0, None)}
    broker = SimulatedBroker(1000.0, fill_model(fees))
    for i, bar in enumerate(bars):
        broker.on_candle("XRP/USD", bar)
        if i in plan:
            side, qty, limit = plan[i]
            broker.submit(OrderIntent(f"o{i}", "XRP/USD", side, qty, limit_price=limit))
    venue = Venue({"XRP/USD": bars}, {"ZUSD": 1000.0}, VenueConfig.from_fees(fees, warmup_candles=1))
    refused = []
    while venue.cursor + 1 < venue.length:   # an order decided on candle i arrives while i + 1 is the cursor
        if venue.cursor - 1 in plan:
            side, qty, limit = plan[venue.cursor - 1]
            try:
                venue.add_order("k", "XRP/USD", side.value, "limit" if limit else "market", qty, limit,
                                f"o{venue.cursor - 1}", None, False)
            except VenueError as err:
                refused.append((f"o{venue.cursor - 1}", str(err)))
        venue.advance(1)
    trades = [(t.order.cl_ord_id, t.volume, t.price, t.fee) for t in venue.trades.values()]
    assert trades == [(f.client_id, f.quantity, f.price, f.fee) for f in broker.fills]
    assert [(c, q) for c, q, *_ in trades] == [("o1", 300.0)] * 3 + [("o1", 100.0)] + [  # 30 % of 1000 a candle
        ("o8", 300.0), ("o8", 200.0), ("o12", 300.0), ("o12", 200.0)]
    assert {p for c, _, p, _ in trades if c == "o8"} == {0.66}  # the limit, once a high reached it
    assert refused == [(i.client_id, why) for i, why in broker.rejected] == [("o3", "EOrder:Insufficient funds")]
    assert (venue.account("k")["ZUSD"], venue.account("k")["XXRP"]) == (broker.cash, broker.position("XRP/USD"))
