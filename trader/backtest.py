"""Backtest = the trading engine replayed over stored candles with the SimulatedBroker.

Used by `krakenflow trade --mode paper --replay`, `krakenflow backtest` and the DVC evaluate stage, so
the numbers a model is judged by come from the same code that trades it.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from core.metrics import max_drawdown, period_returns, sharpe, total_return
from core.params import FeeParams, TradeParams
from core.types import Candle, Fill
from features.spec import FeatureSpec
from trader.brokers.simulated import FillModel, SimulatedBroker
from trader.engine import Decision, Engine, Scorer
from trader.strategy import ThresholdStrategy


@dataclass(frozen=True)
class BacktestResult:
    equity_ts: list[int]
    equity: list[float]
    fills: list[Fill]
    decisions: list[Decision]
    fees_paid: float
    metrics: dict[str, float] = field(default_factory=dict)


def merge_by_time(candles: Mapping[str, Sequence[Candle]]) -> Iterator[tuple[str, Candle]]:
    """All pairs' candles in time order (ties by pair name): how a multi-pair feed arrives."""
    streams = [_tagged(pair, seq) for pair, seq in sorted(candles.items())]
    for _, pair, candle in heapq.merge(*streams, key=lambda t: (t[0], t[1])):
        yield pair, candle


def _tagged(pair: str, seq: Sequence[Candle]) -> Iterator[tuple[int, str, Candle]]:
    return ((c.ts, pair, c) for c in seq)


def run_backtest(
    candles: Mapping[str, Sequence[Candle]],
    spec: FeatureSpec,
    score: Scorer,
    trade: TradeParams,
    fees: FeeParams,
    trade_from_ts: int,
    periods_per_year: float,
) -> BacktestResult:
    broker = SimulatedBroker(cash=trade.starting_cash, model=FillModel(fees.taker, fees.slippage_bps))
    strategy = ThresholdStrategy(trade.enter_threshold, trade.exit_threshold, trade.position_fraction)
    engine = Engine(spec, score, strategy, broker, trade_from_ts=trade_from_ts)
    eq_ts: list[int] = []
    eq: list[float] = []
    for pair, candle in merge_by_time(candles):
        engine.on_candle(pair, candle)
        if candle.ts >= trade_from_ts:
            if eq_ts and eq_ts[-1] == candle.ts:
                eq[-1] = engine.equity()
            else:
                eq_ts.append(candle.ts)
                eq.append(engine.equity())
    result = BacktestResult(eq_ts, eq, broker.fills, engine.decisions, broker.fees_paid)
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
    }


def buy_and_hold_return(candles: Mapping[str, Sequence[Candle]], from_ts: int, taker_fee: float) -> float:
    """Equal-weight buy at the first close ≥ from_ts and sell at the last close, fees both ways."""
    rets = []
    for seq in candles.values():
        window = [c for c in seq if c.ts >= from_ts]
        if len(window) >= 2:
            rets.append(window[-1].close / window[0].close * (1 - taker_fee) ** 2 - 1.0)
    return sum(rets) / len(rets) if rets else 0.0
