"""KrakenBroker: live orders through market.kraken with the ledger as the durable record.

Every order is an intent committed to the ledger BEFORE AddOrder is sent, in the same transaction as the
decision that made it. An ambiguous send (timeout, 5xx, EService, a garbled answer) marks the intent
`unknown`; the pair stays blocked until the order is found by its cl_ord_id or the exchange has shown it
absent in repeated lookups over `lookup_window_s` — it is never resent. A fill that turns up later for an
intent given up on is adopted, never ignored.

The exchange is asked at most once per poll (`sync`), never per candle, so a backlog or a warm-up cannot
spiral into rate limits. Cash is the exchange's balance with every recorded fill applied at the moment it
is recorded, so cash and positions agree whichever call fails next.

It logs one INFO line per decision that acts, order sent, order looked up and fill (fields in `extra` for
JSON logs), and tells `on_lookup` (e.g. the trader's alerts) how each order whose answer was lost ended.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from core.types import Candle, Fill, OrderIntent, Side
from market import errors
from market.kraken import ExchangeOrder, ExchangeTrade, KrakenClient
from trader.brokers.events import log_fill, log_order_decision
from trader.ledger import IntentRecord, Ledger

if TYPE_CHECKING:
    from trader.engine import Decision

log = logging.getLogger(__name__)

AMBIGUOUS = ("unknown", "new")
"""`new` seen by sync means a process died between committing the intent and hearing back from AddOrder."""
LATE_FILL_WATCH_S = 86_400.0
"""How long an intent given up on (`not_found`) is still watched for a late fill."""

LookupHook = Callable[[OrderIntent, str, "str | None"], None]
"""Called with (intent, outcome, txid) when an order whose answer was lost is settled by lookup: outcome
`found` (on the exchange by its cl_ord_id, not resent), `not_found` (given up) or `late_order_adopted`."""


@dataclass
class LookupPolicy:
    """When an order the exchange never confirmed may be taken as absent: not found in at least
    `min_lookups` lookups, the last one more than `window_s` after the intent was committed."""

    window_s: float = 90.0
    min_lookups: int = 3


class KrakenBroker:
    def __init__(self, client: KrakenClient, ledger: Ledger, model_version: int | None,
                 quote_asset: str = "USD", lookup: LookupPolicy | None = None,
                 wall: Callable[[], float] = time.time, on_lookup: LookupHook | None = None) -> None:
        self.client, self.ledger, self.model_version = client, ledger, model_version
        self.on_lookup = on_lookup
        self.quote_asset = quote_asset
        self.lookup = lookup or LookupPolicy()
        self.wall = wall
        self._cash: float | None = None
        self._cash_stale = True
        self._lookups: dict[str, int] = {}

    # --- cash ----------------------------------------------------------------------------------
    @property
    def cash(self) -> float:
        """The quote balance as of the last Balance call plus every fill recorded since (no network
        call when known: the engine reads it on every decision)."""
        if self._cash is None:
            self.refresh_cash()
        assert self._cash is not None
        return self._cash

    def refresh_cash(self) -> float:
        """Read the quote balance from the exchange now (raises on failure, keeping the old figure)."""
        self._cash = self.client.balances().get(self.quote_asset, 0.0)
        self._cash_stale = False
        return self._cash

    def use_balances(self, balances: dict[str, float]) -> None:
        """Cash from a Balance answer read after the last sync (reconciliation): no second call."""
        self._cash = balances.get(self.quote_asset, 0.0)
        self._cash_stale = False

    def forget_cash(self) -> None:
        """Refresh the quote balance at the next sync (after reconciliation or a refusal for funds)."""
        self._cash_stale = True

    def _apply_fill_to_cash(self, fill: Fill) -> None:
        if self._cash is not None:
            signed = -fill.quantity * fill.price if fill.side is Side.BUY else fill.quantity * fill.price
            self._cash += signed - fill.fee
        self._cash_stale = True  # the exchange's own figure is fetched at the next chance

    # --- the engine's view ----------------------------------------------------------------------
    def position(self, pair: str) -> float:
        return self.ledger.position(pair)

    def has_pending(self, pair: str) -> bool:
        return any(r.intent.pair == pair for r in self.ledger.unresolved_intents())

    def submit(self, intent: OrderIntent, decision: Decision | None = None) -> None:
        """Commit intent (+ its decision), send AddOrder once, record what the answer proves. Never raises
        for an exchange error: whatever happens, the intent and its decision are in the ledger."""
        self.ledger.record_intent(intent, self.model_version, decision)  # durable before the network sees it
        log_order_decision(decision, intent, self.model_version, "live", log)
        try:
            txid = self.client.place_market_order(intent.pair, intent.side, intent.quantity, intent.client_id)
        except errors.InsufficientFunds as err:
            self._refused(intent, err)
            self.forget_cash()  # the trader's cash figure was wrong: re-read it before the next decision
            return
        except (errors.OrderRejected, errors.RateLimited, errors.InvalidNonce,
                errors.AuthenticationFailed) as err:
            self._refused(intent, err)
            return
        except Exception as err:  # OrderOutcomeUnknown, or anything unforeseen: the order may exist
            self.ledger.mark(intent.client_id, "unknown")
            self.ledger.audit("ambiguous_send", {"client_id": intent.client_id, "error": str(err)})
            log.warning("order %s: outcome unknown (%s); will look it up by cl_ord_id", intent.client_id, err,
                        extra=_order_extra(intent, "unknown", None))
            return
        self.ledger.mark(intent.client_id, "sent", txid=txid)
        log.info("order %s sent: %s %s %.8f txid %s", intent.client_id, intent.side.value, intent.pair,
                 intent.quantity, txid, extra=_order_extra(intent, "sent", txid))

    def _refused(self, intent: OrderIntent, err: Exception) -> None:
        self.ledger.mark(intent.client_id, "rejected")
        self.ledger.audit("rejected", {"client_id": intent.client_id, "error": str(err)})
        log.warning("order %s refused by the exchange: %s", intent.client_id, err,
                    extra=_order_extra(intent, "rejected", None))

    def on_candle(self, pair: str, candle: Candle) -> list[Fill]:
        """Live fills are read once per poll by `sync`, never per candle."""
        return []

    # --- once per poll ---------------------------------------------------------------------------
    def sync(self) -> list[Fill]:
        """Resolve ambiguous intents by lookup, record new fills (adopting late ones), refresh cash if a
        fill or refusal made it stale. Calls the exchange only when something is open or watched."""
        watched = self._watched()
        new: list[Fill] = []
        if watched:
            orders = self.client.orders_by_client_id()
            for record in watched:
                order = orders.get(record.intent.client_id)
                if record.status in AMBIGUOUS or (record.status == "sent" and not _valid_txid(record.txid)):
                    self._resolve_ambiguous(record, order)
                elif record.status == "not_found" and order is not None:
                    self._adopt_late_order(record, order)
            new = self._record_fills(orders)
        for fill in new:
            log_fill(fill, "live", log)
        if self._cash_stale:  # also true until the first Balance answer
            self.refresh_cash()
        return new

    def _watched(self) -> list[IntentRecord]:
        return self.ledger.unresolved_intents() + self.ledger.intents_with_status(
            "not_found", since_unix=self.wall() - LATE_FILL_WATCH_S)

    def _resolve_ambiguous(self, record: IntentRecord, order: ExchangeOrder | None) -> None:
        client_id = record.intent.client_id
        if order is not None:
            self.ledger.mark(client_id, "sent", txid=order.txid)
            self.ledger.audit("lookup_found", {"client_id": client_id, "txid": order.txid, "status": order.status})
            self._lookups.pop(client_id, None)
            log.info("order %s looked up by cl_ord_id: found (txid %s), not resent", client_id, order.txid,
                     extra={**_order_extra(record.intent, "sent", order.txid), "event": "lookup"})
            self._looked_up(record.intent, "found", order.txid)
            return
        seen = self._lookups[client_id] = self._lookups.get(client_id, 0) + 1
        age = self.wall() - record.created_unix
        if seen >= self.lookup.min_lookups and age > self.lookup.window_s:
            self.ledger.mark(client_id, "not_found")
            self.ledger.audit("lookup_not_found", {"client_id": client_id, "lookups": seen, "age_s": round(age, 1)})
            self._lookups.pop(client_id, None)
            log.warning("order %s: not on the exchange after %s lookups over %.0f s; given up (a late fill "
                        "would still be adopted)", client_id, seen, age,
                        extra={**_order_extra(record.intent, "not_found", None), "event": "lookup"})
            self._looked_up(record.intent, "not_found", None)

    def _looked_up(self, intent: OrderIntent, outcome: str, txid: str | None) -> None:
        """Tell `on_lookup`; its failure must never undo what the ledger already holds."""
        if self.on_lookup is not None:
            try:
                self.on_lookup(intent, outcome, txid)
            except Exception:  # an alert that cannot go out is logged by its sender; trading goes on
                log.exception("lookup hook failed for order %s", intent.client_id)

    def _adopt_late_order(self, record: IntentRecord, order: ExchangeOrder) -> None:
        """An order given up on exists after all: it is ours (its intent is in the ledger), so its fills
        count; the pair is blocked again until it is done."""
        self.ledger.mark(record.intent.client_id, "sent", txid=order.txid)
        self.ledger.audit("late_order_adopted", {"client_id": record.intent.client_id, "txid": order.txid,
                                                 "status": order.status, "filled": order.filled})
        log.error("order %s turned up after it was given up on: adopted with its fills", record.intent.client_id,
                  extra={**_order_extra(record.intent, "sent", order.txid), "event": "lookup"})
        self._looked_up(record.intent, "late_order_adopted", order.txid)

    def _record_fills(self, orders: dict[str, ExchangeOrder]) -> list[Fill]:
        by_txid = {r.txid: r for r in self.ledger.unresolved_intents() if _valid_txid(r.txid)}
        if not by_txid:
            return []
        new: list[Fill] = []
        for trade in self.client.trades_since(None):
            record = by_txid.get(trade.txid)
            if record is not None:
                fill = _fill(record.intent, trade)
                if self.ledger.record_fill(fill, trade.trade_id):
                    self._apply_fill_to_cash(fill)
                    new.append(fill)
        for txid, record in by_txid.items():
            order = orders.get(record.intent.client_id)
            if order is None or order.status not in ("closed", "canceled", "expired"):
                continue
            recorded = self.ledger.filled_quantity(record.intent.client_id)
            if recorded < order.filled * (1 - 1e-9):  # its trades are not all in the ledger yet: next poll
                log.warning("order %s is %s but only %.8f of %.8f filled is recorded; keeping it open",
                            record.intent.client_id, order.status, recorded, order.filled)
                continue
            self.ledger.mark(record.intent.client_id, "filled" if order.filled > 0 else "cancelled", txid=txid)
        return new


def _order_extra(intent: OrderIntent, status: str, txid: str | None) -> dict[str, object]:
    return {"event": "order", "mode": "live", "cl_ord_id": intent.client_id, "pair": intent.pair,
            "side": intent.side.value, "qty": intent.quantity, "status": status, "txid": txid}


def _valid_txid(txid: str | None) -> bool:
    """Old ledgers hold 'None' where a garbled AddOrder answer carried no txid."""
    return bool(txid) and txid not in ("None", "null")


def _fill(intent: OrderIntent, trade: ExchangeTrade) -> Fill:
    return Fill(intent.client_id, intent.pair, Side(trade.side), trade.quantity, trade.price, trade.fee, trade.ts)
