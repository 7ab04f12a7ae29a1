"""Jobs `backtest` and `paper`: a registered model replayed over the store's candles on the trader engine
(SimulatedBroker). By default trading starts after the model's training window (unseen candles)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from core.params import Params
from core.settings import Settings
from core.timeframe import to_timedelta
from core.types import Candle
from market.backfill import parse_utc
from market.frame import check_candle_frame, to_candles
from market.history import import_file
from models import registry
from pipeline.candles import store_candles
from pipeline.paths import DataPaths
from trader.backtest import BacktestResult, ReplayConfig, replay
from trader.model import TradingModel, batch_predict, trading_model


@dataclass(frozen=True)
class ReplayReport:
    result: BacktestResult
    model_name: str
    model_version: int
    trade_from: str
    trade_to: str
    pairs: tuple[str, ...]
    candles_traded: int
    starting_cash: float
    candles: Mapping[str, Sequence[Candle]] = field(default_factory=dict)
    """The candles replayed (warm-up included): the report's buy-and-hold and momentum baselines use them."""


def parse_data_specs(specs: list[str]) -> dict[str, Path]:
    """`--data PAIR=FILE` (repeatable): candles from a file instead of the store, e.g. a file not imported."""
    out: dict[str, Path] = {}
    for spec in specs:
        pair, sep, file = spec.partition("=")
        if not sep or not pair or not file:
            raise ValueError(f"--data {spec}: expected PAIR=FILE, e.g. --data XRP/USD=candles.parquet")
        out[pair] = Path(file)
    return out


def _read_file(path: Path) -> list[Candle]:
    if not path.exists():
        raise ValueError(f"--data {path}: file not found")
    return to_candles(check_candle_frame(import_file(path).frame, str(path)))


def _candles(params: Params, paths: DataPaths, pairs: list[str], files: dict[str, Path],
             end: pd.Timestamp | None) -> dict[str, list[Candle]]:
    unknown = [p for p in pairs if p not in params.pairs]
    if unknown:
        raise ValueError(f"--pair {', '.join(unknown)}: not in params.yaml `pairs` ({', '.join(params.pairs)}); "
                         "add it there (one line) and ingest or import its candles")
    if files:
        candles = {pair: _read_file(path) for pair, path in files.items()}
        end_ms = None if end is None else end.value // 1_000_000
        return {p: [c for c in seq if end_ms is None or c.ts <= end_ms] for p, seq in candles.items()}
    return store_candles(params, paths, pairs, end)


def first_unseen(params: Params, *models: registry.LoadedModel) -> pd.Timestamp:
    """The first candle after every model's training window: where paper, live-vs-emulator and the A/B
    shadow run start trading, so no model is scored on candles it was trained on."""
    return max(pd.Timestamp(m.tags["train_end"]) for m in models) + to_timedelta(params.data.timeframe)


def run_replay(params: Params, paths: DataPaths, settings: Settings, model_ref: str = "champion",
               pairs: list[str] | None = None, start: str | None = None, end: str | None = None,
               data: list[str] | None = None) -> tuple[ReplayReport, TradingModel]:
    """A registered model over [start, end] of the store's candles (or `--data` files), batch-scored."""
    registry.configure(settings.tracking_uri, settings.mlflow_registry_uri)
    loaded = registry.load_model(params.registry.model_name, model_ref)
    model = trading_model(loaded)
    first = parse_utc(start) or first_unseen(params, loaded)
    last = parse_utc(end, "--to")
    candles = _candles(params, paths, pairs or [], parse_data_specs(data or []), last)
    first_ms = int(first.value // 1_000_000)
    result = replay(candles, ReplayConfig.from_params(params, first_ms), model.spec, model.score,
                    batch_predict(loaded.booster))
    traded = sum(1 for seq in candles.values() for c in seq if c.ts >= first_ms)
    report = ReplayReport(result, model.name, model.version, str(first), str(last or "end of data"),
                          tuple(candles), traded, params.trade.starting_cash, candles)
    return report, model
