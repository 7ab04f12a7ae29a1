"""Scheduling that fires: `krakenflow server` (a real `prefect server start`) plus `krakenflow serve` (the
worker), with params.yaml `schedules:` putting validate-hourly on a 10 s interval. The scheduler alone creates
its runs and the worker alone runs them to COMPLETED — on SQLite and on the local PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import yaml
from stack_support import (
    FAST_SCHEDULER,
    KRAKENFLOW,
    ROOT,
    clean_env,
    deployments,
    flow_runs,
    free_port,
    healthy,
    started,
    wait_for,
)

pytestmark = pytest.mark.slow

DEPLOYMENT = "validate-hourly"


def _project(tmp: Path) -> Path:
    """params.yaml on the last 300 real candles of each bundled pair; only validate-hourly scheduled, every 10 s."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    for pair, src in params["data"]["sample"].items():
        pd.read_parquet(ROOT / src).tail(300).to_parquet(tmp / Path(src).name, index=False)
        params["data"]["sample"][pair] = str(tmp / Path(src).name)
    params["schedules"] = {name: None for name in params["schedules"]} | {DEPLOYMENT: "10s"}
    path = tmp / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def _env(tmp: Path, **extra: str) -> dict[str, str]:
    return clean_env(KRAKENFLOW_STATE_DIR=str(tmp / "state"), KRAKENFLOW_DATA_DIR=str(tmp / "data"), **extra)


def _scheduled_runs_complete(tmp: Path, **server_env: str) -> None:
    params, port = _project(tmp), free_port()
    api = f"http://127.0.0.1:{port}/api"
    server_log, worker_log = tmp / "server.log", tmp / "worker.log"
    with started([*KRAKENFLOW, "server", "--port", str(port)], _env(tmp, **FAST_SCHEDULER, **server_env),
                 server_log):
        wait_for("the Prefect server answered /health", lambda: healthy(api), 60, server_log)
        printed = server_log.read_text()
        assert f"Prefect UI: http://127.0.0.1:{port}" in printed and f"export PREFECT_API_URL={api}" in printed
        worker_env = _env(tmp, PREFECT_API_URL=api, PREFECT_RUNNER_POLL_FREQUENCY="2")
        with started([*KRAKENFLOW, "serve", "--params", str(params)], worker_env, worker_log):
            done = wait_for("a scheduled validate-hourly run reached COMPLETED",
                            lambda: [r for r in flow_runs(api, [DEPLOYMENT]) if r["state_type"] == "COMPLETED"], 75,
                            server_log, worker_log)
            registered = deployments(api)
    assert all(run["auto_scheduled"] for run in done)  # the scheduler made them
    assert registered[DEPLOYMENT]["schedules"][0]["schedule"]["interval"] == 10
    assert {name for name, d in registered.items() if d["schedules"]} == {DEPLOYMENT}
    assert len(registered) == 7
    assert (tmp / "state" / "prefect").is_dir()  # the server's PREFECT_HOME is the project's state folder


def test_scheduled_runs_fire_and_complete_on_sqlite(tmp_path: Path) -> None:
    _scheduled_runs_complete(tmp_path)
    assert (tmp_path / "state" / "prefect" / "prefect.db").stat().st_size > 0


@pytest.fixture
def postgres_database() -> Iterator[str]:
    """A throw-away database on the local PostgreSQL (trust auth, user root), dropped afterwards."""
    import psycopg2

    try:
        admin = psycopg2.connect(host="127.0.0.1", port=5432, user="root", dbname="test", connect_timeout=3)
    except psycopg2.OperationalError as err:
        pytest.skip(f"the local PostgreSQL (127.0.0.1:5432, user root, db test) is not reachable: {err}")
    admin.autocommit = True
    name = f"kf_prefect_{uuid.uuid4().hex[:12]}"
    try:
        with admin.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE {name}")
        yield name
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.close()


@pytest.mark.postgres
def test_scheduled_runs_fire_and_complete_on_postgresql(tmp_path: Path, postgres_database: str) -> None:
    _scheduled_runs_complete(tmp_path, PREFECT_API_DATABASE_CONNECTION_URL=(
        f"postgresql+asyncpg://root@127.0.0.1:5432/{postgres_database}"))
