"""Alerts from the trader (issue K item 5) against a real HTTP receiver: Apprise's json:// posts to a
ThreadingHTTPServer on loopback, faults come from the Kraken emulator, nothing is mocked."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pandas as pd
import pytest
from tests_support import EMULATOR_KEY, EMULATOR_SECRET
from trader_helpers import PARAMS, register_model, train_small_booster

from core.alerts import Alerter, AlertPolicy
from core.settings import Settings
from features.spec import spec_from_params
from market.emulator.faults import Fault
from market.emulator.kraken_api import RateTier
from market.emulator.server import running_emulator
from trader.service import FAILED_POLLS_ALERT, LiveSession, StopFlag, open_session, run


@pytest.fixture
def emulator():  # type: ignore[no-untyped-def]
    """Kraken's rate counter raised: these runs poll back to back (the `settings` fixture uses this one)."""
    with running_emulator(tier=RateTier(max_counter=1e9)) as handle:
        handle.add_key(EMULATOR_KEY, EMULATOR_SECRET)
        yield handle


class Receiver:
    """What the alert receiver got: Apprise's JSON bodies (title, message, type), in arrival order."""

    def __init__(self) -> None:
        self.alerts: list[dict[str, Any]] = []
        received = self.alerts

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                received.append({"path": self.path, **json.loads(body)})
                self.send_response(200)
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"json://127.0.0.1:{self.server.server_address[1]}/alerts"

    def titled(self, text: str) -> list[dict[str, Any]]:
        return [a for a in self.alerts if text in a["title"]]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    thread = threading.Thread(target=r.server.serve_forever, daemon=True)
    thread.start()
    yield r
    r.server.shutdown()
    r.server.server_close()


def params(**live: float):  # type: ignore[no-untyped-def]
    return PARAMS.model_copy(update={"live": PARAMS.live.model_copy(update={"dead_man_s": 0, **live})})


def trade(session: LiveSession, emulator, polls: int, each_poll=None) -> None:  # type: ignore[no-untyped-def]
    def after(n: int) -> None:
        if each_poll is not None:
            each_poll(n)
        emulator.advance(1)

    run(session, 0, max_polls=polls, after_poll=after, stop=StopFlag())


def test_a_burst_of_503s_sends_one_failed_polls_alert(settings: Settings, emulator, kraken_client,  # type: ignore[no-untyped-def]
                                                      receiver) -> None:
    session = open_session(params(), settings, kraken_client, alerter=Alerter([receiver.url]))

    def burst(n: int) -> None:
        if n == 1:
            emulator.add_fault(Fault("*", "http_status", status=503, times=10_000))
        if n == FAILED_POLLS_ALERT + 2:  # two more failures past the alert, then the exchange is back
            emulator.faults.clear()

    trade(session, emulator, FAILED_POLLS_ALERT + 4, burst)
    (alert,) = receiver.titled("polls failed in a row")
    assert alert["type"] == "warning" and alert["path"] == "/alerts" and "503" in alert["message"]
    assert session.failures_in_a_row == 0


def test_a_difference_above_the_halt_limit_sends_a_critical_reconcile_alert(  # type: ignore[no-untyped-def]
        settings: Settings, emulator, kraken_client, receiver) -> None:
    emulator.venue.account(EMULATOR_KEY)["XXRP"] = 100_000.0
    session = open_session(params(reconcile_halt_usd=50.0, reconcile_every_s=0.0), settings, kraken_client,
                           alerter=Alerter([receiver.url]))
    trade(session, emulator, 3)  # reconciled at start-up and after every poll: the same halt alerts once
    (alert,) = receiver.titled("reconciliation halted trading")
    assert alert["type"] == "failure" and "USD" in alert["message"] and "XRP/USD" in alert["message"]


