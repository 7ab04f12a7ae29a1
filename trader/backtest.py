"""Backtest = the trading engine replayed over stored candles with the SimulatedBroker.

`replay` is the one way to run a model over candles: the evaluate stage (model and momentum baseline),
the A/B shadow run, paper trading and `krakenflow backtest` all call it, so the numbers a model is
judged by come from the same code, clock and fill model that trade it.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from core.metrics import max_drawdown, period_returns, sharpe, total_return
from core.params import FeeParams, Params, RiskParams, TradeParams
from core.timeframe import periods_per_year as candles_per_year
from core.timeframe import to_ms
from core.types import Candle, Fill
from features.spec import FeatureSpec
from trader.brokers.simulated import SimulatedBroker, fill_model
from trader.engine import NON_FINITE, WARMING_UP, Decision, Engine, Scorer
from trader.strategy import ThresholdStrategy

BatchPredict = Callable[[np.ndarray], np.ndarray]
"""Feature matrix → one probability per row (e.g. `lightgbm.Booster.predict`)."""


@dataclass(frozen=True)
class BacktestResult:
    equity_ts: list[int]
    equity: list[float]
    fills: list[Fill]
    decisions: list[Decision]
    fees_paid: float
    metrics: dict[str, float] = field(default_factory=dict)
    """Floats only (logged to MLflow as metrics); `kill_switch_trips` counts the loss-limit halts."""
    kill_switch_tripped_at: int | None = None
    """When a loss limit first halted the run and flattened it (epoch ms: the close of the candle whose mark
    breached; None = never). After the drawdown kill switch nothing is bought again (no human resumes a
    backtest); after the daily loss limit, nothing for the rest of that UTC day."""
    kill_switch_reason: str = ""
    risk_halts: tuple[tuple[int, str], ...] = ()
    """(epoch ms, reason) of every loss-limit halt, in time order."""


def merge_by_time(candles: Mapping[str, Sequence[Candle]]) -> Iterator[tuple[str, int, Candle]]:
    """All pairs' candles in time order (ties by pair name), with each candle's index in its pair's
    sequence: how a multi-pair feed arrives. The order is one stable numpy sort, not a per-candle heap."""
    pairs = sorted(candles)
    seqs = [candles[p] for p in pairs]
    empty = np.empty(0, np.int64)
    ts = np.concatenate([empty, *(np.fromiter((c.ts for c in seq), np.int64, len(seq)) for seq in seqs)])
    tag = np.concatenate([empty, *(np.full(len(seq), k, np.int64) for k, seq in enumerate(seqs))])
    index = np.concatenate([empty, *(np.arange(len(seq), dtype=np.int64) for seq in seqs)])
    order = np.lexsort((tag, ts))
    for k, i in zip(tag[order].tolist(), index[order].tolist(), strict=True):
        yield pairs[k], i, seqs[k][i]


def opened_first(feed: Iterator[tuple[str, int, Candle]], broker: SimulatedBroker) -> Iterator[tuple[str, int, Candle]]:
    """The feed, each timestamp's candles only after every pair's orders have met that open: live, every fill
    at an open is known before the next decision, whichever pair it is on (the engine's own on_candle call
    then finds the candle worked)."""
    for _, batch in itertools.groupby(feed, key=lambda item: item[2].ts):
        same_time = list(batch)
        for pair, _, candle in same_time:
            broker.on_candle(pair, candle)
        yield from same_time


@dataclass(frozen=True)
class BatchScores:
    """Per-candle model scores computed over a whole history at once; `why_not[i]` non-empty means
    stand aside on candle i (warm-up, non-finite feature) — exactly the online engine's rules."""

    prob: np.ndarray
    why_not: list[str]


def batch_scores(spec: FeatureSpec, predict: BatchPredict, seq: Sequence[Candle]) -> BatchScores:
    cols = {name: np.fromiter((getattr(c, name) for c in seq), dtype=np.float64, count=len(seq))
            for name in ("open", "high", "low", "close", "volume")}
    X = spec.batch(cols)
    finite = np.isfinite(X).all(axis=1)
    ready = np.arange(1, len(seq) + 1) >= spec.warmup
    prob = np.full(len(seq), np.nan)
    usable = finite & ready
    if usable.any():
        prob[usable] = predict(X[usable])
    why_not = np.where(~ready, WARMING_UP, np.where(~finite, NON_FINITE, "")).tolist()
    return BatchScores(prob, why_not)


