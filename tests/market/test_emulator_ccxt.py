"""The Kraken emulator driven by unmodified ccxt (and raw httpx for auth and envelope details)."""

from __future__ import annotations

import base64

import ccxt
import httpx
import pytest

from market.emulator.faults import Fault
from market.emulator.kraken_api import sign
from market.instruments import bundled
from market.kraken import make_exchange

KEY = "kf-test-key"
SECRET = "a3Jha2VuZmxvdy10ZXN0LXNlY3JldC1ub3QtcmVhbC1hdC1hbGwtMTIzNDU2Nzg5MA=="


@pytest.fixture
def ex(emulator):  # type: ignore[no-untyped-def]
    return make_exchange(emulator.url, KEY, SECRET, timeout_ms=1_500, throttle=False)


def test_ccxt_loads_markets_with_kraken_ids_and_minimums(ex) -> None:  # type: ignore[no-untyped-def]
    markets = ex.load_markets()
    assert {"XRP/USD", "DOGE/USD"} <= set(markets)
    assert markets["XRP/USD"]["id"] == "XXRPZUSD" and markets["DOGE/USD"]["id"] == "XDGUSD"
    assert markets["XRP/USD"]["limits"]["amount"]["min"] == bundled().get("XRP/USD").ordermin
    assert markets["XRP/USD"]["taker"] == pytest.approx(0.004)


def test_ohlc_returns_720_candles_with_unfinished_last_and_moves_with_the_clock(ex, emulator) -> None:  # type: ignore[no-untyped-def]
    first = ex.fetch_ohlcv("XRP/USD", "1h")
    assert len(first) == 720
    assert first[-1][0] == emulator.venue.current("XRP/USD").ts  # the unfinished candle is "now"
    emulator.advance(3)
    later = ex.fetch_ohlcv("XRP/USD", "1h")
    assert later[-1][0] - first[-1][0] == 3 * 3_600_000 and len(later) == 720
    since = ex.fetch_ohlcv("XRP/USD", "1h", since=later[-5][0])
    assert [r[0] for r in since] == [r[0] for r in later[-5:]]


def test_ticker_balance_and_market_order_fill_at_the_current_open(ex, emulator) -> None:  # type: ignore[no-untyped-def]
    ex.load_markets()
    open_price = emulator.venue.current("XRP/USD").open
    assert ex.fetch_ticker("XRP/USD")["last"] == pytest.approx(open_price, rel=1e-4)
    assert ex.fetch_balance()["total"]["USD"] == 10_000.0
    order = ex.create_order("XRP/USD", "market", "buy", 100, None, {"clientOrderId": "kf-1"})
    (closed,) = ex.fetch_closed_orders()
    assert closed["id"] == order["id"] and closed["clientOrderId"] == "kf-1" and closed["status"] == "closed"
    assert closed["average"] == pytest.approx(open_price * 1.0005, rel=1e-4)  # 5 bp slippage
    balance = ex.fetch_balance()["total"]
    assert balance["XRP"] == pytest.approx(100.0)
    assert balance["USD"] == pytest.approx(10_000 - 100 * open_price * 1.0005 * 1.004, rel=1e-5)
    (trade,) = ex.fetch_my_trades()
    assert trade["order"] == order["id"] and trade["fee"]["cost"] == pytest.approx(100 * open_price * 1.0005 * 0.004,
                                                                                 rel=1e-4)


def test_limit_order_rests_fills_when_traded_through_and_can_be_cancelled(ex, emulator) -> None:  # type: ignore[no-untyped-def]
    ex.load_markets()
    price = emulator.venue.current("XRP/USD").open
    far = ex.create_order("XRP/USD", "limit", "buy", 50, round(price * 0.5, 5), {"clientOrderId": "far"})
    near = ex.create_order("XRP/USD", "limit", "buy", 50, round(price * 1.2, 5), {"clientOrderId": "near"})
    assert {o["clientOrderId"] for o in ex.fetch_open_orders()} == {"far", "near"}
    emulator.advance(1)
    assert [o["clientOrderId"] for o in ex.fetch_open_orders()] == ["far"]
    ex.cancel_order(far["id"])
    assert ex.fetch_open_orders() == []
    statuses = {o["clientOrderId"]: o["status"] for o in ex.fetch_closed_orders()}
    assert statuses == {"far": "canceled", "near": "closed"} and near["id"]


