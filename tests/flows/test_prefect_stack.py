"""The pinned Prefect stack really works: a real `prefect server start` (API, scheduler, UI) and the CLI.

Guards the pins of prefect / SQLAlchemy / fastapi / starlette / pydantic: SQLAlchemy 2.1 breaks the
scheduler's bulk insert (no scheduled run is ever created), and a fastapi that rejects the explicit
nulls in the CLI's filter bodies turns `prefect deployment ls` & co. into HTTP 422.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from stack_support import free_port, stop

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
PREFECT = str(BIN / "prefect")
FLOW, DEPLOYMENT = "stack-probe", "every-5s"
BULK_DML_ERROR = "Can't evaluate bulk DML"

REGISTER = f"""
import asyncio
from datetime import timedelta

from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import DeploymentScheduleCreate
from prefect.client.schemas.schedules import IntervalSchedule


async def main() -> None:
    async with get_client() as client:
        flow_id = await client.create_flow_from_name({FLOW!r})
        schedule = DeploymentScheduleCreate(schedule=IntervalSchedule(interval=timedelta(seconds=5)), active=True)
        print(await client.create_deployment(flow_id=flow_id, name={DEPLOYMENT!r}, schedules=[schedule]))


asyncio.run(main())
"""


@dataclass
class Stack:
    url: str  # the API, ending in /api
    env: dict[str, str]  # for clients of that API
    log: Path
    deployment_id: str = ""
    scheduled: list[dict] = field(default_factory=list)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(args, env=self.env, capture_output=True, text=True, timeout=timeout, check=False)

    def scheduled_runs(self, wait_s: float = 30) -> list[dict]:
        """The deployment's Scheduled flow runs, waiting up to `wait_s` for the scheduler to create some."""
        deadline = time.monotonic() + wait_s
        body = {"deployments": {"id": {"any_": [self.deployment_id]}},
                "flow_runs": {"state": {"type": {"any_": ["SCHEDULED"]}}}}
        while not self.scheduled and time.monotonic() < deadline:
            response = httpx.post(f"{self.url}/flow_runs/filter", json=body, timeout=10)
            response.raise_for_status()
            self.scheduled = response.json()
            if not self.scheduled:
                time.sleep(0.5)
        return self.scheduled


