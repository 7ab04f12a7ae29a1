"""params.yaml → one frozen, validated Params object. Unknown keys and wrong types fail loudly."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

MAX_CANDLES = 10_000_000  # ~19 years of 1m candles: any horizon, window or period beyond this is a typo
MAX_USD = 1e12         # cash and notionals: far above any account, far below float trouble
Candles = Annotated[int, Field(ge=1, le=MAX_CANDLES)]
PAIR = re.compile(r"^[A-Z0-9]{1,20}/[A-Z0-9]{1,20}$")  # ccxt's unified Kraken symbol, e.g. XRP/USD, 1INCH/EUR


def _mentions_bool(annotation: Any) -> bool:
    return annotation is bool or any(_mentions_bool(a) for a in get_args(annotation))


class _Frozen(BaseModel):
    """Base of every section. No inf/NaN: one such value turns a whole paper run's P&L into nan."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=False, allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_for_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        """YAML reads yes/no/on/off as booleans and pydantic would take them as 1/0: refuse them unless
        the field is a bool."""
        items = value if isinstance(value, list | tuple) else (value,)
        annotation = cls.model_fields[info.field_name or ""].annotation
        if any(isinstance(v, bool) for v in items) and not _mentions_bool(annotation):
            raise PydanticCustomError("bool_refused", "must be a number, not a boolean (yes/no/on/off/true/false "
                                      "are booleans in YAML: write the number)")
        return value


def _check_pair(pair: str) -> str:
    """Every pair ends up in store paths, ccxt calls and the trader: a malformed one fails late."""
    if not PAIR.match(pair):
        raise ValueError(f"pair {pair!r} is not in ccxt's unified form BASE/QUOTE "
                         "(upper-case letters/digits, e.g. 'XRP/USD')")
    return pair


class DataParams(_Frozen):
    timeframe: str = Field(pattern=r"^\d+[mhdw]$")
    sample: dict[str, str] = Field(default_factory=dict)
    """Pair → bundled candle file that seeds the store when the store lacks the pair (optional per pair)."""

    @field_validator("sample")
    @classmethod
    def _kraken_pairs(cls, sample: dict[str, str]) -> dict[str, str]:
        for pair in sample:
            _check_pair(pair)
        return sample


class QualityParams(_Frozen):
    max_gap_candles: Candles
    max_abs_log_return: float = Field(gt=0, le=10)
    max_zero_volume_share: float = Field(ge=0, le=1)


class DriftParams(_Frozen):
    share_threshold: float = Field(gt=0, le=1)
    min_rows: int = Field(ge=10, le=MAX_CANDLES)
    recent_candles: int = Field(ge=10, le=MAX_CANDLES)


class FeatureParams(_Frozen):
    return_lags: tuple[Candles, ...] = Field(min_length=1)
    ema_spans: tuple[Candles, ...] = Field(min_length=1)
    rsi_period: int = Field(ge=2, le=MAX_CANDLES)
    volatility_window: int = Field(ge=2, le=MAX_CANDLES)
    volume_span: int = Field(ge=2, le=MAX_CANDLES)


class LabelParams(_Frozen):
    horizon: Candles
    min_net_return: float = Field(ge=-1, le=1)  # a log return; beyond ±1 no candle (or every one) is labelled 1


class FeeParams(_Frozen):
    taker: float = Field(ge=0, lt=0.1)
    maker: float = Field(ge=0, lt=0.1)
    slippage_bps: float = Field(ge=0, le=1000)  # 10 % per fill is already absurd
    latency_candles: int = Field(default=0, ge=0, le=MAX_CANDLES)
    max_volume_share: float = Field(default=1.0, gt=0, le=1)
    volume_tiers: bool = False


class SplitParams(_Frozen):
    holdout_fraction: float = Field(gt=0, lt=1)


class TrainParams(_Frozen):
    num_leaves: int = Field(ge=2, le=131_072)  # LightGBM's own maximum
    learning_rate: float = Field(gt=0, le=1)
    n_estimators: int = Field(ge=1, le=100_000)
    min_child_samples: int = Field(ge=1, le=1_000_000)
    feature_fraction: float = Field(gt=0, le=1)
    bagging_fraction: float = Field(gt=0, le=1)
    bagging_freq: int = Field(ge=0, le=100_000)
    lambda_l2: float = Field(ge=0, le=10_000)
    seed: int = Field(ge=0, le=2**31 - 1)  # LightGBM takes a C int, numpy/Optuna a non-negative seed


class CVParams(_Frozen):
    """Purged walk-forward CV inside the training period (models/cv.py)."""

    n_folds: int = Field(default=4, ge=1, le=100)
    embargo: int = Field(default=24, ge=0, le=MAX_CANDLES)  # candles dropped after the purge; must be ≥ label.horizon


class OptunaParams(_Frozen):
    """Hyper-parameter search. n_trials 0 = use `train:` unchanged. A timeout makes runs depend on
    machine speed (not reproducible), so the pipeline default is none."""

    n_trials: int = Field(default=0, ge=0, le=10_000)
    timeout_s: float | None = Field(default=None, gt=0, le=30 * 86_400)
    storage: str | None = None  # RDB URL (sqlite:///…, postgresql://…); None = data/studies/optuna.db


class EvaluateParams(_Frozen):
    momentum_lookback: int = Field(default=24, ge=1, le=MAX_CANDLES)  # candles: the naive momentum baseline's window


class RegistryParams(_Frozen):
    model_name: str = Field(min_length=1)
    experiment: str = Field(min_length=1)


class PromotionParams(_Frozen):
    min_holdout_trades: int = Field(ge=0, le=MAX_CANDLES)
    alpha: float = Field(gt=0, lt=1)
    min_periods: int = Field(ge=10, le=MAX_CANDLES)
    max_drawdown: float = Field(gt=0, le=1)
    n_boot: int = Field(ge=100, le=100_000)


class TradeParams(_Frozen):
    enter_threshold: float = Field(gt=0, lt=1)
    exit_threshold: float = Field(gt=0, lt=1)
    position_fraction: float = Field(gt=0, le=1)
    starting_cash: float = Field(gt=0, le=MAX_USD)

    @model_validator(mode="after")
    def _hysteresis(self) -> TradeParams:
        if self.exit_threshold > self.enter_threshold:
            raise ValueError("exit_threshold must not exceed enter_threshold")
        return self


class RiskParams(_Frozen):
    max_position_fraction: float = Field(gt=0, le=1)
    max_order_notional: float = Field(gt=0, le=MAX_USD)
    daily_loss_limit: float = Field(gt=0, le=1)
    max_drawdown: float = Field(gt=0, le=1)
    max_orders_per_minute: int = Field(ge=1, le=1000)
    stale_after_candles: Candles


class LiveParams(_Frozen):
    """The live trader service's housekeeping (seconds of wall-clock time, USD)."""

    reconcile_every_s: float = Field(ge=0, le=86_400)
    reconcile_halt_usd: float = Field(ge=0, le=MAX_USD)
    model_check_every_s: float = Field(ge=0, le=86_400)
    dead_man_s: int = Field(ge=0, le=86_400)  # Kraken's CancelAllOrdersAfter takes at most a day
    lookup_window_s: float = Field(default=90.0, ge=0, le=86_400)
    """An order whose AddOrder answer was lost is taken as absent only after this long (and min_lookups
    lookups by cl_ord_id): longer than any plausible processing delay. Until then its pair is blocked."""
    min_lookups: int = Field(default=3, ge=1, le=1000)
    watchdog_s: float = Field(default=300.0, ge=0, le=86_400)
    """/healthz says the trading loop is hung when one poll runs longer than this (0 = off)."""


