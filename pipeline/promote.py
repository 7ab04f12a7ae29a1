"""Job `promote`: champion and challenger shadow-trade the SAME unseen candles from the store on the trader
engine (SimulatedBroker, no money at stake); a pure paired test decides; aliases and tags record it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from core.alerts import Alert, alerter_from_settings
from core.metrics import period_returns
from core.params import Params
from core.settings import Settings
from core.types import Candle
from features.spec import SpecMismatchError
from models import registry
from models.promotion import ABResult, ABRules, decide_promotion
from pipeline.backtest import first_unseen
from pipeline.candles import read_candles
from pipeline.paths import DataPaths
from trader.backtest import BacktestResult, ReplayConfig, replay
from trader.model import TradingModel, batch_predict, trading_model


@dataclass(frozen=True)
class ABOutcome:
    result: ABResult
    champion_before: int | None
    challenger: int
    champion_after: int | None
    shadow_from: str
    run_id: str = ""
    """The MLflow run in `<experiment>-ab` that keeps this decision (the history; version tags hold the last)."""

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self.result), "champion_before": self.champion_before, "challenger": self.challenger,
                "champion_after": self.champion_after, "shadow_from": self.shadow_from, "run_id": self.run_id}


def ab_rules(params: Params) -> ABRules:
    p = params.promotion
    return ABRules(alpha=p.alpha, min_periods=p.min_periods, min_trades=p.min_holdout_trades,
                   max_drawdown=p.max_drawdown, n_boot=p.n_boot, seed=params.train.seed)


def _shadow(model: TradingModel, loaded: registry.LoadedModel, candles: dict[str, list[Candle]], params: Params,
            start_ms: int) -> BacktestResult:
    return replay(candles, ReplayConfig.from_params(params, start_ms), model.spec, model.score,
                  batch_predict(loaded.booster))


def run_ab(params: Params, paths: DataPaths, settings: Settings) -> ABOutcome:
    """Shadow-run both models, decide, move aliases (champion ← challenger, previous ← old champion)."""
    registry.configure(settings.tracking_uri, settings.mlflow_registry_uri)
    name = params.registry.model_name
    challenger_v = registry.alias_version(name, "challenger")
    if challenger_v is None:
        raise LookupError(f"model {name!r} has no @challenger: run `krakenflow retrain` first")
    champion_v = registry.alias_version(name, "champion")
    chall_loaded = registry.load_model(name, str(challenger_v))
    chall = trading_model(chall_loaded)  # refuses a spec-hash mismatch: never promoted
    if champion_v is None or champion_v == challenger_v:
        why = "no champion yet" if champion_v is None else f"v{challenger_v} is already champion"
        result = ABResult("promote" if champion_v is None else "keep", float("nan"), 0.0, 0, 0, why)
        return record(params, settings, _apply(name, result, champion_v, challenger_v, "-"), {})
    champ_loaded = registry.load_model(name, str(champion_v))
    try:
        champ = trading_model(champ_loaded)
    except SpecMismatchError as err:  # the code moved on: the old champion can no longer trade at all
        why = f"champion v{champion_v} cannot run on this feature code ({err}); the challenger replaces it"
        outcome = _apply(name, ABResult("promote", float("nan"), 0.0, 0, 0, why), champion_v, challenger_v, "-")
        return record(params, settings, outcome, {})
    start = first_unseen(params, chall_loaded, champ_loaded)
    start_ms = int(start.value // 1_000_000)
    candles = read_candles(params, paths)  # the store, incl. candles ingested since the last prepare
    champ_run = _shadow(champ, champ_loaded, candles, params, start_ms)
    chall_run = _shadow(chall, chall_loaded, candles, params, start_ms)
    trades = int(chall_run.metrics["n_round_trips"])
    result = decide_promotion(period_returns(champ_run.equity), period_returns(chall_run.equity), trades,
                              ab_rules(params))
    runs = {"champion": champ_run, "challenger": chall_run}
    shadow = {f"{who}_{key}": float(run.metrics[key]) for who, run in runs.items()
              for key in SHADOW_METRICS if key in run.metrics}
    shadow["candles"] = float(sum(1 for seq in candles.values() for c in seq if c.ts >= start_ms))
    return record(params, settings, _apply(name, result, champion_v, challenger_v, str(start)), shadow)


SHADOW_METRICS = ("net_return", "max_drawdown", "sharpe", "n_round_trips", "n_fills")
"""What each model's shadow run contributes to the A/B record."""


