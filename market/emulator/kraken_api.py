"""Kraken's REST API over the Venue: routes, HMAC auth, nonces, per-key rate counters, faults.

Answers always use Kraken's envelope {"error": [...], "result": {...}} and Kraken's own error strings;
a bad request never produces a stack trace.
"""

from __future__ import annotations

import asyncio
import base64
import bisect
import hashlib
import hmac
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from market.emulator.faults import Fault, FaultBook
from market.emulator.venue import PAIRS, Order, PairSpec, Venue, VenueError
from market.instruments import asset_json, asset_pair_json, bundled

HISTORY_CALLS = {"ClosedOrders", "TradesHistory", "QueryTrades", "Ledgers", "QueryLedgers"}
TRADE_CALLS = {"AddOrder", "CancelOrder", "CancelAll", "CancelAllOrdersAfter"}


@dataclass
class ApiKey:
    secret: bytes
    permissions: frozenset[str]
    last_nonce: int = 0
    counter: float = 0.0
    counter_at: float = field(default_factory=time.monotonic)


@dataclass(frozen=True)
class RateTier:
    """Kraken's private-call counter: +1 per call (+2 for history), decaying per second."""

    max_counter: float = 20.0
    decay_per_s: float = 0.5


RATE_TIERS = {
    "starter": RateTier(15.0, 0.33),
    "intermediate": RateTier(20.0, 0.5),
    "pro": RateTier(20.0, 1.0),
    "unlimited": RateTier(float("inf"), 0.0),
}


class KeyRing:
    def __init__(self, tier: RateTier | None = None) -> None:
        self.keys: dict[str, ApiKey] = {}
        self.tier = tier or RateTier()
        self.lock = threading.Lock()

    def add(self, key: str, secret_b64: str, permissions: frozenset[str] = frozenset({"query", "trade"})) -> None:
        try:
            secret = base64.b64decode(secret_b64, validate=True)
        except ValueError:
            raise ValueError("the API secret must be base64, as Kraken issues it") from None
        self.keys[key] = ApiKey(secret, frozenset(permissions))

    def charge(self, key: ApiKey, endpoint: str) -> bool:
        """False when the call would exceed the tier's counter."""
        with self.lock:
            now = time.monotonic()
            key.counter = max(0.0, key.counter - (now - key.counter_at) * self.tier.decay_per_s)
            key.counter_at = now
            cost = 2.0 if endpoint in HISTORY_CALLS else 1.0
            if key.counter + cost > self.tier.max_counter:
                return False
            key.counter += cost
            return True


def sign(urlpath: str, body: str, nonce: str, secret: bytes) -> str:
    """Kraken's API-Sign: base64(HMAC-SHA512(secret, urlpath + SHA256(nonce + body)))."""
    digest = hashlib.sha256((nonce + body).encode()).digest()
    return base64.b64encode(hmac.new(secret, urlpath.encode() + digest, hashlib.sha512).digest()).decode()


class _ResetMidBody(Response):
    """Starts a 200 answer, sends part of the body, then aborts: the client sees the connection drop."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", b"4096"), (b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": b'{"error":[],', "more_body": True})
        raise ConnectionResetError("emulated connection reset")


def _since_ns(raw: str) -> int:
    """Kraken's Trades `since`: unix seconds (possibly fractional) or a nanosecond cursor; 0 if absent."""
    if not raw:
        return 0
    if raw.isdigit() and len(raw) > 12:
        return int(raw)
    try:
        return int(float(raw) * 1_000_000_000)
    except ValueError:
        raise VenueError("EGeneral:Invalid arguments:since") from None


def envelope(result: Any = None, error: str | None = None, status: int = 200) -> JSONResponse:
    return JSONResponse({"error": [error] if error else [], "result": result if result is not None else {}},
                        status_code=status)


def _f(x: float, decimals: int = 8) -> str:
    return f"{x:.{decimals}f}"


def _pair_json(p: PairSpec, venue: Venue) -> dict[str, Any]:
    """The instrument table's AssetPairs entry, its lowest fee tier set to what this venue charges."""
    entry = asset_pair_json(p)
    for key, rate in (("fees", venue.config.taker_fee), ("fees_maker", venue.config.maker_fee)):
        entry[key] = [[0, round(rate * 100, 6)], *entry[key][1:]]
    return entry


