"""The one fill model: every price, quantity, fee and refusal of a simulated fill, as pure functions.

Two places fill orders without a real exchange, and both decide everything here, so the same orders
on the same candles get the same fills to the last lot: `trader.brokers.simulated.SimulatedBroker`
(backtests, paper trading) and the Kraken emulator (`market.emulator.venue`, which the live trader
reaches through unmodified ccxt). Plain data in, plain data out; no I/O, no SDK.

Timing — one candle, seen from two clocks. The backtester decides on candle i's close; its order
reaches the venue as candle i+1 opens and is first worked against candle i+1. Live, the decision on
finished candle i is taken while the emulator's cursor candle (Kraken's unfinished last one) is i+1,
and the emulator works the order against that cursor candle at once. So a market order fills at
open(i+1) ± slippage on both sides — at once live, when candle i+1 is replayed in the backtest — and
the refusal checks (minimums, funds) see the same price and the same balances. A limit order is
matched against candle i+1's range on both sides too: by the backtester when it replays i+1, by the
emulator when i+1 has finished (it never peeks into an unfinished candle). An order decided on the
very last candle of a replay meets no further candle on either side: it never fills.

Rules, Kraken's wherever Kraken has one:
- Arrival (the first candle an order meets): `EOrder:Order minimum not met` below the pair's `ordermin`
  (base coin), `EOrder:Cost minimum not met` below `costmin` (quote) at the price it would fill at,
  `EOrder:Insufficient funds` when cash cannot pay quantity × price plus the fee, or a sell exceeds
  the position. Then `latency_candles` whole candles pass before it is worked.
- Market price: open × (1 ± slippage_bps / 10 000), against us, rounded to the pair's price decimals.
- Limit price: a buy fills at min(open, limit) once low ≤ limit, a sell at max(open, limit) once
  high ≥ limit; the maker fee applies, no slippage.
- Quantity: truncated to the pair's lot decimals, as ccxt's `amount_to_precision` sends it; one candle
  fills at most `max_volume_share` of its volume (the rest waits for later candles); a buy is capped by
  cash including the fee, a sell by the position (never short).
- Fees: flat (`taker_fee` / `maker_fee`) or by Kraken's 30-day volume tiers (quote notional of the
  account's fills in the 30 days before the candle).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING

from core.types import Candle, Side
from market.instruments import Instrument, bundled

if TYPE_CHECKING:
    from core.params import FeeParams

MONTH_MS = 30 * 86_400_000
"""Kraken's fee volume window: 30 days, in ms."""

ORDER_MINIMUM = "EOrder:Order minimum not met"
COST_MINIMUM = "EOrder:Cost minimum not met"
INSUFFICIENT_FUNDS = "EOrder:Insufficient funds"
INVALID_VOLUME = "EGeneral:Invalid arguments:volume"

DUST = 1e-12
"""Base-coin amounts at or below this are nothing (float noise of a fully filled order)."""


def _decimal(x: float) -> Decimal:
    return Decimal(repr(x))  # the shortest decimal that reads back as x, as ccxt's number_to_string


# --- facts: fee tiers and pair limits, read from the instrument table ------------------------------

@dataclass(frozen=True)
class FeeTier:
    """From `min_volume_usd` of 30-day traded volume on, these fee fractions apply."""

    min_volume_usd: float
    maker: float
    taker: float


def fee_tiers(inst: Instrument) -> tuple[FeeTier, ...]:
    """The instrument's Kraken schedules (percent by volume) as tiers of fractions."""
    makers = dict(inst.fees_maker)
    return tuple(FeeTier(volume, _fraction(makers.get(volume, percent)), _fraction(percent))
                 for volume, percent in inst.fees)


def _fraction(percent: float) -> float:
    """0.35 % → 0.0035 exactly as written (a float division would give 0.0034999999999999996)."""
    return float(_decimal(percent) / 100)


KRAKEN_SPOT_TIERS: tuple[FeeTier, ...] = fee_tiers(bundled().get("BTC/USD"))
"""Kraken's spot schedule (maker/taker by 30-day USD volume) from the instrument table; check TradeVolume live."""


@dataclass(frozen=True)
class PairLimits:
    """What Kraken enforces on one pair's orders. Decimals None: that amount is not rounded."""

    ordermin: float = 0.0              # base coin
    costmin: float = 0.0               # quote currency
    lot_decimals: int | None = None    # quantity decimals
    pair_decimals: int | None = None   # price decimals

    @classmethod
    def of(cls, inst: Instrument) -> PairLimits:
        return cls(inst.ordermin, inst.costmin, inst.lot_decimals, inst.pair_decimals)


NO_LIMITS = PairLimits()

