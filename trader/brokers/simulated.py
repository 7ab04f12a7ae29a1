"""SimulatedBroker: the one fill model behind backtest and paper trading (so both see the same fills).

- Market orders fill at the open of the candle after the order (plus `latency_candles` more), moved
  against us by `slippage_bps`, and pay the taker fee.
- Limit orders rest until a candle trades through the limit: a buy fills at min(open, limit) once
  low ≤ limit, a sell at max(open, limit) once high ≥ limit, and pay the maker fee.
- Partial fills: one order takes at most `max_volume_share` of a candle's volume; the rest waits for
  the next candle (market orders too: a thin market fills a large order over several candles).
- Kraken's minimums (`ordermin` in base coin, `costmin` in quote) refuse an order at submission.
- Fees: flat (`taker_fee`/`maker_fee`) or by Kraken's 30-day volume tiers when `fee_tiers` is given.
Buys are capped by cash including the fee; sells by the position (never short).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field

from core.params import FeeParams
from core.types import Candle, Fill, OrderIntent, Side
from market.instruments import bundled

MONTH_MS = 30 * 86_400_000


@dataclass(frozen=True)
class FeeTier:
    """From `min_volume_usd` of 30-day traded volume on, these fee fractions apply."""

    min_volume_usd: float
    maker: float
    taker: float


KRAKEN_SPOT_TIERS: tuple[FeeTier, ...] = (
    FeeTier(0, 0.0025, 0.0040), FeeTier(10_000, 0.0020, 0.0035), FeeTier(50_000, 0.0014, 0.0024),
    FeeTier(100_000, 0.0012, 0.0022), FeeTier(250_000, 0.0010, 0.0020), FeeTier(500_000, 0.0008, 0.0018),
    FeeTier(1_000_000, 0.0006, 0.0016), FeeTier(2_500_000, 0.0004, 0.0014), FeeTier(5_000_000, 0.0002, 0.0012),
    FeeTier(10_000_000, 0.0, 0.0010),
)
"""Kraken Pro spot schedule (maker/taker by 30-day USD volume), as published; check TradeVolume live."""


@dataclass(frozen=True)
class PairLimits:
    ordermin: float   # base coin
    costmin: float    # quote currency


KRAKEN_LIMITS: Mapping[str, PairLimits] = {symbol: PairLimits(inst.ordermin, inst.costmin)
                                           for symbol, inst in bundled().instruments.items()}
"""Kraken's ordermin/costmin of every pair, from the instrument table (the emulator enforces the same)."""


@dataclass(frozen=True)
class FillModel:
    taker_fee: float        # fraction of notional
    slippage_bps: float     # adverse price move on market orders, basis points
    maker_fee: float = 0.0025
    latency_candles: int = 0
    """Extra candles between the decision and the fill (0: the next candle's open)."""
    max_volume_share: float = 1.0
    """Largest fraction of one candle's volume an order may take; the rest fills later."""
    fee_tiers: tuple[FeeTier, ...] = ()
    """Empty: flat fees; else Kraken-style tiers by rolling 30-day traded volume (quote)."""
    limits: Mapping[str, PairLimits] = field(default_factory=dict)

    def fee_rate(self, maker: bool, volume_30d: float) -> float:
        if not self.fee_tiers:
            return self.maker_fee if maker else self.taker_fee
        tier = max((t for t in self.fee_tiers if t.min_volume_usd <= volume_30d), key=lambda t: t.min_volume_usd)
        return tier.maker if maker else tier.taker


def fill_model(fees: FeeParams) -> FillModel:
    """params.yaml `fees:` → the simulated fill model (Kraken's pair minimums always apply)."""
    return FillModel(fees.taker, fees.slippage_bps, fees.maker, fees.latency_candles, fees.max_volume_share,
                     KRAKEN_SPOT_TIERS if fees.volume_tiers else (), KRAKEN_LIMITS)


@dataclass
class _Working:
    intent: OrderIntent
    remaining: float
    wait: int


