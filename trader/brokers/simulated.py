"""SimulatedBroker: backtests and paper trading fill through `market.fills`, the fill model the Kraken
emulator uses too, so a backtest and a live run against the emulator see the same fills.

An order reaches the "venue" on the first candle after it is submitted (the next open): there Kraken's
refusals are checked (ordermin, costmin, funds incl. the fee — the exact `EOrder:` strings land in
`rejected`), its quantity is truncated to whole lots as ccxt would send it, and it is worked against that
candle and the following ones. Prices, partial fills, latency, fees and caps: see `market.fills`.

`PaperBroker` is the same simulated venue behind the live loop (paper trading on live candles), writing
the live ledger as the Kraken broker does.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from core.types import Candle, Fill, OrderIntent, Side
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
from trader.brokers.events import log_fill, log_order_decision

if TYPE_CHECKING:
    from trader.ledger import Ledger  # only a type: a backtest never loads SQLAlchemy

__all__ = [
    "KRAKEN_LIMITS",
    "KRAKEN_SPOT_TIERS",
    "MONTH_MS",
    "FeeTier",
    "FillModel",
    "PairLimits",
    "PaperBroker",
    "SimulatedBroker",
    "fill_model",
]

log = logging.getLogger(__name__)


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

    def working_ids(self, pair: str) -> set[str]:
        """Client ids of the pair's orders not yet done (queued or working)."""
        return {queued.intent.client_id for queued in self._pending.get(pair, ())}

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


class PaperBroker:
    """Paper trading on live candles: the SimulatedBroker's fills (the backtest's fill model, Kraken's fees
    from params) written to the live ledger exactly as the Kraken broker writes them — intent + decision in
    one transaction before the "venue" sees the order, then its status, every fill and every refusal — so
    whatever reads a live ledger (dashboard, /status, reports) reads a paper one. No network call at all.

    An order reaches the simulated venue on its pair's next finished candle (the next open, as in a backtest);
    the live loop works every pair's orders against a timestamp's candles before the engine decides on any."""

    def __init__(self, sim: SimulatedBroker, ledger: Ledger, model_version: int | None) -> None:
        self.sim, self.ledger, self.model_version = sim, ledger, model_version

    @classmethod
    def resume(cls, starting_cash: float, model: FillModel, ledger: Ledger,
               model_version: int | None) -> PaperBroker:
        """A paper account rebuilt from the ledger: starting cash (USD) moved by every recorded fill and fee,
        positions from the fills. Orders the ledger still holds open were in the previous process's memory
        (the simulated venue): they are cancelled, audited, never filled late."""
        sim = SimulatedBroker(cash=starting_cash, model=model)
        for fill in ledger.fills():
            signed = fill.quantity if fill.side is Side.BUY else -fill.quantity
            sim.cash += -signed * fill.price - fill.fee
            sim.positions[fill.pair] = sim.positions.get(fill.pair, 0.0) + signed
            sim.fees_paid += fill.fee
        for record in ledger.unresolved_intents():
            ledger.mark(record.intent.client_id, "cancelled")
            ledger.audit("paper_order_dropped", {"client_id": record.intent.client_id,
                                                 "reason": "the simulated venue of the previous process is gone"})
        return cls(sim, ledger, model_version)

    @property
    def cash(self) -> float:
        return self.sim.cash

    def position(self, pair: str) -> float:
        return self.sim.position(pair)

    def has_pending(self, pair: str) -> bool:
        return self.sim.has_pending(pair)

    def sync(self) -> list[Fill]:
        return []

    def submit(self, intent: OrderIntent, decision: Any = None) -> None:
        """Committed (with its decision) before the simulated venue sees it, then sent, as live."""
        self.ledger.record_intent(intent, self.model_version, decision)
        self.ledger.mark(intent.client_id, "sent", txid=paper_txid(intent.client_id))
        self.sim.submit(intent)
        log_order_decision(decision, intent, self.model_version, "paper", log)
        log.info("order %s sent (paper): %s %s %.8f", intent.client_id, intent.side.value, intent.pair,
                 intent.quantity, extra={"event": "order", "mode": "paper", "cl_ord_id": intent.client_id,
                                         "pair": intent.pair, "side": intent.side.value, "qty": intent.quantity,
                                         "status": "sent", "txid": paper_txid(intent.client_id)})

    def on_candle(self, pair: str, candle: Candle) -> list[Fill]:
        """Work the pair's orders against this candle; record fills, refusals and finished orders."""
        refused_before = len(self.sim.rejected)
        working_before = self.sim.working_ids(pair)
        fills = self.sim.on_candle(pair, candle)
        for fill in fills:
            if self.ledger.record_fill(fill, f"{paper_txid(fill.client_id)}-{fill.ts}"):
                log_fill(fill, "paper", log)
        for intent, why in self.sim.rejected[refused_before:]:
            self.ledger.mark(intent.client_id, "rejected")
            self.ledger.audit("rejected", {"client_id": intent.client_id, "error": why})
            log.warning("order %s refused by the simulated venue: %s", intent.client_id, why,
                        extra={"event": "order", "mode": "paper", "cl_ord_id": intent.client_id, "pair": pair,
                               "status": "rejected", "reason": why})
        refused = {intent.client_id for intent, _ in self.sim.rejected[refused_before:]}
        for client_id in working_before - self.sim.working_ids(pair) - refused:
            self.ledger.mark(client_id, "filled")
        return fills


def paper_txid(client_id: str) -> str:
    return f"paper-{client_id}"
