"""The live trader (open_session + run, the loop `krakenflow trade --mode live` runs) against the Kraken
emulator with exchange faults injected at each step of an order's life. After every run the books must
agree: no client id reaches the exchange twice, every exchange order has its intent, the ledger's fills
are the exchange's trades, cash and positions equal the exchange's balances, and every intent has the
decision that made it. Regression tests of issue I (each failed on 80ada91)."""

from __future__ import annotations

import json
import shutil
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import SecretStr
from sqlalchemy import select
from tests_support import EMULATOR_KEY, EMULATOR_SECRET
from trader_helpers import PARAMS, register_model

from core.params import Params
from core.settings import Settings
from core.types import OrderIntent, Side
from features.spec import spec_from_params
from market.emulator.faults import Fault
from market.emulator.kraken_api import RateTier
from market.emulator.server import EmulatorHandle, free_port, running_emulator
from market.kraken import KrakenClient, make_exchange
from trader.ledger import Ledger, LedgerLocked
from trader.ledger_schema import decisions, fills, intents
from trader.service import LiveSession, StopFlag, live_view, open_session, run, serve_status

SPEC = spec_from_params(PARAMS.features)
ASSET = {"XRP/USD": "XXRP", "DOGE/USD": "XXDG"}




def trading_params(median: float, **live: Any) -> Params:
    """Thresholds at the model's median probability: it flips often, so every run trades."""
    return PARAMS.model_copy(update={
        "trade": PARAMS.trade.model_copy(update={"enter_threshold": median, "exit_threshold": median}),
        "risk": PARAMS.risk.model_copy(update={"max_orders_per_minute": 1000, "daily_loss_limit": 1.0,
                                               "max_drawdown": 1.0}),
        "live": PARAMS.live.model_copy(update={"dead_man_s": 0, **live}),
    })


def make_settings(tmp_path: Path, emu: EmulatorHandle, booster: Any, mlflow_template: Path) -> Settings:
    shutil.copy(mlflow_template, tmp_path / "mlflow.db")
    s = Settings(state_dir=tmp_path, kraken_url=emu.url, kraken_key=SecretStr(EMULATOR_KEY),
                 kraken_secret=SecretStr(EMULATOR_SECRET), ledger_url=f"sqlite:///{tmp_path / 'ledger.db'}")
    register_model(s, booster, SPEC.to_json())
    return s


def start(tmp_path: Path, emu: EmulatorHandle, booster_and_median: tuple[Any, float], mlflow_template: Path,
          timeout_ms: int = 1_500, **live: Any) -> LiveSession:
    """A live session on a fresh registry (one real @champion) and ledger, trading often."""
    booster, median = booster_and_median
    return open_session(trading_params(median, **live), make_settings(tmp_path, emu, booster, mlflow_template),
                        client(emu, timeout_ms))


def client(emu: EmulatorHandle, timeout_ms: int = 1_500) -> KrakenClient:
    return KrakenClient(make_exchange(emu.url, EMULATOR_KEY, EMULATOR_SECRET, timeout_ms=timeout_ms, throttle=False))


def trade(session: LiveSession, emu: EmulatorHandle, polls: int,
          each_poll: Callable[[int], None] | None = None, pause_s: float = 0.0) -> None:
    """The live loop, one emulator candle per poll."""
    def after(n: int) -> None:
        if each_poll is not None:
            each_poll(n)
        emu.advance(1)
        if pause_s:
            time.sleep(pause_s)

    run(session, 0, max_polls=polls, after_poll=after, stop=StopFlag())


def ledger_rows(ledger: Ledger) -> tuple[list[Any], list[Any], list[Any]]:
    with ledger.engine.connect() as conn:
        return (conn.execute(select(intents).order_by(intents.c.created_at)).mappings().all(),
                conn.execute(select(fills)).mappings().all(),
                conn.execute(select(decisions).where(decisions.c.action.in_(("buy", "sell")))
                             .order_by(decisions.c.id)).mappings().all())


