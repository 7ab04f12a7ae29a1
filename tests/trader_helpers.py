"""Helpers for live-trader tests: a real (tiny) LightGBM model on real candles, registered in a real MLflow."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd

from core.params import load_params
from core.settings import Settings
from features.spec import FeatureSpec
from models import registry

PARAMS = load_params()


def train_small_booster(spec: FeatureSpec, candles: pd.DataFrame, rounds: int = 5) -> lgb.Booster:
    """A tiny but real model on real candles (next-candle direction); enough to drive the engine."""
    X = spec.batch(candles.iloc[:3000])[spec.warmup :]
    y = (np.diff(candles["close"].to_numpy()[spec.warmup : 3001]) > 0).astype(float)
    return lgb.train({"objective": "binary", "verbosity": -1, "num_threads": 1}, lgb.Dataset(X, label=y), rounds)


def register_model(settings: Settings, booster: lgb.Booster, spec_json: dict, alias: str = "champion") -> int:
    registry.configure(settings.tracking_uri)
    exp = registry.ensure_experiment("t", settings.artifact_root)
    run_id, uri = registry.log_training_run(experiment_id=exp, run_name="r", booster=booster,
                                            spec_json=spec_json, params={}, metrics={}, tags={})
    version = registry.register(uri, "krakenflow", run_id, {})
    registry.set_alias("krakenflow", alias, version)
    return version
