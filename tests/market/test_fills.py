"""The one fill model (market.fills): prices, rounding, refusals, quantities, fees — pure functions on plain data."""

from __future__ import annotations

import pytest
from ccxt.base.decimal_to_precision import NO_PADDING, ROUND, TICK_SIZE, TRUNCATE, decimal_to_precision

from core.params import load_params
from core.types import Candle, Side
from market.emulator.venue import VenueConfig
from market.fills import (
    COST_MINIMUM,
    INSUFFICIENT_FUNDS,
    INVALID_VOLUME,
    KRAKEN_LIMITS,
    KRAKEN_SPOT_TIERS,
    MONTH_MS,
    ORDER_MINIMUM,
    Account,
    FillModel,
    PairLimits,
    WorkingOrder,
    accept,
    execution,
    fill_model,
    fill_price,
    funds_refusal,
    limit_fill_price,
    market_price,
    minimum_refusal,
    round_price,
    round_quantity,
    settle,
    thirty_day_volume,
    work,
)
from market.instruments import bundled

XRP = KRAKEN_LIMITS["XRP/USD"]          # ordermin 1.65 XRP, costmin 0.5 USD, 8 lot / 5 price decimals
FLAT = FillModel(taker_fee=0.004, slippage_bps=10, maker_fee=0.0025)
RICH = Account(cash=1e6, position=1e6)


def _bar(open_: float, high: float, low: float, close: float, volume: float = 1e9, ts: int = 0) -> Candle:
    return Candle(ts, open_, high, low, close, volume)


# --- facts come from the instrument table ----------------------------------------------------------

def test_pair_limits_are_the_instrument_tables_minimums_and_decimals() -> None:
    for symbol, inst in bundled().instruments.items():
        limits = KRAKEN_LIMITS[symbol]
        assert (limits.ordermin, limits.costmin, limits.lot_decimals, limits.pair_decimals) == (
            inst.ordermin, inst.costmin, inst.lot_decimals, inst.pair_decimals)


def test_spot_tiers_are_krakens_schedule_as_fractions() -> None:
    inst = bundled().get("BTC/USD")
    assert [t.min_volume_usd for t in KRAKEN_SPOT_TIERS] == [v for v, _ in inst.fees]
    assert [t.taker for t in KRAKEN_SPOT_TIERS] == pytest.approx([p / 100 for _, p in inst.fees], rel=1e-12)
    assert [t.maker for t in KRAKEN_SPOT_TIERS] == pytest.approx([p / 100 for _, p in inst.fees_maker], rel=1e-12)
    assert (KRAKEN_SPOT_TIERS[1].taker, KRAKEN_SPOT_TIERS[1].maker) == (0.0035, 0.002)  # as written, not 0.00349…


def test_the_emulator_and_the_backtest_build_one_model_from_params() -> None:
    fees = load_params().fees
    assert VenueConfig.from_fees(fees, warmup_candles=800).model == fill_model(fees)
    tiered = fees.model_copy(update={"volume_tiers": True, "latency_candles": 2, "max_volume_share": 0.1})
    assert VenueConfig.from_fees(tiered).model == fill_model(tiered)
    assert fill_model(tiered).fee_tiers == KRAKEN_SPOT_TIERS and fill_model(fees).fee_tiers == ()


# --- rounding, as ccxt sends and Kraken fills ------------------------------------------------------

@pytest.mark.parametrize("quantity", [1.123456789, 0.29, 9000.123456789999, 5.000000001, 1234.999999999, 7e-9, 3.0])
def test_quantity_is_truncated_to_the_lot_exactly_as_ccxt_sends_it(quantity: float) -> None:
    ccxt_sent = decimal_to_precision(quantity, TRUNCATE, 1e-08, TICK_SIZE, NO_PADDING)
    assert round_quantity(quantity, XRP) == float(ccxt_sent)


@pytest.mark.parametrize("price", [0.123456785, 0.61071234, 2.5, 0.000004, 1.999995])
def test_price_is_rounded_to_the_pair_decimals_as_ccxt_rounds_it(price: float) -> None:
    assert round_price(price, XRP) == float(decimal_to_precision(price, ROUND, 1e-05, TICK_SIZE, NO_PADDING))


def test_a_pair_without_decimals_is_not_rounded() -> None:
    assert round_quantity(1.123456789123, PairLimits()) == 1.123456789123
    assert round_price(0.123456789123, PairLimits()) == 0.123456789123


