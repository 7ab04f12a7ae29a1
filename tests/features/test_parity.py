"""Batch (training) and online (trading) features must be the same numbers: no train/serve skew."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.params import load_params
from core.types import Candle
from features.spec import FeatureSpec, SpecMismatchError, build_spec, spec_from_json, spec_from_params

SPEC = spec_from_params(load_params().features)


def _candles(frame: pd.DataFrame) -> list[Candle]:
    return [
        Candle(int(r.date.value // 1_000_000), r.open, r.high, r.low, r.close, r.volume)
        for r in frame.itertuples(index=False)
    ]


def _online(spec: FeatureSpec, candles: list[Candle]) -> np.ndarray:
    state = spec.online()
    return np.array([state.update(c) for c in candles])


def _assert_parity(spec: FeatureSpec, frame: pd.DataFrame) -> None:
    batch = spec.batch(frame)
    online = _online(spec, _candles(frame))
    assert batch.shape == online.shape
    np.testing.assert_array_equal(np.isnan(batch), np.isnan(online))
    assert np.nanmax(np.abs(batch - online)) <= 1e-9


@pytest.mark.parametrize("fixture", ["xrp_1h", "doge_1h"])
def test_batch_equals_online_on_real_history(fixture: str, request: pytest.FixtureRequest) -> None:
    _assert_parity(SPEC, request.getfixturevalue(fixture))


@st.composite
def candle_frames(draw: st.DrawFn) -> pd.DataFrame:
    """Random positive OHLCV paths: synthetic on purpose, to reach shapes real data rarely has
    (flat runs, zero volume, tiny series shorter than the warm-up)."""
    n = draw(st.integers(min_value=1, max_value=300))
    steps = draw(st.lists(st.floats(-0.2, 0.2), min_size=n, max_size=n))
    close = 1.0 * np.exp(np.cumsum(steps))
    spread = np.array(draw(st.lists(st.floats(0, 0.05), min_size=n, max_size=n)))
    volume = draw(st.lists(st.floats(0, 1e6), min_size=n, max_size=n))
    return pd.DataFrame({
        "date": pd.date_range("2024-01-01", periods=n, freq="h", tz="UTC"),
        "open": close, "high": close * (1 + spread), "low": close / (1 + spread), "close": close,
        "volume": volume,
    })


@settings(max_examples=60, deadline=None)
@given(frame=candle_frames(), lags=st.lists(st.integers(1, 30), min_size=1, max_size=3),
       spans=st.lists(st.integers(2, 120), min_size=1, max_size=3), period=st.integers(2, 30))
def test_batch_equals_online_on_random_series(frame: pd.DataFrame, lags: list[int], spans: list[int],
                                              period: int) -> None:
    _assert_parity(build_spec(lags, spans, period, period, period), frame)


def test_no_look_ahead_changing_the_future_leaves_the_past(xrp_1h: pd.DataFrame) -> None:
    frame = xrp_1h.iloc[:2000].copy()
    before = SPEC.batch(frame)
    t = 1500
    frame.loc[t + 1 :, ["open", "high", "low", "close"]] *= 3.0
    frame.loc[t + 1 :, "volume"] = 0.0
    after = SPEC.batch(frame)
    np.testing.assert_array_equal(before[: t + 1], after[: t + 1])
    assert not np.allclose(before[t + 1 :], after[t + 1 :], equal_nan=True)


def test_warmup_covers_every_feature_and_is_within_krakens_720_candles() -> None:
    assert SPEC.warmup <= 720
    frame_len = SPEC.warmup + 5
    state = SPEC.online()
    for i in range(frame_len):
        values = state.update(Candle(i, 1.0 + i * 1e-3, 1.01 + i * 1e-3, 0.99, 1.0 + i * 1e-3, 10.0))
    assert state.ready and not any(math.isnan(v) for v in values)


def test_spec_roundtrips_and_refuses_foreign_hash() -> None:
    stored = SPEC.to_json()
    assert spec_from_json(stored).hash == SPEC.hash
    SPEC.check_compatible(stored)
    with pytest.raises(SpecMismatchError, match="retrain"):
        SPEC.check_compatible({**stored, "hash": "0" * 16})


def test_hash_depends_on_definition() -> None:
    assert build_spec([1], [12], 14, 24, 24).hash != build_spec([1], [13], 14, 24, 24).hash
