"""KrakenBroker: live orders through market.kraken with the ledger as the durable record.

Every order is an intent committed to the ledger BEFORE AddOrder is sent. An ambiguous send (timeout,
5xx, EService) marks the intent `unknown`; before anything else happens for that pair the broker looks
the order up by cl_ord_id and only then decides — it never resends blindly.
"""

from __future__ import annotations

import logging

from core.types import Candle, Fill, OrderIntent, Side
from market import errors
from market.kraken import ExchangeTrade, KrakenClient
from trader.ledger import Ledger

log = logging.getLogger(__name__)


class KrakenBroker:
    def __init__(self, client: KrakenClient, ledger: Ledger, model_version: int | None,
                 quote_asset: str = "USD") -> None:
        self.client, self.ledger, self.model_version = client, ledger, model_version
        self.quote_asset = quote_asset
        self._cash: float | None = None

    @property
    def cash(self) -> float:
        if self._cash is None:
            self._cash = self.client.balances().get(self.quote_asset, 0.0)
        return self._cash

    def forget_cash(self) -> None:
        """Read the quote balance from the exchange again on next use (after fills or reconciliation)."""
        self._cash = None

    def position(self, pair: str) -> float:
        return self.ledger.position(pair)

    def has_pending(self, pair: str) -> bool:
        return any(r.intent.pair == pair for r in self.ledger.unresolved_intents())

    def submit(self, intent: OrderIntent) -> None:
        self.ledger.record_intent(intent, self.model_version)  # durable before the network sees it
        try:
            txid = self.client.place_market_order(intent.pair, intent.side, intent.quantity, intent.client_id)
        except errors.OrderOutcomeUnknown as err:
            self.ledger.mark(intent.client_id, "unknown")
            self.ledger.audit("ambiguous_send", {"client_id": intent.client_id, "error": str(err)})
            return
        except (errors.OrderRejected, errors.InsufficientFunds) as err:
            self.ledger.mark(intent.client_id, "rejected")
            self.ledger.audit("rejected", {"client_id": intent.client_id, "error": str(err)})
            return
        self.ledger.mark(intent.client_id, "sent", txid=txid)
        self.sync()

    def on_candle(self, pair: str, candle: Candle) -> list[Fill]:
        return self.sync()

    def sync(self) -> list[Fill]:
        """Resolve unknown outcomes by lookup, then record new fills from the trade history."""
        for record in self.ledger.unresolved_intents():
            # "new" seen here means a process died between committing the intent and hearing back
            # from AddOrder (sync never runs inside submit): as ambiguous as a timeout
            if record.status in ("unknown", "new"):
                self._resolve_unknown(record.intent)
        if not self.ledger.unresolved_intents():
            return []
        return self._record_fills()

    def _resolve_unknown(self, intent: OrderIntent) -> None:
        order = self.client.find_order(intent.client_id)
        if order is None:
            self.ledger.mark(intent.client_id, "rejected")
            self.ledger.audit("lookup_not_found", {"client_id": intent.client_id})
            return
        self.ledger.mark(intent.client_id, "sent", txid=order.txid)
        self.ledger.audit("lookup_found", {"client_id": intent.client_id, "txid": order.txid,
                                           "status": order.status})

    def _record_fills(self) -> list[Fill]:
        by_txid = {r.txid: r.intent for r in self.ledger.unresolved_intents() if r.txid}
        new: list[Fill] = []
        for trade in self.client.trades_since(None):
            intent = by_txid.get(trade.txid)
            if intent is not None:
                fill = _fill(intent, trade)
                if self.ledger.record_fill(fill, trade.trade_id):
                    new.append(fill)
        for txid, intent in by_txid.items():
            order = self.client.find_order(intent.client_id)
            if order is not None and order.status in ("closed", "canceled", "expired"):
                self.ledger.mark(intent.client_id, "filled" if order.filled > 0 else "cancelled", txid=txid)
        if new:
            self.forget_cash()
        return new


def _fill(intent: OrderIntent, trade: ExchangeTrade) -> Fill:
    return Fill(intent.client_id, intent.pair, Side(trade.side), trade.quantity, trade.price, trade.fee, trade.ts)
