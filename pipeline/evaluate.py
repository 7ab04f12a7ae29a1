"""Job `evaluate`: holdout classification metrics and the trader engine's own replay of the holdout
(model and naive momentum through the engine; buy-and-hold and flat as pure rules), all with the same
fees, the model's PSR/DSR corrected for the Optuna trials tried, and the plots the registry logs."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from core.files import write_atomic, write_json
from core.params import Params
from core.timeframe import periods_per_year
from core.types import Candle, Fill, Side
from market.frame import to_candles
from models import dataset, evaluate, plots
from pipeline.featurize import load_feature_table
from pipeline.paths import DataPaths
from pipeline.prepare import load_validated
from pipeline.train import load_trained
from trader.backtest import BatchScores, ReplayConfig, replay
from trader.engine import WARMING_UP
from trader.model import batch_predict, booster_scorer
from trader.report import write_reports

log = logging.getLogger(__name__)


def holdout_start(frames: dict[str, pd.DataFrame], holdout_fraction: float) -> pd.Timestamp:
    """The latest per-pair holdout cut: every pair's backtest starts on unseen candles."""
    cuts = [f["date"].iloc[dataset.holdout_start_index(len(f), holdout_fraction)] for f in frames.values()]
    return max(cuts)


def _trades(fills: list[Fill]) -> evaluate.Trades:
    """The engine's fills → closed-trade P&Ls and traded notional (quote currency)."""
    if not fills:
        return evaluate.Trades.none()
    pnls = evaluate.round_trip_pnls(
        np.array([f.pair for f in fills]),
        np.array([f.quantity if f.side is Side.BUY else -f.quantity for f in fills]),
        np.array([f.price for f in fills]), np.array([f.fee for f in fills]))
    return evaluate.Trades(pnls, float(sum(f.quantity * f.price for f in fills)))


def momentum_scores(candles: dict[str, list[Candle]], lookback: int) -> dict[str, BatchScores]:
    """The naive momentum rule as engine scores (1 = long, 0 = flat); stands aside until `lookback`
    candles of history exist, so it trades through the same engine, sizing, risk and fees as the model."""
    out = {}
    for pair, seq in candles.items():
        prob = evaluate.momentum_probability(np.array([c.close for c in seq]), lookback)
        out[pair] = BatchScores(prob, np.where(np.isnan(prob), WARMING_UP, "").tolist())
    return out


def holdout_closes(frames: dict[str, pd.DataFrame], start: pd.Timestamp) -> pd.DataFrame:
    """Closes of every pair from `start` on a common clock (forward-filled over a pair's missing candle)."""
    cols = {pair: f.set_index("date")["close"] for pair, f in frames.items()}
    return pd.DataFrame(cols).sort_index().loc[start:].ffill().dropna()


def _finite_or_none(metrics: dict[str, Any]) -> dict[str, Any]:
    """JSON (and DVC) have no infinity: a profit factor with no losing trade is stored as null."""
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in metrics.items()}


def plots_dir(paths: DataPaths) -> Path:
    return paths.reports / "plots"


def holdout_report(paths: DataPaths) -> Path:
    """The holdout backtest report (report.html offline, .json, .md): the register stage logs the HTML to
    MLflow under plots/. Its own folder, not plots/: `dvc plots show` cannot parse HTML or Markdown."""
    return paths.reports / "holdout" / "report.html"


def evaluate_model(params: Params, paths: DataPaths) -> dict[str, Any]:
    """Holdout classification metrics + the trader engine's own backtest on the holdout period (model and
    naive momentum through the engine; buy-and-hold and flat as pure rules), all with the same fees, the
    PSR/DSR of the model corrected for the Optuna trials tried, and the plots the registry logs."""
    booster, spec, _ = load_trained(paths)
    table = load_feature_table(params, paths)
    _, holdout = dataset.split(table, spec.names)
    holdout_prob = batch_predict(booster)(holdout.X)
    metrics: dict[str, Any] = evaluate.classification_metrics(holdout.y, holdout_prob, "holdout")
    frames = load_validated(params, paths)
    start = holdout_start(frames, params.split.holdout_fraction)
    start_ms = int(start.value // 1_000_000)
    ppy = periods_per_year(params.data.timeframe)
    candles = {pair: to_candles(frame) for pair, frame in frames.items()}
    config = ReplayConfig.from_params(params, start_ms)
    result = replay(candles, config, spec, booster_scorer(booster), batch_predict(booster))
    momentum = replay(candles, config, spec, booster_scorer(booster),
                      scores=momentum_scores(candles, params.evaluate.momentum_lookback))
    closes = holdout_closes(frames, start)
    bnh_equity, bnh_trades = evaluate.buy_and_hold_equity(closes.to_numpy(), params.trade.starting_cash,
                                                          params.fees.taker)
    flat_eq, flat_trades = evaluate.flat_equity(len(result.equity), params.trade.starting_cash)
    n_trials = int(json.loads(paths.train_metrics.read_text()).get("optuna_n_trials", 1))
    metrics.update({f"holdout_{k}": v for k, v in result.metrics.items()})
    metrics.update(evaluate.trading_metrics(np.array(result.equity), _trades(result.fills), ppy, n_trials, "holdout"))
    metrics.update(evaluate.trading_metrics(np.array(momentum.equity), _trades(momentum.fills), ppy, 1,
                                            "baseline_momentum"))
    metrics.update(evaluate.trading_metrics(bnh_equity, bnh_trades, ppy, 1, "baseline_buy_and_hold"))
    metrics.update(evaluate.trading_metrics(flat_eq, flat_trades, ppy, 1, "baseline_flat"))
    metrics["holdout_n_trials_deflated"] = float(n_trials)
    log.info("evaluate: %s", evaluate.verdict(metrics))
    metrics = _finite_or_none(metrics)
    write_json(paths.metrics, metrics)
    dates = pd.to_datetime(result.equity_ts, unit="ms", utc=True)
    equity = pd.DataFrame({"date": dates, "equity": result.equity, "momentum": momentum.equity,
                           "buy_and_hold": pd.Series(bnh_equity, index=closes.index).reindex(dates).ffill().to_numpy(),
                           "flat": flat_eq})
    write_atomic(paths.equity_csv, lambda p: equity.to_csv(p, index=False))
    _write_plots(paths, equity, booster, spec.names, holdout.y, holdout_prob)
    write_reports(result, holdout_report(paths).parent, f"holdout backtest, {', '.join(candles)} from {start}",
                  {"verdict": evaluate.verdict(metrics), "pairs": ", ".join(candles), "from": str(start),
                   "fees": f"taker {params.fees.taker:.2%}, slippage {params.fees.slippage_bps:g} bps"},
                  candles=candles, taker_fee=params.fees.taker, starting_cash=params.trade.starting_cash,
                  momentum_lookback=params.evaluate.momentum_lookback, momentum=momentum.equity, stem="report")
    return metrics


def _write_plots(paths: DataPaths, equity: pd.DataFrame, booster: lgb.Booster, names: tuple[str, ...],
                 y: np.ndarray, prob: np.ndarray) -> None:
    out = plots_dir(paths)
    curves = {name: (equity["date"].to_numpy(), equity[col].to_numpy()) for name, col in
              (("model", "equity"), ("momentum", "momentum"), ("buy & hold", "buy_and_hold"), ("flat", "flat"))}
    plots.equity_plot(curves, out / "equity.png", "holdout equity, same fees (USD)")
    plots.importance_plot(list(names), booster.feature_importance(importance_type="gain"), out / "importance.png")
    plots.calibration_plot(y, prob, out / "calibration.png")


