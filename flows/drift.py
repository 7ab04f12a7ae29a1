"""Scheduled drift check; on drift it starts retraining and the A/B promotion, and records why."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact

from core.params import load_params
from core.settings import Settings
from flows.alerts import HOOKS
from flows.pipeline import retrain_flow
from flows.project import data_paths, locate
from pipeline.drift import check_drift


@task(name="drift report (Evidently)")
def drift_task(params_file: str, data_dir: str, home: str) -> dict[str, Any]:
    return asdict(check_drift(load_params(params_file), data_paths(data_dir, home), Settings()))


@flow(name="krakenflow-drift", log_prints=True, **HOOKS)
def drift_flow(params_file: str | None = None, data_dir: str | None = None, retrain_on_drift: bool = True,
               retrain_params_file: str | None = None, home: str | None = None) -> dict[str, Any]:
    params_file, data_dir, home = locate(params_file, data_dir, home)
    verdict = drift_task(params_file, data_dir, home)
    drifted = bool(verdict["drifted"])
    action = "retrain → A/B" if drifted and retrain_on_drift else "none"
    create_markdown_artifact(
        f"# Drift check\n\n**{'drift' if drifted else 'no drift'}** — {verdict['reason']}\n\n"
        f"reference {verdict['n_reference']} rows, current {verdict['n_current']} rows; action: {action}\n",
        key="krakenflow-drift")
    print(f"drift: {verdict['reason']}; action: {action}")
    result: dict[str, Any] = {"drift": verdict, "action": action}
    if drifted and retrain_on_drift:
        retrain_file = locate(retrain_params_file, data_dir, home).params_file if retrain_params_file else params_file
        result["retrain"] = retrain_flow(retrain_file, data_dir, home, promote=True)
        result["promotion"] = result["retrain"]["promotion"]
    return result
