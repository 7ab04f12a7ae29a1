"""Job `register`: log the trained model with its lineage to MLflow and register a version. The retrain flow
aliases it @challenger (the A/B decides whether it becomes @champion); `dvc repro`/`dvc exp run` register
without an alias, so an experiment never silently becomes the next A/B's challenger (`krakenflow challenge`
nominates one by hand)."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from core.files import write_json
from core.params import Params
from core.settings import Settings
from models import dataset, evaluate
from models.train import TrialRecord
from pipeline.evaluate import holdout_report, plots_dir
from pipeline.featurize import load_feature_table
from pipeline.paths import DataPaths
from pipeline.train import cv_metrics_file, load_trained, load_trials

if TYPE_CHECKING:
    from models.registry import ChildRun, DatasetInput


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


BASELINES = ("buy_and_hold", "flat", "momentum")
"""The rules the holdout is compared with (pipeline/evaluate.py's `baseline_<name>_<metric>` keys)."""
_FOLD_KEY = re.compile(r"cv_fold(\d+)_(\w+)")
Series = dict[str, dict[int, float]]


def mlflow_metrics(flat: Mapping[str, float]) -> tuple[dict[str, float], Series]:
    """The flat keys of the DVC metrics files (kept flat: `dvc metrics show/diff` and the CLI read them) in
    MLflow's namespaces: `cv_fold<k>_<m>` → `cv/<m>` at step k (fold number, from 1), `cv_<m>` →
    `cv/<m>_mean`, `holdout_<m>` → `holdout/<m>`, `baseline_<name>_<m>` → `baseline/<name>/<m>`, `train_<m>` →
    `train/<m>` (in-sample), `optuna_<m>` → `optuna/<m>`. `best_*` are left out: they are the `chosen.*`
    params. Returns (single values, series)."""
    values: dict[str, float] = {}
    series: Series = {}
    for key, value in flat.items():
        fold = _FOLD_KEY.fullmatch(key)
        if fold:
            series.setdefault(f"cv/{fold[2]}", {})[int(fold[1])] = float(value)
        elif not key.startswith("best_"):
            values[_namespaced(key)] = float(value)
    return values, series


def _namespaced(key: str) -> str:
    if key == "cv_folds":
        return "cv/n_folds"
    if key.startswith("cv_"):
        return f"cv/{key.removeprefix('cv_')}_mean"
    if key.startswith("baseline_"):
        rest = key.removeprefix("baseline_")
        name = next((b for b in BASELINES if rest.startswith(f"{b}_")), None)
        return f"baseline/{name}/{rest.removeprefix(f'{name}_')}" if name else f"baseline/{rest}"
    prefix, sep, rest = key.partition("_")
    return f"{prefix}/{rest}" if sep and prefix in ("holdout", "train", "optuna") else key


def optuna_series(trials: Sequence[TrialRecord]) -> Series:
    """On the training run: each complete trial's objective (mean CV log loss, nats) and the best so far, at
    step = trial number, so the search's progress is one chart."""
    objective = {t.number: t.objective for t in trials if t.objective is not None}
    best: dict[int, float] = {}
    for number, value in sorted(objective.items()):
        best[number] = min(value, best[max(best)]) if best else value
    return {"optuna/objective": objective, "optuna/best_objective": best} if objective else {}


def trial_runs(trials: Sequence[TrialRecord], study: str) -> list[ChildRun]:
    """One nested run per Optuna trial: its params, objective and per-fold scores (step = fold number)."""
    from models.registry import ChildRun

    runs = []
    for t in trials:
        series: Series = {"cv/logloss_running": {k: v for k, v in enumerate(t.running_logloss, start=1)}}
        if t.folds:
            series["cv/logloss"] = {k: f.logloss for k, f in enumerate(t.folds, start=1)}
            series["cv/auc"] = {k: f.auc for k, f in enumerate(t.folds, start=1)}
        metrics = {"optuna/objective": t.objective, "cv/logloss_mean": t.objective} if t.objective is not None else {}
        runs.append(ChildRun(
            name=f"trial {t.number} · {t.state}" + (" · best" if t.best else ""), params=t.params,
            metrics=metrics, series=series,
            tags={"optuna.study": study, "optuna.trial": str(t.number), "optuna.state": t.state,
                  "optuna.best": str(t.best).lower()}))
    return runs


def run_name(params: Params, train_start: str, train_end: str, sha: str, params_hash: str) -> str:
    """What the run is: pairs, timeframe, training window, code and config, e.g.
    `train XRP+DOGE 1h · 2024-03-01..2024-06-30 · 1a2b3c4 · params 9f8e7d`."""
    bases = "+".join(pair.split("/")[0] for pair in params.pairs)
    window = f"{pd.Timestamp(train_start):%Y-%m-%d}..{pd.Timestamp(train_end):%Y-%m-%d}"
    return f"train {bases} {params.data.timeframe} · {window} · {sha[:7]} · params {params_hash[:6]}"


def _shown(path: Path, home: Path) -> str:
    """A path as recorded: relative to the project home when inside it (the same in every clone)."""
    resolved, root = path.resolve(), home.resolve()
    return resolved.relative_to(root).as_posix() if resolved.is_relative_to(root) else resolved.as_posix()


def dataset_inputs(params: Params, paths: DataPaths, names: tuple[str, ...], digest: str) -> list[DatasetInput]:
    """The training and holdout rows (features, label, net return, pair, date) as MLflow dataset inputs,
    read from the feature files and split exactly as training did; `digest` is the data hash of the validated
    candles they come from (the model version's `data_hash` tag)."""
    from models.registry import DatasetInput

    files = [paths.features(pair, params.data.timeframe) for pair in params.pairs]
    train_set, holdout = dataset.split(load_feature_table(params, paths), names)
    bases = "+".join(pair.split("/")[0] for pair in params.pairs)
    out = []
    for context, rows in (("training", train_set), ("holdout", holdout)):
        frame = pd.DataFrame(rows.X, columns=list(names)).assign(
            date=rows.date, pair=rows.pair, net_return=rows.net_return, label=rows.y)
        window = f"{pd.Timestamp(rows.date.min()):%Y-%m-%d}..{pd.Timestamp(rows.date.max()):%Y-%m-%d}" if len(rows) \
            else "empty"
        out.append(DatasetInput(
            frame=frame, name=f"{bases} {params.data.timeframe} features · {context}",
            source=_shown(paths.root / "features", paths.home), digest=digest, context=context, targets="label",
            tags={"files": ",".join(_shown(f, paths.home) for f in files), "data_hash": digest, "window": window,
                  "rows": str(len(rows))}))
    return out


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
    values, series = mlflow_metrics(metrics)
    trials = load_trials(paths)
    run_id, model_uri = registry.log_training_run(
        experiment_id=exp_id, booster=booster, spec_json=spec_json,
        run_name=run_name(params, tags["train_start"], tags["train_end"], tags["git_sha"], tags["params_hash"]),
        params={**_flat_params(params), **chosen}, metrics=values, series={**series, **optuna_series(trials)},
        tags={**tags, "verdict": evaluate.verdict(metrics)},
        artifacts={"metrics": paths.metrics, "equity": paths.equity_csv, "validation": paths.validation_summary,
                   "cv": cv_metrics_file(paths)},
        plots=[*sorted(plots_dir(paths).glob("*.png")), holdout_report(paths)],
        children=trial_runs(trials, tags["optuna_study"]),
        datasets=dataset_inputs(params, paths, tuple(spec_json["names"]), tags["data_hash"]),
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
