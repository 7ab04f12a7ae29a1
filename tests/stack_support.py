"""Processes of the real stack for tests: `krakenflow server`, `krakenflow serve`, `krakenflow trade` and
`prefect` itself as subprocesses in their own process groups (so a stop takes their children too), and
the Prefect REST API they share. Importable because pytest puts tests/ on sys.path."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[1]
KRAKENFLOW = [sys.executable, "-c", "from cli.app import main; main()"]
"""`krakenflow` from this interpreter and checkout (the console script may belong to another venv)."""
FAST_SCHEDULER = {"PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "2",
                  "PREFECT_SERVER_SERVICES_SCHEDULER_RECENT_DEPLOYMENTS_LOOP_SECONDS": "2"}
"""A Prefect server whose scheduler looks for new deployments and runs every 2 s (default 60 s)."""

T = TypeVar("T")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without any PREFECT_ or KRAKENFLOW_ setting of the person running the
    tests, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "KRAKENFLOW_"))}
    return env | {"COLUMNS": "200", "PYTHONUNBUFFERED": "1", "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                  "DO_NOT_TRACK": "true"} | extra


def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """A process in a session of its own, stdout and stderr appended to `log`."""
    with log.open("ab") as out:
        return subprocess.Popen(args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)


def stop(process: subprocess.Popen[bytes], term_wait_s: float = 15) -> None:
    """SIGTERM its whole process group (a server's or a worker's flow-run children too), then SIGKILL."""
    for sig, wait_s in ((signal.SIGTERM, term_wait_s), (signal.SIGKILL, 10.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=wait_s)
            if sig is signal.SIGTERM:
                with contextlib.suppress(ProcessLookupError):  # stragglers of the group
                    os.killpg(process.pid, signal.SIGKILL)
            return


def group_alive(process: subprocess.Popen[bytes]) -> bool:
    """Whether any process of its group is still there (the leader's children included)."""
    try:
        os.killpg(process.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def started(args: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    process = start(args, env, log)
    try:
        yield process
    finally:
        stop(process)


def tails(*logs: Path, chars: int = 3000) -> str:
    return "\n".join(f"--- {log.name}:\n{log.read_text(errors='replace')[-chars:]}" for log in logs if log.exists())


def wait_for(what: str, check: Callable[[], T | None], timeout: float, *logs: Path, every: float = 1.0) -> T:
    """`check()`'s first truthy answer (an HTTP error counts as not yet); fails with the logs' tails."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            found = check()
            if found:
                return found
        time.sleep(every)
    pytest.fail(f"{what} within {timeout:.0f} s\n{tails(*logs)}")


def healthy(api: str) -> bool:
    return httpx.get(f"{api}/health", timeout=2).is_success


def flow_runs(api: str, deployments: list[str] | None = None, **flow_run_filter: Any) -> list[dict[str, Any]]:
    """Flow runs from the Prefect REST API (all, or those of the named deployments), oldest first."""
    body: dict[str, Any] = {"sort": "EXPECTED_START_TIME_ASC", "limit": 200}
    if deployments:
        body["deployments"] = {"name": {"any_": deployments}}
    if flow_run_filter:
        body["flow_runs"] = flow_run_filter
    runs: list[dict[str, Any]] = []
    while True:
        response = httpx.post(f"{api}/flow_runs/filter", json={**body, "offset": len(runs)}, timeout=15)
        response.raise_for_status()
        page = list(response.json())
        runs += page
        if len(page) < body["limit"]:
            return runs


def deployments(api: str) -> dict[str, dict[str, Any]]:
    response = httpx.post(f"{api}/deployments/filter", json={}, timeout=10)
    response.raise_for_status()
    return {d["name"]: d for d in response.json()}
