"""MLflow conventions, read back with MlflowClient from a real sqlite store after train → evaluate → register on
real candle slices: the experiment opens on its runs, the run says what it is, metrics are namespaced with
per-fold and per-trial steps, each Optuna trial is a child run, the data are logged as dataset inputs."""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
import yaml
from mlflow import MlflowClient
from mlflow.entities import Run

from core.params import Params, parse_params
from core.settings import Settings
from features.spec import spec_from_params
from models import dataset, registry
from models.train import SEARCHED
from pipeline import evaluate as evaluate_job
from pipeline import featurize, prepare, register, train
from pipeline.paths import DataPaths

ROOT = Path(__file__).resolve().parents[2]
N_TRIALS, N_FOLDS = 5, 3


@dataclass(frozen=True)
class Registered:
    params: Params
    paths: DataPaths
    trained: dict
    evaluated: dict
    client: MlflowClient
    run: Run


def _params(tmp: Path) -> Params:
    """params.yaml on the last 3000 real candles of each bundled pair, small models, a 5-trial search."""
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    for pair, src in raw["data"]["sample"].items():
        dst = tmp / Path(src).name
        pd.read_parquet(ROOT / src).tail(3000).to_parquet(dst, index=False)
        raw["data"]["sample"][pair] = str(dst)
    raw["train"]["n_estimators"] = 30
    raw["cv"] = {"n_folds": N_FOLDS, "embargo": 24}
    raw["optuna"] = {"n_trials": N_TRIALS, "timeout_s": None, "storage": None}
    return parse_params(raw)


@pytest.fixture(scope="module")
def registered(tmp_path_factory: pytest.TempPathFactory, mlflow_template: Path) -> Registered:
    tmp = tmp_path_factory.mktemp("conventions")
    params, paths = _params(tmp), DataPaths(tmp / "data")
    (tmp / "home").mkdir()
    shutil.copy(mlflow_template, tmp / "home" / "mlflow.db")
    settings = Settings(state_dir=tmp / "home")
    prepare.prepare(params, paths)
    featurize.featurize(params, paths)
    trained = train.train(params, paths)
    evaluated = evaluate_job.evaluate_model(params, paths)
    version = register.register(params, paths, settings)
    client = MlflowClient(settings.tracking_uri)
    run_id = client.get_model_version(params.registry.model_name, str(version)).run_id
    assert run_id
    return Registered(params, paths, trained, evaluated, client, client.get_run(run_id))


def _children(r: Registered) -> list[Run]:
    return r.client.search_runs([r.run.info.experiment_id],
                                filter_string=f"tags.mlflow.parentRunId = '{r.run.info.run_id}'")


def _steps(r: Registered, run_id: str, key: str) -> dict[int, float]:
    return {m.step: m.value for m in r.client.get_metric_history(run_id, key)}


def test_experiment_is_tagged_to_open_on_its_runs(registered: Registered) -> None:
    exp = registered.client.get_experiment(registered.run.info.experiment_id)
    assert exp.name == registered.params.registry.experiment
    assert exp.tags["mlflow.experimentKind"] == "custom_model_development"


def test_an_experiment_created_before_the_tag_gets_it(tmp_path: Path, mlflow_template: Path) -> None:
    shutil.copy(mlflow_template, tmp_path / "mlflow.db")
    registry.configure(f"sqlite:///{tmp_path / 'mlflow.db'}")
    client = MlflowClient()
    old = client.create_experiment("old", artifact_location=(tmp_path / "art").as_uri())
    assert "mlflow.experimentKind" not in client.get_experiment(old).tags
    assert registry.ensure_experiment("old", (tmp_path / "art").as_uri()) == old
    assert client.get_experiment(old).tags["mlflow.experimentKind"] == "custom_model_development"


def test_training_run_is_named_after_pairs_window_code_and_config(registered: Registered) -> None:
    tags = registered.run.data.tags
    name = registered.run.info.run_name
    start, end = (f"{pd.Timestamp(registered.trained[k]):%Y-%m-%d}" for k in ("train_start", "train_end"))
    assert name == (f"train XRP+DOGE 1h · {start}..{end} · {tags['git_sha'][:7]} · params {tags['params_hash'][:6]}")
    assert re.fullmatch(r"train XRP\+DOGE 1h · \d{4}-\d\d-\d\d\.\.\d{4}-\d\d-\d\d · (\w{7}|unknown) · params \w{6}",
                        name)


def test_every_metric_is_namespaced(registered: Registered) -> None:
    keys = set(registered.run.data.metrics)
    assert keys and all(re.fullmatch(r"(cv|holdout|baseline/\w+|train|optuna)/\w+", k) for k in keys), sorted(keys)
    assert not any(k.startswith(("cv_", "holdout_", "baseline_", "best_")) for k in keys)
    assert {f"baseline/{name}/net_return" for name in ("buy_and_hold", "flat", "momentum")} <= keys


def test_cv_scores_are_one_step_per_fold_and_a_mean(registered: Registered) -> None:
    r, run_id = registered, registered.run.info.run_id
    for metric in ("logloss", "auc"):
        per_fold = _steps(r, run_id, f"cv/{metric}")
        assert per_fold == pytest.approx({k: r.trained[f"cv_fold{k}_{metric}"] for k in range(1, N_FOLDS + 1)})
        assert r.run.data.metrics[f"cv/{metric}_mean"] == pytest.approx(r.trained[f"cv_{metric}"])
    assert r.run.data.metrics["cv/n_folds"] == N_FOLDS