def ab_experiment(params: Params) -> str:
    return params.registry.experiment + registry.AB_EXPERIMENT_SUFFIX


def record(params: Params, settings: Settings, outcome: ABOutcome, shadow: dict[str, float]) -> ABOutcome:
    """Keep the decision as its own MLflow run (versions, p-value, effect, candles, trades, outcome): the A/B
    history, which the next A/B never overwrites."""
    r = outcome.result
    exp_id = registry.ensure_experiment(ab_experiment(params), settings.artifact_root)
    run_id = registry.log_decision_run(
        experiment_id=exp_id, run_name=f"ab v{outcome.champion_before} vs v{outcome.challenger} · {r.decision}",
        params={"champion_version": str(outcome.champion_before), "challenger_version": str(outcome.challenger),
                "shadow_from": outcome.shadow_from, "alpha": params.promotion.alpha,
                "min_periods": params.promotion.min_periods, "min_trades": params.promotion.min_holdout_trades,
                "max_drawdown": params.promotion.max_drawdown, "n_boot": params.promotion.n_boot},
        metrics={"p_value": r.p_value, "effect_per_period": r.effect, "n_periods": float(r.n_periods),
                 "challenger_trades": float(r.challenger_trades), **shadow},
        tags={"decision": r.decision, "reason": r.reason, "model": params.registry.model_name,
              "champion_after": str(outcome.champion_after)})
    announce(settings, outcome, params.registry.model_name)
    return replace(outcome, run_id=run_id)


def announce(settings: Settings, outcome: ABOutcome, name: str) -> None:
    """Tell a person: a promotion moved @champion (the trader swaps between candles), or the A/B refused."""
    r = outcome.result
    numbers = f"p={r.p_value:.3g}, effect {r.effect:+.3g}/period over {r.n_periods} periods; {r.reason}"
    if r.decision == "promote":
        alert = Alert("model_promoted", "info", f"{name} v{outcome.challenger} promoted to @champion",
                      f"was v{outcome.champion_before}; {numbers}")
    else:
        alert = Alert("model_refused", "info", f"{name} v{outcome.challenger} not promoted ({r.decision})",
                      f"@champion stays v{outcome.champion_before}; {numbers}")
    alerter_from_settings(settings).send(alert)


def ab_history(params: Params, settings: Settings) -> list[dict[str, object]]:
    """Every A/B decision of this model, newest first (for the console and `krakenflow ab history`)."""
    registry.configure(settings.tracking_uri, settings.mlflow_registry_uri)
    return [run for run in registry.decision_runs(ab_experiment(params))
            if run.get("model") == params.registry.model_name]


def _apply(name: str, result: ABResult, champion_v: int | None, challenger_v: int, start: str) -> ABOutcome:
    tags = {"ab_decision": result.decision, "ab_p_value": f"{result.p_value:.6g}",
            "ab_effect_per_period": f"{result.effect:.6g}", "ab_n_periods": str(result.n_periods),
            "ab_reason": result.reason, "ab_champion": str(champion_v), "ab_challenger": str(challenger_v)}
    registry.tag_version(name, challenger_v, tags)
    if champion_v is not None and champion_v != challenger_v:
        registry.tag_version(name, champion_v, tags)
    after = champion_v
    if result.decision == "promote":
        if champion_v is not None:
            registry.set_alias(name, "previous", champion_v)
        registry.set_alias(name, "champion", challenger_v)
        after = challenger_v
    return ABOutcome(result, champion_v, challenger_v, after, start)


def rollback(params: Params, settings: Settings) -> tuple[int, int]:
    """Swap @champion and @previous. Returns (new champion, new previous)."""
    registry.configure(settings.tracking_uri, settings.mlflow_registry_uri)
    name = params.registry.model_name
    champion_v, previous_v = registry.alias_version(name, "champion"), registry.alias_version(name, "previous")
    if champion_v is None or previous_v is None:
        raise LookupError(f"model {name!r} needs both @champion and @previous to roll back "
                          f"(champion={champion_v}, previous={previous_v})")
    registry.set_alias(name, "champion", previous_v)
    registry.set_alias(name, "previous", champion_v)
    registry.tag_version(name, previous_v, {"rolled_back_from": str(champion_v)})
    alerter_from_settings(settings).send(Alert(
        "model_rolled_back", "warning", f"{name} rolled back: @champion v{champion_v} → v{previous_v}",
        "a running trader swaps to the restored champion between two candles"))
    return previous_v, champion_v
