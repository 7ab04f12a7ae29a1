"""Pipeline stages: prepare → featurize → train → evaluate → register → promote."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from core.params import Params, TrainParams
from core.settings import Settings
from core.types import Candle, Fill, Side
from features.spec import FeatureSpec, spec_from_json, spec_from_params
from market.frame import check_candle_frame, timeframe_to_timedelta, to_candles
from market.history import import_file
from market.store import CandleStore, Validator, pair_slug
from models import dataset, evaluate, plots
from models.cv import Fold, candle_index, purged_walk_forward
from models.train import FoldScore, cross_validate, cv_summary, fit, prepare_folds, search, search_summary, study_name
from pipeline.paths import DataPaths
from quality.expectations import gate
from quality.repairs import apply_repairs
from trader.backtest import BatchScores, batch_scores, buy_and_hold_return, run_backtest
from trader.engine import WARMING_UP
from trader.model import batch_predict, booster_scorer

log = logging.getLogger(__name__)


def _write_atomic(path: Path, write: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    tmp.replace(path)


def _write_json(path: Path, data: Any) -> None:
    _write_atomic(path, lambda p: p.write_text(json.dumps(data, indent=2, sort_keys=True, default=str)))


def _write_parquet(path: Path, frame: pd.DataFrame) -> None:
    _write_atomic(path, lambda p: frame.to_parquet(p, index=False))


def periods_per_year(timeframe: str) -> float:
    return pd.Timedelta(days=365) / timeframe_to_timedelta(timeframe)


# ---- prepare --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PreparedPair:
    pair: str
    rows: int
    first: str
    last: str
    summary: str
    repairs: tuple[str, ...]


def candle_store(params: Params, paths: DataPaths) -> CandleStore:
    """The candle store (market.store) under `<data_dir>/store/<exchange>/`."""
    return CandleStore(paths.root / "store", params.store.exchange)


def store_gate(params: Params, timeframe: str, name: str, paths: DataPaths, run_id: str) -> Validator:
    """The quality gate as the store's pre-merge check: a failing batch is quarantined under
    data/quarantine/<run_id>/<name>/ and raises, and nothing stored changes."""
    def validate(frame: pd.DataFrame) -> None:
        gate(frame, params.quality, timeframe, name=name, quarantine_root=paths.quarantine, run_id=run_id)
    return validate


def seed_and_read_store(pair: str, frame: pd.DataFrame, source: str, params: Params, paths: DataPaths,
                        run_id: str) -> tuple[pd.DataFrame, tuple[str, ...]]:
    """Prepare trains on candles that came through the store: the pair's file seeds it (policy `keep`:
    candles already ingested from Kraken win, a disagreement is reported, not applied), then the stored
    series from the file's first candle on — including newer ingested candles — is read back."""
    store, timeframe = candle_store(params, paths), params.data.timeframe
    seeded = store.upsert(pair, timeframe, frame, source, "keep",
                          store_gate(params, timeframe, pair_slug(pair), paths, run_id))
    stored = store.read(pair, timeframe, start=frame["date"].iloc[0])
    notes = [f"store: {seeded.added} candle(s) of {source} added to {store.series_dir(pair, timeframe)}, "
             f"{len(stored) - len(frame)} more candle(s) there than in the file"]
    if seeded.conflicts_kept:
        notes.append(f"store: {seeded.conflicts_kept} candle(s) of {source} differ from the stored ones "
                     "(the stored ones are used)")
    return check_candle_frame(stored.drop(columns="trades"), str(store.series_dir(pair, timeframe))), tuple(notes)


def prepare_pair(pair: str, source: Path, params: Params, paths: DataPaths, run_id: str) -> PreparedPair:
    """Import the pair's raw candles, pass them through the quality gate, write the validated file.
    A failing batch goes to data/quarantine/<run_id>/ and raises; nothing validated is overwritten."""
    imported = import_file(source)
    repaired = apply_repairs(imported.frame, params.data.timeframe, str(source))
    frame = check_candle_frame(repaired.frame, str(source))
    frame, seeded = seed_and_read_store(pair, frame, str(source), params, paths, run_id)
    result = gate(frame, params.quality, params.data.timeframe, name=pair.replace("/", "-"),
                  quarantine_root=paths.quarantine, run_id=run_id)
    _write_parquet(paths.validated(pair, params.data.timeframe), frame)
    return PreparedPair(pair, len(frame), str(frame["date"].iloc[0]), str(frame["date"].iloc[-1]),
                        result.summary(), (*imported.repairs, *repaired.repairs, *repaired.warnings, *seeded))


