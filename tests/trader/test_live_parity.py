"""Parity: the same real candles replayed (a) by the backtester and (b) by the live trader against the
Kraken emulator through ccxt produce the same decisions, the same fills (one fill model, market.fills)
and the same final equity to the cent."""

from __future__ import annotations

from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from core.params import load_params
from core.types import Candle
from features.spec import spec_from_params
from market.frame import to_candles
from trader.backtest import run_backtest
from trader.brokers.kraken import KrakenBroker
from trader.engine import Engine
from trader.fast_predict import FastScorer
from trader.ledger import Ledger
from trader.live import LiveLoop
from trader.strategy import ThresholdStrategy

PARAMS = load_params()
SPEC = spec_from_params(PARAMS.features)
STEPS = 160


@pytest.fixture
def fast_emulator():  # type: ignore[no-untyped-def]
    """The emulator with Kraken's rate counter raised: this test replays days of candles in seconds."""
    from tests_support import EMULATOR_KEY, EMULATOR_SECRET

    from market.emulator.kraken_api import RateTier
    from market.emulator.server import running_emulator

    with running_emulator(tier=RateTier(max_counter=1e9)) as handle:
        handle.add_key(EMULATOR_KEY, EMULATOR_SECRET)
        yield handle


@pytest.fixture(scope="module")
def booster(xrp_1h: pd.DataFrame) -> lgb.Booster:
    """A real model on real candles; thresholds around its median make it trade often."""
    X = SPEC.batch(xrp_1h.iloc[:5000])[SPEC.warmup :]
    y = (np.diff(xrp_1h["close"].to_numpy()[SPEC.warmup : 5001]) > 0).astype(float)
    return lgb.train({"objective": "binary", "verbosity": -1, "num_threads": 1, "num_leaves": 7, "seed": 1},
                     lgb.Dataset(X, label=y), num_boost_round=30)


def test_backtest_and_live_emulator_decide_fill_and_end_identically(fast_emulator, booster: lgb.Booster,  # type: ignore[no-untyped-def]
                                                                    tmp_path: Path) -> None:
    from tests_support import EMULATOR_KEY, EMULATOR_SECRET

    from market.kraken import KrakenClient, make_exchange

    emulator = fast_emulator
    kraken_client = KrakenClient(make_exchange(emulator.url, EMULATOR_KEY, EMULATOR_SECRET, throttle=False))
    trade = PARAMS.trade.model_copy(update={"enter_threshold": 0.5, "exit_threshold": 0.5})
    broker = KrakenBroker(kraken_client, Ledger(f"sqlite:///{tmp_path / 'ledger.db'}"), model_version=1)
    engine = Engine(SPEC, FastScorer(booster), ThresholdStrategy(0.5, 0.5, trade.position_fraction), broker,
                    risk=PARAMS.risk)
    loop = LiveLoop(kraken_client, engine, ["DOGE/USD", "XRP/USD"], "1h")
    assert loop.warm_up() == 2 * 719  # Kraken: 720 rows, the last unfinished
    for _ in range(STEPS):
        emulator.advance(1)
        loop.poll()
    broker.sync()  # the last poll's order filled at once; the ledger records it on the next sync

    # the backtest replays what the live trader saw plus the cursor candle its last order filled on (its
    # open is the fill price on both sides); decisions on that unfinished candle exist only in the backtest
    end = 720 + STEPS
    start = emulator.venue.candles["XRP/USD"][720].ts
    replayed: dict[str, list[Candle]] = {p: seq[1 : end + 1] for p, seq in emulator.venue.candles.items()}
    backtest = run_backtest(replayed, SPEC, FastScorer(booster), trade, PARAMS.fees, start, 8760, risk=PARAMS.risk)

    live = [(d.ts, d.pair, d.action) for d in engine.decisions]
    last_seen = emulator.venue.candles["XRP/USD"][end - 1].ts
    assert live == [(d.ts, d.pair, d.action) for d in backtest.decisions if d.ts <= last_seen]
    assert sum(a in ("buy", "sell") for *_, a in live) >= 6
    live_fills = broker.ledger.fills()
    assert len(live_fills) == len(backtest.fills)
    for ours, theirs in zip(live_fills, backtest.fills, strict=True):
        assert (ours.pair, ours.side, ours.client_id) == (theirs.pair, theirs.side, theirs.client_id)
        assert ours.price == pytest.approx(theirs.price, rel=1e-9, abs=0)
        assert ours.quantity == pytest.approx(theirs.quantity, rel=1e-9, abs=0)

    balances = kraken_client.balances()
    marks = {"XRP": replayed["XRP/USD"][-1].close, "DOGE": replayed["DOGE/USD"][-1].close}
    live_equity = balances.get("USD", 0.0) + sum(balances.get(asset, 0.0) * close for asset, close in marks.items())
    assert live_equity == pytest.approx(backtest.metrics["final_equity"], abs=0.005)  # to the cent


def test_sample_candles_feed_the_emulator_unchanged(emulator) -> None:  # type: ignore[no-untyped-def]
    root = Path(__file__).resolve().parents[2]
    sample = to_candles(pd.read_parquet(root / "data/sample/binance/XRP_USDT-1h.parquet"))
    assert emulator.venue.candles["XRP/USD"] == sample
