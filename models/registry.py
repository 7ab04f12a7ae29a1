"""The only module that talks to MLflow: log runs, register versions, move aliases, load boosters.

The trader loads the *native* LightGBM booster and the feature spec from a registered version's
artifacts — never the pyfunc wrapper (2.3 ms per predict and a slow RSS leak, measured).

Artifacts are verified before LightGBM parses them: its loader hangs, aborts or segfaults the whole
process on a corrupt file (measured: truncated, junk appended, random bytes). A run records the sha256
and size of the `model.lgb` and `feature_spec.json` MLflow stored; `load_model` compares the downloaded
files with them and raises ModelArtifactError on a mismatch. A version logged before the checksums
existed is parsed once in a child process (crash or hang there → ModelArtifactError) before in-process.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightgbm as lgb
import pandas as pd

os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")
# MLflow's own HTTP retries (7, backoff ×2) stall an unreachable server for over four minutes: a few
# quick retries, then our error naming the URI
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "3")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")

import mlflow
from mlflow import MlflowClient
from mlflow.data.dataset_source_registry import resolve_dataset_source
from mlflow.data.pandas_dataset import from_pandas
from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

SPEC_FILE = "feature_spec.json"
MODEL_FILE = "model.lgb"
MODEL_DIR = "model"
PLOTS_DIR = "plots"

CHECKSUM_TAGS = {MODEL_FILE: ("model_sha256", "model_size"), SPEC_FILE: ("feature_spec_sha256", "feature_spec_size")}
"""Run (and version) tags recording each artifact file's sha256 and byte size, as MLflow stored it."""
PARSE_TIMEOUT_S = 30.0
"""How long a child process may take to parse an unverified model file (a sound one takes ~1 s)."""

_PARSE_IN_CHILD = "import sys, lightgbm as lgb; print(lgb.Booster(model_file=sys.argv[1]).num_trees())"


class ModelNotFoundError(LookupError):
    """No registered version answers to that name and alias/version."""


class ModelArtifactError(ValueError):
    """A version's stored artifacts are missing, corrupt or unreadable: it must not be loaded."""


@dataclass(frozen=True)
class LoadedModel:
    booster: lgb.Booster
    spec: dict[str, Any]
    name: str
    version: int
    run_id: str
    tags: dict[str, str]


class RegistryUnavailable(LookupError):
    """The MLflow server cannot be reached; the message names the URI and the setting."""


def configure(tracking_uri: str, registry_uri: str | None = None, probe_timeout_s: float = 5.0) -> None:
    """Point MLflow at the stores. An http(s) server is probed first (its /health), so an unreachable one
    is one clear error within seconds instead of a long stall and a misleading "no model version"."""
    for uri in {tracking_uri, registry_uri or tracking_uri}:
        if uri.startswith(("http://", "https://")):
            _probe(uri, probe_timeout_s)
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(registry_uri or tracking_uri)


def _probe(uri: str, timeout_s: float) -> None:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout_s):
            return
    except urllib.error.HTTPError:
        return  # it answers (a proxy may not route /health): reachable
    except (OSError, ValueError) as err:
        reason = getattr(err, "reason", err)
        raise RegistryUnavailable(f"cannot reach the MLflow server at {uri} ({reason}); start it or fix "
                                  f"KRAKENFLOW_MLFLOW_TRACKING_URI / KRAKENFLOW_MLFLOW_REGISTRY_URI") from None


EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
CUSTOM_MODEL_DEVELOPMENT = "custom_model_development"
"""The experiment tag the MLflow 3 UI reads to open an experiment on its runs; without it the UI guesses and
opened ours on the GenAI traces page."""


def ensure_experiment(name: str, artifact_root: str) -> str:
    """Create the experiment with an explicit artifact root (the sqlite store has no default one), tagged as
    custom model development; an experiment created before the tag existed gets it here."""
    client = MlflowClient()
    exp = client.get_experiment_by_name(name)
    if exp is None:
        return client.create_experiment(name, artifact_location=f"{artifact_root.rstrip('/')}/{name}",
                                        tags={EXPERIMENT_KIND_TAG: CUSTOM_MODEL_DEVELOPMENT})
    if exp.tags.get(EXPERIMENT_KIND_TAG) != CUSTOM_MODEL_DEVELOPMENT:
        client.set_experiment_tag(exp.experiment_id, EXPERIMENT_KIND_TAG, CUSTOM_MODEL_DEVELOPMENT)
    return exp.experiment_id


