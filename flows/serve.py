"""Deployments on their params.yaml `schedules:`, served by one long-running process (`krakenflow serve`), and
the persistent Prefect server whose scheduler creates their runs (`krakenflow server`).

Scheduled runs need that server: Prefect's temporary (ephemeral) server, which a process starts when no
PREFECT_API_URL is set, runs no scheduler, so `serve` refuses to start on one rather than wait for runs that
never come. Parameters name the project's files absolutely.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import httpx
from prefect import serve
from prefect.settings import get_current_settings

from core.params import load_params
from flows.drift import drift_flow
from flows.ingest import ingest_deployments  # ingest-5m, ingest-1h
from flows.pipeline import ab_promote_flow, pipeline_flow, retrain_flow, validate_flow
from flows.project import BY_MODULE, locate
from flows.zombies import ensure_zombie_automation, heartbeat_seconds

FLOWS: dict[str, Any] = {
    "validate-hourly": validate_flow,     # quality gate over the candle files
    "drift-hourly": drift_flow,           # Evidently check; on drift: retrain → A/B
    "retrain-weekly": retrain_flow,       # → @challenger → A/B
    "ab-promote-daily": ab_promote_flow,  # shadow A/B of @challenger vs @champion
    "pipeline-manual": pipeline_flow,     # the whole pipeline
}
"""Deployment name → flow; when each runs is params.yaml `schedules:` (core.params.SchedulesParams)."""
EXTRA_PARAMETERS: dict[str, dict[str, Any]] = {"retrain-weekly": {"promote": True}}
"""A scheduled retrain goes on to its A/B (by hand, `krakenflow retrain --no-promote` stops at @challenger)."""


RUN_LIMIT = 1
"""Flow runs this worker runs at once. The pipeline has one working copy (data/validated, data/features,
data/models, the reports): a drift-triggered retrain and the weekly one must not write it at the same time,
and an ingest between two stages would make a model's data hash lie. Ingests are short; a run that waits
shows as Late, and `krakenflow watch` alerts when one waits too long."""


class NoPrefectServer(RuntimeError):
    """No persistent Prefect server to register on; the message says how to start one and point at it."""


def build_deployments(params_file: str | None = None, data_dir: str | None = None,
                      home: str | None = None) -> list[Any]:
    project = locate(params_file, data_dir, home)
    schedules = load_params(project.params_file).schedules.by_deployment()
    return [
        flow.to_deployment(name=name, cron=schedules[name].cron, interval=schedules[name].interval,
                           parameters={**project._asdict(), **EXTRA_PARAMETERS.get(name, {})}, tags=["krakenflow"],
                           description=f"{(flow.__doc__ or flow.name).strip().splitlines()[0]} ({schedules[name]})",
                           entrypoint_type=BY_MODULE)
        for name, flow in FLOWS.items()
    ]


def server_api_url() -> str:
    """The Prefect API that `serve` registers on (PREFECT_API_URL from the environment or the Prefect profile;
    the CLI sets it from KRAKENFLOW_PREFECT_API_URL), after checking that a server answers there."""
    url = get_current_settings().api.url
    if not url:
        raise NoPrefectServer(
            "scheduled runs need a persistent Prefect server, and PREFECT_API_URL (or KRAKENFLOW_PREFECT_API_URL) "
            "names none. Without one Prefect would start a temporary server inside this process, whose scheduler "
            "never creates a run. Start the project's server in another shell, then point this one at it:\n"
            "  krakenflow server\n  export PREFECT_API_URL=http://127.0.0.1:4200/api\n  krakenflow serve")
    try:
        httpx.get(f"{url.rstrip('/')}/health", timeout=10).raise_for_status()
    except httpx.HTTPError as err:
        raise NoPrefectServer(f"no Prefect server answers at PREFECT_API_URL={url} ({err}): start it with "
                              "`krakenflow server` (or fix the URL)") from None
    return url


def serve_all(params_file: str | None = None, data_dir: str | None = None, home: str | None = None) -> None:
    """Register every deployment on the server and run its scheduled runs until Ctrl-C; the schedules stay
    active afterwards (pause_on_shutdown off), so the server keeps them (as Late runs) for the next worker.
    One run at a time (RUN_LIMIT): runs due meanwhile wait their turn. First it makes sure the server marks
    a run crashed when its heartbeats stop (flows.zombies: a run that died with a previous worker)."""
    server_api_url()
    ensure_zombie_automation(heartbeat_seconds())
    serve(*build_deployments(params_file, data_dir, home), *ingest_deployments(params_file, data_dir, home),
          pause_on_shutdown=False, limit=RUN_LIMIT)


def server_environment(prefect_home: Path) -> dict[str, str]:
    """The server's own process: its PREFECT_HOME (SQLite `prefect.db` there unless
    PREFECT_API_DATABASE_CONNECTION_URL names another database), no telemetry, and no PREFECT_API_URL of some
    other server (the UI would call it)."""
    env = {key: value for key, value in os.environ.items() if key != "PREFECT_API_URL"}
    env.update(PREFECT_HOME=str(prefect_home), PREFECT_SERVER_ANALYTICS_ENABLED="false", DO_NOT_TRACK="true")
    return env


def exec_server(prefect_home: Path, host: str, port: int) -> None:
    """Become `prefect server start` (same pid: Ctrl-C, SIGTERM and the exit code are the server's own)."""
    prefect_home.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "prefect", "server", "start", "--host", host, "--port", str(port),
            "--analytics-off"]
    sys.stdout.flush()
    os.execve(sys.executable, argv, server_environment(prefect_home))