# --- prices ----------------------------------------------------------------------------------------

def test_market_orders_pay_the_open_moved_against_them_on_the_tick() -> None:
    assert market_price(2.0, Side.BUY, 10) == pytest.approx(2.002)
    assert market_price(2.0, Side.SELL, 10) == pytest.approx(1.998)
    assert market_price(0.61071, Side.BUY, 5, XRP) == 0.61102   # 0.611015355 on the 1e-5 tick
    assert market_price(0.61071, Side.SELL, 5, XRP) == 0.6104    # 0.610404645


def test_a_limit_buy_fills_at_the_limit_or_a_lower_open_once_low_reaches_it() -> None:
    assert limit_fill_price(_bar(1.00, 1.02, 0.96, 1.0), Side.BUY, 0.95) is None
    assert limit_fill_price(_bar(0.99, 1.00, 0.94, 0.97), Side.BUY, 0.95) == 0.95
    assert limit_fill_price(_bar(0.90, 0.92, 0.89, 0.9), Side.BUY, 0.95) == 0.90


def test_a_limit_sell_fills_at_the_limit_or_a_higher_open_once_high_reaches_it() -> None:
    assert limit_fill_price(_bar(1.0, 1.09, 0.99, 1.05), Side.SELL, 1.10) is None
    assert limit_fill_price(_bar(1.0, 1.12, 0.99, 1.05), Side.SELL, 1.10) == 1.10
    assert limit_fill_price(_bar(1.2, 1.25, 1.15, 1.2), Side.SELL, 1.10) == 1.2


def test_limit_fills_are_maker_without_slippage_and_market_fills_taker() -> None:
    bar = _bar(1.0, 1.1, 0.9, 1.0)
    assert fill_price(bar, Side.BUY, 0.95, FLAT) == (0.95, True)
    assert fill_price(bar, Side.BUY, None, FLAT) == (pytest.approx(1.001), False)


# --- refusals: Kraken's exact strings ---------------------------------------------------------------

def test_minimums_refuse_with_krakens_strings() -> None:
    assert minimum_refusal(1.64, 10.0, XRP) == ORDER_MINIMUM == "EOrder:Order minimum not met"
    assert minimum_refusal(1.65, 0.30, XRP) == COST_MINIMUM == "EOrder:Cost minimum not met"  # 0.495 USD
    assert minimum_refusal(1.65, 0.31, XRP) == ""


def test_funds_cover_cost_plus_fee_or_the_order_is_refused() -> None:
    assert funds_refusal(Side.BUY, 100.0, 1.0, 0.004, Account(100.4, 0.0)) == ""
    assert funds_refusal(Side.BUY, 100.0, 1.0, 0.004, Account(100.39, 0.0)) == INSUFFICIENT_FUNDS
    assert funds_refusal(Side.SELL, 5.0, 1.0, 0.004, Account(0.0, 5.0)) == ""
    assert funds_refusal(Side.SELL, 5.01, 1.0, 0.004, Account(0.0, 5.0)) == "EOrder:Insufficient funds"


def test_accept_truncates_to_the_lot_then_checks_at_the_arrival_price() -> None:
    model = FillModel(0.004, 5, latency_candles=2, limits=KRAKEN_LIMITS)
    order, why = accept(Side.BUY, 100.123456789, None, 0.61071, RICH, model, XRP)
    assert why == "" and order == WorkingOrder(Side.BUY, 100.12345678, None, wait=2)
    assert accept(Side.BUY, 1.0, None, 0.61071, RICH, model, XRP) == (None, ORDER_MINIMUM)
    assert accept(Side.BUY, 1.7, None, 0.29, RICH, model, XRP) == (None, COST_MINIMUM)   # 0.493 USD
    assert accept(Side.BUY, 1000.0, None, 1.0, Account(1003.0, 0.0), model, XRP) == (None, INSUFFICIENT_FUNDS)
    assert accept(Side.SELL, 4e-9, None, 1.0, RICH, FLAT, XRP) == (None, INVALID_VOLUME)


def test_a_limit_order_is_checked_at_its_rounded_limit_with_the_maker_fee() -> None:
    order, why = accept(Side.BUY, 1000.0, 0.9999999, 5.0, Account(1002.5, 0.0), FLAT, XRP)  # 1000 × 1.0 × 1.0025
    assert why == "" and order is not None and order.limit == 1.0