def test_a_small_difference_adopted_sends_a_warning(settings: Settings, emulator, kraken_client, receiver) -> None:  # type: ignore[no-untyped-def]
    emulator.venue.account(EMULATOR_KEY)["XXRP"] = 20.0
    session = open_session(params(reconcile_halt_usd=50.0), settings, kraken_client, alerter=Alerter([receiver.url]))
    trade(session, emulator, 1)
    (alert,) = receiver.titled("ledger adjusted")
    assert alert["type"] == "warning" and "XRP/USD ledger 0 vs exchange 20" in alert["message"]


def test_a_session_on_a_ledger_whose_last_session_did_not_end_alerts_a_restart(  # type: ignore[no-untyped-def]
        settings: Settings, emulator, kraken_client, receiver) -> None:
    clean = open_session(params(), settings, kraken_client, alerter=Alerter([receiver.url]))
    trade(clean, emulator, 1)
    clean.close()  # a clean stop: session_end
    crashed = open_session(params(), settings, kraken_client, alerter=Alerter([receiver.url]))
    assert receiver.titled("restarted") == []
    trade(crashed, emulator, 1)
    crashed.broker.ledger.close()  # the process dies: the lock goes with it, no session_end is written
    restarted = open_session(params(), settings, kraken_client, alerter=Alerter([receiver.url]))
    (alert,) = receiver.titled("restarted after a crash")
    assert alert["type"] == "warning" and crashed.session_id in alert["message"]
    assert [k for k, _ in restarted.broker.ledger.audit_trail() if k.startswith("session_")] == \
        ["session_start", "session_end", "session_start", "session_start"]


def test_stale_data_alerts_once_per_streak_and_a_reload_is_an_info(  # type: ignore[no-untyped-def]
        settings: Settings, emulator, kraken_client, receiver, xrp_1h: pd.DataFrame) -> None:
    no_dedupe = Alerter([receiver.url], policy=AlertPolicy(dedupe_seconds=0))  # the trader's own once-per-streak
    session = open_session(params(model_check_every_s=0.0), settings, kraken_client, alerter=no_dedupe)
    behind = PARAMS.risk.stale_after_candles + 1  # candles the OHLC data lags the exchange's clock
    spec = spec_from_params(PARAMS.features)

    def weather(n: int) -> None:
        if n in (1, 6):  # a stale streak starts: the clock runs ahead of the candles
            emulator.venue.clock_skew_s = behind * 3600
        if n in (4, 8):  # it ends: the candles catch up (the exchange clock itself never goes back)
            emulator.venue.clock_skew_s = 0.0
            emulator.advance(behind)
        if n == 5:
            register_model(settings, train_small_booster(spec, xrp_1h, rounds=9), spec.to_json())

    trade(session, emulator, 10, weather)
    assert not session.engine.halted
    stale = receiver.titled("stale market data")
    assert len(stale) == 2 and all(a["type"] == "warning" for a in stale)
    (reload,) = receiver.titled("model v1 → v2")
    assert reload["type"] == "info" and session.model_version == 2


def test_a_lost_addorder_answer_alerts_how_the_lookup_settled_it(  # type: ignore[no-untyped-def]
        settings: Settings, emulator, kraken_client, receiver) -> None:
    always_long = PARAMS.trade.model_copy(update={"enter_threshold": 0.0, "exit_threshold": -1.0})
    session = open_session(params().model_copy(update={"trade": always_long}), settings, kraken_client,
                           alerter=Alerter([receiver.url]))
    emulator.add_fault(Fault("AddOrder", "drop_response"))  # the order is placed; its answer never comes
    trade(session, emulator, 4)
    (alert,) = receiver.titled("answer lost")
    client_id = alert["title"].split("order ")[1].split(":")[0]
    record = session.broker.ledger.intent(client_id)
    assert record is not None and record.status in ("sent", "filled")
    assert alert["type"] == "warning" and "found on the exchange by its cl_ord_id and not resent" in alert["message"]
    assert record.txid and record.txid in alert["message"]
    sent = [o for o in emulator.venue.orders.values() if o.cl_ord_id == record.intent.client_id]
    assert len(sent) == 1  # looked up, never resent
