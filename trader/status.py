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
    last_ok_poll_unix: float = 0.0
    failures_in_a_row: int = 0
    last_error: str = ""
    busy_s: float = 0.0
    """How long the trading thread has been inside its current poll (0 between polls)."""
    problems: tuple[str, ...] = ()
    """Why the trader is unhealthy; empty = healthy (see `health_problems`)."""


MAX_FAILED_POLLS = 3
"""Failed polls in a row before health says so (one failure is ordinary exchange weather)."""


def health_problems(halted: str, failures_in_a_row: int, last_error: str, busy_s: float,
                    watchdog_s: float) -> list[str]:
    """Pure: what makes a running trader unhealthy — halted, polls failing in a row, or a poll that has
    run longer than the watchdog allows (the loop is hung)."""
    problems = []
    if halted:
        problems.append(f"halted: {halted}")
    if failures_in_a_row >= MAX_FAILED_POLLS:
        problems.append(f"{failures_in_a_row} polls failed in a row (last: {last_error})")
    if watchdog_s > 0 and busy_s > watchdog_s:
        problems.append(f"trading loop hung: one poll has run {busy_s:.0f} s (watchdog {watchdog_s:.0f} s)")
    return problems


def ledger_mode(ledger: Ledger) -> str | None:
    """"live" or "paper": whose orders the ledger holds (None: none yet, any session may use it). A ledger
    is one or the other: the mode of its last session (sessions written before modes existed were live)."""
    if not ledger.intent_count():
        return None
    starts = ledger.audit_trail("session_start")
    return str(starts[-1][1].get("mode", "live")) if starts else "live"


def snapshot(ledger: Ledger, pairs: Sequence[str], live: LiveView | None = None, rows: int = 50) -> dict[str, Any]:
    """Everything the status page shows, newest first; JSON-ready."""
    n_fills, fees_paid = ledger.fill_totals()
    return {
        "generated_unix": time.time(),
        "live": vars(live) if live else None,
        "mode": live.mode if live else ledger_mode(ledger),
        "positions": {pair: ledger.position(pair) for pair in pairs},
        "balances": ledger.balances(),
        "counts": ledger.counts(),
        "decisions": ledger.recent_decisions(rows),
        "fills": [{k: f[k] for k in ("ts", "pair", "side", "quantity", "price", "fee", "client_id")}
                  for f in reversed(ledger.fill_rows(newest=rows))],
        "n_fills": n_fills,
        "fees_paid": fees_paid,
        "audit": ledger.recent_audit(rows),
    }