KRAKEN_LIMITS: Mapping[str, PairLimits] = {symbol: PairLimits.of(inst)
                                           for symbol, inst in bundled().instruments.items()}
"""Every pair's minimums and decimals from the instrument table, by ccxt symbol."""


@dataclass(frozen=True)
class FillModel:
    """How simulated orders fill, one per params.yaml `fees:`; both venues read the same one."""

    taker_fee: float        # fraction of notional
    slippage_bps: float     # adverse price move on market orders, basis points
    maker_fee: float = 0.0025
    latency_candles: int = 0
    """Whole candles between an order's arrival and its first fill (0: fills on the arrival candle)."""
    max_volume_share: float = 1.0
    """Largest fraction of one candle's volume an order may take; the rest fills later."""
    fee_tiers: tuple[FeeTier, ...] = ()
    """Empty: flat fees; else Kraken-style tiers by rolling 30-day traded volume (quote)."""
    limits: Mapping[str, PairLimits] = field(default_factory=dict)
    """Per pair; a pair not listed has no minimums and no rounding."""

    def fee_rate(self, maker: bool, volume_30d: float) -> float:
        """Fee fraction of notional for a fill, given the account's 30-day volume (quote)."""
        if not self.fee_tiers:
            return self.maker_fee if maker else self.taker_fee
        tier = max((t for t in self.fee_tiers if t.min_volume_usd <= volume_30d), key=lambda t: t.min_volume_usd)
        return tier.maker if maker else tier.taker

    def limits_for(self, pair: str) -> PairLimits:
        return self.limits.get(pair, NO_LIMITS)


def fill_model(fees: FeeParams, limits: Mapping[str, PairLimits] = KRAKEN_LIMITS) -> FillModel:
    """params.yaml `fees:` → the fill model (Kraken's pair minimums and decimals always apply)."""
    return FillModel(fees.taker, fees.slippage_bps, fees.maker, fees.latency_candles, fees.max_volume_share,
                     KRAKEN_SPOT_TIERS if fees.volume_tiers else (), limits)


def thirty_day_volume(history: Iterable[tuple[int, float]], now_ms: int) -> float:
    """Quote notional of the (fill time ms, notional) history inside the 30 days before `now_ms`."""
    return sum(notional for ts, notional in history if ts > now_ms - MONTH_MS)


# --- rounding, as ccxt sends and Kraken fills ------------------------------------------------------

def round_quantity(quantity: float, limits: PairLimits) -> float:
    """Truncated to the lot decimals (ccxt's `amount_to_precision` truncates; Kraken fills whole lots)."""
    if limits.lot_decimals is None or quantity <= 0:
        return max(quantity, 0.0)
    return float(_decimal(quantity).quantize(Decimal(1).scaleb(-limits.lot_decimals), rounding=ROUND_DOWN))


def round_price(price: float, limits: PairLimits) -> float:
    """Rounded to the pair's price decimals (ccxt's `price_to_precision`; Kraken trades on that tick)."""
    if limits.pair_decimals is None:
        return price
    return float(_decimal(price).quantize(Decimal(1).scaleb(-limits.pair_decimals), rounding=ROUND_HALF_UP))


# --- prices ----------------------------------------------------------------------------------------

def market_price(open_: float, side: Side, slippage_bps: float, limits: PairLimits = NO_LIMITS) -> float:
    """A market order pays the open moved against it by the slippage, on the pair's tick."""
    slip = slippage_bps / 10_000.0
    return round_price(open_ * (1.0 + slip if side is Side.BUY else 1.0 - slip), limits)


def limit_fill_price(candle: Candle, side: Side, limit: float) -> float | None:
    """Where a limit order trades on `candle`: at the limit, or at a better open; None if not reached."""
    if side is Side.BUY:
        return min(candle.open, limit) if candle.low <= limit else None
    return max(candle.open, limit) if candle.high >= limit else None


def fill_price(candle: Candle, side: Side, limit: float | None, model: FillModel,
               limits: PairLimits = NO_LIMITS) -> tuple[float | None, bool]:
    """(price, is maker) of an order on `candle`; price None when a limit order is not reached."""
    if limit is None:
        return market_price(candle.open, side, model.slippage_bps, limits), False
    return limit_fill_price(candle, side, round_price(limit, limits)), True


def arrival_price(open_: float, side: Side, limit: float | None, model: FillModel, limits: PairLimits) -> float:
    """The price Kraken checks an incoming order at: the market price now, or the limit."""
    if limit is None:
        return market_price(open_, side, model.slippage_bps, limits)
    return round_price(limit, limits)


# --- refusals --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Account:
    """One pair's side of an account: quote cash and base position."""

    cash: float
    position: float