# --- quantities over candles -----------------------------------------------------------------------

def test_latency_waits_whole_candles_before_the_first_fill() -> None:
    order = WorkingOrder(Side.BUY, 10.0, wait=1)
    waiting, nothing = work(order, _bar(1.0, 1.0, 1.0, 1.0), RICH, FLAT, PairLimits())
    assert nothing is None and waiting == WorkingOrder(Side.BUY, 10.0, wait=0)
    done, fill = work(waiting, _bar(2.0, 2.0, 2.0, 2.0), RICH, FLAT, PairLimits())
    assert done is None and fill is not None and fill.price == pytest.approx(2.002) and fill.quantity == 10.0


def test_one_candle_fills_at_most_its_volume_share_and_the_rest_waits() -> None:
    model = FillModel(0.004, 0, max_volume_share=0.1)
    left, fill = work(WorkingOrder(Side.BUY, 250.0), _bar(1.0, 1.0, 1.0, 1.0, volume=1000.0), RICH, model, XRP)
    assert fill is not None and fill.quantity == 100.0 and left == WorkingOrder(Side.BUY, 150.0)
    idle, nothing = work(WorkingOrder(Side.BUY, 250.0), _bar(1.0, 1.0, 1.0, 1.0, volume=0.0), RICH, model, XRP)
    assert nothing is None and idle == WorkingOrder(Side.BUY, 250.0)  # no volume: it waits, it is not dropped


def test_a_later_chunk_is_capped_by_cash_incl_fee_and_ends_the_order() -> None:
    done, fill = work(WorkingOrder(Side.BUY, 400.0), _bar(1.5, 1.5, 1.5, 1.5), Account(498.0, 500.0), FLAT, XRP)
    assert done is None and fill is not None
    assert fill.quantity == round_quantity(498.0 / (fill.price * 1.004), XRP)
    assert fill.notional + fill.fee <= 498.0


def test_a_sell_is_capped_by_the_position_and_nothing_left_ends_it() -> None:
    done, fill = work(WorkingOrder(Side.SELL, 50.0), _bar(2.0, 2.0, 2.0, 2.0), Account(0.0, 5.0), FLAT, XRP)
    assert done is None and fill is not None and fill.quantity == 5.0
    assert work(WorkingOrder(Side.SELL, 5.0), _bar(2.0, 2.0, 2.0, 2.0), Account(9.0, 0.0), FLAT, XRP) == (None, None)


def test_an_unreached_limit_keeps_working_and_offered_caps_one_candle() -> None:
    order = WorkingOrder(Side.BUY, 100.0, limit=0.95)
    assert work(order, _bar(1.0, 1.02, 0.96, 1.0), RICH, FLAT, XRP) == (order, None)
    left, fill = work(order, _bar(1.0, 1.02, 0.90, 1.0), RICH, FLAT, XRP, offered=50.0)
    assert fill is not None and (fill.quantity, fill.price, fill.maker) == (50.0, 0.95, True)
    assert left == WorkingOrder(Side.BUY, 50.0, limit=0.95)


# --- fees and settlement ---------------------------------------------------------------------------

def test_fee_rate_is_flat_or_by_30_day_volume_tier() -> None:
    assert FLAT.fee_rate(maker=False, volume_30d=1e9) == 0.004
    tiered = FillModel(0.004, 0, fee_tiers=KRAKEN_SPOT_TIERS)
    assert [tiered.fee_rate(False, v) for v in (0, 9_999.99, 10_000, 60_000)] == [0.004, 0.004, 0.0035, 0.0024]
    assert tiered.fee_rate(True, 10_000_000) == 0.0


def test_thirty_day_volume_forgets_fills_30_days_old() -> None:
    history = [(0, 30_000.0), (MONTH_MS // 2, 5_000.0)]
    assert thirty_day_volume(history, MONTH_MS - 1) == 35_000.0
    assert thirty_day_volume(history, MONTH_MS) == 5_000.0


def test_settle_moves_cash_by_notional_plus_fee_and_the_position_by_the_quantity() -> None:
    fill = execution(100.0, 2.0, 0.004, maker=False)
    assert fill.fee == pytest.approx(0.8)
    bought = settle(Account(1000.0, 0.0), Side.BUY, fill)
    assert bought == Account(1000.0 - (200.0 + fill.fee), 100.0)
    assert settle(bought, Side.SELL, fill) == Account(bought.cash + 200.0 - fill.fee, 0.0)
