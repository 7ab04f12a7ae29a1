"""The emulated exchange's state: replayed real candles on a simulated clock, accounts, orders, fills.

Time model: the market "now" lies inside candle[cursor]. Candles before the cursor are finished; the
cursor candle is the unfinished last one Kraken returns. Every price, quantity, fee and refusal comes
from `market.fills`, the fill model the backtester's SimulatedBroker uses, worked on the same candle:
an order placed while candle c is the cursor arrives on c (refusals checked at c's prices). A market
order is worked against c at once — it fills at c's open plus slippage, the price the backtester pays
for a decision taken on the previous candle's close — and what is left of it against each later cursor
candle as it opens. A limit order is worked against c once c has finished (the emulator never peeks
into an unfinished candle), then against each later candle as it finishes.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from core.types import Candle, Side
from market.fills import (
    KRAKEN_LIMITS,
    KRAKEN_SPOT_TIERS,
    Account,
    Execution,
    FillModel,
    WorkingOrder,
    accept,
    settle,
    thirty_day_volume,
    work,
)
from market.instruments import Instrument, UnknownPairError, bundled

if TYPE_CHECKING:
    from core.params import FeeParams


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
    working: WorkingOrder | None = None
    """The fill model's state of an open order (what is left, candles still to wait)."""


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
    """The venue's fill model (the same fields as params.yaml `fees:`), its replay start and one fault knob."""

    taker_fee: float = 0.004
    maker_fee: float = 0.0025
    slippage_bps: float = 5.0
    partial_fill_ratio: float = 1.0      # fault injection: share of a limit order's rest one candle may fill
    warmup_candles: int = 720            # the replay starts here, so the first OHLC call has 720 candles
    latency_candles: int = 0
    max_volume_share: float = 1.0
    volume_tiers: bool = False

    @classmethod
    def from_fees(cls, fees: FeeParams, warmup_candles: int = 720) -> VenueConfig:
        """The venue that fills like the backtest of the same params.yaml (`model` == `fill_model(fees)`)."""
        return cls(fees.taker, fees.maker, fees.slippage_bps, warmup_candles=warmup_candles,
                   latency_candles=fees.latency_candles, max_volume_share=fees.max_volume_share,
                   volume_tiers=fees.volume_tiers)

    @property
    def model(self) -> FillModel:
        """The fill model these fields describe, with Kraken's pair minimums and decimals."""
        return FillModel(self.taker_fee, self.slippage_bps, self.maker_fee, self.latency_candles,
                         self.max_volume_share, KRAKEN_SPOT_TIERS if self.volume_tiers else (), KRAKEN_LIMITS)


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
        self.volumes: dict[str, list[tuple[int, float]]] = {}
        """Per key: (candle ts ms, quote notional) of its fills, for the 30-day fee tier."""
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
        """Move the replay n candles forward: resting limit orders are worked against the candle that has
        just finished, what is left of market orders against the one that has just opened."""
        with self.lock:
            for _ in range(n):
                if self.frozen or self.cursor + 1 >= self.length:
                    break
                self.cursor += 1
                self._fire_dead_man_switch()
                self._work_open_orders(finished=self.cursor - 1)
            return self.cursor

    def price_shock(self, symbol: str, fraction: float) -> int:
        """A price shock: every candle of `symbol` after the cursor is scaled by (1 + fraction) — e.g. -0.3
        is a 30 % gap down at the next open that stays. What has been served is left as it was. Returns the
        number of candles moved."""
        if symbol not in self.candles:
            raise ValueError(f"emulator: no pair {symbol!r} to shock (pairs: {', '.join(self.candles)})")
        if not -1 < fraction < 10:
            raise ValueError(f"emulator: a price shock of {fraction:+.0%} is not a price (use -0.99..+9)")
        k = 1 + fraction
        with self.lock:
            series = self.candles[symbol]
            for i in range(self.cursor + 1, len(series)):
                c = series[i]
                series[i] = Candle(c.ts, c.open * k, c.high * k, c.low * k, c.close * k, c.volume)
            return max(0, len(series) - self.cursor - 1)

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
        """Check and place an order; a market order is worked against the cursor candle at once."""
        with self.lock:
            pair = self._pair_by_symbol(symbol)
            self._check_arguments(key, side, ordertype, volume, price, cl_ord_id)
            working = self._accept(key, pair, Side(side), volume, price if ordertype == "limit" else None)
            order = Order(self._next_id("O"), key, pair, side, ordertype, working.remaining, working.limit,
                          cl_ord_id, userref, self.now(), working=working)
            if validate:
                return order
            self.orders[order.txid] = order
            if ordertype == "market":
                self._work(order, self.current(pair.symbol))
            return order

    def _pair_by_symbol(self, symbol: str) -> PairSpec:
        for spec in PAIRS.values():
            if symbol in (spec.symbol, spec.kraken_id, spec.altname) and spec.symbol in self.candles:
                return spec
        raise VenueError("EQuery:Unknown asset pair")

    def _check_arguments(self, key: str, side: str, ordertype: str, volume: float, price: float | None,
                         cl_ord_id: str | None) -> None:
        if side not in ("buy", "sell") or ordertype not in ("market", "limit") or volume <= 0:
            raise VenueError("EGeneral:Invalid arguments")
        if ordertype == "limit" and (price is None or price <= 0):
            raise VenueError("EGeneral:Invalid arguments:price")
        if cl_ord_id and any(o.cl_ord_id == cl_ord_id and o.status == "open" and o.key == key
                             for o in self.orders.values()):
            raise VenueError("EOrder:Duplicate order")

    def _accept(self, key: str, pair: PairSpec, side: Side, volume: float, limit: float | None) -> WorkingOrder:
        """Kraken's minimums and funds at the cursor candle's prices (market.fills.accept), or VenueError."""
        model = self.config.model
        candle = self.current(pair.symbol)
        working, why = accept(side, volume, limit, candle.open, self._account(key, pair), model,
                              model.limits_for(pair.symbol), self._volume_30d(key, candle.ts))
        if working is None:
            raise VenueError(why)
        return working

    def _account(self, key: str, pair: PairSpec) -> Account:
        acct = self.account(key)
        return Account(acct.get(pair.quote, 0.0), acct.get(pair.base, 0.0))

    def _volume_30d(self, key: str, now_ms: int) -> float:
        return thirty_day_volume(self.volumes.get(key, ()), now_ms) if self.config.volume_tiers else 0.0

    def _work_open_orders(self, finished: int) -> None:
        """Limit orders against the candle that finished, then market orders against the new cursor candle."""
        open_orders = [o for o in self.orders.values() if o.status == "open" and o.working is not None]
        for order in (o for o in open_orders if o.ordertype == "limit"):
            self._work(order, self.candles[order.pair.symbol][finished])
        for order in (o for o in open_orders if o.ordertype == "market"):
            self._work(order, self.current(order.pair.symbol))

    def _work(self, order: Order, candle: Candle) -> None:
        """One candle of the fill model for one order; the order closes once the model is done with it."""
        assert order.working is not None
        model = self.config.model
        ratio = self.config.partial_fill_ratio
        offered = order.working.remaining * ratio if order.ordertype == "limit" and ratio < 1 else None
        order.working, execution = work(order.working, candle, self._account(order.key, order.pair), model,
                                        model.limits_for(order.pair.symbol), self._volume_30d(order.key, candle.ts),
                                        offered)
        if execution is not None:
            self._book(order, execution, candle.ts)
        if order.working is None:
            order.status, order.closetm = ("closed" if order.vol_exec > 0 else "canceled"), self.now()

    def _book(self, order: Order, execution: Execution, candle_ts: int) -> None:
        acct = self.account(order.key)
        after = settle(self._account(order.key, order.pair), Side(order.side), execution)
        acct[order.pair.quote], acct[order.pair.base] = after.cash, after.position
        if self.config.volume_tiers:
            self.volumes.setdefault(order.key, []).append((candle_ts, execution.notional))
        trade = Trade(self._next_id("T"), order, execution.price, execution.quantity, execution.notional,
                      execution.fee, self.now())
        self.trades[trade.trade_id] = trade
        order.vol_exec += execution.quantity
        order.cost += execution.notional
        order.fee += execution.fee
        order.trades.append(trade.trade_id)

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
            self.volumes.clear()
