"""params.yaml → one frozen, validated Params object. Unknown keys and wrong types fail loudly."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=False)


class DataParams(_Frozen):
    timeframe: str = Field(pattern=r"^\d+[mhd]$")
    sample: dict[str, str]


class QualityParams(_Frozen):
    max_gap_candles: int = Field(ge=1)
    max_abs_log_return: float = Field(gt=0)
    max_zero_volume_share: float = Field(ge=0, le=1)


class DriftParams(_Frozen):
    share_threshold: float = Field(gt=0, le=1)
    min_rows: int = Field(ge=10)
    recent_candles: int = Field(ge=10)


class FeatureParams(_Frozen):
    return_lags: tuple[int, ...] = Field(min_length=1)
    ema_spans: tuple[int, ...] = Field(min_length=1)
    rsi_period: int = Field(ge=2)
    volatility_window: int = Field(ge=2)
    volume_span: int = Field(ge=2)

    @model_validator(mode="after")
    def _positive_windows(self) -> FeatureParams:
        for name in ("return_lags", "ema_spans"):
            if any(v < 1 for v in getattr(self, name)):
                raise ValueError(f"{name} must hold integers ≥ 1")
        return self


class LabelParams(_Frozen):
    horizon: int = Field(ge=1)
    min_net_return: float


class FeeParams(_Frozen):
    taker: float = Field(ge=0, lt=0.1)
    maker: float = Field(ge=0, lt=0.1)
    slippage_bps: float = Field(ge=0)
    latency_candles: int = Field(default=0, ge=0)
    max_volume_share: float = Field(default=1.0, gt=0, le=1)
    volume_tiers: bool = False


class SplitParams(_Frozen):
    holdout_fraction: float = Field(gt=0, lt=1)


class TrainParams(_Frozen):
    num_leaves: int = Field(ge=2)
    learning_rate: float = Field(gt=0, le=1)
    n_estimators: int = Field(ge=1)
    min_child_samples: int = Field(ge=1)
    feature_fraction: float = Field(gt=0, le=1)
    bagging_fraction: float = Field(gt=0, le=1)
    bagging_freq: int = Field(ge=0)
    lambda_l2: float = Field(ge=0)
    seed: int


class CVParams(_Frozen):
    """Purged walk-forward CV inside the training period (models/cv.py)."""

    n_folds: int = Field(default=4, ge=1)
    embargo: int = Field(default=24, ge=0)  # candles dropped after the purge; must be ≥ label.horizon


class OptunaParams(_Frozen):
    """Hyper-parameter search. n_trials 0 = use `train:` unchanged. A timeout makes runs depend on
    machine speed (not reproducible), so the pipeline default is none."""

    n_trials: int = Field(default=0, ge=0)
    timeout_s: float | None = Field(default=None, gt=0)
    storage: str | None = None  # RDB URL (sqlite:///…, postgresql://…); None = data/models/optuna.db


class EvaluateParams(_Frozen):
    momentum_lookback: int = Field(default=24, ge=1)  # candles: the naive momentum baseline's window


class RegistryParams(_Frozen):
    model_name: str = Field(min_length=1)
    experiment: str = Field(min_length=1)


class PromotionParams(_Frozen):
    min_holdout_trades: int = Field(ge=0)
    alpha: float = Field(gt=0, lt=1)
    min_periods: int = Field(ge=10)
    max_drawdown: float = Field(gt=0, le=1)
    n_boot: int = Field(ge=100)


class TradeParams(_Frozen):
    enter_threshold: float = Field(gt=0, lt=1)
    exit_threshold: float = Field(gt=0, lt=1)
    position_fraction: float = Field(gt=0, le=1)
    starting_cash: float = Field(gt=0)

    @model_validator(mode="after")
    def _hysteresis(self) -> TradeParams:
        if self.exit_threshold > self.enter_threshold:
            raise ValueError("exit_threshold must not exceed enter_threshold")
        return self


class RiskParams(_Frozen):
    max_position_fraction: float = Field(gt=0, le=1)
    max_order_notional: float = Field(gt=0)
    daily_loss_limit: float = Field(gt=0, le=1)
    max_drawdown: float = Field(gt=0, le=1)
    max_orders_per_minute: int = Field(ge=1)
    stale_after_candles: int = Field(ge=1)


class LiveParams(_Frozen):
    """The live trader service's housekeeping (seconds of wall-clock time, USD)."""

    reconcile_every_s: float = Field(ge=0)
    reconcile_halt_usd: float = Field(ge=0)
    model_check_every_s: float = Field(ge=0)
    dead_man_s: int = Field(ge=0)


