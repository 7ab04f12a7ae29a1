"""Real MLflow on a temporary sqlite store: log, register, alias, load the native booster."""

from __future__ import annotations

from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from core.params import load_params
from features.spec import SpecMismatchError, spec_from_params
from models import registry
from trader.model import trading_model

SPEC = spec_from_params(load_params().features)


@pytest.fixture
def tracking(tmp_path: Path) -> Path:
    registry.configure(f"sqlite:///{tmp_path / 'mlflow.db'}")
    return tmp_path


def _booster(frame: pd.DataFrame) -> lgb.Booster:
    X = SPEC.batch(frame.iloc[:3000])[SPEC.warmup :]
    y = (np.diff(frame["close"].to_numpy()[SPEC.warmup : 3001]) > 0).astype(float)
    return lgb.train({"objective": "binary", "verbosity": -1, "num_threads": 1},
                     lgb.Dataset(X, label=y, feature_name=list(SPEC.names)), num_boost_round=5)


def _log(tracking: Path, booster: lgb.Booster, spec_json: dict) -> int:
    exp = registry.ensure_experiment("t", (tracking / "art").as_uri())
    run_id, uri = registry.log_training_run(
        experiment_id=exp, run_name="r", booster=booster, spec_json=spec_json,
        params={"num_leaves": 7}, metrics={"holdout_auc": 0.51}, tags={"git_sha": "abc"})
    return registry.register(uri, "kf", run_id, {"git_sha": "abc"})


def test_register_alias_and_load_native_booster(tracking: Path, xrp_1h: pd.DataFrame) -> None:
    booster = _booster(xrp_1h)
    version = _log(tracking, booster, SPEC.to_json())
    assert registry.alias_version("kf", "champion") is None
    registry.set_alias("kf", "champion", version)
    loaded = registry.load_model("kf", "champion")
    assert loaded.version == version and loaded.tags["git_sha"] == "abc"
    assert isinstance(loaded.booster, lgb.Booster)
    X = SPEC.batch(xrp_1h.iloc[:1000])[-5:]
    np.testing.assert_allclose(loaded.booster.predict(X), booster.predict(X))
    assert registry.run_metrics("kf", version)["holdout_auc"] == pytest.approx(0.51)
    model = trading_model(loaded)
    assert 0.0 <= model.score(list(X[0])) <= 1.0


def test_trader_refuses_model_with_foreign_feature_spec(tracking: Path, xrp_1h: pd.DataFrame) -> None:
    version = _log(tracking, _booster(xrp_1h), {**SPEC.to_json(), "hash": "deadbeefdeadbeef"})
    with pytest.raises(SpecMismatchError, match="deadbeefdeadbeef"):
        trading_model(registry.load_model("kf", str(version)))


def test_unknown_alias_names_the_fix(tracking: Path) -> None:
    with pytest.raises(registry.ModelNotFoundError, match="kf@champion"):
        registry.load_model("kf", "champion")
