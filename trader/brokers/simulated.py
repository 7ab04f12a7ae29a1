"""SimulatedBroker: backtests and paper trading fill through `market.fills`, the fill model the Kraken
emulator uses too, so a backtest and a live run against the emulator see the same fills.

An order reaches the "venue" on the first candle after it is submitted (the next open): there Kraken's
refusals are checked (ordermin, costmin, funds incl. the fee — the exact `EOrder:` strings land in
`rejected`), its quantity is truncated to whole lots as ccxt would send it, and it is worked against that
candle and the following ones. Prices, partial fills, latency, fees and caps: see `market.fills`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from core.types import Candle, Fill, OrderIntent
from market.fills import (  # re-exported: backtest, tests and bench import them from here
    KRAKEN_LIMITS,
    KRAKEN_SPOT_TIERS,
    MONTH_MS,
    Account,
    Execution,
    FeeTier,
    FillModel,
    PairLimits,
    WorkingOrder,
    accept,
    fill_model,
    settle,
    thirty_day_volume,
    work,
)

__all__ = ["KRAKEN_LIMITS", "KRAKEN_SPOT_TIERS", "MONTH_MS", "FeeTier", "FillModel", "PairLimits", "SimulatedBroker",
           "fill_model"]


@dataclass
class _Queued:
    """An order submitted but not yet at the venue (`working` None) or working there."""

    intent: OrderIntent
    working: WorkingOrder | None = None


@dataclass
class SimulatedBroker:
    """Holds cash (quote) and positions (base); works queued orders as candles arrive."""

    cash: float
    model: FillModel
    positions: dict[str, float] = field(default_factory=dict)
    fills: list[Fill] = field(default_factory=list)
    fees_paid: float = 0.0
    rejected: list[tuple[OrderIntent, str]] = field(default_factory=list)
    _pending: dict[str, list[_Queued]] = field(default_factory=dict)
    _volume: list[tuple[int, float]] = field(default_factory=list)
    """(candle ts ms, quote notional) of every fill, for the 30-day fee tier (only kept with tiers)."""
    _worked: dict[str, int] = field(default_factory=dict)
    """Per pair, the open time of the last candle its orders were worked against."""

    def sync(self) -> list[Fill]:
        """Nothing to learn between polls: fills happen on each candle."""
        return []

    def submit(self, intent: OrderIntent, decision: object = None) -> None:
        """Queued; it reaches the venue (and may be refused there) on the pair's next candle."""
        self._pending.setdefault(intent.pair, []).append(_Queued(intent))

    def position(self, pair: str) -> float:
        return self.positions.get(pair, 0.0)

    def has_pending(self, pair: str) -> bool:
        return bool(self._pending.get(pair))

    def cancel(self, client_id: str) -> bool:
        for queue in self._pending.values():
            for queued in queue:
                if queued.intent.client_id == client_id:
                    queue.remove(queued)
                    return True
        return False

    def on_candle(self, pair: str, candle: Candle) -> list[Fill]:
        """Work every order queued for `pair` against this candle; returns the new fills. A candle is worked
        once: a replay may open every pair's candle before the engine decides on any of them (as live, where
        all fills at an open are known before the next decision), and the engine's own call is then a no-op."""
        if self._worked.get(pair) == candle.ts:
            return []
        self._worked[pair] = candle.ts
        queue = self._pending.pop(pair, None)
        if not queue:
            return []
        new, still = [], []
        for queued in queue:
            fill = self._step(queued, candle)
            if fill is not None:
                new.append(fill)
            if queued.working is not None:
                still.append(queued)
        if still:
            self._pending[pair] = still
        self.fills.extend(new)
        return new

    def _step(self, queued: _Queued, candle: Candle) -> Fill | None:
        """One candle of one order: arrival checks on its first candle, then the fill model."""
        intent = queued.intent
        limits = self.model.limits_for(intent.pair)
        volume_30d = self._volume_30d(candle.ts)
        if queued.working is None:
            queued.working, why = accept(intent.side, intent.quantity, intent.limit_price, candle.open,
                                         self._account(intent.pair), self.model, limits, volume_30d)
            if queued.working is None:
                self.rejected.append((intent, why))
                return None
        queued.working, execution = work(queued.working, candle, self._account(intent.pair), self.model, limits,
                                         volume_30d)
        return None if execution is None else self._book(intent, execution, candle.ts)

    def _account(self, pair: str) -> Account:
        return Account(self.cash, self.position(pair))

    def _volume_30d(self, now_ms: int) -> float:
        return thirty_day_volume(self._volume, now_ms) if self.model.fee_tiers else 0.0

    def _book(self, intent: OrderIntent, execution: Execution, ts: int) -> Fill:
        after = settle(self._account(intent.pair), intent.side, execution)
        self.cash, self.positions[intent.pair] = after.cash, after.position
        self.fees_paid += execution.fee
        if self.model.fee_tiers:
            self._volume.append((ts, execution.notional))
        return Fill(intent.client_id, intent.pair, intent.side, execution.quantity, execution.price, execution.fee, ts)
