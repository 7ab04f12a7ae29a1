import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from core.params import load_params
from features.spec import spec_from_params
from trader.fast_predict import FastScorer

SPEC = spec_from_params(load_params().features)


@pytest.fixture(scope="module")
def booster_and_rows(xrp_1h: pd.DataFrame) -> tuple[lgb.Booster, np.ndarray]:
    X = SPEC.batch(xrp_1h.iloc[:4000])[SPEC.warmup :]
    y = (np.diff(xrp_1h["close"].to_numpy()[SPEC.warmup : 4001]) > 0).astype(float)
    booster = lgb.train({"objective": "binary", "verbosity": -1, "num_threads": 1, "num_leaves": 15},
                        lgb.Dataset(X, label=y), num_boost_round=50)
    return booster, X


def test_fast_path_equals_booster_predict(booster_and_rows: tuple[lgb.Booster, np.ndarray]) -> None:
    booster, X = booster_and_rows
    fast = FastScorer(booster)
    expected = booster.predict(X[:500])
    got = np.array([fast(list(row)) for row in X[:500]])
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)


def test_fast_path_handles_nan_like_lightgbm(booster_and_rows: tuple[lgb.Booster, np.ndarray]) -> None:
    booster, X = booster_and_rows
    row = X[10].copy()
    row[2] = np.nan
    assert FastScorer(booster)(list(row)) == pytest.approx(booster.predict(row[None, :])[0], abs=1e-12)


def test_wrong_feature_count_is_refused(booster_and_rows: tuple[lgb.Booster, np.ndarray]) -> None:
    with pytest.raises(ValueError, match="expects 10 features, got 3"):
        FastScorer(booster_and_rows[0])([1.0, 2.0, 3.0])