def test_partial_fills(ex, emulator) -> None:  # type: ignore[no-untyped-def]
    ex.load_markets()
    emulator.venue.config.partial_fill_ratio = 0.5
    price = emulator.venue.current("XRP/USD").open
    ex.create_order("XRP/USD", "limit", "buy", 100, round(price * 1.2, 5), {"clientOrderId": "p"})
    emulator.advance(1)
    (order,) = ex.fetch_open_orders()
    assert order["filled"] == pytest.approx(50.0) and order["remaining"] == pytest.approx(50.0)
    ex.cancel_order(order["id"])  # partial fill, then cancel
    (closed,) = ex.fetch_closed_orders()
    assert closed["status"] == "canceled" and closed["filled"] == pytest.approx(50.0)


@pytest.mark.parametrize(("amount", "error"), [(bundled().get("XRP/USD").ordermin / 2, ccxt.InvalidOrder),
                                               (10**7, ccxt.InsufficientFunds)])
def test_minimums_and_funds_are_enforced(ex, amount: float, error: type) -> None:  # type: ignore[no-untyped-def]
    ex.load_markets()
    with pytest.raises(error):
        ex.create_order("XRP/USD", "market", "buy", amount)
    with pytest.raises(ccxt.InsufficientFunds):
        ex.create_order("DOGE/USD", "market", "sell", 1000)


def test_validate_only_places_nothing(emulator) -> None:  # type: ignore[no-untyped-def]
    res = _private(emulator, "AddOrder", {"pair": "XRPUSD", "type": "buy", "ordertype": "market",
                                          "volume": "20", "validate": "true"})
    assert res["error"] == [] and "txid" not in res["result"] and emulator.venue.orders == {}


def _private(emulator, endpoint: str, data: dict, nonce: int | None = None, key: str = KEY,  # type: ignore[no-untyped-def]
             secret: str = SECRET, signature: str | None = None) -> dict:
    nonce = nonce if nonce is not None else _private.nonce + 1  # type: ignore[attr-defined]
    _private.nonce = max(_private.nonce, nonce)  # type: ignore[attr-defined]
    body = httpx.QueryParams({"nonce": str(nonce), **data}).__str__()
    path = f"/0/private/{endpoint}"
    sig = signature or sign(path, body, str(nonce), base64.b64decode(secret))
    r = httpx.post(emulator.url + path, content=body, headers={
        "API-Key": key, "API-Sign": sig, "Content-Type": "application/x-www-form-urlencoded"})
    return r.json()


_private.nonce = 10**15  # type: ignore[attr-defined]


def test_auth_errors_use_krakens_strings(emulator) -> None:  # type: ignore[no-untyped-def]
    assert _private(emulator, "Balance", {}, key="nobody")["error"] == ["EAPI:Invalid key"]
    assert _private(emulator, "Balance", {}, signature="AAAA")["error"] == ["EAPI:Invalid signature"]
    ok = _private(emulator, "Balance", {}, nonce=2 * 10**15)
    assert ok["error"] == [] and ok["result"]["ZUSD"].startswith("10000")
    assert _private(emulator, "Balance", {}, nonce=2 * 10**15)["error"] == ["EAPI:Invalid nonce"]
    assert _private(emulator, "Balance", {}, nonce=2 * 10**15 - 1)["error"] == ["EAPI:Invalid nonce"]
    bad = _private(emulator, "AddOrder", {"pair": "XRPUSD", "type": "buy", "ordertype": "market", "volume": "x"},
                   nonce=3 * 10**15)
    assert bad["error"] == ["EGeneral:Invalid arguments"]


