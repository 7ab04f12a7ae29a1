"""Reconciliation: the exchange is the truth. Compare the ledger's positions with exchange balances,
record the difference in the audit trail, correct small drifts, halt on large ones."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

BASE_ASSET = {"XRP/USD": "XRP", "DOGE/USD": "DOGE"}


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


def reconcile_positions(ledger_positions: Mapping[str, float], exchange_balances: Mapping[str, float],
                        prices: Mapping[str, float], halt_above_usd: float, tolerance: float = 1e-6) -> Reconciliation:
    """Pure: which pairs drift, and whether the total drift (valued in USD) is too big to trade on."""
    drifts = tuple(
        Drift(pair, ledger_positions.get(pair, 0.0), exchange_balances.get(BASE_ASSET[pair], 0.0))
        for pair in ledger_positions.keys() | {p for p in BASE_ASSET if BASE_ASSET[p] in exchange_balances}
        if abs(exchange_balances.get(BASE_ASSET[pair], 0.0) - ledger_positions.get(pair, 0.0)) > tolerance
    )
    value = sum(abs(d.difference) * prices.get(d.pair, 0.0) for d in drifts)
    if value > halt_above_usd:
        return Reconciliation(drifts, True, f"ledger differs from the exchange by {value:,.2f} USD "
                                            f"(> {halt_above_usd:,.2f}): trading halted until a human looks")
    return Reconciliation(drifts, False, f"{len(drifts)} drift(s) worth {value:,.2f} USD corrected from exchange")