class StoreParams(_Frozen):
    """The candle store under `<data_dir>/store/<exchange>/<PAIR>/<timeframe>/<YYYY-MM>.parquet`."""

    exchange: str = Field(default="kraken", pattern=r"^[a-z0-9_]+$")


class IngestParams(_Frozen):
    """Market-data ingestion (market/backfill.py). Pages are Kraken public Trades calls (≤ 1000 trades)."""

    timeframes: tuple[str, ...] = Field(default=("1h",), min_length=1)
    max_trade_pages: int = Field(default=2000, ge=0, le=1_000_000)  # per pair and run: bounds one backfill's requests
    rate_limit_retries: int = Field(default=3, ge=0, le=100)  # EAPI:Rate limit exceeded → pause, then retry this often
    rate_limit_pause_s: float = Field(default=5.0, ge=0, le=3600)  # seconds to wait after a rate-limit answer
    store_every_candles: Candles = 5000  # backfill: validate + store this many candles at once


INTERVAL = re.compile(r"^([1-9][0-9]{0,5})([smhd])$")
SECONDS_PER_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86_400}
CRON_MACROS = frozenset({"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"})
MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
CRON_FIELDS: tuple[tuple[str, int, int, tuple[str, ...]], ...] = (
    ("minute", 0, 59, ()), ("hour", 0, 23, ()), ("day of month", 1, 31, ()), ("month", 1, 12, MONTHS),
    ("day of week", 0, 7, WEEKDAYS))  # name, lowest, highest, names allowed instead of numbers (0 and 7 are Sunday)
