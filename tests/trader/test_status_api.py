"""The trader's dashboard, /status, /metrics and /healthz over a real ledger filled by a real live session
against the emulator (FastAPI's TestClient, and once over a real loopback socket)."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from tests_support import EMULATOR_KEY, EMULATOR_SECRET
from trader_helpers import PARAMS, train_small_booster
from typer.testing import CliRunner

from cli.app import app as cli
from core.settings import Settings
from features.spec import spec_from_params
from market.emulator.kraken_api import RateTier
from market.emulator.server import free_port, running_emulator
from trader.api import make_app
from trader.service import LiveSession, StopFlag, live_view, open_session, run, serve_status
from trader.status import snapshot


@pytest.fixture
def emulator():  # type: ignore[no-untyped-def]
    with running_emulator(tier=RateTier(max_counter=1e9)) as handle:
        handle.add_key(EMULATOR_KEY, EMULATOR_SECRET)
        yield handle


@pytest.fixture
def traded(settings: Settings, emulator, kraken_client, xrp_1h: pd.DataFrame) -> LiveSession:  # type: ignore[no-untyped-def]
    """A live session that traded a few real candles (thresholds at the model's median: it trades)."""
    spec = spec_from_params(PARAMS.features)
    median = float(np.median(train_small_booster(spec, xrp_1h).predict(spec.batch(xrp_1h)[spec.warmup :])))
    trade = PARAMS.trade.model_copy(update={"enter_threshold": median, "exit_threshold": median})
    session = open_session(PARAMS.model_copy(update={"trade": trade}), settings, kraken_client)
    run(session, 0, max_polls=12, after_poll=lambda _: emulator.advance(1), stop=StopFlag())
    return session


def _client(session: LiveSession) -> TestClient:
    pairs = list(session.loop.pairs)
    return TestClient(make_app(lambda: snapshot(session.broker.ledger, pairs, live_view(session))))


def test_status_reports_the_ledger_and_the_running_model(traded: LiveSession) -> None:
    status = _client(traded).get("/status").json()
    ledger = traded.broker.ledger
    assert status["positions"] == {p: pytest.approx(ledger.position(p)) for p in ("XRP/USD", "DOGE/USD")}
    assert status["n_fills"] == len(ledger.fills()) > 0
    assert {d["model_version"] for d in status["decisions"]} == {traded.model_version}
    assert status["live"]["model_version"] == traded.model_version and status["live"]["equity"] > 0
    assert status["counts"]["decisions"] == Counter(action for _, _, action, _ in ledger.decisions())


def test_metrics_speak_prometheus(traded: LiveSession) -> None:
    text = _client(traded).get("/metrics").text
    buys = sum(1 for d in traded.broker.ledger.decisions() if d[2] == "buy")
    assert f'krakenflow_decisions_total{{action="buy"}} {float(buys)}' in text
    assert 'krakenflow_position{pair="XRP/USD"}' in text and "krakenflow_equity_usd" in text
    assert f"krakenflow_orders_sent_total {float(sum(traded.broker.ledger.counts()['intents'].values()))}" in text
    assert "krakenflow_halted 0.0" in text and "krakenflow_intents" not in text  # a count of statuses can fall


def test_dashboard_page_and_health_show_a_halt(traded: LiveSession) -> None:
    client = _client(traded)
    assert client.get("/healthz").status_code == 200
    page = client.get("/").text
    assert "Decisions" in page and f"v{traded.model_version}" in page and "reconcile_ok" in page
    traded.engine.halted = "ledger differs from the exchange by 99.00 USD"
    assert client.get("/healthz").status_code == 503
    assert "HALTED: ledger differs" in client.get("/").text


def test_status_is_served_over_loopback_from_inside_the_trader(traded: LiveSession) -> None:
    port = free_port()
    serve_status(traded, "127.0.0.1", port)
    for _ in range(100):
        try:
            answer = httpx.get(f"http://127.0.0.1:{port}/status", timeout=2)
            break
        except httpx.TransportError:
            time.sleep(0.05)
    assert answer.status_code == 200 and answer.json()["live"]["mode"] == "live"


def test_dashboard_command_refuses_a_missing_ledger(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["dashboard", "--ledger", str(tmp_path / "nope.db")])
    assert result.exit_code == 2 and "no ledger at" in result.output