def test_trade_only_key_cannot_withdraw_and_withdraw_key_can(emulator) -> None:  # type: ignore[no-untyped-def]
    from market.kraken import KrakenClient

    emulator.add_key("w", SECRET, frozenset({"query", "trade", "withdraw"}))
    assert KrakenClient(make_exchange(emulator.url, KEY, SECRET, throttle=False)).key_can_withdraw() is False
    assert KrakenClient(make_exchange(emulator.url, "w", SECRET, throttle=False)).key_can_withdraw() is True


def test_rate_counter_answers_rate_limit_exceeded(ex) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ccxt.DDoSProtection, match="EAPI:Rate limit exceeded"):
        for _ in range(40):
            ex.fetch_balance()


@pytest.mark.parametrize(("fault", "error"), [
    (Fault("BalanceEx", "http_status", status=502), ccxt.ExchangeNotAvailable),
    (Fault("BalanceEx", "http_status", status=429), ccxt.RateLimitExceeded),
    (Fault("BalanceEx", "kraken_error", error="EService:Unavailable"), ccxt.ExchangeNotAvailable),
    (Fault("BalanceEx", "kraken_error", error="EService:Busy"), ccxt.ExchangeNotAvailable),
    (Fault("BalanceEx", "kraken_error", error="EAPI:Invalid nonce"), ccxt.InvalidNonce),
    (Fault("BalanceEx", "delay", delay_ms=3_000), ccxt.RequestTimeout),
    (Fault("BalanceEx", "connection_reset"), ccxt.NetworkError),
])
def test_faults_reach_ccxt_as_kraken_would_send_them(ex, emulator, fault: Fault, error: type) -> None:  # type: ignore[no-untyped-def]
    emulator.add_fault(fault)
    with pytest.raises(error):
        ex.fetch_balance()
    assert ex.fetch_balance()["total"]["USD"] == 10_000.0  # fired once, then gone


def test_dropped_addorder_response_still_places_order(ex, emulator) -> None:  # type: ignore[no-untyped-def]
    ex.load_markets()
    emulator.add_fault(Fault("AddOrder", "drop_response", delay_ms=3_000))
    with pytest.raises(ccxt.RequestTimeout):
        ex.create_order("XRP/USD", "market", "buy", 20, None, {"clientOrderId": "lost"})
    (placed,) = ex.fetch_closed_orders()
    assert placed["clientOrderId"] == "lost" and placed["filled"] == 20


def test_duplicated_and_out_of_order_candles_are_served_when_asked(ex, emulator) -> None:  # type: ignore[no-untyped-def]
    emulator.add_fault(Fault("OHLC", "duplicate_candles"))
    rows = ex.fetch_ohlcv("XRP/USD", "1h")
    times = [r[0] for r in rows]
    assert len(times) != len(set(times))
    emulator.add_fault(Fault("OHLC", "out_of_order_candles"))  # ccxt re-sorts, so read the raw answer
    raw = httpx.get(emulator.url + "/0/public/OHLC", params={"pair": "XXRPZUSD", "interval": 60}).json()
    times = [r[0] for r in raw["result"]["XXRPZUSD"]]
    assert times != sorted(times)


def test_stale_market_and_restart_with_and_without_state(ex, emulator) -> None:  # type: ignore[no-untyped-def]
    ex.load_markets()
    emulator.venue.frozen = True  # the clock stops: data goes stale
    before = emulator.venue.cursor
    emulator.advance(5)
    assert emulator.venue.cursor == before
    emulator.venue.frozen = False
    ex.create_order("XRP/USD", "market", "buy", 20, None, {"clientOrderId": "kept"})
    emulator.restart(keep_state=True)
    assert [o["clientOrderId"] for o in ex.fetch_closed_orders()] == ["kept"]
    emulator.restart(keep_state=False)
    assert ex.fetch_closed_orders() == []


