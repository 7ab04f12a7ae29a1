"""Scheduled drift check; on drift it starts retraining and the A/B promotion, and records why."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact

from core.params import load_params
from core.settings import Settings
from flows.pipeline import ab_promote_flow, retrain_flow
from pipeline.drift import check_drift
from pipeline.paths import DataPaths


@task(name="drift report (Evidently)")
def drift_task(params_file: str, data_dir: str) -> dict[str, Any]:
    return asdict(check_drift(load_params(params_file), DataPaths(Path(data_dir)), Settings()))


@flow(name="krakenflow-drift", log_prints=True)
def drift_flow(params_file: str = "params.yaml", data_dir: str = "data", retrain_on_drift: bool = True,
               retrain_params_file: str | None = None) -> dict[str, Any]:
    verdict = drift_task(params_file, data_dir)
    drifted = bool(verdict["drifted"])
    action = "retrain → A/B" if drifted and retrain_on_drift else "none"
    create_markdown_artifact(
        f"# Drift check\n\n**{'drift' if drifted else 'no drift'}** — {verdict['reason']}\n\n"
        f"reference {verdict['n_reference']} rows, current {verdict['n_current']} rows; action: {action}\n",
        key="krakenflow-drift")
    print(f"drift: {verdict['reason']}; action: {action}")
    result: dict[str, Any] = {"drift": verdict, "action": action}
    if drifted and retrain_on_drift:
        retrain_file = retrain_params_file or params_file
        result["retrain"] = retrain_flow(retrain_file, data_dir)
        result["promotion"] = ab_promote_flow(retrain_file, data_dir)
    return result
