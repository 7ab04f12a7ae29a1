"""Load the promoted model for trading: native LightGBM booster + feature spec, hash-checked."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from features.spec import FeatureSpec, spec_from_json
from models.registry import LoadedModel, ModelArtifactError, load_model
from trader.engine import Scorer
from trader.fast_predict import FastScorer


@dataclass(frozen=True)
class TradingModel:
    spec: FeatureSpec
    score: Scorer
    version: int
    name: str


def booster_scorer(booster: object) -> Scorer:
    """The hot-path scorer: LightGBM's C API single-row fast path over the native booster."""
    return FastScorer(booster)


def batch_predict(booster: Any) -> Callable[[np.ndarray], np.ndarray]:
    """Whole-matrix scoring for backtests (LightGBM's own threads)."""
    return lambda X: np.asarray(booster.predict(X), dtype=np.float64)


def trading_model(loaded: LoadedModel) -> TradingModel:
    """Refuses (SpecMismatchError) a model whose feature spec differs from this code's features, and
    (ModelArtifactError) one whose feature_spec.json does not describe features at all."""
    try:
        spec = spec_from_json(loaded.spec)
    except (KeyError, TypeError, ValueError) as err:
        raise ModelArtifactError(f"model {loaded.name} v{loaded.version}: its feature_spec.json does not describe "
                                 f"features ({type(err).__name__}: {err}); re-register the model") from err
    spec.check_compatible(loaded.spec)
    return TradingModel(spec, booster_scorer(loaded.booster), loaded.version, loaded.name)


def load_trading_model(name: str, ref: str = "champion") -> TradingModel:
    return trading_model(load_model(name, ref))