def test_holdout_and_baseline_numbers_are_the_evaluate_stage_s(registered: Registered) -> None:
    metrics, evaluated = registered.run.data.metrics, registered.evaluated
    assert metrics["holdout/auc"] == pytest.approx(evaluated["holdout_auc"])
    assert metrics["holdout/dsr"] == pytest.approx(evaluated["holdout_dsr"])
    assert metrics["baseline/buy_and_hold/net_return"] == pytest.approx(evaluated["baseline_buy_and_hold_net_return"])
    assert metrics["baseline/momentum/sharpe"] == pytest.approx(evaluated["baseline_momentum_sharpe"])
    assert metrics["train/auc"] == pytest.approx(registered.trained["train_auc"])


def test_each_optuna_trial_is_a_child_run_with_its_params_and_objective(registered: Registered) -> None:
    children = _children(registered)
    assert len(children) == N_TRIALS == registered.trained["optuna_n_trials"]
    by_number = {int(c.data.tags["optuna.trial"]): c for c in children}
    assert sorted(by_number) == list(range(N_TRIALS))
    study = json.loads(registered.paths.train_metrics.read_text())["optuna_study"]
    for number, child in by_number.items():
        assert child.info.run_name.startswith(f"trial {number} · {child.data.tags['optuna.state']}")
        assert child.data.tags["optuna.study"] == study and child.info.status == "FINISHED"
        assert set(child.data.params) == set(SEARCHED)
        running = _steps(registered, child.info.run_id, "cv/logloss_running")
        assert running and sorted(running) == list(range(1, len(running) + 1))
    complete = {n: c for n, c in by_number.items() if c.data.tags["optuna.state"] == "complete"}
    assert len(complete) == N_TRIALS - registered.trained["optuna_n_pruned"]
    assert all(len(_steps(registered, c.info.run_id, "cv/logloss")) == N_FOLDS for c in complete.values())
    best = [c for c in children if c.data.tags["optuna.best"] == "true"]
    assert len(best) == 1 and best[0].info.run_name.endswith("· best")
    assert best[0].data.metrics["optuna/objective"] == pytest.approx(registered.run.data.metrics["cv/logloss_mean"])
    assert float(best[0].data.params["num_leaves"]) == float(registered.run.data.params["chosen.num_leaves"])


def test_the_search_is_one_series_over_trial_numbers_on_the_training_run(registered: Registered) -> None:
    run_id, trials = registered.run.info.run_id, train.load_trials(registered.paths)
    objective = _steps(registered, run_id, "optuna/objective")
    assert objective == pytest.approx({t.number: t.objective for t in trials if t.state == "complete"})
    best = _steps(registered, run_id, "optuna/best_objective")
    assert sorted(best) == sorted(objective) and min(best.values()) == pytest.approx(min(objective.values()))
    assert list(best.values()) == sorted(best.values(), reverse=True)  # running best never worsens
    assert len(trials) == N_TRIALS


def test_training_and_holdout_rows_are_dataset_inputs_with_the_data_hash(registered: Registered) -> None:
    r = registered
    assert r.run.inputs is not None
    inputs = {next(t.value for t in d.tags if t.key == "mlflow.data.context"): d
              for d in r.run.inputs.dataset_inputs}
    assert set(inputs) == {"training", "holdout"}
    spec = spec_from_params(r.params.features)
    train_set, holdout = dataset.split(featurize.load_feature_table(r.params, r.paths), spec.names)
    for context, rows in (("training", train_set), ("holdout", holdout)):
        logged = inputs[context].dataset
        assert logged.digest == r.run.data.tags["data_hash"] == register.data_hash(r.params, r.paths)
        assert logged.name == f"XRP+DOGE 1h features · {context}"
        assert logged.source_type == "local"
        assert json.loads(logged.source)["uri"].endswith("data/features")
        assert json.loads(str(logged.profile))["num_rows"] == len(rows) > 0
        columns = {c["name"] for c in json.loads(str(logged.schema))["mlflow_colspec"]}
        assert {*spec.names, "label", "net_return", "pair", "date"} == columns
        tags = {t.key: t.value for t in inputs[context].tags}
        assert tags["rows"] == str(len(rows)) and "XRP-USD-1h.parquet" in tags["files"]


def test_flat_dvc_keys_map_to_mlflow_namespaces() -> None:
    values, series = register.mlflow_metrics({
        "cv_fold1_logloss": 0.69, "cv_fold2_logloss": 0.68, "cv_fold1_auc": 0.52, "cv_logloss": 0.685,
        "cv_base_logloss": 0.7, "cv_folds": 2.0, "holdout_n_round_trips": 4.0,
        "baseline_buy_and_hold_max_drawdown": 0.3, "baseline_flat_net_return": 0.0, "baseline_new_rule_sharpe": 1.0,
        "train_auc": 0.6, "optuna_n_pruned": 1.0, "best_num_leaves": 31.0})
    assert series == {"cv/logloss": {1: 0.69, 2: 0.68}, "cv/auc": {1: 0.52}}
    assert values == {"cv/logloss_mean": 0.685, "cv/base_logloss_mean": 0.7, "cv/n_folds": 2.0,
                      "holdout/n_round_trips": 4.0, "baseline/buy_and_hold/max_drawdown": 0.3,
                      "baseline/flat/net_return": 0.0, "baseline/new_rule_sharpe": 1.0, "train/auc": 0.6,
                      "optuna/n_pruned": 1.0}