def assert_books_agree(session: LiveSession, emu: EmulatorHandle) -> None:
    """The invariants of the live path, checked after a final fault-free sync."""
    for _ in range(3):
        session.broker.sync()
    ledger = session.broker.ledger
    its, fls, acted = ledger_rows(ledger)
    orders = [o for o in emu.venue.orders.values() if o.key == EMULATOR_KEY]
    trades = {t.trade_id: t for t in emu.venue.trades.values() if t.order.key == EMULATOR_KEY}
    client_ids = [o.cl_ord_id for o in orders]
    assert len(client_ids) == len(set(client_ids)), "a client order id reached the exchange twice"
    assert set(client_ids) <= {r["client_id"] for r in its}, "an exchange order has no intent"
    assert {f["trade_id"] for f in fls} == set(trades), "ledger fills differ from the exchange's trades"
    assert not [r for r in its if r["txid"] in ("None", "")], "an intent stored a txid the exchange never gave"
    assert [(d["pair"], d["action"]) for d in acted] == [(r["pair"], r["side"]) for r in its], \
        "every intent has the decision that made it, and only those decisions are orders"
    account = emu.venue.account(EMULATOR_KEY)
    if not ledger.unresolved_intents():
        assert session.broker.cash == pytest.approx(account["ZUSD"], abs=1e-6)
        for pair, asset in ASSET.items():
            assert ledger.position(pair) == pytest.approx(account.get(asset, 0.0), abs=1e-9)


# --- 1. stale candles and backlogs -------------------------------------------------------------------

def test_a_backlog_after_an_outage_trades_only_its_newest_candle(fast_emulator, booster_and_median, tmp_path,  # type: ignore[no-untyped-def]
                                                                mlflow_template) -> None:
    emu = fast_emulator
    session = start(tmp_path, emu, booster_and_median, mlflow_template)

    def outage(n: int) -> None:
        if n == 3:  # 20 answers of 503 on every endpoint (5 polls) while the market moves on 140 candles
            emu.add_fault(Fault("*", "http_status", status=503, times=20))
        if 3 <= n < 8:
            emu.advance(28)

    trade(session, emu, 20, outage)
    its, _, acted = ledger_rows(session.broker.ledger)
    opened = {o.cl_ord_id: o.opentm for o in emu.venue.orders.values()}
    assert acted and len(acted) == len(its)
    for decision, intent in zip(acted, its, strict=True):
        # the order reached the exchange in the candle right after the one it was decided on
        age_s = opened[intent["client_id"]] - (decision["ts"] + 3_600_000) / 1000
        assert 0 <= age_s < 3600, f"order {intent['client_id']} sent {age_s / 3600:.1f} candles after its candle"
    backlog = session.broker.ledger.recent_decisions(2000)
    assert sum("backlog" in d["reason"] for d in backlog) >= 100
    assert_books_agree(session, emu)


def test_no_order_on_a_candle_that_is_stale_by_the_exchange_clock(fast_emulator, booster_and_median, tmp_path,  # type: ignore[no-untyped-def]
                                                                 mlflow_template) -> None:
    emu = fast_emulator
    emu.venue.clock_skew_s = (PARAMS.risk.stale_after_candles + 1) * 3600  # OHLC lags the exchange's clock
    session = start(tmp_path, emu, booster_and_median, mlflow_template)
    trade(session, emu, 12)
    assert emu.venue.orders == {}
    reasons = {d["reason"] for d in session.broker.ledger.recent_decisions(50)}
    assert any(r.startswith("stale market data") for r in reasons), reasons


# --- 2, 3. ambiguous and garbled AddOrder answers; faults at every step of one order's life -----------

ADD_ORDER_FAULTS = [
    Fault("AddOrder", "delay", delay_ms=2_500),          # placed after the client gave up
    Fault("AddOrder", "drop_response", delay_ms=2_500),  # placed, answer lost
    Fault("AddOrder", "malformed_json"),                 # garbled, nothing placed
    Fault("AddOrder", "http_status", status=503),
    Fault("AddOrder", "connection_reset"),
    Fault("AddOrder", "kraken_error", error="EService:Unavailable"),
    Fault("AddOrder", "kraken_error", error="EAPI:Rate limit exceeded"),
]
AFTER_ORDER_FAULTS = [
    Fault(endpoint, kind, error="EAPI:Rate limit exceeded" if kind == "kraken_error" else "", status=503,
          after="AddOrder")
    for endpoint in ("BalanceEx", "OpenOrders", "ClosedOrders", "TradesHistory")  # ccxt reads Balance as BalanceEx
    for kind in ("kraken_error", "http_status", "malformed_json", "connection_reset")
]


@pytest.mark.parametrize("fault", ADD_ORDER_FAULTS + AFTER_ORDER_FAULTS,
                         ids=lambda f: f"{f.endpoint}-{f.kind}{'-' + f.error if f.error else ''}")
def test_a_fault_at_any_step_of_an_order_leaves_the_books_agreeing(fast_emulator, booster_and_median,  # type: ignore[no-untyped-def]
                                                                  tmp_path, mlflow_template, fault) -> None:
    emu = fast_emulator
    session = start(tmp_path, emu, booster_and_median, mlflow_template, lookup_window_s=1.0)
    emu.add_fault(fault)
    trade(session, emu, 16, pause_s=0.12)
    assert fault.endpoint + ":" + fault.kind in emu.faults.fired
    assert len(emu.venue.orders) >= 3, "the trader kept trading after the fault"
    assert_books_agree(session, emu)


