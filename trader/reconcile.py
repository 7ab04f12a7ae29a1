"""Reconciliation: the exchange is the truth. Compare the ledger's positions and open orders with the
exchange, correct small drifts in the ledger (each correction audited), halt on large ones.

`reconcile_positions` and `unknown_open_orders` are pure; `reconcile_with_exchange` is the thin shell
the service calls at start-up and every `live.reconcile_every_s`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from market.kraken import ExchangeOrder, KrakenClient
    from trader.brokers.kraken import KrakenBroker
    from trader.engine import Engine

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class Drift:
    pair: str
    ledger: float
    exchange: float

    @property
    def difference(self) -> float:
        return self.exchange - self.ledger


@dataclass(frozen=True)
class Reconciliation:
    drifts: tuple[Drift, ...]
    halt: bool
    reason: str
    unknown_orders: tuple[str, ...] = ()


def reconcile_positions(ledger_positions: Mapping[str, float], exchange_balances: Mapping[str, float],
                        prices: Mapping[str, float], halt_above_usd: float, base_asset: Mapping[str, str],
                        tolerance: float = 1e-6) -> Reconciliation:
    """Pure: which pairs drift, and whether the total drift (valued in USD) is too big to trade on.
    `base_asset` maps a symbol to the key its base balance arrives under from ccxt's fetch_balance
    (`InstrumentTable.base_assets()`: 'DOGE/USD' → 'DOGE' for Kraken's XXDG)."""
    drifts = tuple(
        Drift(pair, ledger_positions.get(pair, 0.0), exchange_balances.get(base_asset[pair], 0.0))
        for pair in sorted(ledger_positions)  # the pairs this trader trades; other holdings are not ours
        if abs(exchange_balances.get(base_asset[pair], 0.0) - ledger_positions.get(pair, 0.0)) > tolerance
    )
    value = sum(abs(d.difference) * prices.get(d.pair, 0.0) for d in drifts)
    if value > halt_above_usd:
        return Reconciliation(drifts, True, f"ledger differs from the exchange by {value:,.2f} USD "
                                            f"(> {halt_above_usd:,.2f}): trading halted until a human looks")
    return Reconciliation(drifts, False, f"{len(drifts)} drift(s) worth {value:,.2f} USD corrected from exchange")


def unknown_open_orders(exchange_open: Iterable[tuple[str, str | None]], ledger_client_ids: set[str],
                        our_prefix: str) -> tuple[str, ...]:
    """Pure: txids of open exchange orders carrying our client-id prefix that the ledger never recorded.
    Every order we send is committed to the ledger first, so such an order means the ledger lost state."""
    return tuple(txid for txid, client_id in exchange_open
                 if client_id is not None and client_id.startswith(our_prefix) and client_id not in ledger_client_ids)


def with_unknown_orders(result: Reconciliation, unknown: Sequence[str]) -> Reconciliation:
    """Pure: unknown orders of ours always halt, whatever the positions say."""
    if not unknown:
        return result
    reason = f"{len(unknown)} open exchange order(s) of ours missing from the ledger ({', '.join(unknown)})"
    return Reconciliation(result.drifts, True, f"{reason}; trading halted until a human looks", tuple(unknown))


def reconcile_with_exchange(broker: KrakenBroker, client: KrakenClient, engine: Engine, pairs: Sequence[str],
                            halt_above_usd: float, base_asset: Mapping[str, str],
                            our_prefix: str = "kf") -> Reconciliation:
    """Sync fills, compare, then either correct the ledger (audited) or halt the engine (audited)."""
    broker.sync()
    balances = client.balances()
    ledger = broker.ledger
    positions = {p: ledger.position(p) for p in pairs}
    prices = {p: engine.last_close(p) or client.ticker_last(p) for p in pairs}
    opened: list[ExchangeOrder] = client.open_orders()
    result = reconcile_positions(positions, balances, prices, halt_above_usd, base_asset)
    result = with_unknown_orders(result, unknown_open_orders(
        ((o.txid, o.client_id) for o in opened), ledger.client_ids(), our_prefix))
    extra = {"event": "reconcile", "drifts": [vars(d) for d in result.drifts], "open_orders": len(opened)}
    if result.halt:
        engine.halted = result.reason
        ledger.audit("reconcile_halt", {"reason": result.reason, "drifts": [vars(d) for d in result.drifts]})
        log.error("reconciliation: %s", result.reason, extra={**extra, "result": "halt"})
        return result
    for drift in result.drifts:
        ledger.record_adjustment(drift.pair, drift.difference, f"exchange holds {drift.exchange}, "
                                                              f"ledger had {drift.ledger}")
    ledger.set_balances(balances)
    ledger.audit("reconcile_ok", {"reason": result.reason, "open_orders": len(opened),
                                  "drifts": [vars(d) for d in result.drifts]})
    broker.use_balances(balances)
    log.log(logging.WARNING if result.drifts else logging.INFO, "reconciliation: %s; %s open order(s)",
            result.reason, len(opened), extra={**extra, "result": "adjusted" if result.drifts else "ok"})
    return result
