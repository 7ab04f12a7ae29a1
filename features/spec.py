"""Feature definitions with two implementations each: vectorised batch (training) and O(1)-per-candle
online state (trading). Both live side by side in this module so they cannot drift apart; the spec hash
covers this module's source, so a changed formula invalidates every model trained on the old one.

Conventions: every feature is a float; before its warm-up it is NaN. Batch and online forms start
from the same first candle and then agree to ≤ 1e-9 (tests/features prove it).
"""

from __future__ import annotations

import hashlib
import inspect
import json
import math
import sys
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray
from scipy.signal import lfilter

from core.types import Candle

FloatArray = NDArray[np.float64]
EMA_SETTLE = 1e-4
"""An EMA counts as warmed up once its seed's weight (1-alpha)^k falls below this fraction."""


class OnlineFeature(Protocol):
    def update(self, candle: Candle) -> float: ...


def _ema_batch(values: FloatArray, alpha: float) -> FloatArray:
    """EMA seeded with the first value: e_0 = x_0, e_t = a·x_t + (1-a)·e_{t-1} (exact recursion)."""
    if len(values) == 0:
        return values.copy()
    zi = np.array([(1.0 - alpha) * values[0]])
    out, _ = lfilter([alpha], [1.0, -(1.0 - alpha)], values, zi=zi)
    return np.asarray(out, dtype=np.float64)


def _ema_settle_candles(alpha: float) -> int:
    return math.ceil(math.log(EMA_SETTLE) / math.log(1.0 - alpha)) + 1


class _Ema:
    """Online twin of `_ema_batch`."""

    __slots__ = ("alpha", "value")

    def __init__(self, alpha: float) -> None:
        self.alpha = alpha
        self.value: float | None = None

    def update(self, x: float) -> float:
        self.value = x if self.value is None else self.alpha * x + (1.0 - self.alpha) * self.value
        return self.value


@dataclass(frozen=True)
class LogReturn:
    """log(close_t / close_{t-lag}): momentum over `lag` candles."""

    lag: int

    @property
    def name(self) -> str:
        return f"log_return_{self.lag}"

    @property
    def warmup(self) -> int:
        return self.lag

    def batch(self, cols: Mapping[str, FloatArray]) -> FloatArray:
        logc = np.log(cols["close"])
        out = np.full(len(logc), np.nan)
        out[self.lag :] = logc[self.lag :] - logc[: -self.lag]
        return out

    def online(self) -> OnlineFeature:
        return _OnlineLogReturn(self.lag)


class _OnlineLogReturn:
    __slots__ = ("closes",)

    def __init__(self, lag: int) -> None:
        self.closes: deque[float] = deque(maxlen=lag + 1)

    def update(self, candle: Candle) -> float:
        self.closes.append(math.log(candle.close))
        if len(self.closes) < self.closes.maxlen:  # type: ignore[operator]
            return math.nan
        return self.closes[-1] - self.closes[0]


@dataclass(frozen=True)
class _SpanEma:
    """Shared by features built on one EMA of `span` candles (alpha = 2 / (span + 1))."""

    span: int

    @property
    def alpha(self) -> float:
        return 2.0 / (self.span + 1.0)

    @property
    def warmup(self) -> int:
        return _ema_settle_candles(self.alpha)


@dataclass(frozen=True)
class EmaRatio(_SpanEma):
    """close / EMA(close, span) − 1: distance from trend, scale-free."""

    @property
    def name(self) -> str:
        return f"ema_ratio_{self.span}"

    def batch(self, cols: Mapping[str, FloatArray]) -> FloatArray:
        close = cols["close"]
        return close / _ema_batch(close, self.alpha) - 1.0

    def online(self) -> OnlineFeature:
        return _OnlineEmaRatio(self.alpha)


class _OnlineEmaRatio:
    __slots__ = ("ema",)

    def __init__(self, alpha: float) -> None:
        self.ema = _Ema(alpha)

    def update(self, candle: Candle) -> float:
        return candle.close / self.ema.update(candle.close) - 1.0


