"""LightGBM training of the next-move direction classifier (net of fees). Deterministic by seed."""

from __future__ import annotations

from typing import Any

import lightgbm as lgb
import numpy as np

from core.params import TrainParams
from models.dataset import Dataset


def lgb_params(train: TrainParams) -> dict[str, Any]:
    """Booster parameters; deterministic + row-wise so `dvc repro` twice gives identical models."""
    return {
        "objective": "binary",
        "metric": ["binary_logloss", "auc"],
        "num_leaves": train.num_leaves,
        "learning_rate": train.learning_rate,
        "min_child_samples": train.min_child_samples,
        "feature_fraction": train.feature_fraction,
        "bagging_fraction": train.bagging_fraction,
        "bagging_freq": train.bagging_freq,
        "lambda_l2": train.lambda_l2,
        "seed": train.seed,
        "deterministic": True,
        "force_row_wise": True,
        "num_threads": 2,
        "verbosity": -1,
    }


def fit(data: Dataset, feature_names: tuple[str, ...], train: TrainParams) -> lgb.Booster:
    if len(data) == 0:
        raise ValueError("no training rows: the data is shorter than the feature warm-up plus holdout")
    if len(np.unique(data.y)) < 2:
        raise ValueError("training labels hold a single class: no model can be learned from them")
    ds = lgb.Dataset(data.X, label=data.y, feature_name=list(feature_names), free_raw_data=True)
    return lgb.train(lgb_params(train), ds, num_boost_round=train.n_estimators)
