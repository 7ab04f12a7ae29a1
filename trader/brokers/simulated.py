"""SimulatedBroker: market orders fill at the NEXT candle's open plus slippage, minus Kraken taker fees.

One implementation serves backtest and paper trading, so both see the same fill model.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from core.types import Candle, Fill, OrderIntent, Side


@dataclass(frozen=True)
class FillModel:
    taker_fee: float        # fraction of notional
    slippage_bps: float     # adverse price move on market orders, basis points


@dataclass
class SimulatedBroker:
    """Holds cash (quote) and positions (base); fills queued intents when the next candle opens."""

    cash: float
    model: FillModel
    positions: dict[str, float] = field(default_factory=dict)
    fills: list[Fill] = field(default_factory=list)
    fees_paid: float = 0.0
    _pending: dict[str, list[OrderIntent]] = field(default_factory=dict)

    def submit(self, intent: OrderIntent) -> None:
        self._pending.setdefault(intent.pair, []).append(intent)

    def position(self, pair: str) -> float:
        return self.positions.get(pair, 0.0)

    def has_pending(self, pair: str) -> bool:
        return bool(self._pending.get(pair))

    def on_candle(self, pair: str, candle: Candle) -> list[Fill]:
        """Fill every intent queued for `pair` at this candle's open; returns the new fills."""
        if pair not in self._pending:
            return []
        new = [f for f in (self._execute(i, candle) for i in self._pending.pop(pair, [])) if f]
        self.fills.extend(new)
        return new

    def _execute(self, intent: OrderIntent, candle: Candle) -> Fill | None:
        slip = self.model.slippage_bps / 10_000.0
        fee_rate = self.model.taker_fee
        if intent.side is Side.BUY:
            price = candle.open * (1.0 + slip)
            qty = min(intent.quantity, self.cash / (price * (1.0 + fee_rate)))
        else:
            price = candle.open * (1.0 - slip)
            qty = min(intent.quantity, self.position(intent.pair))
        if qty <= 0:
            return None
        fee = qty * price * fee_rate
        sign = 1.0 if intent.side is Side.BUY else -1.0
        self.cash -= sign * qty * price + fee
        self.positions[intent.pair] = self.position(intent.pair) + sign * qty
        self.fees_paid += fee
        return Fill(intent.client_id, intent.pair, intent.side, qty, price, fee, candle.ts)