@dataclass(frozen=True)
class ChildRun:
    """A run nested under the training run, e.g. one Optuna trial: its params, single-value metrics,
    per-step series (key → {step: value}) and tags."""

    name: str
    params: Mapping[str, Any] = field(default_factory=dict)
    metrics: Mapping[str, float] = field(default_factory=dict)
    series: Mapping[str, Mapping[int, float]] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DatasetInput:
    """A frame the run used, logged as an MLflow dataset input (schema and row count, not the data): `source`
    names where it was read (a path or URI), `digest` the project's hash of the data version, `context` the
    role ("training", "holdout"), `targets` the label column."""

    frame: pd.DataFrame
    name: str
    source: str
    digest: str
    context: str
    targets: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)


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
    series: Mapping[str, Mapping[int, float]] | None = None,
    children: Sequence[ChildRun] = (),
    datasets: Sequence[DatasetInput] = (),
) -> tuple[str, str]:
    """Log one training run with its native model + feature spec, and `plots` (PNG files) under the
    run's `plots/` artifact folder. `metrics` are single values, `series` per-step values (key → {step:
    value}, e.g. one per CV fold); `children` become nested runs (the Optuna trials), `datasets` its
    inputs. Returns (run_id, model_uri)."""
    with tempfile.TemporaryDirectory() as tmp:
        spec_path = Path(tmp) / SPEC_FILE
        spec_path.write_text(json.dumps(spec_json, indent=2, sort_keys=True))
        with mlflow.start_run(experiment_id=experiment_id, run_name=run_name) as run:
            mlflow.log_params(dict(params))
            _log_values(run.info.run_id, metrics, series or {})
            mlflow.set_tags({**tags, "feature_spec_hash": str(spec_json["hash"])})
            for dataset in datasets:
                _log_dataset(dataset)
            for child in children:
                _log_child(experiment_id, run.info.run_id, child)
            mlflow.log_artifact(str(spec_path))
            for path in (artifacts or {}).values():
                mlflow.log_artifact(str(path))
            for path in plots:
                mlflow.log_artifact(str(path), artifact_path=PLOTS_DIR)
            info = mlflow.lightgbm.log_model(
                booster, name=MODEL_DIR, extra_files=[str(spec_path)], pip_requirements=["lightgbm"]
            )
            stored = Path(mlflow.artifacts.download_artifacts(artifact_uri=info.model_uri,
                                                              dst_path=str(Path(tmp) / "stored")))
            mlflow.set_tags(artifact_checksums(stored))
    return run.info.run_id, info.model_uri


def _log_values(run_id: str, metrics: Mapping[str, float], series: Mapping[str, Mapping[int, float]]) -> None:
    """Single values at step 0 and series at their steps, in batches (one sqlite write per 1000 points);
    non-finite values are left out (MLflow stores NaN, but the UI's charts and comparisons choke on it)."""
    now = int(time.time() * 1000)
    points = [Metric(k, float(v), now, 0) for k, v in metrics.items() if math.isfinite(float(v))]
    points += [Metric(k, float(v), now, int(step)) for k, steps in series.items() for step, v in steps.items()
               if math.isfinite(float(v))]
    client = MlflowClient()
    for start in range(0, len(points), 1000):
        client.log_batch(run_id, metrics=points[start:start + 1000], synchronous=True)


def _log_child(experiment_id: str, parent_run_id: str, child: ChildRun) -> None:
    client = MlflowClient()
    run = client.create_run(experiment_id, run_name=child.name, tags={MLFLOW_PARENT_RUN_ID: parent_run_id})
    client.log_batch(run.info.run_id, params=[Param(k, str(v)) for k, v in child.params.items()],
                     tags=[RunTag(k, str(v)) for k, v in child.tags.items()], synchronous=True)
    _log_values(run.info.run_id, child.metrics, child.series)
    client.set_terminated(run.info.run_id)


def _log_dataset(dataset: DatasetInput) -> None:
    with warnings.catch_warnings():  # MLflow registers its local source twice and warns that it picked one
        warnings.simplefilter("ignore", UserWarning)
        source = resolve_dataset_source(dataset.source)
    logged = from_pandas(dataset.frame, source=source, targets=dataset.targets, name=dataset.name,
                         digest=dataset.digest)
    mlflow.log_input(logged, context=dataset.context, tags=dict(dataset.tags))


AB_EXPERIMENT_SUFFIX = "-ab"
"""A/B decisions are runs of their own experiment (`<experiment>-ab`): one run per decision, never overwritten."""


