"""The emulated exchange's state: replayed real candles on a simulated clock, accounts, orders, fills.

Time model: the market "now" lies inside candle[cursor]. Candles before the cursor are finished; the
cursor candle is the unfinished last one Kraken returns. A market order fills at once at the cursor
candle's open plus slippage — the same price the backtester's SimulatedBroker uses for a decision
taken on the previous candle's close. Limit orders fill when a later candle trades through them.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from core.types import Candle
from market.instruments import Instrument, UnknownPairError, bundled


class VenueError(Exception):
    """Carries a Kraken error string, e.g. 'EOrder:Insufficient funds'."""


PairSpec = Instrument
"""A pair the emulator can replay: the instrument table's entry, so its ids, minimums and decimals are Kraken's."""

PAIRS: Mapping[str, Instrument] = bundled().instruments
"""Every pair of the instrument table by ccxt symbol; the emulator serves those it has candles for."""


@dataclass
class Order:
    txid: str
    key: str
    pair: PairSpec
    side: str
    ordertype: str
    volume: float
    price: float | None
    cl_ord_id: str | None
    userref: int | None
    opentm: float
    status: str = "open"
    vol_exec: float = 0.0
    cost: float = 0.0
    fee: float = 0.0
    closetm: float | None = None
    trades: list[str] = field(default_factory=list)


@dataclass
class Trade:
    trade_id: str
    order: Order
    price: float
    volume: float
    cost: float
    fee: float
    time: float


@dataclass
class VenueConfig:
    taker_fee: float = 0.004
    maker_fee: float = 0.0025
    slippage_bps: float = 5.0
    partial_fill_ratio: float = 1.0      # share of a limit order filled per candle that trades through it
    warmup_candles: int = 720            # the replay starts here, so the first OHLC call has 720 candles


class Venue:
    """Thread-safe: the HTTP server and the replay clock touch it from different threads."""

    def __init__(self, candles: dict[str, list[Candle]], balances: dict[str, float],
                 config: VenueConfig | None = None) -> None:
        for pair in candles:
            if pair not in PAIRS:
                raise ValueError(f"emulator: {UnknownPairError(pair, PAIRS)}")
        self.config = config or VenueConfig()
        self.candles = candles
        self.lock = threading.RLock()
        self.cursor = min(self.config.warmup_candles, min(len(c) for c in candles.values()) - 1)
        self.accounts: dict[str, dict[str, float]] = {}
        self.default_balances = dict(balances)
        self.orders: dict[str, Order] = {}
        self.trades: dict[str, Trade] = {}
        self._ids = itertools.count(1)
        self.dead_man_deadline: float | None = None
        self.clock_skew_s = 0.0
        self.frozen = False

    # --- clock ---------------------------------------------------------------------------------
    @property
    def length(self) -> int:
        return min(len(c) for c in self.candles.values())

    def now(self) -> float:
        """Exchange time in seconds: inside the cursor candle (its open time + 1 s), plus any skew."""
        any_pair = next(iter(self.candles.values()))
        return any_pair[self.cursor].ts / 1000 + 1 + self.clock_skew_s

    def advance(self, n: int = 1) -> int:
        """Move the replay n candles forward, filling resting limit orders against each new candle."""
        with self.lock:
            for _ in range(n):
                if self.frozen or self.cursor + 1 >= self.length:
                    break
                self.cursor += 1
                self._fire_dead_man_switch()
                self._match_limits()
            return self.cursor

    def current(self, symbol: str) -> Candle:
        return self.candles[symbol][self.cursor]

    # --- accounts ------------------------------------------------------------------------------
    def account(self, key: str) -> dict[str, float]:
        return self.accounts.setdefault(key, dict(self.default_balances))

    def _next_id(self, prefix: str) -> str:
        n = next(self._ids)
        return f"{prefix}{n:06d}-EMU{n % 97:02d}-{n * 7919 % 1000000:06d}"

    # --- orders --------------------------------------------------------------------------------
    def add_order(self, key: str, symbol: str, side: str, ordertype: str, volume: float, price: float | None,
                  cl_ord_id: str | None, userref: int | None, validate: bool) -> Order:
        with self.lock:
            pair = self._pair_by_symbol(symbol)
            self._check_new_order(key, pair, side, ordertype, volume, price, cl_ord_id)
            order = Order(self._next_id("O"), key, pair, side, ordertype, volume, price, cl_ord_id, userref,
                          self.now())
            if validate:
                return order
            self.orders[order.txid] = order
            if ordertype == "market":
                self._fill(order, self._market_price(order), order.volume, self.config.taker_fee)
            return order

    def _pair_by_symbol(self, symbol: str) -> PairSpec:
        for spec in PAIRS.values():
            if symbol in (spec.symbol, spec.kraken_id, spec.altname) and spec.symbol in self.candles:
                return spec
        raise VenueError("EQuery:Unknown asset pair")

    def _check_new_order(self, key: str, pair: PairSpec, side: str, ordertype: str, volume: float,
                         price: float | None, cl_ord_id: str | None) -> None:
        if side not in ("buy", "sell") or ordertype not in ("market", "limit") or volume <= 0:
            raise VenueError("EGeneral:Invalid arguments")
        if ordertype == "limit" and (price is None or price <= 0):
            raise VenueError("EGeneral:Invalid arguments:price")
        if volume < pair.ordermin:
            raise VenueError("EOrder:Order minimum not met")
        ref_price = price if price else self.current(pair.symbol).open
        if volume * ref_price < pair.costmin:
            raise VenueError("EOrder:Cost minimum not met")
        if cl_ord_id and any(o.cl_ord_id == cl_ord_id and o.status == "open" and o.key == key
                             for o in self.orders.values()):
            raise VenueError("EOrder:Duplicate order")
        acct = self.account(key)
        if side == "buy" and acct.get(pair.quote, 0.0) < volume * ref_price * (1 + self.config.taker_fee):
            raise VenueError("EOrder:Insufficient funds")
        if side == "sell" and acct.get(pair.base, 0.0) < volume - 1e-12:
            raise VenueError("EOrder:Insufficient funds")

    def _market_price(self, order: Order) -> float:
        slip = self.config.slippage_bps / 10_000
        open_ = self.current(order.pair.symbol).open
        return open_ * (1 + slip) if order.side == "buy" else open_ * (1 - slip)

    def _fill(self, order: Order, price: float, volume: float, fee_rate: float) -> None:
        acct = self.account(order.key)
        cost = price * volume
        fee = cost * fee_rate
        sign = 1.0 if order.side == "buy" else -1.0
        acct[order.pair.base] = acct.get(order.pair.base, 0.0) + sign * volume
        acct[order.pair.quote] = acct.get(order.pair.quote, 0.0) - sign * cost - fee
        trade = Trade(self._next_id("T"), order, price, volume, cost, fee, self.now())
        self.trades[trade.trade_id] = trade
        order.vol_exec += volume
        order.cost += cost
        order.fee += fee
        order.trades.append(trade.trade_id)
        if order.vol_exec >= order.volume - 1e-12:
            order.status, order.closetm = "closed", self.now()

    def _match_limits(self) -> None:
        for order in [o for o in self.orders.values() if o.status == "open" and o.ordertype == "limit"]:
            candle = self.current(order.pair.symbol)
            assert order.price is not None
            crossed = candle.low <= order.price if order.side == "buy" else candle.high >= order.price
            if crossed:
                remaining = order.volume - order.vol_exec
                self._fill(order, order.price, remaining * self.config.partial_fill_ratio
                           if self.config.partial_fill_ratio < 1 else remaining, self.config.maker_fee)

    def cancel(self, key: str, ref: str) -> int:
        with self.lock:
            hits = [o for o in self.orders.values()
                    if o.key == key and o.status == "open" and ref in (o.txid, o.cl_ord_id, str(o.userref))]
            if not hits:
                raise VenueError("EOrder:Unknown order")
            for o in hits:
                o.status, o.closetm = "canceled", self.now()
            return len(hits)

    def cancel_all(self, key: str) -> int:
        with self.lock:
            hits = [o for o in self.orders.values() if o.key == key and o.status == "open"]
            for o in hits:
                o.status, o.closetm = "canceled", self.now()
            return len(hits)

    def arm_dead_man(self, timeout_s: int) -> dict[str, Any]:
        with self.lock:
            self.dead_man_deadline = self.now() + timeout_s if timeout_s > 0 else None
            return {"currentTime": self._iso(self.now()),
                    "triggerTime": self._iso(self.dead_man_deadline) if self.dead_man_deadline else "0"}

    def _fire_dead_man_switch(self) -> None:
        if self.dead_man_deadline is not None and self.now() >= self.dead_man_deadline:
            for key in {o.key for o in self.orders.values()}:
                self.cancel_all(key)
            self.dead_man_deadline = None

    @staticmethod
    def _iso(ts: float) -> str:
        import datetime as dt

        return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    # --- state for restarts --------------------------------------------------------------------
    def reset(self) -> None:
        """Forget accounts, orders and trades (a venue restart that lost its state)."""
        with self.lock:
            self.accounts.clear()
            self.orders.clear()
            self.trades.clear()
