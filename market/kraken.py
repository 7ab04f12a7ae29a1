"""The ONLY module that imports ccxt. Kraken (or the local emulator) behind our own types and errors.

- Symbols: ccxt's unified 'XRP/USD', 'DOGE/USD' (Kraken XXRPZUSD, XDGUSD) — ccxt maps them.
- Retries: ccxt's own retries are off; idempotent reads are retried here with tenacity on
  network/5xx errors only. AddOrder is never retried: an ambiguous failure raises OrderOutcomeUnknown.
- OHLC: Kraken returns at most 720 candles and the last one is unfinished: it is dropped here.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar
from urllib.parse import urlparse

import ccxt
from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_exponential

from core.types import Candle, Side
from market import errors

log = logging.getLogger(__name__)
T = TypeVar("T")
TIMEFRAME_MS = {"1m": 60_000, "5m": 300_000, "15m": 900_000, "30m": 1_800_000, "1h": 3_600_000,
                "4h": 14_400_000, "1d": 86_400_000, "1w": 604_800_000}


@dataclass(frozen=True)
class ExchangeOrder:
    """An order as the exchange reports it. Quantities in base coin, prices and cost in quote."""

    txid: str
    client_id: str | None
    pair: str
    side: Side
    status: str            # open | closed | canceled | expired | rejected
    quantity: float
    filled: float
    average_price: float | None
    fee: float


@dataclass(frozen=True)
class ExchangeTrade:
    trade_id: str
    txid: str
    pair: str
    side: Side
    quantity: float
    price: float
    fee: float
    ts: int


@dataclass(frozen=True)
class TradesPage:
    """One page of Kraken's public Trades, oldest first. `ts_ms` epoch ms, `price` quote per base,
    `amount` base coin; `cursor` is Kraken's `last` (nanoseconds): pass it back to get the next page."""

    ts_ms: tuple[int, ...]
    price: tuple[float, ...]
    amount: tuple[float, ...]
    cursor: str


class ExchangeObserver(Protocol):
    """Hears what the exchange did to a client (the trader's metrics): each failed request by its error code
    (`error_code`) and each pause ccxt made to stay inside the rate limit (seconds)."""

    def exchange_error(self, code: str) -> None: ...

    def rate_limit_wait(self, seconds: float) -> None: ...


