"""Alerts: the pure policy and redaction, and the Alerter against a real local HTTP receiver (Apprise json://)."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from core.alerts import (
    Alert,
    Alerter,
    AlertPolicy,
    SendHistory,
    alerter_from_settings,
    decide,
    describe_url,
    redact,
    settings_secrets,
    url_passwords,
    with_suppressed_note,
    with_timeouts,
)
from core.settings import Settings

LOGGER = "krakenflow.alerts"


class Receiver(ThreadingHTTPServer):
    """Records every JSON body POSTed to it; answers `status`."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Record)
        self.bodies: list[dict[str, Any]] = []
        self.paths: list[str] = []
        self.status = 200

    def url(self, path: str = "alerts") -> str:
        return f"json://127.0.0.1:{self.server_address[1]}/{path}"

    @property
    def titles(self) -> list[str]:
        return [body["title"] for body in self.bodies]


class _Record(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        self.server.bodies.append(json.loads(self.rfile.read(length)))
        self.server.paths.append(self.path)
        self.send_response(self.server.status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def dead_url() -> str:
    """A loopback port nobody listens on (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"json://127.0.0.1:{port}/alerts"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def warning(title: str, body: str = "body", kind: str = "drift") -> Alert:
    return Alert(kind=kind, severity="warning", title=title, body=body)


def alerts_records(caplog: pytest.LogCaptureFixture, text: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == LOGGER and text in r.getMessage()]


# ---- the pure policy -----------------------------------------------------------------------------------------

POLICY = AlertPolicy(dedupe_seconds=600, max_per_hour=3)


def test_first_alert_is_sent_and_recorded() -> None:
    decision = decide(SendHistory(), "halt:x", "warning", 100.0, POLICY)
    assert decision.verdict == "send" and decision.suppressed_before == 0
    assert decision.history.sent == {"halt:x": (100.0,)}


def test_same_key_within_the_window_is_a_duplicate_and_counted_for_the_next_send() -> None:
    history = decide(SendHistory(), "k", "warning", 0.0, POLICY).history
    for now in (10.0, 599.0):
        decision = decide(history, "k", "warning", now, POLICY)
        assert decision.verdict == "duplicate"
        history = decision.history
    assert history.suppressed == {"k": 2}
    later = decide(history, "k", "warning", 600.0, POLICY)
    assert later.verdict == "send" and later.suppressed_before == 2 and later.history.suppressed == {}


def test_another_key_is_not_a_duplicate() -> None:
    history = decide(SendHistory(), "a", "info", 0.0, POLICY).history
    assert decide(history, "b", "info", 1.0, POLICY).verdict == "send"


def test_more_than_max_per_hour_over_all_keys_is_rate_limited_until_the_hour_has_passed() -> None:
    history = SendHistory()
    for i, now in enumerate((0.0, 1.0, 2.0)):
        decision = decide(history, f"k{i}", "warning", now, POLICY)
        assert decision.verdict == "send"
        history = decision.history
    limited = decide(history, "k9", "info", 3.0, POLICY)
    assert limited.verdict == "rate_limited" and limited.history.suppressed == {"k9": 1}
    assert decide(limited.history, "k9", "info", 3599.0, POLICY).verdict == "rate_limited"
    again = decide(limited.history, "k9", "info", 3600.5, POLICY)  # the first send left the hour
    assert again.verdict == "send" and again.suppressed_before == 1


def test_critical_alerts_are_never_rate_limited_but_still_deduplicated() -> None:
    history = SendHistory(sent={"a": (0.0,), "b": (1.0,), "c": (2.0,)})
    decision = decide(history, "kill", "critical", 3.0, POLICY)
    assert decision.verdict == "send"
    assert decide(decision.history, "kill", "critical", 4.0, POLICY).verdict == "duplicate"


def test_history_keeps_only_what_the_policy_can_still_need() -> None:
    history = SendHistory(sent={"old": (0.0,), "k": (10.0, 5000.0)})
    assert decide(history, "new", "info", 5000.0, POLICY).history.sent == {"k": (5000.0,), "new": (5000.0,)}


def test_suppressed_note_only_when_something_was_suppressed() -> None:
    assert with_suppressed_note("body", 0) == "body"
    assert with_suppressed_note("body", 3) == "body\n(3 similar suppressed)"


def test_alert_default_dedupe_key_is_kind_and_title_and_severity_is_checked() -> None:
    assert warning("t", kind="halt").key == "halt:t"
    assert Alert("halt", "critical", "t", "b", dedupe_key="halt").key == "halt"
    with pytest.raises(ValueError, match="severity must be one of info, warning, critical"):
        Alert("halt", "fatal", "t", "b")  # type: ignore[arg-type]


# ---- redaction (pure) ------------------------------------------------------------------------------------------

def test_redact_replaces_every_secret_longest_first() -> None:
    text = "key=abc123 secret=abc123xyz again abc123"
    assert redact(text, ["abc123", "abc123xyz", ""]) == "key=*** secret=*** again ***"


def test_redact_hides_passwords_in_any_url_even_unknown_ones() -> None:
    text = "ledger postgresql://trader:s3cr%40t@db:5432/ledger failed; mlflow http://u:p@ss@mlflow/ and mailto a@b.c"
    assert redact(text, []) == ("ledger postgresql://trader:***@db:5432/ledger failed; mlflow http://u:***@mlflow/ "
                                "and mailto a@b.c")
    assert redact("postgresql://trader@db/ledger", []) == "postgresql://trader@db/ledger"


def test_url_passwords_as_written_and_decoded() -> None:
    assert url_passwords("postgresql://u:p%40w@host/db") == ("p%40w", "p@w")
    assert url_passwords("postgresql://u@host/db") == ()
    assert url_passwords("http://[::1") == ()


def test_settings_secrets_cover_keys_url_passwords_and_alert_urls(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, kraken_key=SecretStr("key-canary"), kraken_secret=SecretStr("secret-canary"),
                        ledger_url="postgresql://u:pw-canary@host/db", alert_urls=["json://h.example.org/tok"])
    secrets = settings_secrets(settings)
    assert {"key-canary", "secret-canary", "pw-canary", "json://h.example.org/tok"} <= set(secrets)


def test_describe_url_names_scheme_and_network_host_never_tokens() -> None:
    assert describe_url(2, "json://hooks.example.com:8080/secret-path?token=abc") == "#2 json://hooks.example.com"
    assert describe_url(1, "tgram://123456789:AAHtoken/chat") == "#1 tgram://…"
    assert describe_url(3, "discord://webhook-id/webhook-token") == "#3 discord://…"
    assert describe_url(4, "not a url") == "#4 ?://…"


def test_with_timeouts_adds_connect_and_read_timeouts_unless_given() -> None:
    assert with_timeouts("json://h/p", 2.0) == "json://h/p?cto=2&rto=2"
    assert with_timeouts("json://h/p?cto=9", 1.5) == "json://h/p?cto=9&rto=1.5"
    assert with_timeouts("json://h/p?cto=9&rto=9", 1.5) == "json://h/p?cto=9&rto=9"


# ---- the Alerter against a real receiver -----------------------------------------------------------------------

def test_an_alert_reaches_the_receiver_with_title_body_and_type(receiver: Receiver) -> None:
    alerter = Alerter([receiver.url("hook")])
    outcome = alerter.send(Alert("kill_switch", "critical", "Kill switch: drawdown 15.2 %", "trading stopped"))
    assert outcome == "delivered"
    assert len(receiver.bodies) == 1 and receiver.paths[0].startswith("/hook")
    body = receiver.bodies[0]
    assert body["title"] == "Kill switch: drawdown 15.2 %" and body["message"] == "trading stopped"
    assert body["type"] == "failure"


def test_a_duplicate_is_not_delivered_and_the_next_one_says_how_many_were_suppressed(receiver: Receiver) -> None:
    clock = Clock()
    alerter = Alerter([receiver.url()], policy=AlertPolicy(dedupe_seconds=600), clock=clock)
    alert = Alert("failed_polls", "warning", "3 failed polls", "Kraken EService:Unavailable")
    assert alerter.send(alert) == "delivered"
    clock.now += 60
    assert alerter.send(alert) == "duplicate"
    assert alerter.send(alert) == "duplicate"
    assert len(receiver.bodies) == 1
    clock.now += 600
    assert alerter.send(alert) == "delivered"
    assert [b["message"] for b in receiver.bodies] == ["Kraken EService:Unavailable",
                                                       "Kraken EService:Unavailable\n(2 similar suppressed)"]


def test_rate_limiting_caps_deliveries(receiver: Receiver) -> None:
    alerter = Alerter([receiver.url()], policy=AlertPolicy(max_per_hour=3), clock=Clock())
    outcomes = [alerter.send(warning(f"drift on feature {i}")) for i in range(6)]
    assert outcomes == ["delivered"] * 3 + ["rate_limited"] * 3
    assert receiver.titles == ["drift on feature 0", "drift on feature 1", "drift on feature 2"]
    assert alerter.send(Alert("kill_switch", "critical", "Kill switch", "stopped")) == "delivered"


def test_a_secret_in_the_settings_never_reaches_the_receiver_or_the_logs(receiver: Receiver, tmp_path: Path,
                                                                         caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    settings = Settings(home=tmp_path, kraken_key=SecretStr("KEY-canary-1"),
                        kraken_secret=SecretStr("c2VjcmV0LWNhbmFyeQ=="), ledger_url="postgresql://trader:pw-canary-2@db/ledger",
                        alert_urls=[receiver.url("hook-token-canary-3")])
    alerter = alerter_from_settings(settings)
    alerter.send(Alert("flow_failed", "critical", "flow failed with key KEY-canary-1",
                       "ccxt said secret=c2VjcmV0LWNhbmFyeQ== while connecting to postgresql://trader:pw-canary-2@db/ledger"
                       f" and {receiver.url('hook-token-canary-3')}"))
    assert len(receiver.bodies) == 1
    delivered = json.dumps(receiver.bodies)
    assert "***" in delivered
    # urllib3 logs every request's path at DEBUG, for every HTTP client in the process: not ours to silence
    logged = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith("urllib3"))
    assert [r for r in caplog.records if r.name.startswith("urllib3")]  # the filter above does filter something
    for canary in ("KEY-canary-1", "c2VjcmV0LWNhbmFyeQ", "pw-canary-2", "hook-token-canary-3"):
        assert canary not in delivered
        assert canary not in logged
    assert "postgresql://trader:***@db/ledger" in receiver.bodies[0]["message"]
    assert alerts_records(caplog, "flow failed with key ***")


def test_a_malformed_url_is_logged_once_and_the_other_url_still_receives(receiver: Receiver,
                                                                         caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    alerter = Alerter(["nosuchservice://token-canary/x", receiver.url()], clock=Clock())
    assert alerter.send(warning("first")) == alerter.send(warning("second")) == "delivered"
    assert receiver.titles == ["first", "second"]
    malformed = alerts_records(caplog, "not a valid Apprise URL")
    assert [r.getMessage().split(" is ")[0] for r in malformed] == ["alert URL #1 nosuchservice://…"]
    assert malformed[0].levelno == logging.ERROR
    assert "token-canary" not in caplog.text
    assert alerter.receivers == ("#2 json://127.0.0.1",)


def test_an_unreachable_receiver_does_not_raise_and_is_logged_once(dead_url: str, receiver: Receiver,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    alerter = Alerter([dead_url, receiver.url()], clock=Clock())
    outcomes = [alerter.send(warning(f"alert {i}")) for i in range(3)]
    assert outcomes == ["delivered"] * 3 and len(receiver.bodies) == 3
    unreachable = alerts_records(caplog, "is unreachable")
    assert len(unreachable) == 1 and unreachable[0].levelno == logging.WARNING
    assert unreachable[0].getMessage().startswith("alert receiver #1 json://127.0.0.1 ")
    assert Alerter([dead_url]).send(warning("nobody hears")) == "undelivered"


def test_a_failure_streak_is_logged_once_and_a_new_streak_again(receiver: Receiver,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    alerter = Alerter([receiver.url()], clock=Clock())
    receiver.status = 500
    assert [alerter.send(warning(f"a{i}")) for i in range(3)] == ["undelivered"] * 3
    receiver.status = 200
    assert alerter.send(warning("b")) == "delivered"
    receiver.status = 503
    assert alerter.send(warning("c")) == "undelivered"
    assert len(alerts_records(caplog, "is unreachable or refused")) == 2
    assert len(alerts_records(caplog, "delivers again")) == 1
    assert len(receiver.bodies) == 5  # each was attempted: the receiver saw them, it just said no


def test_a_receiver_that_never_answers_stalls_a_send_only_for_the_timeout() -> None:
    with socket.socket() as silent:  # accepts connections (kernel backlog) but never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        alerter = Alerter([f"json://127.0.0.1:{silent.getsockname()[1]}/x"], timeout_s=0.3)
        started = time.monotonic()
        assert alerter.send(warning("into the void")) == "undelivered"
        assert time.monotonic() - started < 2.0


def test_without_urls_every_alert_is_only_logged_at_its_severity(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    alerter = Alerter()
    halt = Alert("halt", "critical", "halted", "exchange clock went backwards")
    assert [alerter.send(halt), alerter.send(halt), alerter.send(warning("drift"))] == ["log_only"] * 3
    assert alerter.send(Alert("model_promoted", "info", "v12 is champion", "p=0.01")) == "log_only"
    records = [r for r in caplog.records if r.name == LOGGER]
    assert [(r.levelno, r.getMessage()) for r in records] == [
        (logging.CRITICAL, "[halt] halted: exchange clock went backwards"),
        (logging.CRITICAL, "[halt] halted: exchange clock went backwards"),
        (logging.WARNING, "[drift] drift: body"),
        (logging.INFO, "[model_promoted] v12 is champion: p=0.01"),
    ]
    assert not [r for r in caplog.records if r.name.startswith("apprise")]


def test_concurrent_senders_deliver_a_duplicate_once(receiver: Receiver) -> None:
    alerter = Alerter([receiver.url()], clock=Clock())
    alert = Alert("stale_data", "warning", "XRP/USD stale", "last candle 3 h old")
    barrier = threading.Barrier(8)
    outcomes: list[str] = []

    def send() -> None:
        barrier.wait()
        outcomes.append(alerter.send(alert))

    threads = [threading.Thread(target=send) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["delivered"] + ["duplicate"] * 7 and len(receiver.bodies) == 1


# ---- settings ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("env", "urls"), [
    ("json://a json://b", ["json://a", "json://b"]),
    ("json://a,json://b", ["json://a", "json://b"]),
    (" json://a ,  json://b, ", ["json://a", "json://b"]),
    ("mailto://u:p@x.org?to=a@x.org,b@x.org json://c", ["mailto://u:p@x.org?to=a@x.org,b@x.org", "json://c"]),
    ("", []),
])
def test_alert_urls_from_the_environment(env: str, urls: list[str], tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KRAKENFLOW_ALERT_URLS", env)
    assert Settings(home=tmp_path).alert_urls == urls


def test_no_alert_urls_by_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KRAKENFLOW_ALERT_URLS", raising=False)
    assert Settings(home=tmp_path).alert_urls == []
