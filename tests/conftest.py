"""Shared test setup: no internet (pytest-socket, loopback allowed), no telemetry, isolated state."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pandas as pd
import pytest

os.environ["PREFECT_HOME"] = tempfile.mkdtemp(prefix="krakenflow-test-prefect-")  # never the user's home
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ["GX_ANALYTICS_ENABLED"] = "false"
os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
os.environ["DO_NOT_TRACK"] = "true"
os.environ["COLUMNS"] = "200"  # Rich wraps at the terminal's width: the same lines under a TTY, CI and xdist

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "data" / "sample"


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def xrp_1h() -> pd.DataFrame:
    """Real Binance XRP/USDT hourly candles bundled in data/sample (see PROVENANCE.md)."""
    return pd.read_parquet(SAMPLE / "binance" / "XRP_USDT-1h.parquet")


@pytest.fixture(scope="session")
def doge_1h() -> pd.DataFrame:
    return pd.read_parquet(SAMPLE / "binance" / "DOGE_USDT-1h.parquet")


@pytest.fixture(scope="session")
def mlflow_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty MLflow sqlite database with its schema migrated: copying it into a test's home saves the
    ~2 s of MLflow's own migrations per test (the copy is an ordinary, untouched MLflow database)."""
    from models import registry

    db = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    registry.configure(f"sqlite:///{db}")
    registry.alias_version("none", "champion")  # first use creates and migrates the schema
    return db


@pytest.fixture
def krakenflow_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private KRAKENFLOW_STATE_DIR (MLflow sqlite, ledger, Prefect home) for one test."""
    state = tmp_path / "home"
    monkeypatch.setenv("KRAKENFLOW_STATE_DIR", str(state))
    return state


from tests_support import EMULATOR_KEY, EMULATOR_SECRET, AlertReceiver  # noqa: E402


@pytest.fixture
def alert_receiver(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """A local HTTP receiver for alerts, set as KRAKENFLOW_ALERT_URLS for this test."""
    with AlertReceiver() as receiver:
        monkeypatch.setenv("KRAKENFLOW_ALERT_URLS", receiver.url)
        yield receiver


@pytest.fixture
def emulator():  # type: ignore[no-untyped-def]
    """A real Kraken emulator on a free loopback port, replaying the bundled real candles, with one
    trade-only test key. Manual clock: tests advance it with `emulator.advance(n)`."""
    from market.emulator.server import running_emulator

    with running_emulator() as handle:
        handle.add_key(EMULATOR_KEY, EMULATOR_SECRET)
        yield handle


@pytest.fixture
def kraken_client(emulator):  # type: ignore[no-untyped-def]
    from market.kraken import KrakenClient, make_exchange

    return KrakenClient(make_exchange(emulator.url, EMULATOR_KEY, EMULATOR_SECRET, timeout_ms=2_000, throttle=False))