class StoreParams(_Frozen):
    """The candle store under `<data_dir>/store/<exchange>/<PAIR>/<timeframe>/<YYYY-MM>.parquet`."""

    exchange: str = Field(default="kraken", pattern=r"^[a-z0-9_]+$")


class IngestParams(_Frozen):
    """Market-data ingestion (market/backfill.py). Pages are Kraken public Trades calls (≤ 1000 trades)."""

    timeframes: tuple[str, ...] = Field(default=("1h",), min_length=1)
    max_trade_pages: int = Field(default=2000, ge=0)     # per pair and run: bounds one backfill's requests
    rate_limit_retries: int = Field(default=3, ge=0)     # EAPI:Rate limit exceeded → pause, then retry this often
    rate_limit_pause_s: float = Field(default=5.0, ge=0)  # seconds to wait after a rate-limit answer
    store_every_candles: int = Field(default=5000, ge=1)  # backfill: validate + store this many candles at once


class Params(_Frozen):
    data: DataParams
    quality: QualityParams
    drift: DriftParams
    features: FeatureParams
    label: LabelParams
    fees: FeeParams
    split: SplitParams
    train: TrainParams
    cv: CVParams = Field(default_factory=CVParams)
    optuna: OptunaParams = Field(default_factory=OptunaParams)
    evaluate: EvaluateParams = Field(default_factory=EvaluateParams)
    registry: RegistryParams
    promotion: PromotionParams
    trade: TradeParams
    risk: RiskParams
    store: StoreParams = Field(default_factory=StoreParams)
    ingest: IngestParams = Field(default_factory=IngestParams)
    live: LiveParams

    @model_validator(mode="after")
    def _embargo_covers_horizon(self) -> Params:
        if self.cv.embargo < self.label.horizon:
            raise ValueError(f"cv.embargo ({self.cv.embargo} candles) must be ≥ label.horizon ({self.label.horizon})")
        return self

    @property
    def pairs(self) -> tuple[str, ...]:
        return tuple(self.data.sample)

    def digest(self) -> str:
        """Stable sha256 of the whole parameter set: a lineage tag on every model."""
        blob = json.dumps(self.model_dump(mode="json"), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()


class ParamsError(ValueError):
    """params.yaml is missing, unreadable or invalid; the message names the key and the fix."""


def _describe(err: ValidationError, source: str) -> str:
    lines = []
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"])
        if e["type"] == "extra_forbidden":
            lines.append(f"{source}: unknown key {key!r} (remove it or check its spelling)")
        elif e["type"] == "missing":
            lines.append(f"{source}: missing key {key!r}")
        else:
            lines.append(f"{source}: {key} {e['msg'].lower()} (got {e.get('input')!r})")
    return "\n".join(lines)


def parse_params(raw: Any, source: str = "params.yaml") -> Params:
    if not isinstance(raw, dict):
        raise ParamsError(f"{source}: expected a mapping at the top level, got {type(raw).__name__}")
    try:
        return Params.model_validate(raw)
    except ValidationError as err:
        raise ParamsError(_describe(err, source)) from None


def load_params(path: str | Path = "params.yaml") -> Params:
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ParamsError(f"{path}: file not found (run from the project root or pass --params)") from None
    except yaml.YAMLError as err:
        raise ParamsError(f"{path}: not valid YAML: {err}") from None
    return parse_params(raw, str(path))
