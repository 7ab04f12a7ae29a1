"""The training pipeline as a Prefect flow: prepare → featurize → train → evaluate → register → promote."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact

from core.params import load_params
from core.settings import Settings
from pipeline import stages
from pipeline.paths import DataPaths


@task(name="prepare (import + quality gate)")
def prepare_task(params_file: str, data_dir: str) -> list[dict[str, Any]]:
    params = load_params(params_file)
    return [asdict(p) for p in stages.prepare(params, DataPaths(Path(data_dir)))]


@task(name="featurize")
def featurize_task(params_file: str, data_dir: str) -> dict[str, int]:
    return stages.featurize(load_params(params_file), DataPaths(Path(data_dir)))


@task(name="train")
def train_task(params_file: str, data_dir: str) -> dict[str, Any]:
    return stages.train(load_params(params_file), DataPaths(Path(data_dir)))


@task(name="evaluate (trader backtest on holdout)")
def evaluate_task(params_file: str, data_dir: str) -> dict[str, float]:
    return stages.evaluate_model(load_params(params_file), DataPaths(Path(data_dir)))


@task(name="register (MLflow, alias challenger)")
def register_task(params_file: str, data_dir: str) -> int:
    return stages.register(load_params(params_file), DataPaths(Path(data_dir)), Settings())


@task(name="promote (alias champion)")
def promote_task(params_file: str, version: int) -> dict[str, Any]:
    return asdict(stages.promote(load_params(params_file), Settings(), version))


def _markdown(prepared: list[dict[str, Any]], metrics: dict[str, float], promotion: dict[str, Any]) -> str:
    rows = "\n".join(f"| {p['pair']} | {p['rows']} | {p['first']} | {p['last']} |" for p in prepared)
    return (
        "# krakenflow pipeline\n\n| pair | candles | first | last |\n|---|---:|---|---|\n" + rows
        + f"\n\nHoldout AUC {metrics.get('holdout_auc', float('nan')):.3f}, "
        f"net return {metrics.get('holdout_net_return', 0.0):+.2%} "
        f"(buy & hold {metrics.get('baseline_buy_and_hold_return', 0.0):+.2%}).\n\n"
        f"Promotion: **{promotion['decision']}** — {promotion['reason']} (champion v{promotion['champion']}).\n"
    )


@flow(name="krakenflow-pipeline", log_prints=True)
def pipeline_flow(params_file: str = "params.yaml", data_dir: str = "data") -> dict[str, Any]:
    prepared = prepare_task(params_file, data_dir)
    featurize_task(params_file, data_dir)
    train_metrics = train_task(params_file, data_dir)
    metrics = evaluate_task(params_file, data_dir)
    version = register_task(params_file, data_dir)
    promotion = promote_task(params_file, version)
    create_markdown_artifact(_markdown(prepared, metrics, promotion), key="krakenflow-pipeline")
    return {"prepared": prepared, "train": train_metrics, "metrics": metrics, "version": version,
            "promotion": promotion}