def _base_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false", DO_NOT_TRACK="true",
               COLUMNS="200", PYTHONUNBUFFERED="1")
    return env


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A real `prefect server start` on a free loopback port (SQLite and PREFECT_HOME under tmp), with
    one deployment on a 5-second interval schedule registered through the Python client."""
    tmp = tmp_path_factory.mktemp("prefect-stack")
    home = tmp / "home"
    port = free_port()
    server_env = _base_env(home) | {
        "PREFECT_SERVER_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{tmp / 'prefect.db'}",
        "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "2",
        "PREFECT_SERVER_SERVICES_SCHEDULER_RECENT_DEPLOYMENTS_LOOP_SECONDS": "2",
    }
    log = tmp / "server.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port), "--scheduler",
             "--no-late-runs", "--analytics-off", "--ui"],
            env=server_env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}/api"
    stack = Stack(url=url, env=_base_env(home) | {"PREFECT_API_URL": url}, log=log)
    try:
        deadline = time.monotonic() + 60
        while True:
            if server.poll() is not None:
                pytest.fail(f"prefect server exited with {server.returncode}:\n{stack.log_text()[-4000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                pytest.fail(f"prefect server not healthy within 60 s:\n{stack.log_text()[-4000:]}")
            time.sleep(0.5)
        registered = stack.run(sys.executable, "-c", REGISTER)
        assert registered.returncode == 0, f"registering the deployment failed:\n{registered.stderr[-4000:]}"
        stack.deployment_id = registered.stdout.strip().splitlines()[-1]
        yield stack
    finally:
        stop(server)


def test_scheduler_creates_scheduled_runs(stack: Stack) -> None:
    runs = stack.scheduled_runs()
    log = stack.log_text()
    assert BULK_DML_ERROR not in log, f"the scheduler fails on every loop:\n{log[-4000:]}"
    assert runs, f"no Scheduled flow run for an every-5-s deployment within 30 s; server log:\n{log[-4000:]}"
    assert all(run["deployment_id"] == stack.deployment_id for run in runs)
    assert all(run["state"]["type"] == "SCHEDULED" for run in runs)


@pytest.mark.parametrize("command", ["deployment", "flow-run", "artifact", "work-pool"])
def test_cli_list_commands_answer(stack: Stack, command: str) -> None:
    if command == "flow-run":
        stack.scheduled_runs()  # something to list (the scheduler test says whether it came)
    result = stack.run(PREFECT, command, "ls")
    output = result.stdout + result.stderr
    assert "Unprocessable" not in output, f"`prefect {command} ls` got HTTP 422:\n{output[-4000:]}"
    assert result.returncode == 0, f"`prefect {command} ls` exited {result.returncode}:\n{output[-4000:]}"
    if command == "deployment":
        assert f"{FLOW}/{DEPLOYMENT}" in result.stdout, result.stdout
    if command == "flow-run" and stack.scheduled:
        assert FLOW in result.stdout and "SCHEDULED" in result.stdout, result.stdout


def test_ui_serves_html(stack: Stack) -> None:
    base = stack.url.removesuffix("/api")
    page = httpx.get(f"{base}/", headers={"Accept": "text/html"}, timeout=10, follow_redirects=True)
    assert page.status_code == 200, page.text[:500]
    assert "text/html" in page.headers.get("content-type", ""), page.headers
    assert "<html" in page.text.lower(), page.text[:500]
    scripts = re.findall(r'<script[^>]+src="([^"]+)"', page.text)
    assert scripts, page.text[:1000]
    bundle = httpx.get(str(page.url.join(scripts[0])), timeout=10)  # the app's JavaScript is served too
    assert bundle.status_code == 200 and bundle.content, scripts[0]
    settings = httpx.get(f"{base}/ui-settings", timeout=10)
    assert settings.status_code == 200 and "api_url" in settings.json(), settings.text[:500]


def test_watch_alerts_when_no_worker_pulls_and_when_a_run_is_stuck(stack: Stack, alert_receiver: Any) -> None:
    """`krakenflow watch` on a real server with nobody serving the deployment: its scheduled runs wait, which
    is a worker problem; a run forced into Running past the limit is stuck. Both reach the receiver."""
    import asyncio

    from prefect.client.orchestration import PrefectClient
    from prefect.states import Running

    from core.alerts import Alerter
    from flows.health import HealthLimits, Watch

    async def start_a_run() -> str:
        async with PrefectClient(stack.url) as client:
            run = await client.create_flow_run_from_deployment(stack.deployment_id)
            await client.set_flow_run_state(run.id, Running(), force=True)
            return run.name

    stuck = asyncio.run(start_a_run())
    watch = Watch(stack.url, Alerter([alert_receiver.url]), HealthLimits(late_after_s=3, stuck_after_s=2))
    deadline, found = time.monotonic() + 30, {}
    while time.monotonic() < deadline and not {f"worker:{DEPLOYMENT}", f"stuck:{stuck}"} <= set(found):
        time.sleep(1)
        found = watch.check(time.time())
    assert f"worker:{DEPLOYMENT}" in found and f"stuck:{stuck}" in found, found
    assert "no worker is pulling" in alert_receiver.wait_for("worker problem")["message"]
    assert stuck in alert_receiver.wait_for("stuck problem")["message"]
    assert watch.registry.get_sample_value("krakenflow_stack_healthy") == 0
    assert watch.registry.get_sample_value("krakenflow_stack_problems", {"kind": "stuck"}) >= 1
    assert watch.registry.get_sample_value("krakenflow_prefect_server_up") == 1


def test_watch_alerts_when_the_server_is_down(alert_receiver: Any) -> None:
    from core.alerts import Alerter
    from flows.health import Watch

    watch = Watch(f"http://127.0.0.1:{free_port()}/api", Alerter([alert_receiver.url]))
    found = watch.check(time.time())
    assert list(found) == ["server"] and "does not answer" in found["server"]
    alert = alert_receiver.wait_for("server problem")
    assert alert["type"] == "failure" and "krakenflow server" in alert["message"]
    assert watch.registry.get_sample_value("krakenflow_prefect_server_up") == 0
    assert watch.check(time.time()) == found and len(alert_receiver.bodies) == 1  # alerted once, not per probe


ZOMBIE_FLOW = """
import time