class _ObservedKraken(ccxt.kraken):  # type: ignore[misc]
    """ccxt's kraken telling `observer` (None: nobody) of every failed request and every rate-limit pause."""

    observer: ExchangeObserver | None = None

    def throttle(self, cost: Any = None) -> None:
        started = time.monotonic()
        super().throttle(cost)
        waited = time.monotonic() - started
        if self.observer is not None and waited >= 0.001:  # ccxt slept: the call would have come too soon
            self.observer.rate_limit_wait(waited)

    def fetch2(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().fetch2(*args, **kwargs)
        except Exception as err:
            if self.observer is not None:
                self.observer.exchange_error(error_code(err))
            raise


KRAKEN_ERROR_CODE = re.compile(r"\bE(?:General|Service|API|Query|Order|Trade|Funding|Auth|Session|Database|BM)"
                               r":[A-Za-z][A-Za-z_ ]*")
"""Kraken's error codes (`EAPI:Rate limit exceeded`, `EOrder:Insufficient funds`), a bounded set of labels."""


def error_code(err: Exception) -> str:
    """Kraken's error code in a failed request, else the error's class (`RequestTimeout`, `ExchangeNotAvailable`
    for a 5xx): a label with few values, never the message (it may carry amounts and order ids)."""
    found = KRAKEN_ERROR_CODE.search(str(err))
    return found.group(0).strip()[:48] if found else type(err).__name__


def make_exchange(base_url: str, api_key: str | None = None, secret: str | None = None,
                  timeout_ms: int = 10_000, throttle: bool = True) -> ccxt.kraken:
    """ccxt kraken pointed at `base_url` (Kraken's or the emulator's), ccxt retries off. `throttle`
    keeps ccxt's client-side pacing (about one call per second on Kraken); tests of the emulator turn
    it off to reach its rate counter."""
    check_base_url(base_url)
    exchange = _ObservedKraken({
        "apiKey": api_key or "", "secret": secret or "", "timeout": timeout_ms,
        "enableRateLimit": throttle, "options": {"maxRetriesOnFailure": 0},
    })
    base = base_url.rstrip("/")
    exchange.urls["api"] = {**exchange.urls["api"], "public": base, "private": base}  # ccxt appends /0/public/...
    logging.getLogger("ccxt").setLevel(logging.WARNING)  # DEBUG would print API-Key and API-Sign
    return exchange


def public_client(base_url: str, timeout_ms: int = 10_000) -> KrakenClient:
    """A key-less client for public market data. Against a remote host ccxt's pacing keeps us inside
    Kraken's public budget (about one call per second); the loopback emulator has no public limit."""
    host = urlparse(base_url).hostname or ""
    loopback = host in ("localhost", "::1") or host.startswith("127.")
    return KrakenClient(make_exchange(base_url, timeout_ms=timeout_ms, throttle=not loopback))


def _translate(err: Exception) -> errors.ExchangeError:
    """ccxt exception → ours, keeping Kraken's message (which never contains the secret)."""
    text = str(err)
    mapping: list[tuple[type[Exception], type[errors.ExchangeError]]] = [
        (ccxt.InvalidNonce, errors.InvalidNonce),
        (ccxt.InsufficientFunds, errors.InsufficientFunds),
        (ccxt.AuthenticationError, errors.AuthenticationFailed),
        (ccxt.PermissionDenied, errors.AuthenticationFailed),
        (ccxt.RateLimitExceeded, errors.RateLimited),
        (ccxt.DDoSProtection, errors.RateLimited),
        (ccxt.OrderNotFound, errors.OrderNotFound),
        (ccxt.InvalidOrder, errors.OrderRejected),
        (ccxt.BadSymbol, errors.OrderRejected),
        (ccxt.BadRequest, errors.OrderRejected),
        (ccxt.NetworkError, errors.ExchangeUnavailable),
    ]
    if "EOrder:Unknown order" in text:
        return errors.OrderNotFound(text)
    if "Invalid signature" in text or "Invalid key" in text:
        return errors.AuthenticationFailed(text)
    if "Cost minimum not met" in text or "Order minimum not met" in text:
        return errors.OrderRejected(text)
    if "EService:Throttled" in text:
        return errors.RateLimited(text)
    for ccxt_type, ours in mapping:
        if isinstance(err, ccxt_type):
            if ours is errors.ExchangeUnavailable:
                return ours(f"exchange unreachable or failing ({type(err).__name__}: {text[:300]}); "
                            f"check KRAKENFLOW_KRAKEN_URL and the network")
            return ours(text)
    return errors.ExchangeError(text)


_idempotent_retry = retry(
    retry=retry_if_exception_type(errors.ExchangeUnavailable),
    stop=stop_after_attempt(4),
    wait=wait_exponential(multiplier=0.2, max=2.0),
    reraise=True,
)


def _call(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    try:
        return fn(*args, **kwargs)
    except ccxt.BaseError as err:
        raise _translate(err) from None


def _read(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """An idempotent read: retried on network/5xx/EService errors, nothing else."""
    return _idempotent_retry(_call)(fn, *args, **kwargs)


class KrakenClient:
    """Small typed facade over one ccxt instance (one API key per process: Kraken nonces are per key)."""

    def __init__(self, exchange: ccxt.kraken) -> None:
        self.exchange = exchange
        self._markets_loaded = False

    def observe(self, observer: ExchangeObserver | None) -> None:
        """Tell `observer` of every failed request and rate-limit pause from now on (a client `make_exchange`
        built; another ccxt instance has nobody to tell)."""
        if isinstance(self.exchange, _ObservedKraken):
            self.exchange.observer = observer

    def key_id(self) -> str:
        """A short fingerprint of the API key (never the key): names per-key state such as the nonce."""
        return hashlib.sha256(str(self.exchange.apiKey).encode()).hexdigest()[:12]

    def use_nonce(self, durable_next: Callable[[int], int]) -> None:
        """Kraken rejects a nonce not above the key's last one, also after a restart or a clock step back.
        `durable_next(floor)` returns a number above all it returned before (across restarts) and ≥ floor,
        the wall-clock milliseconds ccxt would have used."""
        self.exchange.nonce = lambda: durable_next(int(self.exchange.milliseconds()))

    def load_markets(self) -> dict[str, Any]:
        markets = _read(self.exchange.load_markets)
        self._markets_loaded = True
        return markets

    def instrument_catalog_raw(self) -> dict[str, Any]:
        """Kraken's public Assets and AssetPairs answers, untouched: what market.instruments parses."""
        return {"Assets": _read(self.exchange.publicGetAssets), "AssetPairs": _read(self.exchange.publicGetAssetPairs)}

    def _ensure_markets(self) -> None:
        if not self._markets_loaded:
            self.load_markets()

    def fetch_candles(self, pair: str, timeframe: str, since_ms: int | None = None) -> list[Candle]:
        """Finished candles only, ascending, deduplicated; at most Kraken's 720 most recent."""
        self._ensure_markets()
        rows = _read(self.exchange.fetch_ohlcv, pair, timeframe, since_ms)
        if not rows:  # Kraken always answers at least the unfinished candle, with or without `since`
            raise errors.BadMarketData(f"OHLC {pair} {timeframe}: empty or unparseable answer")
        return finished_candles(rows, timeframe)

    def public_trades(self, pair: str, since: str | int, count: int = 1000) -> TradesPage:
        """Kraken's public Trades strictly after `since` (unix seconds or the previous page's ns cursor).
        Raw endpoint rather than ccxt's fetch_trades, which hides the `last` cursor that paging needs."""
        self._ensure_markets()
        market_id = self.exchange.market(pair)["id"]
        raw = _read(self.exchange.publicGetTrades, {"pair": market_id, "since": str(since), "count": count})
        return parse_trades_page(raw, market_id, pair)

    def ticker_last(self, pair: str) -> float:
        self._ensure_markets()
        ticker = _read(self.exchange.fetch_ticker, pair)
        return float(ticker["last"])

    def balances(self) -> dict[str, float]:
        raw = _read(self.exchange.fetch_balance)
        if not isinstance(raw.get("info"), dict):
            raise errors.BadMarketData("Balance: the exchange's answer was not valid JSON")
        return {asset: float(total) for asset, total in raw.get("total", {}).items() if total is not None}

    def place_market_order(self, pair: str, side: Side, quantity: float, client_id: str) -> str:
        """Send AddOrder once, never retried. Kraken's own refusals (EOrder:, EAPI:, invalid arguments…)
        raise our typed errors: nothing was placed. Everything else — timeouts, 5xx, EService, a garbled
        or txid-less answer — may have reached the matching engine: OrderOutcomeUnknown."""
        self._ensure_markets()
        try:
            order = self.exchange.create_order(pair, "market", side.value, quantity, None,
                                               {"clientOrderId": client_id})
        except ccxt.BaseError as err:
            if is_definite_refusal(str(err)):
                raise _translate(err) from None
            raise errors.OrderOutcomeUnknown(client_id, f"{type(err).__name__}: {str(err)[:200]}") from None
        except Exception as err:  # a parse error deep in ccxt on a garbled body: as ambiguous as a timeout
            raise errors.OrderOutcomeUnknown(client_id, f"unreadable answer ({type(err).__name__})") from None
        txid = order.get("id") if isinstance(order, dict) else None
        if not txid or str(txid) == "None":
            raise errors.OrderOutcomeUnknown(client_id, "the answer carried no txid")
        return str(txid)

    def orders_by_client_id(self) -> dict[str, ExchangeOrder]:
        """Every open and recently closed order that carries a cl_ord_id (one OpenOrders and one
        ClosedOrders call): how ambiguous and late orders are found without resending anything."""
        self._ensure_markets()
        found: dict[str, ExchangeOrder] = {}
        for fetch in (self.exchange.fetch_open_orders, self.exchange.fetch_closed_orders):
            for raw in _read(fetch):
                client_id = _client_id(raw)
                if client_id:
                    found[client_id] = _to_order(raw)
        return found

    def server_time_ms(self) -> int:
        """The exchange's clock (Kraken's public Time): the trader judges candle freshness by it, so a
        replayed market (the emulator) and a skewed local clock are judged alike."""
        return int(_read(self.exchange.fetch_time))

    def open_orders(self) -> list[ExchangeOrder]:
        self._ensure_markets()
        return [_to_order(o) for o in _read(self.exchange.fetch_open_orders)]

    def cancel_order(self, txid: str) -> None:
        self._ensure_markets()
        _call(self.exchange.cancel_order, txid)

    def trades_since(self, since_ms: int | None = None) -> list[ExchangeTrade]:
        self._ensure_markets()
        return [_to_trade(t) for t in _read(self.exchange.fetch_my_trades, None, since_ms)]

    def cancel_all_after(self, timeout_s: int) -> None:
        """Kraken's dead-man switch: all orders are cancelled unless re-armed within `timeout_s`."""
        _call(self.exchange.private_post_cancelallordersafter, {"timeout": timeout_s})

    def key_can_withdraw(self) -> bool:
        """Probe a withdraw-only endpoint: a trade-only key gets EGeneral:Permission denied. An exchange
        that cannot be reached is an error of its own, never taken for a dangerous key."""
        try:
            _call(self.exchange.private_post_withdrawinfo, {"asset": "XBT", "key": "probe", "amount": "0"})
        except errors.AuthenticationFailed as err:
            if "Permission denied" in str(err):
                return False
            raise
        except (errors.ExchangeUnavailable, errors.RateLimited, errors.InvalidNonce):
            raise
        except errors.ExchangeError:
            return True
        return True


DEFINITE_REFUSALS = ("EOrder:", "EAPI:", "EQuery:", "EFunding:", "EGeneral:Invalid arguments",
                     "EGeneral:Permission denied", "EService:Market in")
"""Kraken error prefixes that mean AddOrder was refused before it reached the book: nothing was placed."""


def is_definite_refusal(message: str) -> bool:
    return any(prefix in message for prefix in DEFINITE_REFUSALS)


def check_base_url(base_url: str) -> str:
    """An exchange URL must be http(s)://host[:port]: a typo fails here, naming the setting."""
    parsed = urlparse(base_url)
    try:
        parsed.port  # noqa: B018 — raises on a non-numeric port
    except ValueError:
        parsed = parsed._replace(netloc="")
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ValueError(f"Kraken URL {base_url!r} (KRAKENFLOW_KRAKEN_URL or --url) is not an http(s) URL; use e.g. "
                         f"https://api.kraken.com or http://127.0.0.1:8765 for the emulator")
    return base_url


def finished_candles(rows: list[list[Any]], timeframe: str) -> list[Candle]:
    """ccxt OHLCV rows → Candles: drop Kraken's unfinished last candle, sort, drop repeated identical
    candles; two different candles under one time cannot both be true, so that is an error."""
    if not rows:
        return []
    try:
        by_ts: dict[int, Candle] = {}
        for r in rows:
            candle = Candle(int(r[0]), float(r[1]), float(r[2]), float(r[3]), float(r[4]), float(r[5]))
            if by_ts.setdefault(candle.ts, candle) != candle:
                raise errors.BadMarketData(f"OHLC {timeframe}: two different candles at {candle.ts} ms "
                                           f"({by_ts[candle.ts]} vs {candle})")
    except (TypeError, ValueError, IndexError) as err:
        raise errors.BadMarketData(f"OHLC rows not numeric: {err}") from None
    return [by_ts[ts] for ts in sorted(by_ts)][:-1]


def parse_trades_page(raw: Any, market_id: str, pair: str) -> TradesPage:
    """Kraken's Trades answer {result: {ID: [[price, volume, time_s, side, type, misc, id], ...], last}}."""
    try:
        result = raw["result"]
        rows = result.get(market_id, [])
        cursor = str(result["last"])
        ts = tuple(round(float(r[2]) * 1000) for r in rows)
        page = TradesPage(ts, tuple(float(r[0]) for r in rows), tuple(float(r[1]) for r in rows), cursor)
    except (KeyError, TypeError, ValueError, IndexError) as err:
        raise errors.BadMarketData(f"Trades {pair}: malformed answer ({type(err).__name__}: {err})") from None
    if any(b < a for a, b in itertools.pairwise(ts)):
        raise errors.BadMarketData(f"Trades {pair}: trades not in time order")
    return page


def _client_id(raw: dict[str, Any]) -> str | None:
    info = raw.get("info") or {}
    return raw.get("clientOrderId") or info.get("cl_ord_id")


def _to_order(raw: dict[str, Any]) -> ExchangeOrder:
    fee = raw.get("fee") or {}
    return ExchangeOrder(
        txid=str(raw["id"]), client_id=_client_id(raw), pair=str(raw.get("symbol")), side=Side(raw["side"]),
        status=str(raw.get("status")), quantity=float(raw.get("amount") or 0.0),
        filled=float(raw.get("filled") or 0.0),
        average_price=float(raw["average"]) if raw.get("average") else None, fee=float(fee.get("cost") or 0.0),
    )


def _to_trade(raw: dict[str, Any]) -> ExchangeTrade:
    fee = raw.get("fee") or {}
    return ExchangeTrade(
        trade_id=str(raw["id"]), txid=str(raw.get("order")), pair=str(raw["symbol"]), side=Side(raw["side"]),
        quantity=float(raw["amount"]), price=float(raw["price"]), fee=float(fee.get("cost") or 0.0),
        ts=int(raw["timestamp"]),
    )