@dataclass(frozen=True)
class ReplayConfig:
    """Everything a replay needs besides the candles and the model; one per params.yaml."""

    trade: TradeParams
    fees: FeeParams
    risk: RiskParams | None
    timeframe: str
    trade_from_ms: int
    """Candles before this open time only warm the features up; trading (and equity) starts here."""

    @classmethod
    def from_params(cls, params: Params, trade_from_ms: int) -> ReplayConfig:
        return cls(params.trade, params.fees, params.risk, params.data.timeframe, trade_from_ms)


def replay(candles: Mapping[str, Sequence[Candle]], config: ReplayConfig, spec: FeatureSpec, score: Scorer,
           predict: BatchPredict | None = None, scores: Mapping[str, BatchScores] | None = None) -> BacktestResult:
    """Run a model over candles on the trading engine with the SimulatedBroker. `predict` scores the whole
    history at once (fast, same decisions); precomputed `scores` replace the model (e.g. a baseline rule);
    with neither the engine computes features and scores online, candle by candle, as it does live."""
    if scores is None and predict is not None:
        scores = {pair: batch_scores(spec, predict, seq) for pair, seq in candles.items()}
    return run_backtest(candles, spec, score, config.trade, config.fees, config.trade_from_ms,
                        candles_per_year(config.timeframe), scores, config.risk, to_ms(config.timeframe))


def run_backtest(
    candles: Mapping[str, Sequence[Candle]],
    spec: FeatureSpec,
    score: Scorer,
    trade: TradeParams,
    fees: FeeParams,
    trade_from_ts: int,
    periods_per_year: float,
    scores: Mapping[str, BatchScores] | None = None,
    risk: RiskParams | None = None,
    candle_ms: int | None = None,
) -> BacktestResult:
    """Replay candles through the engine. With `scores` (from `batch_scores`) the features and model
    run vectorised over the whole history; without, the engine computes them online candle by candle
    as it does when trading. Both feed the same decision code (`Engine._act`), loss limits included: with
    `risk` the kill switch and the daily loss limit flatten and halt the run as they would live."""
    broker = SimulatedBroker(cash=trade.starting_cash, model=fill_model(fees))
    strategy = ThresholdStrategy(trade.enter_threshold, trade.exit_threshold, trade.position_fraction)
    candle_ms = candle_ms or round(365 * 86_400_000 / periods_per_year)
    engine = Engine(spec, score, strategy, broker, trade_from_ts=trade_from_ts, risk=risk, candle_ms=candle_ms)
    eq_ts: list[int] = []
    eq: list[float] = []
    probs = {pair: s.prob.tolist() for pair, s in scores.items()} if scores is not None else {}
    for pair, index, candle in opened_first(merge_by_time(candles), broker):
        if eq_ts and candle.ts != eq_ts[-1]:
            eq.append(engine.equity())  # the previous timestamp is complete: mark it
        if scores is None:
            engine.on_candle(pair, candle)
        else:
            engine.on_scored_candle(pair, candle, probs[pair][index], scores[pair].why_not[index])
        if candle.ts >= trade_from_ts and (not eq_ts or eq_ts[-1] != candle.ts):
            eq_ts.append(candle.ts)
    if len(eq) < len(eq_ts):
        eq.append(engine.equity())
    halts = tuple(engine.risk_halts)
    result = BacktestResult(eq_ts, eq, broker.fills, engine.decisions, broker.fees_paid,
                            kill_switch_tripped_at=halts[0][0] if halts else None,
                            kill_switch_reason=halts[0][1] if halts else "", risk_halts=halts)
    result.metrics.update(summarize(result, periods_per_year))
    return result


def summarize(result: BacktestResult, periods_per_year: float) -> dict[str, float]:
    return {
        "net_return": total_return(result.equity),
        "max_drawdown": max_drawdown(result.equity),
        "sharpe": sharpe(period_returns(result.equity), periods_per_year),
        "n_fills": float(len(result.fills)),
        "n_round_trips": float(sum(1 for f in result.fills if f.side.value == "sell")),
        "fees_paid": result.fees_paid,
        "final_equity": result.equity[-1] if result.equity else 0.0,
        "kill_switch_trips": float(len(result.risk_halts)),
    }
