"""Trader engine benchmarks (issue F targets), on real candles.

Data: the bundled real 5-minute XRP/USDT and DOGE/USDT candles (data/sample, MIT). Where a year of
1-minute candles or 1 M candles are needed, the real series is TILED: each copy is rescaled to start at
the previous copy's last close (so prices stay continuous) and relabelled onto a 1-minute grid. The
prices are real moves, the calendar is not.
"""

from __future__ import annotations

import gc
import resource
import time
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd

from core.params import load_params
from core.types import Candle
from features.labels import direction_label, forward_net_log_return
from features.spec import FeatureSpec, build_spec, spec_from_params
from trader.backtest import batch_scores, run_backtest
from trader.brokers.simulated import FillModel, SimulatedBroker
from trader.engine import Engine
from trader.fast_predict import FastScorer
from trader.strategy import ThresholdStrategy

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "sample" / "binance"
PARAMS = load_params()
MINUTE_MS = 60_000


def real_5m(pair: str) -> pd.DataFrame:
    return pd.read_feather(SAMPLE / f"{pair}_USDT-5m.feather")


def tiled(frame: pd.DataFrame, n: int, start: str = "2025-01-01", freq: str = "min") -> pd.DataFrame:
    """`n` candles made of copies of a real series, price-continuous, on a grid of `freq` (1 minute)."""
    cols = ["open", "high", "low", "close", "volume"]
    base = frame[cols].to_numpy()
    parts, scale = [], 1.0
    while sum(len(p) for p in parts) < n:
        part = base.copy()
        part[:, :4] *= scale
        parts.append(part)
        scale = part[-1, 3] / base[0, 0]
    data = np.vstack(parts)[:n]
    out = pd.DataFrame(data, columns=cols)
    out.insert(0, "date", pd.date_range(start, periods=n, freq=freq, tz="UTC"))
    return out


def to_candles(frame: pd.DataFrame) -> list[Candle]:
    ts = frame["date"].astype("int64").to_numpy() // 1_000_000
    o, h, low, c, v = (frame[k].to_numpy().tolist() for k in ("open", "high", "low", "close", "volume"))
    return [Candle(int(t), *row) for t, *row in zip(ts, o, h, low, c, v, strict=True)]


def train_model(spec: FeatureSpec, frame: pd.DataFrame, trees: int) -> lgb.Booster:
    X = spec.batch(frame)
    y = direction_label(forward_net_log_return(frame["close"].to_numpy(), 12, 0.004), 0.0)
    keep = ~np.isnan(y) & np.isfinite(X).all(axis=1)
    params = {"objective": "binary", "verbosity": -1, "num_leaves": 31, "num_threads": 2, "seed": 1,
              "min_child_samples": 50}
    return lgb.train(params, lgb.Dataset(X[keep], label=y[keep]), num_boost_round=trees)


def spec_30() -> FeatureSpec:
    """30 features: the shape of the issue's hot-path target (13 lags + 13 EMAs + RSI, vol, volume, range)."""
    return build_spec(list(range(1, 14)), [5, 8, 12, 16, 20, 24, 32, 40, 48, 64, 80, 96, 120], 14, 24, 24)


def _engine(spec: FeatureSpec, scorer: FastScorer, keep: bool) -> Engine:
    broker = SimulatedBroker(10_000.0, FillModel(PARAMS.fees.taker, PARAMS.fees.slippage_bps))
    strategy = ThresholdStrategy(PARAMS.trade.enter_threshold, PARAMS.trade.exit_threshold, 0.45)
    return Engine(spec, scorer, strategy, broker, keep_decisions=keep)


def hot_path(spec: FeatureSpec, booster: lgb.Booster, candles: list[Candle]) -> dict[str, float]:
    engine = _engine(spec, FastScorer(booster), keep=False)
    for c in candles[: spec.warmup]:
        engine.on_candle("XRP/USD", c)
    times = np.empty(len(candles) - spec.warmup)
    clock = time.perf_counter_ns
    for i, c in enumerate(candles[spec.warmup :]):
        t0 = clock()
        engine.on_candle("XRP/USD", c)
        times[i] = clock() - t0
    return {"p50": float(np.percentile(times, 50)) / 1e3, "p99": float(np.percentile(times, 99)) / 1e3}


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def online_soak(spec: FeatureSpec, booster: lgb.Booster, candles: list[Candle]) -> dict[str, float]:
    """Online engine over all candles; RSS measured after the first 100k (warm) and at the end."""
    engine = _engine(spec, FastScorer(booster), keep=False)
    gc.collect()
    t0 = time.perf_counter()
    rss_warm = 0.0
    for i, c in enumerate(candles):
        engine.on_candle("XRP/USD", c)
        if i == 100_000:
            rss_warm = rss_mb()
    seconds = time.perf_counter() - t0
    return {"rate": len(candles) / seconds, "rss_growth": rss_mb() - rss_warm}


def year_backtest(spec: FeatureSpec, booster: lgb.Booster, frames: dict[str, pd.DataFrame]) -> dict[str, float]:
    candles = {pair: to_candles(f) for pair, f in frames.items()}
    t0 = time.perf_counter()
    scores = {pair: batch_scores(spec, booster.predict, seq) for pair, seq in candles.items()}
    t_score = time.perf_counter() - t0
    result = run_backtest(candles, spec, FastScorer(booster), PARAMS.trade, PARAMS.fees, 0, 525_600, scores)
    total = time.perf_counter() - t0
    n = sum(len(s) for s in candles.values())
    return {"seconds": total, "score_seconds": t_score, "loop_rate": n / (total - t_score), "candles": n,
            "fills": len(result.fills)}