@dataclass(frozen=True)
class Rsi:
    """Wilder's RSI rescaled to [-0.5, 0.5]: share of recent movement that was upward, minus one half."""

    period: int

    @property
    def name(self) -> str:
        return f"rsi_{self.period}"

    @property
    def warmup(self) -> int:
        return _ema_settle_candles(1.0 / self.period) + 1

    def batch(self, cols: Mapping[str, FloatArray]) -> FloatArray:
        diff = np.diff(cols["close"])
        out = np.full(len(cols["close"]), np.nan)
        if len(diff) == 0:
            return out
        alpha = 1.0 / self.period
        gain = _ema_batch(np.maximum(diff, 0.0), alpha)
        loss = _ema_batch(np.maximum(-diff, 0.0), alpha)
        total = gain + loss
        with np.errstate(invalid="ignore", divide="ignore"):
            out[1:] = np.where(total > 0, gain / total, 0.5) - 0.5
        return out

    def online(self) -> OnlineFeature:
        return _OnlineRsi(1.0 / self.period)


class _OnlineRsi:
    __slots__ = ("gain", "loss", "prev")

    def __init__(self, alpha: float) -> None:
        self.gain, self.loss = _Ema(alpha), _Ema(alpha)
        self.prev: float | None = None

    def update(self, candle: Candle) -> float:
        prev, self.prev = self.prev, candle.close
        if prev is None:
            return math.nan
        diff = candle.close - prev
        gain = self.gain.update(max(diff, 0.0))
        loss = self.loss.update(max(-diff, 0.0))
        total = gain + loss
        return (gain / total if total > 0 else 0.5) - 0.5


@dataclass(frozen=True)
class Volatility:
    """Population std of one-candle log returns over the last `window` candles (fraction per candle)."""

    window: int

    @property
    def name(self) -> str:
        return f"volatility_{self.window}"

    @property
    def warmup(self) -> int:
        return self.window

    def batch(self, cols: Mapping[str, FloatArray]) -> FloatArray:
        rets = np.diff(np.log(cols["close"]))
        out = np.full(len(cols["close"]), np.nan)
        if len(rets) >= self.window:
            windows = np.lib.stride_tricks.sliding_window_view(rets, self.window)
            out[self.window :] = windows.std(axis=1)
        return out

    def online(self) -> OnlineFeature:
        return _OnlineVolatility(self.window)


class _OnlineVolatility:
    """Two-pass mean/variance over a fixed ring of `window` returns each candle (O(window), window is
    small). Running sums would be O(1) but lose up to 1e-9 on a flat run after a big move, because
    sqrt amplifies the leftover rounding of a near-zero variance; exactness is worth 2 µs here."""

    __slots__ = ("prev", "rets")

    def __init__(self, window: int) -> None:
        self.rets: deque[float] = deque(maxlen=window)
        self.prev: float | None = None

    def update(self, candle: Candle) -> float:
        logc = math.log(candle.close)
        prev, self.prev = self.prev, logc
        if prev is None:
            return math.nan
        self.rets.append(logc - prev)
        n = len(self.rets)
        if n < self.rets.maxlen:  # type: ignore[operator]
            return math.nan
        mean = sum(self.rets) / n
        return math.sqrt(sum((r - mean) * (r - mean) for r in self.rets) / n)


@dataclass(frozen=True)
class VolumeRatio(_SpanEma):
    """log1p(volume) − EMA(log1p(volume), span): is this candle busier than usual?"""

    @property
    def name(self) -> str:
        return f"volume_ratio_{self.span}"

    def batch(self, cols: Mapping[str, FloatArray]) -> FloatArray:
        logv = np.log1p(cols["volume"])
        return logv - _ema_batch(logv, self.alpha)

    def online(self) -> OnlineFeature:
        return _OnlineVolumeRatio(self.alpha)


class _OnlineVolumeRatio:
    __slots__ = ("ema",)

    def __init__(self, alpha: float) -> None:
        self.ema = _Ema(alpha)

    def update(self, candle: Candle) -> float:
        logv = math.log1p(candle.volume)
        return logv - self.ema.update(logv)


@dataclass(frozen=True)
class RangeRatio:
    """log(high / low) of the candle itself: intrabar range, no memory."""

    @property
    def name(self) -> str:
        return "range_ratio"

    @property
    def warmup(self) -> int:
        return 0

    def batch(self, cols: Mapping[str, FloatArray]) -> FloatArray:
        return np.asarray(np.log(cols["high"] / cols["low"]), dtype=np.float64)

    def online(self) -> OnlineFeature:
        return _OnlineRange()