@dataclass
class SimulatedBroker:
    """Holds cash (quote) and positions (base); works queued orders as candles arrive."""

    cash: float
    model: FillModel
    positions: dict[str, float] = field(default_factory=dict)
    fills: list[Fill] = field(default_factory=list)
    fees_paid: float = 0.0
    rejected: list[tuple[OrderIntent, str]] = field(default_factory=list)
    _pending: dict[str, list[_Working]] = field(default_factory=dict)
    _last_price: dict[str, float] = field(default_factory=dict)
    _volume: deque[tuple[int, float]] = field(default_factory=deque)
    _volume_30d: float = 0.0

    def sync(self) -> list[Fill]:
        """Nothing to learn between polls: fills happen on each candle."""
        return []

    def submit(self, intent: OrderIntent, decision: object = None) -> None:
        refusal = self._refusal(intent)
        if refusal:
            self.rejected.append((intent, refusal))
            return
        self._pending.setdefault(intent.pair, []).append(_Working(intent, intent.quantity, self.model.latency_candles))

    def _refusal(self, intent: OrderIntent) -> str:
        """Kraken's EOrder:Order minimum / Cost minimum, checked before the order is queued."""
        limits = self.model.limits.get(intent.pair)
        if limits is None:
            return ""
        if intent.quantity < limits.ordermin:
            return f"EOrder:Order minimum not met ({intent.quantity} < {limits.ordermin})"
        price = intent.limit_price or self._last_price.get(intent.pair)
        if price is not None and intent.quantity * price < limits.costmin:
            return f"EOrder:Cost minimum not met ({intent.quantity * price:.4f} < {limits.costmin})"
        return ""

    def position(self, pair: str) -> float:
        return self.positions.get(pair, 0.0)

    def has_pending(self, pair: str) -> bool:
        return bool(self._pending.get(pair))

    def cancel(self, client_id: str) -> bool:
        for queue in self._pending.values():
            for working in queue:
                if working.intent.client_id == client_id:
                    queue.remove(working)
                    return True
        return False

    def on_candle(self, pair: str, candle: Candle) -> list[Fill]:
        """Work every order queued for `pair` against this candle; returns the new fills."""
        self._last_price[pair] = candle.close
        if pair not in self._pending:
            return []
        queue = self._pending.pop(pair)
        new, still = [], []
        for working in queue:
            fill = self._work(working, candle)
            if fill is not None:
                new.append(fill)
            if working.remaining > 1e-12 and self._can_continue(working):
                still.append(working)
        if still:
            self._pending[pair] = still
        self.fills.extend(new)
        return new

    def _can_continue(self, working: _Working) -> bool:
        """A partly filled order goes on unless what is left cannot trade any more (no cash/coin)."""
        if working.intent.side is Side.SELL:
            return self.position(working.intent.pair) > 1e-12
        return self.cash > 1e-9

    def _work(self, working: _Working, candle: Candle) -> Fill | None:
        if working.wait > 0:
            working.wait -= 1
            return None
        intent = working.intent
        price, maker = self._price(intent, candle)
        if price is None:
            return None
        cap = self.model.max_volume_share * candle.volume if self.model.max_volume_share < 1.0 else working.remaining
        if self.model.fee_tiers:
            self._expire_volume(candle.ts)
        fee_rate = self.model.fee_rate(maker, self._volume_30d)
        if intent.side is Side.BUY:
            qty = min(working.remaining, cap, self.cash / (price * (1.0 + fee_rate)))
        else:
            qty = min(working.remaining, cap, self.position(intent.pair))
        working.remaining = 0.0 if qty >= working.remaining - 1e-12 else working.remaining - qty
        if qty <= 0:
            working.remaining = 0.0
            return None
        return self._book(intent, qty, price, fee_rate, candle.ts)

    def _price(self, intent: OrderIntent, candle: Candle) -> tuple[float | None, bool]:
        """(fill price, is maker) on this candle, or (None, _) when a limit order is not reached."""
        limit = intent.limit_price
        if limit is None:
            slip = self.model.slippage_bps / 10_000.0
            return candle.open * (1.0 + slip if intent.side is Side.BUY else 1.0 - slip), False
        if intent.side is Side.BUY:
            return (min(candle.open, limit), True) if candle.low <= limit else (None, True)
        return (max(candle.open, limit), True) if candle.high >= limit else (None, True)

    def _book(self, intent: OrderIntent, qty: float, price: float, fee_rate: float, ts: int) -> Fill:
        notional = qty * price
        fee = notional * fee_rate
        sign = 1.0 if intent.side is Side.BUY else -1.0
        self.cash -= sign * notional + fee
        self.positions[intent.pair] = self.position(intent.pair) + sign * qty
        self.fees_paid += fee
        if self.model.fee_tiers:
            self._add_volume(ts, notional)
        return Fill(intent.client_id, intent.pair, intent.side, qty, price, fee, ts)

    def _add_volume(self, ts: int, notional: float) -> None:
        """Rolling 30-day traded volume (quote) that picks the fee tier."""
        self._volume.append((ts, notional))
        self._volume_30d += notional

    def _expire_volume(self, now: int) -> None:
        while self._volume and self._volume[0][0] <= now - MONTH_MS:
            self._volume_30d -= self._volume.popleft()[1]