def minimum_refusal(quantity: float, price: float, limits: PairLimits) -> str:
    """Kraken's minimum errors (exact strings), or '' when the order is big enough."""
    if quantity < limits.ordermin:
        return ORDER_MINIMUM
    if quantity * price < limits.costmin:
        return COST_MINIMUM
    return ""


def funds_refusal(side: Side, quantity: float, price: float, fee_rate: float, account: Account) -> str:
    """'EOrder:Insufficient funds' when a buy's cost plus fee exceeds cash or a sell exceeds the position."""
    if side is Side.BUY:
        return INSUFFICIENT_FUNDS if _cost(quantity, price, fee_rate) > account.cash else ""
    return INSUFFICIENT_FUNDS if quantity > account.position + DUST else ""


def refusal(side: Side, quantity: float, price: float, fee_rate: float, account: Account, limits: PairLimits) -> str:
    """Why Kraken refuses this order at this price, or '': minimums first, then funds."""
    return minimum_refusal(quantity, price, limits) or funds_refusal(side, quantity, price, fee_rate, account)


def _cost(quantity: float, price: float, fee_rate: float) -> float:
    notional = quantity * price
    return notional + notional * fee_rate


# --- quantities, fees, settlement ------------------------------------------------------------------

def affordable(side: Side, price: float, fee_rate: float, account: Account) -> float:
    """Most base coin the account can trade now: cash over price incl. fee (buy), the position (sell)."""
    if side is Side.BUY:
        return max(account.cash, 0.0) / (price * (1.0 + fee_rate))
    return max(account.position, 0.0)


def volume_cap(candle_volume: float, max_volume_share: float) -> float:
    """Base coin one order may take from one candle (infinite when shares are not limited)."""
    return max_volume_share * candle_volume if max_volume_share < 1.0 else float("inf")


@dataclass(frozen=True)
class Execution:
    """What one order traded on one candle: base coin, quote per coin, quote fee."""

    quantity: float
    price: float
    fee: float
    maker: bool

    @property
    def notional(self) -> float:
        return self.quantity * self.price


def execution(quantity: float, price: float, fee_rate: float, maker: bool) -> Execution:
    return Execution(quantity, price, quantity * price * fee_rate, maker)


def settle(account: Account, side: Side, fill: Execution) -> Account:
    """The account after a fill: the one place cash and position move (both venues, same floats)."""
    sign = 1.0 if side is Side.BUY else -1.0
    return Account(account.cash - (sign * fill.notional + fill.fee), account.position + sign * fill.quantity)


# --- one order, one candle -------------------------------------------------------------------------

@dataclass(frozen=True)
class WorkingOrder:
    """An accepted order's state between candles: what is left (base coin) and candles still to wait."""

    side: Side
    remaining: float
    limit: float | None = None
    wait: int = 0


def accept(side: Side, quantity: float, limit: float | None, open_: float, account: Account, model: FillModel,
           limits: PairLimits, volume_30d: float = 0.0) -> tuple[WorkingOrder | None, str]:
    """An order arriving while the candle opened at `open_` is current: (working order, '') or (None, Kraken's
    refusal). The quantity is truncated to whole lots first, as ccxt does before sending."""
    quantity = round_quantity(quantity, limits)
    if quantity <= DUST:
        return None, INVALID_VOLUME
    price = arrival_price(open_, side, limit, model, limits)
    why = refusal(side, quantity, price, model.fee_rate(limit is not None, volume_30d), account, limits)
    if why:
        return None, why
    limit = None if limit is None else round_price(limit, limits)
    return WorkingOrder(side, quantity, limit, model.latency_candles), ""


def work(order: WorkingOrder, candle: Candle, account: Account, model: FillModel, limits: PairLimits,
         volume_30d: float = 0.0, offered: float | None = None) -> tuple[WorkingOrder | None, Execution | None]:
    """One candle of an order's life: (the order still working, or None once done; what traded, or None).
    `offered` caps what this candle may fill (the emulator's partial-fill fault). An order the account
    can no longer pay for or deliver (not one lot of cash or coin left) is done; one that met too little
    candle volume waits for the next candle."""
    if order.wait > 0:
        return replace(order, wait=order.wait - 1), None
    price, maker = fill_price(candle, order.side, order.limit, model, limits)
    if price is None:
        return order, None
    rate = model.fee_rate(maker, volume_30d)
    room = round_quantity(affordable(order.side, price, rate, account), limits)
    if room <= DUST:
        return None, None
    wanted = min(order.remaining, volume_cap(candle.volume, model.max_volume_share),
                 order.remaining if offered is None else offered)
    quantity = round_quantity(min(wanted, room), limits)
    if quantity <= DUST:
        return order, None
    left = order.remaining - quantity
    done = round_quantity(left, limits) <= DUST or quantity >= room
    return (None if done else replace(order, remaining=left)), execution(quantity, price, rate, maker)