def test_control_endpoint_scripts_faults_over_http(ex, emulator) -> None:  # type: ignore[no-untyped-def]
    r = httpx.post(emulator.url + "/_emulator/faults", json={"endpoint": "Ticker", "kind": "http_status",
                                                             "status": 504})
    assert r.json()["result"]["pending"][0]["status"] == 504
    with pytest.raises(ccxt.RequestTimeout):  # ccxt maps HTTP 504 to RequestTimeout
        ex.fetch_ticker("XRP/USD")
    assert httpx.post(emulator.url + "/_emulator/advance?candles=2").json()["result"]["cursor"] == 722
    assert httpx.post(emulator.url + "/_emulator/faults", json={"kind": "nope"}).status_code == 400


def test_dead_man_switch_cancels_open_orders(ex, emulator) -> None:  # type: ignore[no-untyped-def]
    ex.load_markets()
    price = emulator.venue.current("XRP/USD").open
    ex.create_order("XRP/USD", "limit", "buy", 50, round(price * 0.5, 5))
    ex.private_post_cancelallordersafter({"timeout": 60})
    emulator.advance(1)  # an hour passes with no re-arm
    assert ex.fetch_open_orders() == []


def test_malformed_json_is_caught_by_our_adapter_not_by_ccxt(ex, emulator, kraken_client) -> None:  # type: ignore[no-untyped-def]
    from market import errors

    emulator.add_fault(Fault("BalanceEx", "malformed_json"))
    assert ex.fetch_balance()["total"] == {}  # ccxt swallows it: that is why the adapter checks
    emulator.add_fault(Fault("BalanceEx", "malformed_json"))
    with pytest.raises(errors.BadMarketData, match="not valid JSON"):
        kraken_client.balances()
    emulator.add_fault(Fault("OHLC", "malformed_json"))
    with pytest.raises(errors.BadMarketData, match="empty or unparseable"):
        kraken_client.fetch_candles("XRP/USD", "1h")


def test_remaining_public_and_private_endpoints_through_ccxt(ex, emulator) -> None:  # type: ignore[no-untyped-def]
    ex.load_markets()
    assert ex.fetch_time() == int(emulator.venue.now()) * 1000
    assert ex.fetch_status()["status"] == "ok"
    trades = ex.fetch_trades("XRP/USD")
    assert trades and all(t["timestamp"] < emulator.venue.current("XRP/USD").ts for t in trades)
    book = ex.fetch_order_book("XRP/USD")
    assert book["asks"][0][0] > book["bids"][0][0]
    order = ex.create_order("XRP/USD", "market", "buy", 20, None, {"userref": 42})
    queried = ex.private_post_queryorders({"txid": order["id"]})["result"][order["id"]]
    assert queried["userref"] == 42 and queried["status"] == "closed"
    fees = ex.fetch_trading_fee("XRP/USD")
    assert fees["taker"] == pytest.approx(0.004) and fees["maker"] == pytest.approx(0.0025)
    price = emulator.venue.current("XRP/USD").open
    for _ in range(2):
        ex.create_order("XRP/USD", "limit", "buy", 20, round(price * 0.5, 5))
    ex.cancel_all_orders()
    assert ex.fetch_open_orders() == []
    assert sum(o["status"] == "canceled" for o in ex.fetch_closed_orders()) == 2


def test_clock_skew_shows_in_server_time(ex, emulator) -> None:  # type: ignore[no-untyped-def]
    before = ex.fetch_time()
    emulator.venue.clock_skew_s = 120.0
    assert ex.fetch_time() - before == 120_000


def test_unknown_order_and_invalid_arguments(ex, emulator) -> None:  # type: ignore[no-untyped-def]
    ex.load_markets()
    with pytest.raises(ccxt.InvalidOrder, match="EOrder:Unknown order"):
        ex.cancel_order("OABCDE-FGHIJ-KLMNOP")
    emulator.add_fault(Fault("AddOrder", "kraken_error", error="EGeneral:Invalid arguments"))
    with pytest.raises(ccxt.BadRequest, match="EGeneral:Invalid arguments"):
        ex.create_order("XRP/USD", "market", "buy", 20)
    assert emulator.venue.orders == {}
