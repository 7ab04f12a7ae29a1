"""Pipeline stages: prepare → featurize → train → evaluate → register → promote."""

from __future__ import annotations

import hashlib
import json
import logging
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightgbm as lgb
import pandas as pd

from core.params import Params
from core.settings import Settings
from features.spec import FeatureSpec, spec_from_json, spec_from_params
from market.frame import check_candle_frame, timeframe_to_timedelta, to_candles
from market.history import import_file
from market.store import CandleStore, Validator, pair_slug
from models import dataset, evaluate
from models.train import fit
from pipeline.paths import DataPaths
from quality.expectations import gate
from quality.repairs import apply_repairs
from trader.backtest import batch_scores, buy_and_hold_return, run_backtest
from trader.model import booster_scorer

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

def train(params: Params, paths: DataPaths) -> dict[str, float]:
    spec = spec_from_params(params.features)
    table = load_feature_table(params, paths)
    train_set, _ = dataset.split(table, spec.names)
    booster = fit(train_set, spec.names, params.train)
    paths.model_dir.mkdir(parents=True, exist_ok=True)
    _write_atomic(paths.model_file, lambda p: booster.save_model(str(p)))
    _write_json(paths.spec_file, spec.to_json())
    metrics = evaluate.classification_metrics(train_set.y, booster.predict(train_set.X), "train")
    metrics["train_start"] = str(pd.Timestamp(train_set.date.min()))  # type: ignore[assignment]
    metrics["train_end"] = str(pd.Timestamp(train_set.date.max()))  # type: ignore[assignment]
    _write_json(paths.train_metrics, metrics)
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


def evaluate_model(params: Params, paths: DataPaths) -> dict[str, float]:
    """Holdout classification metrics + the trader engine's own backtest on the holdout period,
    against buy-and-hold and always-flat (0) with the same fees."""
    booster, spec, _ = load_trained(paths)
    table = load_feature_table(params, paths)
    _, holdout = dataset.split(table, spec.names)
    metrics = evaluate.classification_metrics(holdout.y, booster.predict(holdout.X), "holdout")
    frames = load_validated(params, paths)
    start = holdout_start(frames, params.split.holdout_fraction)
    start_ms = int(start.value // 1_000_000)
    candles = {pair: to_candles(frame) for pair, frame in frames.items()}
    scores = {pair: batch_scores(spec, booster.predict, seq) for pair, seq in candles.items()}
    result = run_backtest(candles, spec, booster_scorer(booster), params.trade, params.fees, start_ms,
                          periods_per_year(params.data.timeframe), scores, params.risk)
    metrics.update({f"holdout_{k}": v for k, v in result.metrics.items()})
    metrics["baseline_buy_and_hold_return"] = buy_and_hold_return(candles, start_ms, params.fees.taker)
    metrics["baseline_flat_return"] = 0.0
    _write_json(paths.metrics, metrics)
    equity = pd.DataFrame({"date": pd.to_datetime(result.equity_ts, unit="ms", utc=True), "equity": result.equity})
    _write_atomic(paths.equity_csv, lambda p: equity.to_csv(p, index=False))
    return metrics


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
    return {k: json.dumps(v) if isinstance(v, list | dict) else v for k, v in flat.items()}


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
    }
    exp_id = registry.ensure_experiment(params.registry.experiment, settings.artifact_root)
    metrics.update({k: v for k, v in train_metrics.items() if isinstance(v, int | float)})
    run_id, model_uri = registry.log_training_run(
        experiment_id=exp_id, run_name=f"train-{tags['data_hash'][:8]}", booster=booster, spec_json=spec_json,
        params=_flat_params(params), metrics=metrics, tags=tags,
        artifacts={"metrics": paths.metrics, "equity": paths.equity_csv, "validation": paths.validation_summary},
    )
    version = registry.register(model_uri, params.registry.model_name, run_id, tags)
    registry.set_alias(params.registry.model_name, "challenger", version)
    return version
