"""The trader's /metrics (trader.telemetry) scraped over loopback from a real live session trading on the Kraken
emulator, with exchange faults injected: counters only rise, events are counted where they happen, the model
is an `_info` series, histograms fill, and each trader keeps its own registry."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr
from tests_support import EMULATOR_KEY, EMULATOR_SECRET
from trader_helpers import PARAMS, register_model

from core.alerts import Alerter
from core.params import Params
from core.settings import Settings
from features.spec import spec_from_params
from market.emulator.faults import Fault
from market.emulator.server import EmulatorHandle, free_port
from market.kraken import KrakenClient, make_exchange
from trader.service import LiveSession, StopFlag, open_session, run, serve_status
from trader.telemetry import TraderTelemetry

SPEC = spec_from_params(PARAMS.features)
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]




def trading_params(median: float) -> Params:
    """Thresholds at the model's median (it trades often); reconcile on every poll."""
    return PARAMS.model_copy(update={
        "trade": PARAMS.trade.model_copy(update={"enter_threshold": median, "exit_threshold": median}),
        "risk": PARAMS.risk.model_copy(update={"max_orders_per_minute": 1000}),
        "live": PARAMS.live.model_copy(update={"dead_man_s": 0, "reconcile_every_s": 0}),
    })


def live_session(tmp_path: Path, emu: EmulatorHandle, booster_and_median: tuple[Any, float], mlflow_template: Path,
                 alerter: Alerter | None = None) -> LiveSession:
    booster, median = booster_and_median
    shutil.copy(mlflow_template, tmp_path / "mlflow.db")
    settings = Settings(state_dir=tmp_path, kraken_url=emu.url, kraken_key=SecretStr(EMULATOR_KEY),
                        kraken_secret=SecretStr(EMULATOR_SECRET), ledger_url=f"sqlite:///{tmp_path / 'ledger.db'}")
    register_model(settings, booster, SPEC.to_json())
    client = KrakenClient(make_exchange(emu.url, EMULATOR_KEY, EMULATOR_SECRET, timeout_ms=1_500, throttle=False))
    return open_session(trading_params(median), settings, client, alerter=alerter)


def scrape(port: int) -> Samples:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(samples: Samples, metric: str, **labels: str) -> float:
    return samples.get((metric, tuple(sorted(labels.items()))), float("nan"))


def rising(samples: Samples) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The samples Prometheus treats as counters: `_total`, and a histogram's buckets, count and sum."""
    return {key: v for key, v in samples.items() if key[0].endswith(("_total", "_bucket", "_count", "_sum"))}