def test_an_order_placed_after_it_was_given_up_on_is_adopted(fast_emulator, booster_and_median, tmp_path,  # type: ignore[no-untyped-def]
                                                            mlflow_template) -> None:
    """AddOrder answers after 4 s; the trader gave up after one lookup (window 0): the order still counts."""
    emu = fast_emulator
    session = start(tmp_path, emu, booster_and_median, mlflow_template, lookup_window_s=0.0, min_lookups=1)
    emu.add_fault(Fault("AddOrder", "delay", delay_ms=4_000))
    trade(session, emu, 30, pause_s=0.2)
    kinds = [k for k, _ in session.broker.ledger.audit_trail()]
    assert "lookup_not_found" in kinds and "late_order_adopted" in kinds
    assert_books_agree(session, emu)


def test_the_default_lookup_window_keeps_a_late_order_blocked_and_found(fast_emulator, booster_and_median,  # type: ignore[no-untyped-def]
                                                                       tmp_path, mlflow_template) -> None:
    """The measured defect: a 15 s AddOrder delay became two buys. Scaled down: a 4 s delay against a 1.5 s
    client timeout, with the default 90 s lookup window."""
    emu = fast_emulator
    session = start(tmp_path, emu, booster_and_median, mlflow_template)
    emu.add_fault(Fault("AddOrder", "delay", delay_ms=4_000))
    trade(session, emu, 30, pause_s=0.2)
    kinds = [k for k, _ in session.broker.ledger.audit_trail()]
    assert "ambiguous_send" in kinds and "lookup_found" in kinds and "lookup_not_found" not in kinds
    assert_books_agree(session, emu)


def test_garbled_answers_and_backlogs_cost_a_bounded_rate_budget(booster_and_median, tmp_path,  # type: ignore[no-untyped-def]
                                                                  mlflow_template) -> None:
    """A malformed AddOrder answer is ambiguous (never a 'None' txid), looked up once per poll — not once
    per candle of a 60-candle backlog — and trading goes on. Kraken's counter points are counted."""
    booster, median = booster_and_median
    with running_emulator(tier=RateTier(max_counter=1e9, decay_per_s=0.0)) as emu:
        emu.add_key(EMULATOR_KEY, EMULATOR_SECRET)
        session = open_session(trading_params(median, lookup_window_s=1.0),
                               make_settings(tmp_path, emu, booster, mlflow_template), client(emu))
        emu.add_fault(Fault("AddOrder", "malformed_json", times=2))
        trade(session, emu, 20, lambda n: emu.advance(60) if n == 10 else None, pause_s=0.1)
        points = emu.keys.keys[EMULATOR_KEY].counter
        assert points <= 20 * 8, f"{points} rate-counter points in 20 polls"
        assert len(emu.venue.orders) >= 2 and "ambiguous_send" in [k for k, _ in session.broker.ledger.audit_trail()]
        assert_books_agree(session, emu)


def test_a_restart_with_an_order_in_flight_comes_up_within_krakens_rate_limit(emulator, booster_and_median,  # type: ignore[no-untyped-def]
                                                                              tmp_path, mlflow_template) -> None:
    """Kraken's ordinary counter (the `emulator` fixture). The old trader synced once per warm-up candle
    with an intent in flight and died with RateLimited on every restart."""
    booster, median = booster_and_median
    settings = make_settings(tmp_path, emulator, booster, mlflow_template)
    ledger = Ledger(settings.ledger_uri)
    ledger.record_intent(OrderIntent("kf-dead-1", "XRP/USD", Side.BUY, 50.0), 1)  # died mid-order
    ledger.record_intent(OrderIntent("kf-dead-2", "DOGE/USD", Side.BUY, 500.0), 1)
    ledger.mark("kf-dead-2", "sent", txid="None")  # what the old code stored for a garbled answer
    ledger.close()
    session = open_session(trading_params(median, lookup_window_s=0.0, min_lookups=2), settings, client(emulator))
    trade(session, emulator, 3, pause_s=0.5)
    assert session.failures_in_a_row == 0
    assert {r.intent.client_id for r in session.broker.ledger.intents_with_status("not_found")} == \
        {"kf-dead-1", "kf-dead-2"}


# --- 5. cash after a failed call -------------------------------------------------------------------