def prepare(params: Params, paths: DataPaths, project_root: Path = Path(".")) -> list[PreparedPair]:
    run_id = time.strftime("%Y%m%dT%H%M%S")
    out = [prepare_pair(pair, project_root / src, params, paths, run_id) for pair, src in params.data.sample.items()]
    _write_json(paths.validation_summary, [vars(p) for p in out])
    return out


def load_validated(params: Params, paths: DataPaths) -> dict[str, pd.DataFrame]:
    return {pair: pd.read_parquet(paths.validated(pair, params.data.timeframe)) for pair in params.pairs}


# ---- featurize ------------------------------------------------------------------------------------

def featurize(params: Params, paths: DataPaths) -> dict[str, int]:
    spec = spec_from_params(params.features)
    rows = {}
    for pair, frame in load_validated(params, paths).items():
        table = dataset.pair_table(frame, pair, spec, params)
        _write_parquet(paths.features(pair, params.data.timeframe), table)
        rows[pair] = len(table)
    return rows


def load_feature_table(params: Params, paths: DataPaths) -> pd.DataFrame:
    tables = [pd.read_parquet(paths.features(p, params.data.timeframe)) for p in params.pairs]
    return pd.concat(tables, ignore_index=True)


# ---- train ----------------------------------------------------------------------------------------

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
    candle = timeframe_to_timedelta(params.data.timeframe).to_timedelta64()
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
    _write_atomic(paths.model_file, lambda p: booster.save_model(str(p)))
    _write_json(paths.spec_file, spec.to_json())
    metrics: dict[str, Any] = evaluate.classification_metrics(train_set.y, batch_predict(booster)(train_set.X), "train")
    metrics.update(cv_summary(scores))
    metrics.update(search_info)
    metrics["train_start"] = str(pd.Timestamp(train_set.date.min()))
    metrics["train_end"] = str(pd.Timestamp(train_set.date.max()))
    _write_json(paths.train_metrics, metrics)
    _write_json(cv_metrics_file(paths), {k: v for k, v in metrics.items()
                                         if k.startswith(("cv_", "optuna_n", "best_"))})
    return metrics


def load_trained(paths: DataPaths) -> tuple[lgb.Booster, FeatureSpec, dict[str, Any]]:
    spec_json = json.loads(paths.spec_file.read_text())
    spec = spec_from_json(spec_json)
    spec.check_compatible(spec_json)
    return lgb.Booster(model_file=str(paths.model_file)), spec, spec_json


# ---- evaluate -------------------------------------------------------------------------------------

def holdout_start(frames: dict[str, pd.DataFrame], holdout_fraction: float) -> pd.Timestamp:
    """The latest per-pair holdout cut: every pair's backtest starts on unseen candles."""
    cuts = [f["date"].iloc[dataset.holdout_start_index(len(f), holdout_fraction)] for f in frames.values()]
    return max(cuts)


def _trades(fills: list[Fill]) -> evaluate.Trades:
    """The engine's fills → closed-trade P&Ls and traded notional (quote currency)."""
    if not fills:
        return evaluate.Trades.none()
    pnls = evaluate.round_trip_pnls(
        np.array([f.pair for f in fills]),
        np.array([f.quantity if f.side is Side.BUY else -f.quantity for f in fills]),
        np.array([f.price for f in fills]), np.array([f.fee for f in fills]))
    return evaluate.Trades(pnls, float(sum(f.quantity * f.price for f in fills)))


def momentum_scores(candles: dict[str, list[Candle]], lookback: int) -> dict[str, BatchScores]:
    """The naive momentum rule as engine scores (1 = long, 0 = flat); stands aside until `lookback`
    candles of history exist, so it trades through the same engine, sizing, risk and fees as the model."""
    out = {}
    for pair, seq in candles.items():
        prob = evaluate.momentum_probability(np.array([c.close for c in seq]), lookback)
        out[pair] = BatchScores(prob, np.where(np.isnan(prob), WARMING_UP, "").tolist())
    return out


def holdout_closes(frames: dict[str, pd.DataFrame], start: pd.Timestamp) -> pd.DataFrame:
    """Closes of every pair from `start` on a common clock (forward-filled over a pair's missing candle)."""
    cols = {pair: f.set_index("date")["close"] for pair, f in frames.items()}
    return pd.DataFrame(cols).sort_index().loc[start:].ffill().dropna()


def _finite_or_none(metrics: dict[str, Any]) -> dict[str, Any]:
    """JSON (and DVC) have no infinity: a profit factor with no losing trade is stored as null."""
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in metrics.items()}


def plots_dir(paths: DataPaths) -> Path:
    return paths.reports / "plots"