CRON_EXTRAS = (None, None, re.compile(r"^L$"), None, re.compile(r"^(L[0-7]|[0-7]#[1-5])$"))
"""Prefect's croniter also takes `L` (last day of the month) and, for the day of week, `L5` (the last Friday)
and `6#3` (the third Saturday)."""
SCHEDULE_FORMS = ("neither a cron expression (5 fields, UTC: minute hour day-of-month month day-of-week, "
                  "e.g. '0 3 * * 1') nor an interval like 30s/5m/1h/7d; null = manual runs only")


@dataclass(frozen=True)
class Schedule:
    """When Prefect's scheduler creates a deployment's runs: a cron expression (UTC) or a fixed interval;
    neither means manual runs only (the UI, `prefect deployment run`)."""

    cron: str | None = None
    interval: timedelta | None = None

    def __str__(self) -> str:
        if self.cron:
            return f"cron {self.cron} UTC"
        if self.interval:
            return f"every {self.interval.total_seconds():g} s"
        return "manual runs only"


def _cron_value(token: str, field: int) -> None:
    name, low, high, names = CRON_FIELDS[field]
    if token.lower() in names:
        return
    if not token.isdigit() or not low <= int(token) <= high:
        raise ValueError(f"{name} {token!r} is not {low}-{high}" + (f" or {names[0]}-{names[-1]}" if names else ""))


def _check_cron_field(text: str, field: int) -> None:
    """One field: a comma list of `*`, N, N-M (names allowed for months and weekdays), each with an optional /step."""
    extra = CRON_EXTRAS[field]
    for item in text.split(","):
        if extra is not None and extra.match(item):
            continue
        base, slash, step = item.partition("/")
        if slash and not (step.isdigit() and int(step) >= 1):
            raise ValueError(f"{CRON_FIELDS[field][0]} step {step!r} must be a whole number ≥ 1")
        if base == "*" or (base == "?" and extra is not None):
            continue
        for bound in base.split("-", 1):
            _cron_value(bound, field)