class _OnlineRange:
    __slots__ = ()

    def update(self, candle: Candle) -> float:
        return math.log(candle.high / candle.low)


class Feature(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def warmup(self) -> int: ...
    def batch(self, cols: Mapping[str, FloatArray]) -> FloatArray: ...
    def online(self) -> OnlineFeature: ...


_KINDS: dict[str, type] = {
    "LogReturn": LogReturn,
    "EmaRatio": EmaRatio,
    "Rsi": Rsi,
    "Volatility": Volatility,
    "VolumeRatio": VolumeRatio,
    "RangeRatio": RangeRatio,
}


def _source_digest() -> str:
    return hashlib.sha256(inspect.getsource(sys.modules[__name__]).encode()).hexdigest()


class SpecMismatchError(ValueError):
    """A model was trained with other features than the code now computes."""


@dataclass(frozen=True)
class FeatureSpec:
    """An ordered tuple of features: the contract between training and trading."""

    features: tuple[Feature, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features)

    @property
    def warmup(self) -> int:
        """Candles needed before every feature is valid (and EMAs have forgotten their seed)."""
        return max(f.warmup for f in self.features)

    def describe(self) -> list[dict[str, Any]]:
        return [{"kind": type(f).__name__, **vars(f)} for f in self.features]

    @property
    def hash(self) -> str:
        blob = json.dumps({"features": self.describe(), "code": _source_digest()}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def to_json(self) -> dict[str, Any]:
        return {"names": list(self.names), "features": self.describe(), "warmup": self.warmup,
                "hash": self.hash}

    def batch(self, cols: Mapping[str, Any]) -> FloatArray:
        """Matrix (n_candles, n_features) over a whole history; `cols` maps OHLCV names to arrays."""
        arrays = {k: np.asarray(cols[k], dtype=np.float64) for k in ("open", "high", "low", "close", "volume")}
        if len(self.features) == 0:
            return np.empty((len(arrays["close"]), 0))
        return np.column_stack([f.batch(arrays) for f in self.features])

    def online(self) -> OnlineFeatures:
        return OnlineFeatures(self)

    def check_compatible(self, stored: Mapping[str, Any]) -> None:
        """Refuse a model whose stored feature spec is not what this code computes."""
        if stored.get("hash") != self.hash:
            raise SpecMismatchError(
                f"model feature-spec hash {stored.get('hash')!r} != code's {self.hash!r}: "
                f"the model was trained on {stored.get('names')} with other feature code; retrain it"
            )


class OnlineFeatures:
    """Per-pair incremental state: `update(candle)` returns the feature vector for that candle."""

    __slots__ = ("_states", "seen", "warmup")

    def __init__(self, spec: FeatureSpec) -> None:
        self._states = [f.online() for f in spec.features]
        self.warmup = spec.warmup
        self.seen = 0

    @property
    def ready(self) -> bool:
        return self.seen >= self.warmup

    def update(self, candle: Candle) -> list[float]:
        self.seen += 1
        return [s.update(candle) for s in self._states]


def spec_from_json(data: Mapping[str, Any]) -> FeatureSpec:
    """Rebuild a spec from its stored description (the hash then tells if the code still matches)."""
    feats: list[Feature] = []
    for item in data["features"]:
        args = {k: v for k, v in item.items() if k != "kind"}
        feats.append(_KINDS[item["kind"]](**args))
    return FeatureSpec(tuple(feats))


def build_spec(
    return_lags: Sequence[int], ema_spans: Sequence[int], rsi_period: int, volatility_window: int,
    volume_span: int,
) -> FeatureSpec:
    feats: list[Feature] = [LogReturn(lag) for lag in return_lags]
    feats += [EmaRatio(span) for span in ema_spans]
    feats += [Rsi(rsi_period), Volatility(volatility_window), VolumeRatio(volume_span), RangeRatio()]
    return FeatureSpec(tuple(feats))


def spec_from_params(params: Any) -> FeatureSpec:
    """`params` is core.params.FeatureParams (typed loosely to keep this module free of pydantic)."""
    return build_spec(params.return_lags, params.ema_spans, params.rsi_period, params.volatility_window,
                      params.volume_span)
