"""Scheduling that fires: `krakenflow server` (a real `prefect server start`) plus `krakenflow serve` (the
worker), with params.yaml `schedules:` putting validate-hourly on a 10 s interval. The scheduler alone creates
its runs and the worker alone runs them to COMPLETED — on SQLite and on the local PostgreSQL."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pandas as pd
import pytest
import yaml

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
DEPLOYMENT = "validate-hourly"
KRAKENFLOW = [sys.executable, "-c", "from cli.app import main; main()"]


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


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(tmp: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "KRAKENFLOW_"))}
    return env | {"KRAKENFLOW_STATE_DIR": str(tmp / "state"), "KRAKENFLOW_DATA_DIR": str(tmp / "data"),
                  "COLUMNS": "200", "PYTHONUNBUFFERED": "1"} | extra


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM its whole process group (the server's or the worker's flow-run children too), then SIGKILL."""
    for sig, wait_s in ((signal.SIGTERM, 15), (signal.SIGKILL, 10)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=wait_s)
            return


@contextlib.contextmanager
def _started(args: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        process = subprocess.Popen(args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        yield process
    finally:
        _stop(process)


def _wait(what: str, check: object, timeout: float, *logs: Path) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            found = check()  # type: ignore[operator]
            if found:
                return found
        time.sleep(1)
    tails = "\n".join(f"--- {log.name}:\n{log.read_text(errors='replace')[-3000:]}" for log in logs)
    pytest.fail(f"{what} within {timeout:.0f} s\n{tails}")


def _runs(api: str) -> list[dict]:
    body = {"deployments": {"name": {"any_": [DEPLOYMENT]}}}
    response = httpx.post(f"{api}/flow_runs/filter", json=body, timeout=10)
    response.raise_for_status()
    return list(response.json())


def _deployments(api: str) -> dict[str, dict]:
    response = httpx.post(f"{api}/deployments/filter", json={}, timeout=10)
    response.raise_for_status()
    return {d["name"]: d for d in response.json()}


def _scheduled_runs_complete(tmp: Path, **server_env: str) -> None:
    params, port = _project(tmp), _free_port()
    api = f"http://127.0.0.1:{port}/api"
    server_log, worker_log = tmp / "server.log", tmp / "worker.log"
    fast_scheduler = {"PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "2",
                      "PREFECT_SERVER_SERVICES_SCHEDULER_RECENT_DEPLOYMENTS_LOOP_SECONDS": "2"}
    with _started([*KRAKENFLOW, "server", "--port", str(port)], _env(tmp, **fast_scheduler, **server_env),
                  server_log):
        _wait("the Prefect server answered /health", lambda: httpx.get(f"{api}/health", timeout=2).is_success,
              60, server_log)
        printed = server_log.read_text()
        assert f"Prefect UI: http://127.0.0.1:{port}" in printed and f"export PREFECT_API_URL={api}" in printed
        worker_env = _env(tmp, PREFECT_API_URL=api, PREFECT_RUNNER_POLL_FREQUENCY="2")
        with _started([*KRAKENFLOW, "serve", "--params", str(params)], worker_env, worker_log):
            done = _wait("a scheduled validate-hourly run reached COMPLETED",
                         lambda: [r for r in _runs(api) if r["state_type"] == "COMPLETED"], 75,
                         server_log, worker_log)
            deployments = _deployments(api)
    assert all(run["auto_scheduled"] for run in done)  # type: ignore[union-attr]  # the scheduler made them
    assert deployments[DEPLOYMENT]["schedules"][0]["schedule"]["interval"] == 10
    assert {name for name, d in deployments.items() if d["schedules"]} == {DEPLOYMENT}
    assert len(deployments) == 7
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
