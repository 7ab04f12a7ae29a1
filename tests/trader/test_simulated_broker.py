import pytest

from core.types import Candle, OrderIntent, Side
from trader.brokers.simulated import FillModel, SimulatedBroker


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


def test_buy_is_capped_by_cash_including_fee() -> None:
    broker = SimulatedBroker(cash=100.0, model=FillModel(0.004, 0))
    broker.submit(OrderIntent("a", "XRP/USD", Side.BUY, 1_000.0))
    (fill,) = broker.on_candle("XRP/USD", _candle(1, 1.0))
    assert broker.cash == pytest.approx(0.0, abs=1e-9)
    assert fill.quantity == pytest.approx(100 / 1.004)


def test_sell_never_goes_short_and_other_pairs_wait() -> None:
    broker = SimulatedBroker(cash=0.0, model=FillModel(0.004, 0), positions={"XRP/USD": 5.0})
    broker.submit(OrderIntent("s", "XRP/USD", Side.SELL, 50.0))
    assert broker.on_candle("DOGE/USD", _candle(1, 1.0)) == []
    (fill,) = broker.on_candle("XRP/USD", _candle(1, 2.0))
    assert fill.quantity == 5.0 and broker.position("XRP/USD") == 0.0
    assert broker.cash == pytest.approx(10.0 * 0.996)
