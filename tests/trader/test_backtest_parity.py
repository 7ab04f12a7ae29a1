"""The batch-scored backtest and the candle-by-candle online engine take the same decisions."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from core.params import load_params
from core.types import Candle
from features.spec import spec_from_params
from trader.backtest import batch_scores, run_backtest
from trader.fast_predict import FastScorer

PARAMS = load_params()
SPEC = spec_from_params(PARAMS.features)


def _candles(frame: pd.DataFrame) -> list[Candle]:
    return [Candle(int(r.date.value // 1_000_000), r.open, r.high, r.low, r.close, r.volume)
            for r in frame.itertuples(index=False)]


@pytest.fixture(scope="module")
def booster(xrp_1h: pd.DataFrame) -> lgb.Booster:
    X = SPEC.batch(xrp_1h.iloc[:6000])[SPEC.warmup :]
    y = (np.diff(xrp_1h["close"].to_numpy()[SPEC.warmup : 6001]) > 0).astype(float)
    return lgb.train({"objective": "binary", "verbosity": -1, "num_threads": 1, "num_leaves": 15},
                     lgb.Dataset(X, label=y), num_boost_round=60)


def test_batch_and_online_backtests_decide_and_fill_identically(
    booster: lgb.Booster, xrp_1h: pd.DataFrame, doge_1h: pd.DataFrame
) -> None:
    candles = {"XRP/USD": _candles(xrp_1h.iloc[6000:9000]), "DOGE/USD": _candles(doge_1h.iloc[6000:9000])}
    start = candles["XRP/USD"][800].ts
    online = run_backtest(candles, SPEC, FastScorer(booster), PARAMS.trade, PARAMS.fees, start, 8760)
    scores = {p: batch_scores(SPEC, booster.predict, seq) for p, seq in candles.items()}
    batch = run_backtest(candles, SPEC, FastScorer(booster), PARAMS.trade, PARAMS.fees, start, 8760, scores)
    assert len(online.decisions) == len(batch.decisions) > 4000
    assert [(d.ts, d.pair, d.action) for d in online.decisions] == [(d.ts, d.pair, d.action) for d in batch.decisions]
    np.testing.assert_allclose([d.prob for d in online.decisions], [d.prob for d in batch.decisions], atol=1e-9)
    assert online.fills == batch.fills and len(online.fills) > 0
    assert online.equity == pytest.approx(batch.equity, rel=1e-12)
