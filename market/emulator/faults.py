"""Scriptable faults: each targets one endpoint (or '*') and fires a number of times."""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass
from typing import Literal

FaultKind = Literal[
    "delay",                 # answer after delay_ms
    "drop_response",         # do the work (e.g. place the order), then never answer in time
    "http_status",           # answer `status` (500/502/503/504/429) with an HTML body, doing nothing
    "kraken_error",          # answer Kraken's envelope with `error`, doing nothing
    "malformed_json",        # answer a truncated JSON body, doing nothing
    "connection_reset",      # start an answer, then drop the connection mid-body, doing nothing
    "duplicate_candles",     # OHLC: repeat the last finished candle
    "out_of_order_candles",  # OHLC: swap two finished candles
]


@dataclass
class Fault:
    endpoint: str
    kind: FaultKind
    times: int = 1
    delay_ms: int = 0
    status: int = 500
    error: str = ""
    after: str = ""
    """Armed only once this endpoint has been called (after the fault was added), e.g. `AddOrder`: a fault
    on the first OpenOrders after an order was placed — a given step of one order's life."""


class FaultBook:
    """Thread-safe list of pending faults; `take` consumes one firing."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._armed: set[int] = set()
        self._lock = threading.Lock()
        self.fired: list[str] = []

    def add(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)
            if not fault.after:
                self._armed.add(id(fault))

    def called(self, endpoint: str) -> None:
        """An endpoint was served: arm the faults waiting for it."""
        with self._lock:
            self._armed.update(id(f) for f in self._faults if f.after == endpoint)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()
            self._armed.clear()

    def take(self, endpoint: str, kinds: tuple[str, ...] | None = None) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if id(fault) not in self._armed:
                    continue
                if fault.endpoint in (endpoint, "*") and (kinds is None or fault.kind in kinds):
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
                        self._armed.discard(id(fault))
                    self.fired.append(f"{endpoint}:{fault.kind}")
                    return fault
        return None

    def pending(self) -> list[dict[str, object]]:
        with self._lock:
            return [asdict(f) for f in self._faults]