def test_cash_follows_every_fill_whatever_call_fails_next(fast_emulator, booster_and_median, tmp_path,  # type: ignore[no-untyped-def]
                                                          mlflow_template) -> None:
    emu = fast_emulator
    session = start(tmp_path, emu, booster_and_median, mlflow_template)
    for endpoint in ("BalanceEx", "OpenOrders", "ClosedOrders", "TradesHistory"):
        emu.add_fault(Fault(endpoint, "kraken_error", error="EAPI:Rate limit exceeded", times=3, after="AddOrder"))
    equity_seen: list[float] = []

    def check(_n: int) -> None:
        account = emu.venue.account(EMULATOR_KEY)
        value = account["ZUSD"] + sum(account.get(a, 0.0) * emu.venue.current(p).open for p, a in ASSET.items())
        if not np.isnan(session.last_equity):
            equity_seen.append(session.last_equity / value)

    trade(session, emu, 25, check)
    assert equity_seen and max(equity_seen) < 1.02, "the trader's equity ran ahead of the account"
    assert_books_agree(session, emu)


# --- 7. health ---------------------------------------------------------------------------------------

def _get(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def test_health_reports_failing_polls_and_their_age(fast_emulator, booster_and_median, tmp_path,  # type: ignore[no-untyped-def]
                                                    mlflow_template) -> None:
    emu = fast_emulator
    session = start(tmp_path, emu, booster_and_median, mlflow_template)
    port = free_port()
    serve_status(session, "127.0.0.1", port)
    seen: dict[int, tuple[int, float]] = {}

    def probe(n: int) -> None:
        if n == 2:
            emu.add_fault(Fault("*", "http_status", status=503, times=10_000))
        code, _ = _get(f"http://127.0.0.1:{port}/healthz")
        _, metrics = _get(f"http://127.0.0.1:{port}/metrics")
        since = next(float(line.split()[-1]) for line in metrics.splitlines()
                     if line.startswith("krakenflow_last_good_poll_age_seconds "))
        seen[n] = (code, since)

    trade(session, emu, 7, probe, pause_s=0.3)
    assert seen[1][0] == 200
    assert seen[7][0] == 503 and "polls failed in a row" in _get(f"http://127.0.0.1:{port}/healthz")[1]
    assert seen[7][1] > seen[3][1] > 0.3, "failed polls must not reset the time since the last good poll"


def test_health_reports_a_hung_loop(fast_emulator, booster_and_median, tmp_path, mlflow_template) -> None:  # type: ignore[no-untyped-def]
    emu = fast_emulator
    session = start(tmp_path, emu, booster_and_median, mlflow_template, timeout_ms=20_000, watchdog_s=0.5)
    port = free_port()
    serve_status(session, "127.0.0.1", port)
    emu.add_fault(Fault("OHLC", "delay", delay_ms=4_000, times=1, after="BalanceEx"))  # the first poll hangs
    loop = threading.Thread(target=trade, args=(session, emu, 2))
    loop.start()
    deadline, answers = time.monotonic() + 15, []
    while loop.is_alive() and time.monotonic() < deadline:
        answers.append(_get(f"http://127.0.0.1:{port}/healthz"))
        time.sleep(0.2)
    loop.join()
    hung = [json.loads(body) for code, body in answers if code == 503]
    assert hung and any("trading loop hung" in p for h in hung for p in h["problems"]), answers[-3:]
    assert _get(f"http://127.0.0.1:{port}/healthz")[0] == 200


def test_an_exchange_clock_that_went_back_halts_with_a_reason(fast_emulator, booster_and_median, tmp_path,  # type: ignore[no-untyped-def]
                                                              mlflow_template) -> None:
    emu = fast_emulator
    session = start(tmp_path, emu, booster_and_median, mlflow_template)

    def restart_back(n: int) -> None:
        if n == 3:
            emu.venue.cursor -= 50  # the exchange came back replaying older data
            emu.restart(keep_state=True)

    trade(session, emu, 8, restart_back)
    assert "clock went backwards" in session.engine.halted
    assert any("clock went backwards" in p for p in live_view(session).problems)
    assert [k for k, _ in session.broker.ledger.audit_trail()].count("clock_went_back") == 1


# --- 8. one trader per ledger --------------------------------------------------------------------------

def test_a_second_trader_on_the_same_ledger_is_refused(fast_emulator, booster_and_median, tmp_path,  # type: ignore[no-untyped-def]
                                                       mlflow_template) -> None:
    booster, median = booster_and_median
    settings = make_settings(tmp_path, fast_emulator, booster, mlflow_template)
    first = open_session(trading_params(median), settings, client(fast_emulator))
    with pytest.raises(LedgerLocked, match="another krakenflow trader"):
        open_session(trading_params(median), settings, client(fast_emulator))
    first.close()
    open_session(trading_params(median), settings, client(fast_emulator)).close()  # free again once it stopped
