"""Domain types shared by every package. Plain frozen data, no behaviour worth testing on its own."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"


@dataclass(frozen=True, slots=True)
class Candle:
    """One OHLCV candle. `ts` is the candle's open time in epoch milliseconds (UTC); volume in base coin."""

    ts: int
    open: float
    high: float
    low: float
    close: float
    volume: float


@dataclass(frozen=True, slots=True)
class OrderIntent:
    """What the trader wants done, before any broker sees it. `quantity` is in base coin."""

    client_id: str
    pair: str
    side: Side
    quantity: float
    reason: str = ""
    limit_price: float | None = None
    """None: a market order; otherwise a limit order at this price (quote currency)."""


@dataclass(frozen=True, slots=True)
class Fill:
    """An executed (part of an) order. `price` in quote currency, `fee` in quote currency."""

    client_id: str
    pair: str
    side: Side
    quantity: float
    price: float
    fee: float
    ts: int


@dataclass(frozen=True, slots=True)
class Position:
    pair: str
    quantity: float
    avg_price: float
