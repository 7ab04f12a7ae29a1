"""Job `register`: log the trained model with its lineage to MLflow and register a version. The retrain flow
aliases it @challenger (the A/B decides whether it becomes @champion); `dvc repro`/`dvc exp run` register
without an alias, so an experiment never silently becomes the next A/B's challenger (`krakenflow challenge`
nominates one by hand)."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any

import pandas as pd

from core.files import write_json
from core.params import Params
from core.settings import Settings
from models import evaluate
from pipeline.evaluate import plots_dir
from pipeline.paths import DataPaths
from pipeline.train import cv_metrics_file, load_trained


def git_sha(root: Path = Path(".")) -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def data_hash(params: Params, paths: DataPaths) -> str:
    digest = hashlib.sha256()
    for pair in params.pairs:
        digest.update(paths.validated(pair, params.data.timeframe).read_bytes())
    return digest.hexdigest()[:16]


def _flat_params(params: Params) -> dict[str, Any]:
    flat = pd.json_normalize(params.model_dump(mode="json"), sep=".").iloc[0].to_dict()
    return {str(k): json.dumps(v) if isinstance(v, list | dict) else v for k, v in flat.items()}


def register(params: Params, paths: DataPaths, settings: Settings, alias: str | None = "challenger",
             registered_by: str = "retrain") -> int:
    """Log the trained model with lineage tags to MLflow, register a version, alias it `alias` (None: no
    alias). `registered_by` (retrain, dvc) is a version tag saying which path made it."""
    from models import registry

    registry.configure(settings.tracking_uri, settings.mlflow_registry_uri)
    booster, _, spec_json = load_trained(paths)
    metrics = {k: v for k, v in json.loads(paths.metrics.read_text()).items() if isinstance(v, int | float)}
    train_metrics = json.loads(paths.train_metrics.read_text())
    tags = {
        "git_sha": git_sha(), "data_hash": data_hash(params, paths), "params_hash": params.digest()[:16],
        "train_start": train_metrics["train_start"], "train_end": train_metrics["train_end"],
        "pairs": ",".join(params.pairs), "timeframe": params.data.timeframe,
        "optuna_study": str(train_metrics.get("optuna_study", "none (optuna.n_trials = 0)")),
        "optuna_n_trials": str(int(train_metrics.get("optuna_n_trials", 1))),
        "cv": f"purged walk-forward, {params.cv.n_folds} folds, embargo {params.cv.embargo} candles",
        "registered_by": registered_by,
    }
    exp_id = registry.ensure_experiment(params.registry.experiment, settings.artifact_root)
    metrics.update({k: v for k, v in train_metrics.items() if isinstance(v, int | float)})
    chosen = {f"chosen.{k.removeprefix('best_')}": v for k, v in train_metrics.items() if k.startswith("best_")}
    run_id, model_uri = registry.log_training_run(
        experiment_id=exp_id, run_name=f"train-{tags['data_hash'][:8]}", booster=booster, spec_json=spec_json,
        params={**_flat_params(params), **chosen}, metrics=metrics,
        tags={**tags, "verdict": evaluate.verdict(metrics)},
        artifacts={"metrics": paths.metrics, "equity": paths.equity_csv, "validation": paths.validation_summary,
                   "cv": cv_metrics_file(paths)},
        plots=sorted(plots_dir(paths).glob("*.png")),
    )
    version = registry.register(model_uri, params.registry.model_name, run_id, tags)
    if alias:
        registry.set_alias(params.registry.model_name, alias, version)
    write_json(registered_file(paths), {"model": params.registry.model_name, "version": version, "run_id": run_id})
    return version


def nominate(params: Params, paths: DataPaths, settings: Settings, version: int | None = None) -> int:
    """`krakenflow challenge`: alias a registered version @challenger by hand — by default the one this
    pipeline state registered (data/reports/registered.json, what `dvc repro` just made)."""
    from models import registry

    if version is None:
        if not registered_file(paths).is_file():
            raise LookupError(f"{registered_file(paths)} does not exist: run `dvc repro` (or `krakenflow stage "
                              "register`) first, or name a version with --version N")
        version = int(json.loads(registered_file(paths).read_text())["version"])
    registry.configure(settings.tracking_uri, settings.mlflow_registry_uri)
    registry.load_model(params.registry.model_name, str(version))  # it exists and its artifacts are sound
    registry.set_alias(params.registry.model_name, "challenger", version)
    return version


def registered_file(paths: DataPaths) -> Path:
    """The register stage's DVC output: which MLflow version this pipeline state produced."""
    return paths.reports / "registered.json"
