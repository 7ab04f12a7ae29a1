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
from models.train import FoldScore, cross_validate, cv_summary, fit, prepare_folds, search, search_summary, study_name
from pipeline.featurize import load_feature_table
from pipeline.paths import DataPaths
from trader.model import batch_predict


def optuna_storage(params: Params, paths: DataPaths) -> str:
    """Where the Optuna study lives: KRAKENFLOW_OPTUNA_STORAGE (keeps a password out of params.yaml), else
    `optuna.storage`, else a sqlite file inside the DVC-tracked model dir (so `dvc repro` searches afresh)."""
    url = os.environ.get("KRAKENFLOW_OPTUNA_STORAGE") or params.optuna.storage
    if url:
        return url
    paths.model_dir.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{(paths.model_dir / 'optuna.db').resolve()}"


def cv_folds(train_set: dataset.Dataset, params: Params) -> list[Fold]:
    """Purged walk-forward folds over the training rows (units: candles of `data.timeframe`)."""
    candle = to_timedelta(params.data.timeframe).to_timedelta64()
    return purged_walk_forward(candle_index(train_set.date, candle), params.cv.n_folds,
                               params.label.horizon, params.cv.embargo)


def choose_train_params(train_set: dataset.Dataset, names: tuple[str, ...], params: Params,
                        paths: DataPaths) -> tuple[TrainParams, list[FoldScore], dict[str, Any]]:
    """Optuna's best candidate over the CV folds, or params.yaml's `train:` unchanged when
    `optuna.n_trials` is 0 (then one configuration was tried, which is what the DSR is told)."""
    prepared = prepare_folds(train_set, names, cv_folds(train_set, params))
    if params.optuna.n_trials == 0:
        return params.train, cross_validate(prepared, params.train), {"optuna_n_trials": 1.0, "optuna_n_pruned": 0.0}
    name = study_name(params.registry.model_name, params.train, params.cv, params.optuna, train_set)
    found = search(prepared, params.train, params.optuna, optuna_storage(params, paths), name)
    return found.best, list(found.scores), search_summary(found)


def cv_metrics_file(paths: DataPaths) -> Path:
    return paths.reports / "cv.json"


def train(params: Params, paths: DataPaths) -> dict[str, Any]:
    """Search (or take) the LightGBM params on purged walk-forward CV, refit on the whole training
    period, write the native model, its feature spec, train_metrics.json and the CV metrics DVC shows."""
    spec = spec_from_params(params.features)
    table = load_feature_table(params, paths)
    train_set, _ = dataset.split(table, spec.names)
    chosen, scores, search_info = choose_train_params(train_set, spec.names, params, paths)
    booster = fit(train_set, spec.names, chosen)
    paths.model_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(paths.model_file, lambda p: booster.save_model(str(p)))
    write_json(paths.spec_file, spec.to_json())
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


