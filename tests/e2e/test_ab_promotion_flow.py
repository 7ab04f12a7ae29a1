"""A/B promotion on real models, real MLflow (sqlite) and a real Prefect test harness.

Two real models from the bundled candles: the default params and an experiment (num_leaves 31,
learning rate 0.05) that shadow-trades worse on the unseen period. Ordering them both ways gives a
real "promote" and a real "keep"."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from core.params import Params, parse_params
from core.settings import Settings
from models import registry
from pipeline import evaluate, featurize, prepare, register, train
from pipeline import promote as ab
from pipeline.paths import DataPaths

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def _params(**train: object) -> Params:
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["data"]["sample"] = {k: str(ROOT / v) for k, v in raw["data"]["sample"].items()}
    raw["train"].update(train)
    raw["optuna"] = {**raw.get("optuna", {}), "n_trials": 0}  # two hand-picked models, not two searches
    raw["promotion"]["n_boot"] = 500
    return parse_params(raw)


def _train_and_register(params: Params, paths: DataPaths, settings: Settings) -> int:
    prepare.prepare(params, paths)
    featurize.featurize(params, paths)
    train.train(params, paths)
    evaluate.evaluate_model(params, paths)
    return register.register(params, paths, settings)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[DataPaths, Settings, int, int]:
    tmp = tmp_path_factory.mktemp("ab")
    settings = Settings(state_dir=tmp / "home", data_dir=tmp / "data")
    paths = DataPaths(tmp / "data")
    weaker = _train_and_register(_params(num_leaves=31, learning_rate=0.05), paths, settings)
    default = _train_and_register(_params(), paths, settings)
    return paths, settings, weaker, default


def _aliases(settings: Settings) -> tuple[int | None, int | None, int | None]:
    registry.configure(settings.tracking_uri)
    return tuple(registry.alias_version("krakenflow", a) for a in ("champion", "previous", "challenger"))  # type: ignore[return-value]


def _write(params: Params, where: Path) -> Path:
    path = where / "params.yaml"
    path.write_text(yaml.safe_dump(params.model_dump(mode="json")))
    return path


def test_promote_keep_insufficient_and_rollback(
    world: tuple[DataPaths, Settings, int, int], monkeypatch: pytest.MonkeyPatch, alert_receiver: Any
) -> None:
    from prefect.testing.utilities import prefect_test_harness

    from flows.pipeline import ab_promote_flow

    paths, settings, weaker, default = world
    settings = settings.model_copy(update={"alert_urls": [alert_receiver.url]})
    registry.configure(settings.tracking_uri)
    registry.set_alias("krakenflow", "champion", weaker)
    registry.set_alias("krakenflow", "challenger", default)

    strict = _params().model_dump(mode="json")
    strict["promotion"]["min_periods"] = 10**6
    insufficient = ab.run_ab(parse_params(strict), paths, settings)
    assert insufficient.result.decision == "insufficient_evidence"
    assert _aliases(settings)[0] == weaker

    monkeypatch.setenv("KRAKENFLOW_STATE_DIR", str(settings.state_dir))
    with prefect_test_harness(server_startup_timeout=180):
        promoted = ab_promote_flow(params_file=str(_write(_params(), paths.root)), data_dir=str(paths.root))
    assert promoted["decision"] == "promote", promoted["reason"]
    assert promoted["p_value"] < 0.05 and promoted["effect"] > 0
    assert _aliases(settings)[:2] == (default, weaker)
    tags = registry.load_model("krakenflow", str(default)).tags
    assert tags["ab_decision"] == "promote"
    assert float(tags["ab_p_value"]) == pytest.approx(promoted["p_value"], rel=1e-5)

    assert ab.rollback(_params(), settings) == (weaker, default)
    assert _aliases(settings)[:2] == (weaker, default)
    assert "not promoted (insufficient_evidence)" in alert_receiver.wait_for(f"krakenflow v{default} not")["title"]
    promoted_alert = alert_receiver.wait_for("promoted to @champion")
    assert promoted_alert["title"] == f"krakenflow v{default} promoted to @champion"
    assert f"was v{weaker}" in promoted_alert["message"]
    assert alert_receiver.wait_for("rolled back")["title"] == (
        f"krakenflow rolled back: @champion v{default} → v{weaker}")

    registry.set_alias("krakenflow", "champion", default)
    registry.set_alias("krakenflow", "challenger", weaker)
    kept = ab.run_ab(_params(), paths, settings)
    assert kept.result.decision == "keep" and kept.result.effect < 0
    assert _aliases(settings)[0] == default

    # every decision is its own MLflow run: the later A/Bs did not overwrite the promotion's record
    history = ab.ab_history(_params(), settings)
    assert [h["decision"] for h in history] == ["keep", "promote", "insufficient_evidence"]
    assert [h["run_id"] for h in history] == [kept.run_id, promoted["run_id"], insufficient.run_id]
    record = history[1]
    assert (record["champion_version"], record["challenger_version"]) == (str(weaker), str(default))
    assert record["p_value"] == pytest.approx(promoted["p_value"]) and record["champion_after"] == str(default)
    assert record["candles"] > 0 and record["challenger_n_round_trips"] == promoted["challenger_trades"]
    assert record["challenger_net_return"] > record["champion_net_return"]


def test_champion_from_older_feature_code_is_replaced(world: tuple[DataPaths, Settings, int, int]) -> None:
    """After an upgrade that changes feature code, the old champion cannot trade: promote, with reason."""
    paths, settings, weaker, default = world
    registry.configure(settings.tracking_uri)
    loaded = registry.load_model("krakenflow", str(weaker))
    exp = registry.ensure_experiment("krakenflow", settings.artifact_root)
    run_id, uri = registry.log_training_run(
        experiment_id=exp, run_name="old-code", booster=loaded.booster,
        spec_json={**loaded.spec, "hash": "0123456789abcdef"}, params={}, metrics={}, tags=loaded.tags)
    stale = registry.register(uri, "krakenflow", run_id, loaded.tags)
    registry.set_alias("krakenflow", "champion", stale)
    registry.set_alias("krakenflow", "challenger", default)
    outcome = ab.run_ab(_params(), paths, settings)
    assert outcome.result.decision == "promote" and "cannot run on this feature code" in outcome.result.reason
    assert _aliases(settings)[:2] == (default, stale)