def parse_schedule(text: str) -> Schedule:
    """'0 3 * * 1' → a cron schedule; '30s', '5m', '1h', '7d' → an interval. Raises ValueError saying which."""
    text = " ".join(text.split())
    interval = INTERVAL.match(text)
    if interval:
        return Schedule(interval=timedelta(seconds=int(interval[1]) * SECONDS_PER_UNIT[interval[2]]))
    fields = text.split(" ")
    if text.lower() in CRON_MACROS:
        return Schedule(cron=text)
    if len(fields) != len(CRON_FIELDS):
        raise ValueError(f"is {text!r}: {SCHEDULE_FORMS}")
    try:
        for index, field in enumerate(fields):
            _check_cron_field(field, index)
    except ValueError as err:
        raise ValueError(f"is {text!r}: not a valid cron expression: {err}") from None
    return Schedule(cron=text)


class SchedulesParams(_Frozen):
    """Deployment → when Prefect's scheduler creates its runs (`krakenflow serve`): a cron expression (UTC), an
    interval ('30s', '5m', '1h', '7d') or null (manual runs only). The names are the deployments' in Prefect,
    also when dumped (serialize_by_alias): a dumped params set loads again."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=False, allow_inf_nan=False, serialize_by_alias=True)

    ingest_5m: str | None = Field(default="*/5 * * * *", alias="ingest-5m")
    ingest_1h: str | None = Field(default="2 * * * *", alias="ingest-1h")
    validate_hourly: str | None = Field(default="5 * * * *", alias="validate-hourly")
    drift_hourly: str | None = Field(default="15 * * * *", alias="drift-hourly")
    retrain_weekly: str | None = Field(default="0 3 * * 1", alias="retrain-weekly")
    ab_promote_daily: str | None = Field(default="30 4 * * *", alias="ab-promote-daily")
    pipeline_manual: str | None = Field(default=None, alias="pipeline-manual")

    @classmethod
    def deployments(cls) -> tuple[str, ...]:
        return tuple(str(field.alias) for field in cls.model_fields.values())

    @model_validator(mode="before")
    @classmethod
    def _known_deployments(cls, raw: Any) -> Any:
        unknown = [key for key in raw if key not in cls.deployments()] if isinstance(raw, dict) else []
        if unknown:
            raise ValueError(f"names an unknown deployment {', '.join(map(repr, unknown))}: the deployments are "
                             f"{', '.join(cls.deployments())}")
        return raw

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_for_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        """Replaces the base's check: a schedule is text or null, and YAML's off/no are booleans, not null."""
        if value is None:
            return None
        if isinstance(value, bool):
            raise ValueError(f"is {value} (YAML reads on/off/yes/no as booleans): write null for manual runs only, "
                             "or a cron expression or interval in quotes")
        if isinstance(value, int | float):
            raise ValueError(f"is {value!r}: an interval needs its unit ('{value}s', '{value}m', '{value}h'); or a "
                             "cron expression in quotes, or null (manual runs only)")
        if not isinstance(value, str):
            raise ValueError(f"is {value!r}: {SCHEDULE_FORMS}")
        parse_schedule(value)
        return " ".join(value.split())

    def by_deployment(self) -> dict[str, Schedule]:
        """Every deployment's schedule; Schedule() for manual-only ones."""
        return {str(field.alias): parse_schedule(text) if (text := getattr(self, name)) else Schedule()
                for name, field in type(self).model_fields.items()}


