"""Job `train`: Optuna over purged walk-forward CV, then a refit on the whole training period; writes the
native model, its feature spec and the metrics DVC shows (data/models, data/reports/cv.json)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import lightgbm as lgb
import pandas as pd

from core.files import write_atomic, write_json
from core.params import Params, TrainParams
from core.timeframe import to_timedelta
from features.spec import FeatureSpec, spec_from_json, spec_from_params
from models import dataset, evaluate
from models.cv import Fold, candle_index, purged_walk_forward
from models.train import (
    FoldScore,
    TrialRecord,
    cross_validate,
    cv_summary,
    fit,
    prepare_folds,
    search,
    search_summary,
    study_name,
)
from pipeline.featurize import load_feature_table
from pipeline.paths import DataPaths
from trader.model import batch_predict


def optuna_storage(params: Params, paths: DataPaths) -> str:
    """Where the Optuna study lives: KRAKENFLOW_OPTUNA_STORAGE (keeps a password out of params.yaml), else
    `optuna.storage`, else `data/studies/optuna.db` — outside the DVC-tracked model dir, whose bytes must not
    depend on trial timestamps (a sqlite file there made every clone's data/models differ, so DVC's run
    cache never matched). The study name hashes everything that decides the search, so a repro reuses a
    finished study with the same result and resumes an interrupted one."""
    url = os.environ.get("KRAKENFLOW_OPTUNA_STORAGE") or params.optuna.storage
    if url:
        return url
    paths.studies.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{paths.studies.resolve() / 'optuna.db'}"


def shown_storage(url: str, paths: DataPaths) -> str:
    """The storage as train_metrics.json records it: a local sqlite file relative to the project home, so
    the tracked file is the same in every clone."""
    prefix = "sqlite:///"
    if url.startswith(prefix):
        file = Path(url.removeprefix(prefix))
        home = paths.home.resolve()
        if file.is_relative_to(home):
            return prefix + str(file.relative_to(home))
    return url


def cv_folds(train_set: dataset.Dataset, params: Params) -> list[Fold]:
    """Purged walk-forward folds over the training rows (units: candles of `data.timeframe`)."""
    candle = to_timedelta(params.data.timeframe).to_timedelta64()
    return purged_walk_forward(candle_index(train_set.date, candle), params.cv.n_folds,
                               params.label.horizon, params.cv.embargo)


def choose_train_params(train_set: dataset.Dataset, names: tuple[str, ...], params: Params,
                        paths: DataPaths) -> tuple[TrainParams, list[FoldScore], dict[str, Any]]:
    """Optuna's best candidate over the CV folds, or params.yaml's `train:` unchanged when
    `optuna.n_trials` is 0 (then one configuration was tried, which is what the DSR is told). The summary's
    `trials` (TrialRecord JSON, empty without a search) is what the registry logs as one child run each."""
    prepared = prepare_folds(train_set, names, cv_folds(train_set, params))
    if params.optuna.n_trials == 0:
        return params.train, cross_validate(prepared, params.train), {"optuna_n_trials": 1.0, "optuna_n_pruned": 0.0,
                                                                      "trials": []}
    name = study_name(params.registry.model_name, params.train, params.cv, params.optuna, train_set)
    found = search(prepared, params.train, params.optuna, optuna_storage(params, paths), name)
    summary = search_summary(found)
    summary["optuna_storage"] = shown_storage(summary["optuna_storage"], paths)
    summary["trials"] = [t.to_json() for t in found.trials]
    return found.best, list(found.scores), summary


def cv_metrics_file(paths: DataPaths) -> Path:
    return paths.reports / "cv.json"


def trials_file(paths: DataPaths) -> Path:
    """The Optuna trials of the search that chose the model (models.train.TrialRecord JSON), next to it in
    the train stage's output: the register stage logs each as a child run of the training run."""
    return paths.model_dir / "trials.json"


def load_trials(paths: DataPaths) -> list[TrialRecord]:
    """The trials the train stage wrote; none for a model dir written before trials were kept."""
    file = trials_file(paths)
    return [TrialRecord.from_json(t) for t in json.loads(file.read_text())] if file.is_file() else []


def train(params: Params, paths: DataPaths) -> dict[str, Any]:
    """Search (or take) the LightGBM params on purged walk-forward CV, refit on the whole training
    period, write the native model, its feature spec, train_metrics.json and the CV metrics DVC shows."""
    spec = spec_from_params(params.features)
    table = load_feature_table(params, paths)
    train_set, _ = dataset.split(table, spec.names)
    chosen, scores, search_info = choose_train_params(train_set, spec.names, params, paths)
    trials = search_info.pop("trials")
    booster = fit(train_set, spec.names, chosen)
    paths.model_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(paths.model_file, lambda p: booster.save_model(str(p)))
    write_json(paths.spec_file, spec.to_json())
    write_json(trials_file(paths), trials)
    metrics: dict[str, Any] = evaluate.classification_metrics(train_set.y, batch_predict(booster)(train_set.X), "train")
    metrics.update(cv_summary(scores))
    metrics.update(search_info)
    metrics["train_start"] = str(pd.Timestamp(train_set.date.min()))
    metrics["train_end"] = str(pd.Timestamp(train_set.date.max()))
    write_json(paths.train_metrics, metrics)
    write_json(cv_metrics_file(paths), {k: v for k, v in metrics.items()
                                         if k.startswith(("cv_", "optuna_n", "best_"))})
    return metrics


def load_trained(paths: DataPaths) -> tuple[lgb.Booster, FeatureSpec, dict[str, Any]]:
    spec_json = json.loads(paths.spec_file.read_text())
    spec = spec_from_json(spec_json)
    spec.check_compatible(spec_json)
    return lgb.Booster(model_file=str(paths.model_file)), spec, spec_json


