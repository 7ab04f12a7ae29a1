"""The only module that talks to MLflow: log runs, register versions, move aliases, load boosters.

The trader loads the *native* LightGBM booster and the feature spec from a registered version's
artifacts — never the pyfunc wrapper (2.3 ms per predict and a slow RSS leak, measured).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightgbm as lgb

os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")

import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

SPEC_FILE = "feature_spec.json"
MODEL_DIR = "model"
PLOTS_DIR = "plots"


class ModelNotFoundError(LookupError):
    """No registered version answers to that name and alias/version."""


@dataclass(frozen=True)
class LoadedModel:
    booster: lgb.Booster
    spec: dict[str, Any]
    name: str
    version: int
    run_id: str
    tags: dict[str, str]


def configure(tracking_uri: str, registry_uri: str | None = None) -> None:
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(registry_uri or tracking_uri)


def ensure_experiment(name: str, artifact_root: str) -> str:
    """Create the experiment with an explicit artifact root (the sqlite store has no default one)."""
    client = MlflowClient()
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    return client.create_experiment(name, artifact_location=f"{artifact_root.rstrip('/')}/{name}")


def log_training_run(
    *,
    experiment_id: str,
    run_name: str,
    booster: lgb.Booster,
    spec_json: Mapping[str, Any],
    params: Mapping[str, Any],
    metrics: Mapping[str, float],
    tags: Mapping[str, str],
    artifacts: Mapping[str, Path] | None = None,
    plots: Sequence[Path] = (),
) -> tuple[str, str]:
    """Log one training run with its native model + feature spec, and `plots` (PNG files) under the
    run's `plots/` artifact folder. Returns (run_id, model_uri)."""
    with tempfile.TemporaryDirectory() as tmp:
        spec_path = Path(tmp) / SPEC_FILE
        spec_path.write_text(json.dumps(spec_json, indent=2, sort_keys=True))
        with mlflow.start_run(experiment_id=experiment_id, run_name=run_name) as run:
            mlflow.log_params(dict(params))
            mlflow.log_metrics({k: float(v) for k, v in metrics.items()})
            mlflow.set_tags({**tags, "feature_spec_hash": str(spec_json["hash"])})
            mlflow.log_artifact(str(spec_path))
            for path in (artifacts or {}).values():
                mlflow.log_artifact(str(path))
            for path in plots:
                mlflow.log_artifact(str(path), artifact_path=PLOTS_DIR)
            info = mlflow.lightgbm.log_model(
                booster, name=MODEL_DIR, extra_files=[str(spec_path)], pip_requirements=["lightgbm"]
            )
    return run.info.run_id, info.model_uri


def register(model_uri: str, name: str, run_id: str, tags: Mapping[str, str]) -> int:
    client = MlflowClient()
    try:
        client.get_registered_model(name)
    except MlflowException:
        client.create_registered_model(name, description="krakenflow direction model (LightGBM, native)")
    mv = client.create_model_version(name, model_uri, run_id=run_id, tags=dict(tags))
    return int(mv.version)


def set_alias(name: str, alias: str, version: int) -> None:
    MlflowClient().set_registered_model_alias(name, alias, str(version))


def alias_version(name: str, alias: str) -> int | None:
    try:
        return int(MlflowClient().get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None


def tag_version(name: str, version: int, tags: Mapping[str, str]) -> None:
    client = MlflowClient()
    for key, value in tags.items():
        client.set_model_version_tag(name, str(version), key, str(value))


def run_metrics(name: str, version: int) -> dict[str, float]:
    client = MlflowClient()
    run_id = client.get_model_version(name, str(version)).run_id
    if not run_id:
        return {}
    return dict(client.get_run(run_id).data.metrics)


def _resolve(name: str, ref: str) -> Any:
    client = MlflowClient()
    try:
        return client.get_model_version(name, ref) if ref.isdigit() else client.get_model_version_by_alias(
            name, ref
        )
    except MlflowException as err:
        raise ModelNotFoundError(
            f"no model version {name}@{ref} in the registry at {mlflow.get_tracking_uri()} "
            f"(train and promote one first: `krakenflow demo` or `krakenflow promote`)"
        ) from err


def load_model(name: str, ref: str = "champion") -> LoadedModel:
    """Download a version's native booster and feature spec (ref: alias or version number)."""
    mv = _resolve(name, ref)
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=mv.source, dst_path=tmp))
        spec = json.loads(next(local.rglob(SPEC_FILE)).read_text())
        booster = lgb.Booster(model_file=str(next(local.rglob("model.lgb"))))
    return LoadedModel(booster, spec, name, int(mv.version), mv.run_id or "", dict(mv.tags))


def run_artifacts(run_id: str, folder: str | None = None) -> list[str]:
    """Artifact paths of a run (one folder level), e.g. the plots a training run logged."""
    return [f.path for f in MlflowClient().list_artifacts(run_id, folder)]


def log_run_artifact(run_id: str, path: Path, folder: str | None = None) -> None:
    """Attach a file (e.g. a drift report) to an existing run."""
    MlflowClient().log_artifact(run_id, str(path), folder)