def evaluate_model(params: Params, paths: DataPaths) -> dict[str, Any]:
    """Holdout classification metrics + the trader engine's own backtest on the holdout period (model and
    naive momentum through the engine; buy-and-hold and flat as pure rules), all with the same fees, the
    PSR/DSR of the model corrected for the Optuna trials tried, and the plots the registry logs."""
    booster, spec, _ = load_trained(paths)
    table = load_feature_table(params, paths)
    _, holdout = dataset.split(table, spec.names)
    holdout_prob = batch_predict(booster)(holdout.X)
    metrics: dict[str, Any] = evaluate.classification_metrics(holdout.y, holdout_prob, "holdout")
    frames = load_validated(params, paths)
    start = holdout_start(frames, params.split.holdout_fraction)
    start_ms = int(start.value // 1_000_000)
    ppy = periods_per_year(params.data.timeframe)
    candles = {pair: to_candles(frame) for pair, frame in frames.items()}
    scores = {pair: batch_scores(spec, batch_predict(booster), seq) for pair, seq in candles.items()}
    result = run_backtest(candles, spec, booster_scorer(booster), params.trade, params.fees, start_ms, ppy,
                          scores, params.risk)
    momentum = run_backtest(candles, spec, booster_scorer(booster), params.trade, params.fees, start_ms, ppy,
                            momentum_scores(candles, params.evaluate.momentum_lookback), params.risk)
    closes = holdout_closes(frames, start)
    bnh_equity, bnh_trades = evaluate.buy_and_hold_equity(closes.to_numpy(), params.trade.starting_cash,
                                                          params.fees.taker)
    flat_eq, flat_trades = evaluate.flat_equity(len(result.equity), params.trade.starting_cash)
    n_trials = int(json.loads(paths.train_metrics.read_text()).get("optuna_n_trials", 1))
    metrics.update({f"holdout_{k}": v for k, v in result.metrics.items()})
    metrics.update(evaluate.trading_metrics(np.array(result.equity), _trades(result.fills), ppy, n_trials, "holdout"))
    metrics.update(evaluate.trading_metrics(np.array(momentum.equity), _trades(momentum.fills), ppy, 1,
                                            "baseline_momentum"))
    metrics.update(evaluate.trading_metrics(bnh_equity, bnh_trades, ppy, 1, "baseline_buy_and_hold"))
    metrics.update(evaluate.trading_metrics(flat_eq, flat_trades, ppy, 1, "baseline_flat"))
    metrics["holdout_n_trials_deflated"] = float(n_trials)
    metrics["baseline_buy_and_hold_return"] = buy_and_hold_return(candles, start_ms, params.fees.taker)
    metrics["baseline_flat_return"] = 0.0
    log.info("evaluate: %s", evaluate.verdict(metrics))
    metrics = _finite_or_none(metrics)
    _write_json(paths.metrics, metrics)
    dates = pd.to_datetime(result.equity_ts, unit="ms", utc=True)
    equity = pd.DataFrame({"date": dates, "equity": result.equity, "momentum": momentum.equity,
                           "buy_and_hold": pd.Series(bnh_equity, index=closes.index).reindex(dates).ffill().to_numpy(),
                           "flat": flat_eq})
    _write_atomic(paths.equity_csv, lambda p: equity.to_csv(p, index=False))
    _write_plots(paths, equity, booster, spec.names, holdout.y, holdout_prob)
    return metrics


def _write_plots(paths: DataPaths, equity: pd.DataFrame, booster: lgb.Booster, names: tuple[str, ...],
                 y: np.ndarray, prob: np.ndarray) -> None:
    out = plots_dir(paths)
    curves = {name: (equity["date"].to_numpy(), equity[col].to_numpy()) for name, col in
              (("model", "equity"), ("momentum", "momentum"), ("buy & hold", "buy_and_hold"), ("flat", "flat"))}
    plots.equity_plot(curves, out / "equity.png", "holdout equity, same fees (USD)")
    plots.importance_plot(list(names), booster.feature_importance(importance_type="gain"), out / "importance.png")
    plots.calibration_plot(y, prob, out / "calibration.png")


# ---- register + promote ---------------------------------------------------------------------------

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


def register(params: Params, paths: DataPaths, settings: Settings) -> int:
    """Log the trained model with lineage tags to MLflow, register a version, alias it `challenger`."""
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
    registry.set_alias(params.registry.model_name, "challenger", version)
    _write_json(registered_file(paths), {"model": params.registry.model_name, "version": version, "run_id": run_id})
    return version


def registered_file(paths: DataPaths) -> Path:
    """The register stage's DVC output: which MLflow version this pipeline state produced."""
    return paths.reports / "registered.json"