def test_a_live_run_counts_its_events_and_no_counter_ever_falls(fast_emulator, booster_and_median, tmp_path,  # type: ignore[no-untyped-def]
                                                                 mlflow_template) -> None:
    emu = fast_emulator
    session = live_session(tmp_path, emu, booster_and_median, mlflow_template, alerter=Alerter())  # log only
    port = free_port()
    serve_status(session, "127.0.0.1", port)
    scrapes: dict[int, Samples] = {}

    def after(n: int) -> None:
        if n in (4, 9, 14, 16):
            scrapes[n] = scrape(port)
        if n == 4:  # the next five polls are refused by Kraken's rate limit (not retried: each fails at once)
            emu.add_fault(Fault("Time", "kraken_error", error="EAPI:Rate limit exceeded", times=5))
        if n == 9:  # one 5xx, retried inside the poll: an error counted, the poll still good
            emu.add_fault(Fault("Time", "http_status", status=503, times=1))
        if n == 14:  # coins appear on the account behind the ledger's back: the next reconciliation adjusts
            account = emu.venue.account(EMULATOR_KEY)
            account["XXRP"] = account.get("XXRP", 0.0) + 1.0
        emu.advance(1)

    run(session, 0, max_polls=16, after_poll=after, stop=StopFlag())
    first, failing, recovered, last = scrapes[4], scrapes[9], scrapes[14], scrapes[16]

    for earlier, later in ((first, failing), (failing, recovered), (recovered, last)):
        fell = {key: (v, later.get(key)) for key, v in rising(earlier).items() if not later.get(key, -1) >= v}
        assert not fell, f"counters fell or vanished between scrapes: {fell}"

    info = {dict(labels)["version"]: v for (name, labels), v in last.items() if name == "krakenflow_model_info"}
    assert info == {str(session.model_version): 1.0}
    assert value(last, "krakenflow_model_info", name="krakenflow", version=str(session.model_version),
                 spec_hash=session.engine.spec.hash) == 1.0
    assert value(last, "krakenflow_session_info", mode="live", session=session.session_id) == 1.0

    assert value(failing, "krakenflow_exchange_errors_total", code="EAPI:Rate limit exceeded") == 5
    assert value(failing, "krakenflow_poll_duration_seconds_count", outcome="failed") == 5
    assert value(failing, "krakenflow_failed_polls_in_a_row") == 5 and value(failing, "krakenflow_healthy") == 0
    assert value(failing, "krakenflow_alerts_total", kind="failed_polls", severity="warning", outcome="log_only") == 1
    assert value(recovered, "krakenflow_exchange_errors_total", code="ExchangeNotAvailable") == 1
    assert value(recovered, "krakenflow_healthy") == 1 and value(recovered, "krakenflow_failed_polls_in_a_row") == 0
    assert value(last, "krakenflow_poll_duration_seconds_count", outcome="ok") == 11
    assert value(last, "krakenflow_poll_duration_seconds_bucket", outcome="ok", le="+Inf") == 11

    assert value(last, "krakenflow_reconciliations_total", outcome="ok") >= 10
    assert value(last, "krakenflow_reconciliations_total", outcome="adjusted") == 1
    assert value(last, "krakenflow_reconcile_differences_total", pair="XRP/USD") == 1
    assert value(last, "krakenflow_alerts_total", kind="reconcile_adjusted", severity="warning",
                 outcome="log_only") == 1

    ledger = session.broker.ledger
    fills = ledger.fills()
    assert value(last, "krakenflow_fills_total") == len(fills) > 0
    assert value(last, "krakenflow_fees_usd_total") == pytest.approx(sum(f.fee for f in fills))
    assert value(last, "krakenflow_fees_usd_total") > value(first, "krakenflow_fees_usd_total") >= 0
    intents = ledger.counts()["intents"]
    assert value(last, "krakenflow_orders_sent_total") == sum(intents.values()) >= value(
        last, "krakenflow_orders_filled_total") == intents.get("filled", 0) > 0
    assert value(last, "krakenflow_decision_latency_seconds_count") > 0
    assert value(last, "krakenflow_decision_latency_seconds_sum") >= 0

    assert value(last, "krakenflow_equity_usd") == pytest.approx(session.last_equity)
    assert value(last, "krakenflow_pnl_usd", since="session_start") == pytest.approx(
        session.last_equity - (value(first, "krakenflow_equity_usd") - value(first, "krakenflow_pnl_usd",
                                                                             since="session_start")))
    assert 0 <= value(last, "krakenflow_drawdown_ratio") < value(last, "krakenflow_max_drawdown_ratio") == \
        PARAMS.risk.max_drawdown
    assert value(last, "krakenflow_halted") == 0
    assert value(last, "process_cpu_seconds_total") > 0 and value(last, "process_resident_memory_bytes") > 0

    session.engine.halted = "ledger differs from the exchange by 99.00 USD"
    halted = scrape(port)
    assert value(halted, "krakenflow_halted") == 1 and value(halted, "krakenflow_healthy") == 0


def test_ccxt_rate_limit_pauses_are_counted_with_the_seconds_waited(emulator) -> None:  # type: ignore[no-untyped-def]
    exchange = make_exchange(emulator.url, throttle=True)
    exchange.rateLimit = 200  # ms between calls (Kraken's public budget is about one a second)
    client, telemetry = KrakenClient(exchange), TraderTelemetry()
    client.observe(telemetry)
    for _ in range(3):
        client.server_time_ms()
    waits = telemetry.registry.get_sample_value("krakenflow_rate_limit_waits_total")
    waited = telemetry.registry.get_sample_value("krakenflow_rate_limit_wait_seconds_total")
    assert waits == 2, "the first call goes at once, the next two wait for their turn"
    assert waited is not None and 0.2 < waited < 1.0


def test_each_trader_keeps_its_own_registry(emulator) -> None:  # type: ignore[no-untyped-def]
    one, other = TraderTelemetry(), TraderTelemetry()
    client = KrakenClient(make_exchange(emulator.url, throttle=False))
    client.observe(one)
    emulator.add_fault(Fault("Time", "kraken_error", error="EGeneral:Invalid arguments", times=1))
    with pytest.raises(Exception, match="Invalid arguments"):
        client.server_time_ms()
    assert one.registry.get_sample_value("krakenflow_exchange_errors_total",
                                         {"code": "EGeneral:Invalid arguments"}) == 1
    assert other.registry.get_sample_value("krakenflow_exchange_errors_total",
                                           {"code": "EGeneral:Invalid arguments"}) is None