def log_decision_run(*, experiment_id: str, run_name: str, params: Mapping[str, Any],
                     metrics: Mapping[str, float], tags: Mapping[str, str]) -> str:
    """One run that records a decision (an A/B): its inputs as params, its numbers as metrics, the outcome as
    tags. Returns the run id."""
    with mlflow.start_run(experiment_id=experiment_id, run_name=run_name) as run:
        mlflow.log_params(dict(params))
        finite = {k: float(v) for k, v in metrics.items() if math.isfinite(float(v))}
        mlflow.log_metrics(finite)
        mlflow.set_tags(dict(tags))
    return str(run.info.run_id)


def decision_runs(experiment: str, max_results: int = 1000) -> list[dict[str, Any]]:
    """The decision runs of `experiment`, newest first, as flat dicts (params, metrics, tags, start time)."""
    client = MlflowClient()
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        return []
    runs = client.search_runs([exp.experiment_id], order_by=["attributes.start_time DESC"], max_results=max_results)
    return [{"run_id": r.info.run_id, "start_time": r.info.start_time, **r.data.params, **r.data.metrics,
             **{k: v for k, v in r.data.tags.items() if not k.startswith("mlflow.")}} for r in runs]


def artifact_checksums(model_dir: Path) -> dict[str, str]:
    """The checksum tags of a (downloaded) model folder: sha256 and size of model.lgb and the spec."""
    tags = {}
    for file_name, (sha_tag, size_tag) in CHECKSUM_TAGS.items():
        path = _find(model_dir, file_name)
        if path is None:
            raise ModelArtifactError(f"no {file_name} in the logged model at {model_dir}")
        tags[sha_tag], tags[size_tag] = _sha256(path), str(path.stat().st_size)
    return tags


def register(model_uri: str, name: str, run_id: str, tags: Mapping[str, str]) -> int:
    """A new version of `name` from a logged model; the run's checksum tags are copied to the version."""
    client = MlflowClient()
    try:
        client.get_registered_model(name)
    except MlflowException:
        client.create_registered_model(name, description="krakenflow direction model (LightGBM, native)")
    run_tags = client.get_run(run_id).data.tags if run_id else {}
    checksums = {t: run_tags[t] for pair in CHECKSUM_TAGS.values() for t in pair if t in run_tags}
    mv = client.create_model_version(name, model_uri, run_id=run_id, tags={**tags, **checksums})
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


def load_model(name: str, ref: str = "champion", parse_timeout_s: float = PARSE_TIMEOUT_S) -> LoadedModel:
    """Download a version's native booster and feature spec (ref: alias or version number).

    Each file is checked against its recorded size and sha256 before it is parsed; a version without
    checksum tags (logged before they existed) has its model parsed in a child process first, which
    may take `parse_timeout_s`. Anything wrong with the artifacts raises ModelArtifactError."""
    mv = _resolve(name, ref)
    label = f"model {name} v{mv.version}"
    expected = _recorded_checksums(mv)
    with tempfile.TemporaryDirectory() as tmp:
        try:
            local = Path(mlflow.artifacts.download_artifacts(artifact_uri=mv.source, dst_path=tmp))
        except (MlflowException, OSError) as err:
            raise ModelArtifactError(f"{label}: cannot download its artifacts from {mv.source}: {err}. "
                                     f"{_FIX}") from err
        files = {}
        for file_name in CHECKSUM_TAGS:
            path = _find(local, file_name)
            if path is None:
                raise ModelArtifactError(f"{label}: no {file_name} in its artifacts at {mv.source}. {_FIX}")
            files[file_name] = path
            if file_name in expected:
                _verify(label, mv, local, path, *expected[file_name])
        spec = _read_spec(label, mv, local, files[SPEC_FILE])
        if MODEL_FILE not in expected:
            _parse_in_child(label, mv, local, files[MODEL_FILE], parse_timeout_s)
        try:
            booster = lgb.Booster(model_file=str(files[MODEL_FILE]))
        except lgb.basic.LightGBMError as err:
            raise ModelArtifactError(f"{label}: LightGBM cannot read {_where(mv, local, files[MODEL_FILE])}: "
                                     f"{err}. {_FIX}") from err
    return LoadedModel(booster, spec, name, int(mv.version), mv.run_id or "", dict(mv.tags))


_FIX = ("Re-register the model (`krakenflow stage register`) or move the alias back (`krakenflow rollback`, "
        "or pin a sound version with `--model N`).")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _find(folder: Path, file_name: str) -> Path | None:
    return next(iter(sorted(folder.rglob(file_name))), None)


def _recorded_checksums(mv: Any) -> dict[str, tuple[str, str]]:
    """file name → (sha256, size) from the version's tags, else from its run's (checksummed before
    registration); empty for a version logged before checksums were recorded."""
    tags: Mapping[str, str] = mv.tags
    if not any(t in tags for t, _ in CHECKSUM_TAGS.values()) and mv.run_id:
        try:
            tags = MlflowClient().get_run(mv.run_id).data.tags
        except MlflowException:
            tags = {}
    return {file_name: (tags[sha_tag], tags.get(size_tag, ""))
            for file_name, (sha_tag, size_tag) in CHECKSUM_TAGS.items() if sha_tag in tags}