class Params(_Frozen):
    pairs: tuple[str, ...]
    """The traded and trained pairs (ccxt symbols); each must be in the instrument table (market.instruments)."""
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
    schedules: SchedulesParams = Field(default_factory=SchedulesParams)

    @field_validator("pairs")
    @classmethod
    def _unique_kraken_pairs(cls, pairs: tuple[str, ...]) -> tuple[str, ...]:
        if not pairs:
            raise ValueError("names no pair: list at least one Kraken pair, e.g. `pairs: [XRP/USD]`")
        for pair in pairs:
            _check_pair(pair)
        repeated = sorted({p for p in pairs if pairs.count(p) > 1})
        if repeated:
            raise ValueError(f"names {', '.join(repeated)} more than once: keep one")
        return pairs

    @model_validator(mode="after")
    def _seeds_are_traded_pairs(self) -> Params:
        """A seed file for a pair nobody trades is a forgotten edit: say so rather than ignore it."""
        stray = [p for p in self.data.sample if p not in self.pairs]
        if stray:
            raise ValueError(f"data.sample seeds {', '.join(stray)}, which is not in `pairs` "
                             f"({', '.join(self.pairs)}): add it to `pairs` or remove its data.sample line")
        return self

    @model_validator(mode="after")
    def _embargo_covers_horizon(self) -> Params:
        if self.cv.embargo < self.label.horizon:
            raise ValueError(f"cv.embargo ({self.cv.embargo} candles) must be ≥ label.horizon ({self.label.horizon})")
        return self

    @model_validator(mode="after")
    def _position_within_risk_cap(self) -> Params:
        """Otherwise the risk check refuses every buy the strategy sizes: a trader that never trades."""
        if self.trade.position_fraction > self.risk.max_position_fraction:
            raise ValueError(
                f"trade.position_fraction ({self.trade.position_fraction}) is above risk.max_position_fraction "
                f"({self.risk.max_position_fraction}): the trader would size every buy above its own risk cap "
                "(lower trade.position_fraction or raise risk.max_position_fraction)")
        return self

    def digest(self) -> str:
        """Stable sha256 of the parameter set, a lineage tag on every model: everything but `schedules`,
        which says when jobs run, not what a model is (moving a cron must not look like a new model)."""
        blob = json.dumps(self.model_dump(mode="json", exclude={"schedules"}), sort_keys=True).encode()
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
        elif e["type"] == "int_parsing_size":  # e.g. 1.0e+26 for a candle count: pydantic's words mislead
            lines.append(f"{source}: {key} is far too large for an integer (got {e.get('input')!r}): "
                         "use a realistic value")
        elif e["type"] == "value_error":  # our own validators: the message says it all, the input is a section
            lines.append(f"{source}: {key + ' ' if key else ''}{e['ctx']['error']}")
        else:
            msg = e["msg"][:1].lower() + e["msg"][1:]
            lines.append(f"{source}: {key} {msg} (got {e.get('input')!r})")
    return "\n".join(lines)


def parse_params(raw: Any, source: str = "params.yaml") -> Params:
    if not isinstance(raw, dict):
        raise ParamsError(f"{source}: expected a mapping at the top level, got {type(raw).__name__}")
    try:
        return Params.model_validate(raw)
    except ValidationError as err:
        raise ParamsError(_describe(err, source)) from None


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a repeated key: PyYAML silently keeps the last one, so an edit to the
    first copy would do nothing."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key, line = self.construct_object(key_node, deep=True), key_node.start_mark.line + 1
            try:
                duplicate = key in seen
            except TypeError:  # unhashable: the base class reports it
                continue
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} on line {line} (first on line {seen[key]}): keep one",
                    key_node.start_mark)
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def _read_text(path: Path) -> str:
    """The file as UTF-8 text; a directory, an unreadable or a binary file is a ParamsError, not a traceback."""
    if path.is_dir():
        raise ParamsError(f"{path}: is a directory, not a params file (pass the params.yaml inside it)")
    try:
        return path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ParamsError(f"{path}: file not found (run from the project root or pass --params)") from None
    except UnicodeDecodeError as err:
        raise ParamsError(f"{path}: not UTF-8 text (byte {err.start}); is it a binary file? "
                          "pass the YAML params file") from None
    except OSError as err:
        raise ParamsError(f"{path}: cannot be read ({err.strerror})") from None


def load_params(path: str | Path = "params.yaml") -> Params:
    path = Path(path)
    text = _read_text(path)
    try:
        raw = yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as err:
        raise ParamsError(f"{path}: not valid YAML: {err}") from None
    return parse_params(raw, str(path))
