"""What the trader is doing, as plain data: one snapshot for the dashboard page, /status and /metrics.

The ledger is the durable truth (decisions with their model version, fills, positions, audit trail);
a running session adds what only it knows (equity marked at the last close, halt reason, model in use).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from trader.ledger import Ledger


@dataclass(frozen=True)
class LiveView:
    """The in-memory part of a running session (absent when the dashboard only reads a ledger)."""

    mode: str
    model_name: str
    model_version: int | None
    equity: float
    cash: float
    halted: str
    last_poll_unix: float


def snapshot(ledger: Ledger, pairs: Sequence[str], live: LiveView | None = None, rows: int = 50) -> dict[str, Any]:
    """Everything the dashboard shows, newest first; JSON-ready."""
    fills = ledger.fills()
    return {
        "generated_unix": time.time(),
        "live": vars(live) if live else None,
        "positions": {pair: ledger.position(pair) for pair in pairs},
        "balances": ledger.balances(),
        "counts": ledger.counts(),
        "decisions": ledger.recent_decisions(rows),
        "fills": [{"ts": f.ts, "pair": f.pair, "side": f.side.value, "quantity": f.quantity, "price": f.price,
                   "fee": f.fee, "client_id": f.client_id} for f in reversed(fills[-rows:])],
        "n_fills": len(fills),
        "fees_paid": sum(f.fee for f in fills),
        "audit": ledger.recent_audit(rows),
    }