def _where(mv: Any, local: Path, path: Path) -> str:
    """Where the file is stored (the logged model's artifact location), for the error message."""
    relative = path.relative_to(local).as_posix()
    location = str(mv.source)
    if location.startswith("models:/"):
        with contextlib.suppress(MlflowException, AttributeError):
            location = MlflowClient().get_logged_model(location.removeprefix("models:/")).artifact_location
    return f"{location.rstrip('/')}/{relative}"


def _verify(label: str, mv: Any, local: Path, path: Path, sha256: str, size: str) -> None:
    actual_size, actual_sha = str(path.stat().st_size), _sha256(path)
    if (size and actual_size != size) or actual_sha != sha256.lower():
        raise ModelArtifactError(
            f"{label}: {_where(mv, local, path)} is corrupt or was replaced: expected {size or '?'} bytes "
            f"with sha256 {sha256}, found {actual_size} bytes with sha256 {actual_sha}. {_FIX}")


def _parse_in_child(label: str, mv: Any, local: Path, path: Path, timeout_s: float) -> None:
    """Parse an unverified model file in a throw-away process: a crash or hang there costs nothing here."""
    where = _where(mv, local, path)
    try:
        done = subprocess.run([sys.executable, "-c", _PARSE_IN_CHILD, str(path)], capture_output=True, text=True,
                              errors="replace", timeout=timeout_s, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as err:
        raise ModelArtifactError(f"{label} has no recorded checksum and LightGBM did not finish parsing {where} "
                                 f"within {timeout_s:g} s: the file is corrupt. {_FIX}") from err
    except OSError as err:
        raise ModelArtifactError(f"{label} has no recorded checksum and {where} could not be checked in a "
                                 f"child process ({err}). {_FIX}") from err
    last = (done.stdout.strip().splitlines() or [""])[-1]
    if done.returncode == 0 and last.isdigit():  # it printed the number of trees it read
        return
    if done.returncode < 0:
        try:
            how = f"crashed LightGBM ({signal.Signals(-done.returncode).name})"
        except ValueError:
            how = f"killed LightGBM (signal {-done.returncode})"
    else:
        lines = [line.strip() for line in done.stderr.splitlines() if line.strip()]
        how = f"cannot be read by LightGBM ({lines[-1][:300] if lines else f'exit code {done.returncode}'})"
    raise ModelArtifactError(f"{label} has no recorded checksum and {where} {how}: the file is corrupt. {_FIX}")


def _read_spec(label: str, mv: Any, local: Path, path: Path) -> dict[str, Any]:
    try:
        spec = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ModelArtifactError(f"{label}: {_where(mv, local, path)} is not valid JSON ({err}). {_FIX}") from err
    if not isinstance(spec, dict):
        raise ModelArtifactError(f"{label}: {_where(mv, local, path)} is not a feature spec object. {_FIX}")
    return spec


def run_artifacts(run_id: str, folder: str | None = None) -> list[str]:
    """Artifact paths of a run (one folder level), e.g. the plots a training run logged."""
    return [f.path for f in MlflowClient().list_artifacts(run_id, folder)]


def log_run_artifact(run_id: str, path: Path, folder: str | None = None) -> None:
    """Attach a file (e.g. a drift report) to an existing run."""
    MlflowClient().log_artifact(run_id, str(path), folder)


def versions(name: str) -> list[dict[str, Any]]:
    """Every registered version of `name`, newest first: aliases, tags (lineage: git sha, data hash, spec hash)
    and the metrics of the run that made it (for the console's Models page)."""
    client = MlflowClient()
    aliases: dict[str, list[str]] = {}
    try:
        registered = client.get_registered_model(name)
    except MlflowException:
        return []
    for alias, version in (registered.aliases or {}).items():
        aliases.setdefault(str(version), []).append(alias)
    found = client.search_model_versions(f"name = '{name}'")
    out = []
    for mv in sorted(found, key=lambda v: int(v.version), reverse=True):
        run = client.get_run(mv.run_id) if mv.run_id else None
        out.append({"version": int(mv.version), "aliases": sorted(aliases.get(str(mv.version), [])),
                    "run_id": mv.run_id, "created_ms": mv.creation_timestamp, "tags": dict(mv.tags or {}),
                    "metrics": dict(run.data.metrics) if run else {},
                    "experiment_id": run.info.experiment_id if run else None})
    return out
