"""Paper trading over recorded candles: the champion model on the trader engine with the
SimulatedBroker. By default it trades only after the model's training window (unseen candles)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from core.params import Params
from core.settings import Settings
from market.frame import check_candle_frame, timeframe_to_timedelta, to_candles
from market.history import import_file
from models import registry
from trader.backtest import BacktestResult, batch_scores, run_backtest
from trader.model import TradingModel, batch_predict, trading_model


@dataclass(frozen=True)
class ReplayReport:
    result: BacktestResult
    model_name: str
    model_version: int
    trade_from: str
    candles_traded: int
    starting_cash: float


def parse_replay_specs(specs: list[str], params: Params) -> dict[str, Path]:
    """'PAIR=FILE' or a FILE known in params.data.sample; no specs → every bundled sample."""
    if not specs:
        return {pair: Path(src) for pair, src in params.data.sample.items()}
    by_file = {Path(src).resolve(): pair for pair, src in params.data.sample.items()}
    out: dict[str, Path] = {}
    for spec in specs:
        pair, sep, file = spec.partition("=")
        if not sep:
            file, pair = spec, by_file.get(Path(spec).resolve(), "")
            if not pair:
                raise ValueError(f"--replay {spec}: unknown file; name its pair, e.g. --replay XRP/USD={spec}")
        out[pair] = Path(file)
    return out


def _read(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise ValueError(f"--replay {path}: file not found")
    return check_candle_frame(import_file(path).frame, str(path))


def paper_replay(params: Params, specs: list[str], model_ref: str, trade_from: str | None) -> ReplayReport:
    settings = Settings()
    registry.configure(settings.tracking_uri, settings.mlflow_registry_uri)
    loaded = registry.load_model(params.registry.model_name, model_ref)
    model = trading_model(loaded)
    frames = {pair: _read(path) for pair, path in parse_replay_specs(specs, params).items()}
    step = timeframe_to_timedelta(params.data.timeframe)
    start = pd.Timestamp(trade_from, tz="UTC") if trade_from else pd.Timestamp(loaded.tags["train_end"]) + step
    start_ms = int(start.value // 1_000_000)
    candles = {pair: to_candles(frame) for pair, frame in frames.items()}
    result = run_backtest(candles, model.spec, model.score, params.trade, params.fees, start_ms,
                          pd.Timedelta(days=365) / step, risk=params.risk)
    traded = sum(1 for seq in candles.values() for c in seq if c.ts >= start_ms)
    return ReplayReport(result, model.name, model.version, str(start), traded, params.trade.starting_cash)


def backtest(params: Params, pairs: list[str], model_ref: str, start: str | None, end: str | None
             ) -> tuple[BacktestResult, TradingModel, str]:
    """Batch-scored backtest of a registered model on the pairs' candle files, between two dates."""
    settings = Settings()
    registry.configure(settings.tracking_uri, settings.mlflow_registry_uri)
    loaded = registry.load_model(params.registry.model_name, model_ref)
    model = trading_model(loaded)
    unknown = [p for p in pairs if p not in params.data.sample]
    if unknown:
        raise ValueError(f"--pair {', '.join(unknown)}: not in params.yaml data.sample ({', '.join(params.pairs)})")
    step = timeframe_to_timedelta(params.data.timeframe)
    first = pd.Timestamp(start, tz="UTC") if start else pd.Timestamp(loaded.tags["train_end"]) + step
    candles = {}
    for pair in pairs or list(params.pairs):
        frame = _read(Path(params.data.sample[pair]))
        if end:
            frame = frame[frame["date"] <= pd.Timestamp(end, tz="UTC")]
        candles[pair] = to_candles(frame)
    first_ms = int(first.value // 1_000_000)
    scores = {pair: batch_scores(model.spec, batch_predict(loaded.booster), seq) for pair, seq in candles.items()}
    result = run_backtest(candles, model.spec, model.score, params.trade, params.fees, first_ms,
                          pd.Timedelta(days=365) / step, scores, params.risk)
    return result, model, str(first)
