"""Training and promotion as Prefect flows. Thin: each task calls one pipeline function.

- `retrain_flow`: prepare → featurize → train → evaluate → register (alias @challenger) [→ A/B]
- `ab_promote_flow`: champion vs challenger shadow run on the same unseen candles → paired test → aliases
- `pipeline_flow`: both, as subflows (what `krakenflow flow run` and the demo run)

Every flow takes the params file, the data directory and the project home (default: Settings, i.e.
KRAKENFLOW_HOME or the project found from the current directory); relative ones are relative to the home.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from core.params import load_params
from core.settings import Settings
from flows.alerts import HOOKS
from flows.project import data_paths, locate
from pipeline import evaluate, featurize, prepare, promote, register, train


@task(name="prepare (import + quality gate)", retries=1, retry_delay_seconds=5)
def prepare_task(params_file: str, data_dir: str, home: str) -> list[dict[str, Any]]:
    return [asdict(p) for p in prepare.prepare(load_params(params_file), data_paths(data_dir, home))]


@task(name="featurize")
def featurize_task(params_file: str, data_dir: str, home: str) -> dict[str, int]:
    return featurize.featurize(load_params(params_file), data_paths(data_dir, home))


@task(name="train", timeout_seconds=3600)
def train_task(params_file: str, data_dir: str, home: str) -> dict[str, Any]:
    return train.train(load_params(params_file), data_paths(data_dir, home))


@task(name="evaluate (trader backtest on holdout)")
def evaluate_task(params_file: str, data_dir: str, home: str) -> dict[str, float]:
    return evaluate.evaluate_model(load_params(params_file), data_paths(data_dir, home))


@task(name="register (MLflow, alias challenger)", retries=2, retry_delay_seconds=5)
def register_task(params_file: str, data_dir: str, home: str) -> int:
    return register.register(load_params(params_file), data_paths(data_dir, home), Settings())


@task(name="A/B shadow run + paired test + alias move")
def ab_task(params_file: str, data_dir: str, home: str) -> dict[str, Any]:
    return promote.run_ab(load_params(params_file), data_paths(data_dir, home), Settings()).as_dict()


def _pipeline_markdown(prepared: list[dict[str, Any]], metrics: dict[str, float]) -> str:
    rows = "\n".join(f"| {p['pair']} | {p['rows']} | {p['first']} | {p['last']} | {p['summary']} |" for p in prepared)
    return (
        "# krakenflow retrain\n\n| pair | candles | first | last | quality gate |\n|---|---:|---|---|---|\n" + rows
        + f"\n\nHoldout AUC {metrics.get('holdout_auc', float('nan')):.3f}, model net return "
        f"{metrics.get('holdout_net_return', 0.0):+.2%}, "
        f"buy & hold {metrics.get('baseline_buy_and_hold_net_return', 0.0):+.2%}, always flat +0.00% (same fees).\n"
    )


@flow(name="krakenflow-validate", log_prints=True, **HOOKS)
def validate_flow(params_file: str | None = None, data_dir: str | None = None,
                  home: str | None = None) -> list[dict[str, Any]]:
    """Import every pair's candles through the quality gate (failing batches are quarantined)."""
    prepared = prepare_task(*locate(params_file, data_dir, home))
    for p in prepared:
        print(f"{p['pair']}: {p['summary']}")
    return prepared


@flow(name="krakenflow-retrain", log_prints=True, **HOOKS, flow_run_name="retrain-{data_dir}")
def retrain_flow(params_file: str | None = None, data_dir: str | None = None,
                 home: str | None = None, promote: bool = False) -> dict[str, Any]:
    """Train on the store's candles → @challenger; with `promote` (the scheduled retrain) the A/B against
    @champion follows as a subflow, so a retrain reaches the trader without a person."""
    project = locate(params_file, data_dir, home)
    prepared = prepare_task(*project)
    featurize_task(*project)
    train_metrics = train_task(*project)
    metrics = evaluate_task(*project)
    version = register_task(*project)
    create_markdown_artifact(_pipeline_markdown(prepared, metrics), key="krakenflow-retrain")
    trained = {"prepared": prepared, "train": train_metrics, "metrics": metrics, "version": version}
    if promote:
        trained["promotion"] = ab_promote_flow(*project)
    return trained


@flow(name="krakenflow-ab-promote", log_prints=True, **HOOKS)
def ab_promote_flow(params_file: str | None = None, data_dir: str | None = None,
                    home: str | None = None) -> dict[str, Any]:
    outcome = ab_task(*locate(params_file, data_dir, home))
    create_table_artifact(
        [{k: str(v) for k, v in outcome.items()}], key="krakenflow-ab-decision",
        description=f"A/B decision: {outcome['decision']} — {outcome['reason']}",
    )
    print(f"A/B: {outcome['decision']} (p={outcome['p_value']:.4g}): {outcome['reason']}")
    return outcome


@flow(name="krakenflow-pipeline", log_prints=True, **HOOKS)
def pipeline_flow(params_file: str | None = None, data_dir: str | None = None,
                  home: str | None = None) -> dict[str, Any]:
    project = locate(params_file, data_dir, home)
    trained = retrain_flow(*project)
    promotion = ab_promote_flow(*project)
    return {**trained, "promotion": promotion}
