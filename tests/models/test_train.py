"""Optuna over purged walk-forward CV, and the train → evaluate → register stages, on real candle slices
(the last 3000 bundled hourly candles of XRP and DOGE), with the study in a real RDB (sqlite, Postgres)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
import sqlalchemy as sa
import yaml

from core.params import Params, load_params, parse_params
from core.settings import Settings
from features.spec import spec_from_params
from models import dataset, registry
from models.train import SEARCHED, prepare_folds, search, study_name
from pipeline import evaluate as evaluate_job
from pipeline import featurize, prepare, register, train
from pipeline.paths import DataPaths

ROOT = Path(__file__).resolve().parents[2]
PG_URL = "postgresql+psycopg2://root@127.0.0.1:5432/test"


def _params(tmp: Path, **sections: dict) -> Params:
    """params.yaml pointing at the last 3000 real candles of each bundled pair, with small models."""
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    for pair, src in raw["data"]["sample"].items():
        dst = tmp / Path(src).name
        if not dst.exists():
            pd.read_parquet(ROOT / src).tail(3000).to_parquet(dst, index=False)
        raw["data"]["sample"][pair] = str(dst)
    raw["train"]["n_estimators"] = 30
    raw["cv"] = {"n_folds": 3, "embargo": 24}
    raw["optuna"] = {"n_trials": 5, "timeout_s": None, "storage": None}
    for key, values in sections.items():
        raw[key] = {**raw[key], **values}
    return parse_params(raw)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> tuple[Params, DataPaths]:
    tmp = tmp_path_factory.mktemp("train")
    params, paths = _params(tmp), DataPaths(tmp / "data")
    prepare.prepare(params, paths)
    featurize.featurize(params, paths)
    return params, paths


def _train_set(params: Params, paths: DataPaths) -> dataset.Dataset:
    spec = spec_from_params(params.features)
    return dataset.split(featurize.load_feature_table(params, paths), spec.names)[0]


def _search(params: Params, paths: DataPaths, storage: str, name: str = "t"):  # type: ignore[no-untyped-def]
    data = _train_set(params, paths)
    prepared = prepare_folds(data, spec_from_params(params.features).names, train.cv_folds(data, params))
    return search(prepared, params.train, params.optuna, storage, name)


def test_search_is_seeded_and_tries_params_yaml_first(project: tuple[Params, DataPaths], tmp_path: Path) -> None:
    params, paths = project
    first = _search(params, paths, f"sqlite:///{tmp_path / 'a.db'}")
    second = _search(params, paths, f"sqlite:///{tmp_path / 'b.db'}")
    assert first.best == second.best and first.scores == second.scores
    assert first.n_trials == 5 and len(first.scores) == 3
    study = optuna.load_study(study_name="t", storage=f"sqlite:///{tmp_path / 'a.db'}")
    assert len(study.trials) == 5
    assert study.trials[0].params == {k: getattr(params.train, k) for k in SEARCHED}
    assert first.best.n_estimators == 30 and first.best.seed == params.train.seed  # never searched


def test_an_existing_study_is_reused_not_extended(project: tuple[Params, DataPaths], tmp_path: Path) -> None:
    params, paths = project
    storage = f"sqlite:///{tmp_path / 'o.db'}"
    first = _search(params, paths, storage)
    again = _search(params, paths, storage)
    assert again == first
    assert len(optuna.load_study(study_name="t", storage=storage).trials) == 5


def test_study_name_changes_with_data_and_params(project: tuple[Params, DataPaths]) -> None:
    params, paths = project
    data = _train_set(params, paths)
    name = study_name("kf", params.train, params.cv, params.optuna, data)
    assert name == study_name("kf", params.train, params.cv, params.optuna, data)
    assert name != study_name("kf", params.train.model_copy(update={"num_leaves": 63}), params.cv, params.optuna, data)
    assert name != study_name("kf", params.train, params.cv, params.optuna, data.take(np.arange(len(data)) > 0))


@pytest.fixture
def pg_schema() -> Iterator[str]:
    """A throw-away schema on the local PostgreSQL; the Optuna tables are created inside it."""
    engine = sa.create_engine(PG_URL)
    schema = f"e_optuna_{uuid.uuid4().hex[:8]}"
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    except sa.exc.OperationalError as err:
        pytest.skip(f"local PostgreSQL at 127.0.0.1:5432 (db test, user root) unreachable: {err.orig}")
    yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    with engine.begin() as conn:
        conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
    engine.dispose()


def test_study_in_postgres_gives_the_same_result_as_sqlite(
        project: tuple[Params, DataPaths], pg_schema: str, tmp_path: Path) -> None:
    params, paths = project
    in_pg = _search(params, paths, pg_schema, "pg")
    in_sqlite = _search(params, paths, f"sqlite:///{tmp_path / 's.db'}", "pg")
    assert in_pg.best == in_sqlite.best and in_pg.scores == in_sqlite.scores
    assert len(optuna.load_study(study_name="pg", storage=pg_schema).trials) == 5


def test_zero_trials_trains_params_yaml_unchanged(project: tuple[Params, DataPaths], tmp_path: Path) -> None:
    params, paths = project
    fixed = _params(tmp_path, optuna={"n_trials": 0}, train={"num_leaves": 63, "n_estimators": 30})
    chosen, scores, info = train.choose_train_params(_train_set(params, paths), spec_from_params(
        params.features).names, fixed, paths)
    assert chosen == fixed.train and len(scores) == 3 and info["optuna_n_trials"] == 1.0


def test_train_evaluate_register_log_cv_plots_and_lineage(
        project: tuple[Params, DataPaths], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    params, paths = project
    monkeypatch.setenv("KRAKENFLOW_STATE_DIR", str(tmp_path / "home"))
    trained = train.train(params, paths)
    assert trained["optuna_n_trials"] == 5.0 and "cv_fold3_logloss" in trained
    assert json.loads(train.cv_metrics_file(paths).read_text())["cv_logloss"] == trained["cv_logloss"]
    metrics = evaluate_job.evaluate_model(params, paths)
    assert metrics["holdout_n_trials_deflated"] == 5.0
    assert metrics["holdout_dsr"] <= metrics["holdout_psr"]
    for name in ("buy_and_hold", "flat", "momentum"):
        assert f"baseline_{name}_sharpe" in metrics
    equity = pd.read_csv(paths.equity_csv)
    assert list(equity.columns) == ["date", "equity", "momentum", "buy_and_hold", "flat"]
    bnh = equity["buy_and_hold"].to_numpy()  # buy-and-hold is computed once: the curve and its return agree
    assert metrics["baseline_buy_and_hold_net_return"] == pytest.approx(bnh[-1] / params.trade.starting_cash - 1)
    version = register.register(params, paths, Settings())
    assert json.loads(register.registered_file(paths).read_text())["version"] == version
    loaded = registry.load_model(params.registry.model_name, "challenger")
    assert loaded.tags["optuna_n_trials"] == "5" and loaded.tags["optuna_study"] == trained["optuna_study"]
    run = registry.run_metrics(params.registry.model_name, version)
    assert run["cv/auc_mean"] == pytest.approx(trained["cv_auc"]) and "holdout/dsr" in run
    assert sorted(registry.run_artifacts(loaded.run_id, "plots")) == [
        "plots/calibration.png", "plots/equity.png", "plots/importance.png", "plots/report.html"]
    report = json.loads(evaluate_job.holdout_report(paths).with_suffix(".json").read_text())
    assert report["curves"]["model"][-1] == pytest.approx(metrics["holdout_final_equity"])  # the same run


def test_embargo_shorter_than_the_label_horizon_is_refused() -> None:
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["cv"] = {"n_folds": 3, "embargo": 2}
    with pytest.raises(ValueError, match=r"cv.embargo \(2 candles\) must be ≥ label.horizon"):
        parse_params(raw)
    assert load_params(ROOT / "params.yaml").cv.embargo >= load_params(ROOT / "params.yaml").label.horizon


def _model_dir_bytes(paths: DataPaths) -> dict[str, bytes]:
    return {f.name: f.read_bytes() for f in sorted(paths.model_dir.iterdir())}


def test_trained_model_dir_is_the_same_bytes_in_any_clone_and_on_a_rerun(tmp_path: Path) -> None:
    """data/models is a DVC output: when an Optuna sqlite file (trial timestamps) or the clone's path lived
    in it, no fresh clone matched dvc.lock and `dvc repro` retrained instead of restoring (seen in CI)."""
    written = []
    for home in (tmp_path / "a", tmp_path / "clone-b"):
        home.mkdir()
        params, paths = _params(home), DataPaths(home / "data", home)
        prepare.prepare(params, paths)
        featurize.featurize(params, paths)
        for _ in range(2):  # the rerun reuses the finished study in data/studies
            train.train(params, paths)
            written.append(_model_dir_bytes(paths))
        assert (paths.studies / "optuna.db").exists()
    assert all(w == written[0] for w in written), [sorted(w) for w in written]
    assert sorted(written[0]) == ["feature_spec.json", "model.lgb", "train_metrics.json", "trials.json"]
    assert json.loads(written[0]["train_metrics.json"])["optuna_storage"] == "sqlite:///data/studies/optuna.db"
