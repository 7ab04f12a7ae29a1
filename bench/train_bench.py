"""Training benchmarks (issue E targets), on real candles.

- Optuna search: 50 trials (seeded TPE + MedianPruner, one trial at a time, single-threaded LightGBM with
  params.yaml's n_estimators) over purged walk-forward CV on the last 2 years of the bundled real hourly
  XRP/USDT candles, the study in a temporary sqlite RDB — exactly the train stage's code path.
- Featurize 1 M candles: features + fee-net labels + split masks (`models.dataset.pair_table`, what the
  featurize stage runs per pair) on the real 5-minute XRP series TILED to 1 M rows (see
  bench.engine_bench.tiled: real moves, a synthetic calendar).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import pandas as pd

from bench.engine_bench import real_5m, tiled
from core.params import load_params
from core.timeframe import to_timedelta
from features.spec import spec_from_params
from models import dataset
from models.cv import candle_index, purged_walk_forward
from models.train import prepare_folds, search

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "sample" / "binance"
PARAMS = load_params()
TWO_YEARS_1H = 2 * 365 * 24


def optuna_search(n_trials: int = 50) -> dict[str, float]:
    """Wall-clock seconds of the whole search (folds binned once, then n_trials trials)."""
    frame = pd.read_parquet(SAMPLE / "XRP_USDT-1h.parquet").tail(TWO_YEARS_1H).reset_index(drop=True)
    spec = spec_from_params(PARAMS.features)
    train_set, _ = dataset.split(dataset.pair_table(frame, "XRP/USD", spec, PARAMS), spec.names)
    candle = to_timedelta(PARAMS.data.timeframe).to_timedelta64()
    started = time.perf_counter()
    folds = purged_walk_forward(candle_index(train_set.date, candle), PARAMS.cv.n_folds, PARAMS.label.horizon,
                                PARAMS.cv.embargo)
    prepared = prepare_folds(train_set, spec.names, folds)
    opt = PARAMS.optuna.model_copy(update={"n_trials": n_trials, "timeout_s": None})
    with tempfile.TemporaryDirectory() as tmp:
        found = search(prepared, PARAMS.train, opt, f"sqlite:///{tmp}/optuna.db", "bench")
    return {"seconds": time.perf_counter() - started, "rows": float(len(train_set)),
            "pruned": float(found.n_pruned), "trials": float(found.n_trials)}


def featurize_million() -> dict[str, float]:
    frame = tiled(real_5m("XRP"), 1_000_000)
    spec = spec_from_params(PARAMS.features)
    started = time.perf_counter()
    table = dataset.pair_table(frame, "XRP/USD", spec, PARAMS)
    return {"seconds": time.perf_counter() - started, "rows": float(len(table))}


def run() -> list[dict]:
    search_res = optuna_search()
    feat = featurize_million()
    return [
        {"name": "Optuna search, 50 trials, 2 years of 1h candles, one pair",
         "value": f"{search_res['seconds']:.1f}", "unit": "s", "target": "≤ 180 s on 2 cores",
         "ok": search_res["seconds"] <= 180,
         "note": f"{int(search_res['rows']):,} training rows, {PARAMS.cv.n_folds} purged walk-forward folds, "
                 f"{PARAMS.train.n_estimators} trees, {int(search_res['pruned'])} of {int(search_res['trials'])} "
                 "trials pruned; sqlite RDB; real XRP/USDT"},
        {"name": "featurize 1 M candles (features + fee-net labels + split)", "value": f"{feat['seconds']:.2f}",
         "unit": "s", "target": "≤ 5 s", "ok": feat["seconds"] <= 5,
         "note": "models.dataset.pair_table; real 5m XRP tiled to 1 M rows"},
    ]