def backtrader_year(frames: dict[str, pd.DataFrame], probs: dict[str, np.ndarray]) -> float:
    """The same threshold strategy on backtrader, fed the same precomputed probabilities (so only the
    engines are compared, not the model), same fee; seconds."""
    import backtrader as bt

    enter, exit_ = PARAMS.trade.enter_threshold, PARAMS.trade.exit_threshold

    class ProbData(bt.feeds.PandasData):  # type: ignore[misc,name-defined]
        lines = ("prob",)
        params = (("prob", -1),)

    class Threshold(bt.Strategy):  # type: ignore[misc,name-defined]
        def next(self) -> None:
            for data in self.datas:
                p = data.prob[0]
                held = self.getposition(data).size > 0
                if not held and p >= enter:
                    self.order_target_percent(data=data, target=0.45)
                elif held and p < exit_:
                    self.order_target_percent(data=data, target=0.0)

    cerebro = bt.Cerebro(stdstats=False)
    cerebro.broker.setcash(10_000.0)
    cerebro.broker.setcommission(commission=PARAMS.fees.taker)
    for pair, frame in frames.items():
        df = frame.set_index(frame["date"].dt.tz_localize(None))[["open", "high", "low", "close", "volume"]].copy()
        df["prob"] = np.nan_to_num(probs[pair], nan=0.0)
        cerebro.adddata(ProbData(dataname=df), name=pair)
    cerebro.addstrategy(Threshold)
    t0 = time.perf_counter()
    cerebro.run(runonce=True, preload=True)
    return time.perf_counter() - t0


def run() -> list[dict]:
    rows: list[dict] = []
    xrp, doge = real_5m("XRP"), real_5m("DOGE")
    spec30 = spec_30()
    booster30 = train_model(spec30, xrp.iloc[:40_000], trees=300)
    hp = hot_path(spec30, booster30, to_candles(xrp.iloc[40_000:72_000]))
    rows.append({"name": "hot path candle→features→predict→decision, p50 (30 features, 300 trees)",
                 "value": f"{hp['p50']:.1f}", "unit": "µs", "target": "—", "ok": None,
                 "note": "online features + LightGBM C API fast path + strategy + simulated broker"})
    rows.append({"name": "hot path p99 (30 features, 300 trees)", "value": f"{hp['p99']:.1f}", "unit": "µs",
                 "target": "≤ 100 µs", "ok": hp["p99"] <= 100})

    spec = spec_from_params(PARAMS.features)
    booster = train_model(spec, xrp.iloc[:40_000], trees=PARAMS.train.n_estimators)
    million = to_candles(tiled(xrp, 1_000_000))
    soak = online_soak(spec, booster, million)
    rows.append({"name": "online engine throughput (features + predict per candle), 1 M candles",
                 "value": f"{soak['rate']:,.0f}", "unit": "candles/s", "target": "—", "ok": None,
                 "note": "project model: 10 features, 300 trees; real 5m XRP tiled. Bounded by the measured floor "
                         "of online features + single-row predict (25 µs → 40k/s); the ≥ 200k target is the "
                         "engine loop's (batch-scored row below)"})
    rows.append({"name": "RSS growth over 1 M candles (online engine)", "value": f"{soak['rss_growth']:.1f}",
                 "unit": "MB", "target": "< 5 MB", "ok": soak["rss_growth"] < 5})
    del million

    year = {"XRP/USD": tiled(xrp, 525_600), "DOGE/USD": tiled(doge, 525_600)}
    bt_res = year_backtest(spec, booster, year)
    rows.append({"name": "backtest 1 year × 2 pairs of 1-minute candles with the model",
                 "value": f"{bt_res['seconds']:.2f}", "unit": "s", "target": "≤ 3 s", "ok": bt_res["seconds"] <= 3,
                 "note": f"{bt_res['candles']:,} candles; batch features+predict {bt_res['score_seconds']:.2f} s "
                         f"(LightGBM's own multi-threaded predict of 300 trees: the floor), event loop "
                         f"{bt_res['loop_rate']:,.0f} candles/s; real 5m XRP/DOGE tiled onto 1m grid"})
    rows.append({"name": "backtest engine loop throughput (batch-scored)", "value": f"{bt_res['loop_rate']:,.0f}",
                 "unit": "candles/s", "target": "≥ 200k candles/s", "ok": bt_res["loop_rate"] >= 200_000})
    probs = {pair: batch_scores(spec, booster.predict, to_candles(f)).prob for pair, f in year.items()}
    bt_seconds = backtrader_year(year, probs)
    loop_seconds = bt_res["seconds"] - bt_res["score_seconds"]
    rows.append({"name": "backtrader, same strategy, same year × 2 pairs (precomputed probabilities)",
                 "value": f"{bt_seconds:.1f}", "unit": "s", "target": "ratio", "ok": None,
                 "note": f"krakenflow loop is {bt_seconds / loop_seconds:.0f}× faster "
                         f"({bt_seconds / bt_res['seconds']:.0f}× including our model scoring)"})
    return rows


if __name__ == "__main__":
    for r in run():
        print(r)
