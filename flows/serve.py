"""Deployments with schedules, served by one long-running process (`krakenflow serve`).

Point PREFECT_API_URL (or KRAKENFLOW_PREFECT_API_URL) at a Prefect server to see and trigger them in
its UI; without it, `krakenflow serve` uses the embedded Prefect under the state folder
(KRAKENFLOW_STATE_DIR, default <project>/.krakenflow). Parameters name the project's files absolutely.
"""

from __future__ import annotations

from typing import Any

from prefect import serve

from flows.drift import drift_flow
from flows.ingest import ingest_deployments  # ingest-5m every 5 minutes, ingest-1h hourly
from flows.pipeline import ab_promote_flow, pipeline_flow, retrain_flow, validate_flow
from flows.project import locate

SCHEDULES: dict[str, tuple[Any, str | None]] = {
    "validate-hourly": (validate_flow, "5 * * * *"),      # quality gate over the candle files
    "drift-hourly": (drift_flow, "15 * * * *"),           # Evidently check; on drift: retrain → A/B
    "retrain-weekly": (retrain_flow, "0 3 * * 1"),        # Mondays 03:00 UTC → @challenger
    "ab-promote-daily": (ab_promote_flow, "30 4 * * *"),  # shadow A/B of @challenger vs @champion
    "pipeline-manual": (pipeline_flow, None),             # run from the UI or `prefect deployment run`
}


def build_deployments(params_file: str | None = None, data_dir: str | None = None,
                      home: str | None = None) -> list[Any]:
    parameters = locate(params_file, data_dir, home)._asdict()
    return [
        flow.to_deployment(name=name, cron=cron, parameters=parameters, tags=["krakenflow"],
                           description=(flow.__doc__ or flow.name).strip().splitlines()[0])
        for name, (flow, cron) in SCHEDULES.items()
    ]


def serve_all(params_file: str | None = None, data_dir: str | None = None, home: str | None = None) -> None:
    """Block and run scheduled flow runs; Ctrl-C leaves schedules active (pause_on_shutdown off)."""
    serve(*build_deployments(params_file, data_dir, home), *ingest_deployments(params_file, data_dir, home),
          pause_on_shutdown=False)
