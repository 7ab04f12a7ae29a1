"""What the console shows, computed from plain ledger rows: round trips, the per-pair table, drawdown, the
decision filter. Pure functions, no I/O (console.sources reads, console.app renders)."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class RoundTrip:
    """One position from its first buy to the sell that closed it (open: exit_ts None)."""

    pair: str
    entry_ts: int
    entry_price: float
    quantity: float
    exit_ts: int | None
    exit_price: float | None
    fees: float
    pnl: float | None
    """Quote P&L after every fee of the trip (None while open)."""

    @property
    def pnl_pct(self) -> float | None:
        cost = self.entry_price * self.quantity
        return None if self.pnl is None or cost <= 0 else self.pnl / cost * 100

    @property
    def duration_h(self) -> float | None:
        return None if self.exit_ts is None else (self.exit_ts - self.entry_ts) / 3_600_000

    def row(self) -> dict[str, Any]:
        return {**asdict(self), "pnl_pct": self.pnl_pct, "duration_h": self.duration_h}


def round_trips(fills: Iterable[dict[str, Any]], dust: float = 1e-9) -> list[RoundTrip]:
    """Fills (oldest first: ts, pair, side, quantity, price, fee) grouped into trips per pair: buys open or add
    (average entry price), sells reduce; the trip closes when the position is back to (near) zero."""
    trips: list[RoundTrip] = []
    open_: dict[str, dict[str, float]] = {}
    for fill in fills:
        pair, qty, price, fee = fill["pair"], float(fill["quantity"]), float(fill["price"]), float(fill["fee"])
        trip = open_.get(pair)
        if fill["side"] == "buy":
            if trip is None:
                trip = open_[pair] = {"ts": fill["ts"], "qty": 0.0, "cost": 0.0, "fees": 0.0, "proceeds": 0.0,
                                      "sold": 0.0, "exit_ts": 0}
            trip["qty"] += qty
            trip["cost"] += qty * price
            trip["fees"] += fee
            continue
        if trip is None:
            continue  # a sell of a position opened before this ledger (adopted): no entry to pair it with
        trip["sold"] += qty
        trip["proceeds"] += qty * price
        trip["fees"] += fee
        trip["exit_ts"] = fill["ts"]
        if trip["sold"] >= trip["qty"] - dust:
            entry = trip["cost"] / trip["qty"]
            trips.append(RoundTrip(pair, int(trip["ts"]), entry, trip["qty"], int(trip["exit_ts"]),
                                   trip["proceeds"] / trip["sold"], trip["fees"],
                                   trip["proceeds"] - trip["cost"] - trip["fees"]))
            del open_[pair]
    for pair, trip in open_.items():
        trips.append(RoundTrip(pair, int(trip["ts"]), trip["cost"] / trip["qty"], trip["qty"] - trip["sold"], None,
                               None, trip["fees"], None))
    return sorted(trips, key=lambda t: t.entry_ts)


def pair_summary(trips: Sequence[RoundTrip]) -> list[dict[str, Any]]:
    """Freqtrade's backtest table per pair, closed trips only: trades, avg profit %, total profit (quote and
    %% of the money put in), win/draw/loss, average duration; a TOTAL row last."""
    groups: dict[str, list[RoundTrip]] = defaultdict(list)
    for trip in trips:
        if trip.pnl is not None:
            groups[trip.pair].append(trip)
    rows = [_summary_row(pair, group) for pair, group in sorted(groups.items())]
    closed = [t for group in groups.values() for t in group]
    if closed:
        rows.append(_summary_row("TOTAL", closed))
    return rows


def _summary_row(pair: str, trips: Sequence[RoundTrip]) -> dict[str, Any]:
    pnls = [t.pnl or 0.0 for t in trips]
    invested = sum(t.entry_price * t.quantity for t in trips)
    durations = [t.duration_h or 0.0 for t in trips]
    return {"pair": pair, "trades": len(trips),
            "avg_profit_pct": sum(t.pnl_pct or 0.0 for t in trips) / len(trips),
            "total_profit": sum(pnls), "total_profit_pct": sum(pnls) / invested * 100 if invested else 0.0,
            "wins": sum(p > 0 for p in pnls), "draws": sum(p == 0 for p in pnls), "losses": sum(p < 0 for p in pnls),
            "avg_duration_h": sum(durations) / len(durations), "fees": sum(t.fees for t in trips)}


def drawdown(equity: Sequence[float]) -> list[float]:
    """Per mark: how far below the running peak, in % (0 at a new peak)."""
    out, peak = [], -math.inf
    for value in equity:
        peak = max(peak, value)
        out.append((value - peak) / peak * 100 if peak > 0 else 0.0)
    return out


HOLDS = ("hold", "stand_aside")


def decision_filter(pair: str | None, action: str | None, show_holds: bool) -> dict[str, Any]:
    """The ledger query a decisions page asks: holds and stand-asides hidden unless asked for (they are
    almost every row: one per pair and candle)."""
    return {"pair": pair or None, "action": action or None,
            "exclude_actions": () if show_holds or action else HOLDS}