from prefect import flow


@flow(name="zombie-probe")
def zombie_probe() -> None:
    print("running", flush=True)
    time.sleep(600)


zombie_probe()
"""


def test_a_run_that_dies_with_its_worker_is_marked_crashed_and_alerted(stack: Stack, tmp_path: Path,
                                                                        alert_receiver: Any) -> None:
    """SIGKILL a flow run's process (and so its worker: nothing is left to report the end). The automation
    `krakenflow serve` keeps on the server marks the run Crashed once its heartbeats stop, and
    `krakenflow watch` alerts it (the run's own crash hook died with it)."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from core.alerts import Alerter
    from flows.health import Watch
    from flows.zombies import CRASH_MESSAGE, MISSED_BEATS, ensure_zombie_automation

    heartbeat_s = 30  # Prefect's minimum
    with temporary_settings({PREFECT_API_URL: stack.url}):
        ensure_zombie_automation(heartbeat_s)
        ensure_zombie_automation(heartbeat_s)  # a restarted worker replaces it, never adds a second
    found = httpx.post(f"{stack.url}/automations/filter", json={}, timeout=10).json()
    assert [a["trigger"]["within"] for a in found] == [MISSED_BEATS * heartbeat_s], found
    log = tmp_path / "flow.log"
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-c", ZOMBIE_FLOW], stdout=out, stderr=subprocess.STDOUT,
                                   env=stack.env | {"PREFECT_FLOWS_HEARTBEAT_FREQUENCY": str(heartbeat_s)},
                                   start_new_session=True)
    try:
        run = _wait_for_run("zombie-probe", "RUNNING", stack, 60, log)
        time.sleep(5)  # its first heartbeat event reaches the server
    finally:
        os.killpg(process.pid, signal.SIGKILL)  # no crash hook, no final state: as if the machine went down
        process.wait(timeout=10)
    crashed = _wait_for_run("zombie-probe", "CRASHED", stack, MISSED_BEATS * heartbeat_s + 90, log)
    assert crashed["id"] == run["id"] and crashed["state"]["message"].startswith(CRASH_MESSAGE), crashed["state"]
    watch = Watch(stack.url, Alerter([alert_receiver.url]))
    watch.check(time.time())
    alert = alert_receiver.wait_for("crashed: its worker died")
    assert run["id"] in alert["message"] and alert["type"] == "failure", alert
    watch.check(time.time())
    assert len([b for b in alert_receiver.bodies if "crashed" in b["title"]]) == 1  # once, not per probe
    assert watch.registry.get_sample_value("krakenflow_zombie_flow_runs_total") == 1


def _wait_for_run(flow: str, state: str, stack: Stack, wait_s: float, log: Path) -> dict[str, Any]:
    body = {"flows": {"name": {"any_": [flow]}}, "flow_runs": {"state": {"type": {"any_": [state]}}}}
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        runs = httpx.post(f"{stack.url}/flow_runs/filter", json=body, timeout=10).json()
        if runs:
            return runs[0]
        time.sleep(1)
    raise AssertionError(f"no {state} run of {flow} within {wait_s:.0f} s:\n{log.read_text()[-3000:]}")