def _order_json(o: Order) -> dict[str, Any]:
    avg = o.cost / o.vol_exec if o.vol_exec else 0.0
    price = "market" if o.ordertype == "market" else f"limit {_f(o.price or 0.0, 8)}"
    info = {
        "refid": None, "userref": o.userref or 0, "status": o.status, "opentm": o.opentm, "starttm": 0,
        "expiretm": 0, "descr": {
            "pair": o.pair.altname, "type": o.side, "ordertype": o.ordertype,
            "price": _f(o.price or 0.0, 8), "price2": "0", "leverage": "none",
            "order": f"{o.side} {_f(o.volume)} {o.pair.altname} @ {price}", "close": ""},
        "vol": _f(o.volume), "vol_exec": _f(o.vol_exec), "cost": _f(o.cost, 8), "fee": _f(o.fee, 8),
        "price": _f(avg, 8), "stopprice": "0.00000", "limitprice": "0.00000", "misc": "", "oflags": "fciq",
        "trades": list(o.trades),
    }
    if o.cl_ord_id:
        info["cl_ord_id"] = o.cl_ord_id
    if o.closetm is not None:
        info["closetm"] = o.closetm
        info["reason"] = None
    return info


class KrakenApi:
    """Builds the FastAPI app; state lives in the Venue, the KeyRing and the FaultBook."""

    def __init__(self, venue: Venue, keys: KeyRing, faults: FaultBook) -> None:
        self.venue, self.keys, self.faults = venue, keys, faults
        self.interval_min = self._interval_minutes()
        self.app = FastAPI(title="krakenflow Kraken emulator", docs_url=None, redoc_url=None)
        self.app.add_api_route("/0/public/{endpoint}", self.public, methods=["GET", "POST"])
        self.app.add_api_route("/0/private/{endpoint}", self.private, methods=["POST"])
        self.app.add_api_route("/_emulator/faults", self.add_fault, methods=["POST"])
        self.app.add_api_route("/_emulator/faults", self.clear_faults, methods=["DELETE"])
        self.app.add_api_route("/_emulator/advance", self.advance, methods=["POST"])
        self.app.add_api_route("/_emulator/shock", self.shock, methods=["POST"])
        self.app.add_api_route("/_emulator/state", self.state, methods=["GET"])
        self.app.add_exception_handler(Exception, self._crash)

    def _interval_minutes(self) -> int:
        seq = next(iter(self.venue.candles.values()))
        return int((seq[1].ts - seq[0].ts) // 60_000) if len(seq) > 1 else 60

    async def _crash(self, _request: Request, _exc: Exception) -> JSONResponse:
        return envelope(error="EGeneral:Internal error", status=500)

    # --- fault plumbing ------------------------------------------------------------------------
    async def _run(self, endpoint: str, handler: Callable[[], Any]) -> Response:
        fault = self.faults.take(endpoint, ("delay", "drop_response", "http_status", "kraken_error",
                                            "malformed_json", "connection_reset"))
        self.faults.called(endpoint)
        if fault and fault.kind == "connection_reset":
            return _ResetMidBody()
        if fault and fault.kind == "http_status":
            return Response(f"<html><body>{fault.status}</body></html>", status_code=fault.status,
                            media_type="text/html")
        if fault and fault.kind == "kraken_error":
            return envelope(error=fault.error)
        if fault and fault.kind == "malformed_json":
            return Response('{"error":[],"result":{"trunc', media_type="application/json")
        if fault and fault.kind == "delay":
            await asyncio.sleep(fault.delay_ms / 1000)
        try:
            result = handler()
        except VenueError as err:
            return envelope(error=str(err))
        if fault and fault.kind == "drop_response":
            await asyncio.sleep((fault.delay_ms or 30_000) / 1000)  # the work is done; the answer is late
        return envelope(result)

    # --- public --------------------------------------------------------------------------------
    async def public(self, endpoint: str, request: Request) -> Response:
        params = dict(request.query_params)
        handlers: dict[str, Callable[[], Any]] = {
            "Time": self._time, "SystemStatus": self._status, "Assets": self._assets,
            "AssetPairs": self._asset_pairs, "Ticker": lambda: self._ticker(params),
            "OHLC": lambda: self._ohlc(params), "Trades": lambda: self._trades(params),
            "Depth": lambda: self._depth(params),
        }
        if endpoint not in handlers:
            return envelope(error="EGeneral:Unknown method", status=404)
        return await self._run(endpoint, handlers[endpoint])

    def _time(self) -> dict[str, Any]:
        now = self.venue.now()
        return {"unixtime": int(now), "rfc1123": time.strftime("%a, %d %b %y %H:%M:%S +0000", time.gmtime(now))}

    def _status(self) -> dict[str, Any]:
        return {"status": "online", "timestamp": self.venue._iso(self.venue.now())}

    def _assets(self) -> dict[str, Any]:
        """The instrument table's Assets entries of the replayed pairs, plus ZUSD (the accounts' cash)."""
        replayed = [p for p in PAIRS.values() if p.symbol in self.venue.candles]
        codes = {"ZUSD"} | {code for p in replayed for code in (p.base, p.quote)}
        return {code: asset_json(bundled().assets[code]) for code in sorted(codes)}

    def _asset_pairs(self) -> dict[str, Any]:
        return {p.kraken_id: _pair_json(p, self.venue) for p in PAIRS.values() if p.symbol in self.venue.candles}

    def _pair(self, params: dict[str, str]) -> PairSpec:
        name = params.get("pair", "")
        for p in PAIRS.values():
            if name in (p.kraken_id, p.altname, p.symbol, f"{p.base_alt}/USD") and p.symbol in self.venue.candles:
                return p
        raise VenueError("EQuery:Unknown asset pair")

    def _ticker(self, params: dict[str, str]) -> dict[str, Any]:
        out = {}
        replayed = (p.altname for p in PAIRS.values() if p.symbol in self.venue.candles)
        for name in (params.get("pair") or ",".join(replayed)).split(","):
            p = self._pair({"pair": name})
            c = self.venue.current(p.symbol)
            prev = self.venue.candles[p.symbol][max(self.venue.cursor - 1, 0)]
            spread = c.open * 0.0005
            out[p.kraken_id] = {
                "a": [_f(c.open + spread, 8), "1", "1.000"], "b": [_f(c.open - spread, 8), "1", "1.000"],
                "c": [_f(c.open, 8), "1.0"], "v": [_f(prev.volume), _f(prev.volume)],
                "p": [_f(c.open, 8), _f(c.open, 8)], "t": [1, 1], "l": [_f(prev.low, 8), _f(prev.low, 8)],
                "h": [_f(prev.high, 8), _f(prev.high, 8)], "o": _f(prev.open, 8),
            }
        return out

    def _ohlc(self, params: dict[str, str]) -> dict[str, Any]:
        p = self._pair(params)
        interval = int(params.get("interval", "1") or 1)
        if interval != self.interval_min:
            raise VenueError("EGeneral:Invalid arguments")
        since = int(float(params.get("since", "0") or 0))
        seq = self.venue.candles[p.symbol][max(0, self.venue.cursor - 719) : self.venue.cursor + 1]
        rows = [[c.ts // 1000, _f(c.open, 8), _f(c.high, 8), _f(c.low, 8), _f(c.close, 8),
                 _f((c.high + c.low + c.close) / 3, 8), _f(c.volume), 1] for c in seq if c.ts // 1000 > since]
        if len(rows) > 2 and self.faults.take("OHLC", ("duplicate_candles",)):
            rows.insert(-1, list(rows[-2]))
        if len(rows) > 3 and self.faults.take("OHLC", ("out_of_order_candles",)):
            rows[-2], rows[-3] = rows[-3], rows[-2]
        last = seq[-2].ts // 1000 if len(seq) > 1 else 0
        return {p.kraken_id: rows, "last": last}

    def _trades(self, params: dict[str, str]) -> dict[str, Any]:
        """Public trades derived from the replayed candles: the emulator has no tick data, so every finished
        candle yields four deterministic prints — its open, high, low and close at 0, 1/4, 1/2 and 3/4 of
        the candle, each a quarter of its volume, sides alternating — shaped by real candles, not recorded
        trades; aggregating them per candle gives the candle back (volume to 8 decimals). Like Kraken:
        oldest first, strictly after `since` (unix seconds, or the nanosecond cursor `last` of the previous
        page), at most `count` (≤ 1000), so a client can page through any period of the replay. Without
        `since`: the most recent 250 finished candles."""
        p = self._pair(params)
        since_ns = _since_ns(params.get("since", ""))
        count = min(int(params.get("count", "1000") or 1000), 1000)
        seq = self.venue.candles[p.symbol]
        step_ns = self.interval_min * 60 * 1_000_000_000
        first = (bisect.bisect_left(seq, since_ns - step_ns, key=lambda c: c.ts * 1_000_000) if since_ns
                 else max(0, self.venue.cursor - 250))
        out: list[list[Any]] = []
        last = since_ns
        for c in seq[first : self.venue.cursor]:
            for i, price in enumerate((c.open, c.high, c.low, c.close)):
                t_ns = c.ts * 1_000_000 + i * step_ns // 4
                if t_ns > since_ns and len(out) < count:
                    out.append([_f(price, 8), _f(c.volume / 4), t_ns / 1e9, "b" if i % 2 == 0 else "s", "m", "",
                                t_ns // 1000])
                    last = t_ns
            if len(out) >= count:
                break
        return {p.kraken_id: out, "last": str(last)}

    def _depth(self, params: dict[str, str]) -> dict[str, Any]:
        p = self._pair(params)
        mid = self.venue.current(p.symbol).open
        ts = int(self.venue.now())
        levels = range(1, int(params.get("count", "10") or 10) + 1)
        return {p.kraken_id: {"asks": [[_f(mid * (1 + 0.0005 * i), 8), "1000.000", ts] for i in levels],
                              "bids": [[_f(mid * (1 - 0.0005 * i), 8), "1000.000", ts] for i in levels]}}

    # --- private -------------------------------------------------------------------------------
    async def private(self, endpoint: str, request: Request) -> Response:
        body = (await request.body()).decode()
        form = dict(parse_qsl(body, keep_blank_values=True))
        key_name = request.headers.get("API-Key", "")
        key = self.keys.keys.get(key_name)
        if key is None:
            return envelope(error="EAPI:Invalid key")
        nonce = form.get("nonce", "")
        expected = sign(f"/0/private/{endpoint}", body, nonce, key.secret)
        if not hmac.compare_digest(expected, request.headers.get("API-Sign", "")):
            return envelope(error="EAPI:Invalid signature")
        if not nonce.isdigit() or int(nonce) <= key.last_nonce:
            return envelope(error="EAPI:Invalid nonce")
        key.last_nonce = int(nonce)
        if endpoint not in TRADE_CALLS and not self.keys.charge(key, endpoint):
            return envelope(error="EAPI:Rate limit exceeded")
        if endpoint in TRADE_CALLS and "trade" not in key.permissions:
            return envelope(error="EGeneral:Permission denied")
        handler = self._private_handlers(key_name, key, form).get(endpoint)
        if handler is None:
            return envelope(error="EGeneral:Unknown method", status=404)
        return await self._run(endpoint, handler)

    def _private_handlers(self, name: str, key: ApiKey, form: dict[str, str]) -> dict[str, Callable[[], Any]]:
        v = self.venue
        return {
            "Balance": lambda: {a: _f(x, 8) for a, x in v.account(name).items()},
            "BalanceEx": lambda: {a: {"balance": _f(x, 8), "hold_trade": "0.00000000"}
                                  for a, x in v.account(name).items()},
            "TradeBalance": lambda: {"eb": _f(v.account(name).get("ZUSD", 0.0), 4)},
            "AddOrder": lambda: self._add_order(name, form),
            "CancelOrder": lambda: {"count": v.cancel(name, form.get("txid") or form.get("cl_ord_id") or "")},
            "CancelAll": lambda: {"count": v.cancel_all(name)},
            "CancelAllOrdersAfter": lambda: v.arm_dead_man(int(form.get("timeout", "0") or 0)),
            "OpenOrders": lambda: {"open": self._orders(name, {"open"}, form)},
            "ClosedOrders": lambda: self._closed(name, form),
            "QueryOrders": lambda: {t: _order_json(v.orders[t]) for t in form.get("txid", "").split(",")
                                    if t in v.orders and v.orders[t].key == name},
            "TradesHistory": lambda: self._trade_history(name),
            "TradeVolume": lambda: self._trade_volume(),
            "WithdrawInfo": lambda: self._withdraw_info(key),
        }

    def _orders(self, name: str, statuses: set[str], form: dict[str, str]) -> dict[str, Any]:
        cl = form.get("cl_ord_id")
        return {o.txid: _order_json(o) for o in self.venue.orders.values()
                if o.key == name and o.status in statuses and (cl is None or o.cl_ord_id == cl)}

    def _closed(self, name: str, form: dict[str, str]) -> dict[str, Any]:
        closed = self._orders(name, {"closed", "canceled", "expired"}, form)
        return {"closed": closed, "count": len(closed)}

    def _add_order(self, name: str, form: dict[str, str]) -> dict[str, Any]:
        try:
            volume = float(form["volume"])
            price = float(form["price"]) if form.get("price") else None
            userref = int(form["userref"]) if form.get("userref") else None
        except (KeyError, ValueError):
            raise VenueError("EGeneral:Invalid arguments") from None
        validate = form.get("validate", "").lower() in ("true", "1")
        order = self.venue.add_order(name, form.get("pair", ""), form.get("type", ""), form.get("ordertype", ""),
                                     volume, price, form.get("cl_ord_id") or None, userref, validate)
        descr = {"order": _order_json(order)["descr"]["order"]}
        return {"descr": descr} if validate else {"descr": descr, "txid": [order.txid]}

    def _trade_history(self, name: str) -> dict[str, Any]:
        trades = {t.trade_id: {"ordertxid": t.order.txid, "postxid": "", "pair": t.order.pair.kraken_id,
                               "time": t.time, "type": t.order.side, "ordertype": t.order.ordertype,
                               "price": _f(t.price, 8), "cost": _f(t.cost, 8), "fee": _f(t.fee, 8),
                               "vol": _f(t.volume), "margin": "0.00000", "misc": ""}
                  for t in self.venue.trades.values() if t.order.key == name}
        return {"trades": trades, "count": len(trades)}

    def _trade_volume(self) -> dict[str, Any]:
        taker, maker = self.venue.config.taker_fee * 100, self.venue.config.maker_fee * 100
        fees = {p.kraken_id: {"fee": f"{taker:.4f}", "minfee": "0.1000", "maxfee": f"{taker:.4f}",
                              "nextfee": "0.3500", "nextvolume": "50000.0000", "tiervolume": "0.0000"}
                for p in PAIRS.values()}
        makers = {k: {**v, "fee": f"{maker:.4f}"} for k, v in fees.items()}
        return {"currency": "ZUSD", "volume": "0.0000", "fees": fees, "fees_maker": makers}

    def _withdraw_info(self, key: ApiKey) -> dict[str, Any]:
        if "withdraw" not in key.permissions:
            raise VenueError("EGeneral:Permission denied")
        raise VenueError("EFunding:Unknown withdraw key")

    # --- control -------------------------------------------------------------------------------
    async def add_fault(self, request: Request) -> Response:
        try:
            self.faults.add(Fault(**(await request.json())))
        except (TypeError, ValueError) as err:
            return envelope(error=f"EGeneral:Invalid arguments:{err}", status=400)
        return envelope({"pending": self.faults.pending()})

    async def clear_faults(self) -> Response:
        self.faults.clear()
        return envelope({"pending": []})

    async def advance(self, request: Request) -> Response:
        n = int(request.query_params.get("candles", "1"))
        return envelope({"cursor": self.venue.advance(n)})

    async def shock(self, request: Request) -> Response:
        """POST /_emulator/shock?pair=XRP/USD&fraction=-0.3: the pair's price gaps from the next candle on."""
        try:
            moved = self.venue.price_shock(request.query_params.get("pair", ""),
                                           float(request.query_params.get("fraction", "nan")))
        except ValueError as err:
            return envelope(None, f"EGeneral:Invalid arguments:{err}")
        return envelope({"candles": moved})

    async def state(self) -> Response:
        v = self.venue
        return envelope({"cursor": v.cursor, "now": v.now(), "frozen": v.frozen, "faults": self.faults.pending(),
                         "orders": len(v.orders), "trades": len(v.trades)})
