"""Holdout trading metrics, baselines and the probabilistic / deflated Sharpe ratio, on known values."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from models import evaluate as ev


def test_sortino_by_hand() -> None:
    r = np.array([0.01, -0.02, 0.03, -0.01])
    downside = math.sqrt((0.02**2 + 0.01**2) / 4)
    assert ev.sortino(r, 1.0) == pytest.approx(0.0025 / downside)
    assert ev.sortino(r, 8760.0) == pytest.approx(0.0025 / downside * math.sqrt(8760))
    assert ev.sortino(np.array([0.01, 0.02]), 1.0) == 0.0


def test_round_trips_add_partial_fills_and_fees() -> None:
    pair = np.array(["XRP", "XRP", "DOGE", "XRP", "DOGE", "DOGE"])
    qty = np.array([5.0, 5.0, 100.0, -10.0, -100.0, 50.0])  # the last DOGE buy is still open at the end
    price = np.array([1.0, 1.0, 0.1, 1.1, 0.09, 0.1])
    fee = np.array([0.02, 0.02, 0.04, 0.044, 0.036, 0.02])
    pnls = ev.round_trip_pnls(pair, qty, price, fee)
    assert pnls == pytest.approx([11.0 - 10.0 - 0.084, 9.0 - 10.0 - 0.076])


def test_hit_rate_and_profit_factor() -> None:
    pnls = np.array([1.0, -0.5, 2.0])
    assert ev.hit_rate(pnls) == pytest.approx(2 / 3)
    assert ev.profit_factor(pnls) == pytest.approx(6.0)
    assert ev.profit_factor(np.array([1.0])) == math.inf
    assert ev.profit_factor(np.empty(0)) == 0.0 and ev.hit_rate(np.empty(0)) == 0.0


def test_turnover_counts_both_sides_over_mean_equity() -> None:
    assert ev.turnover(2000.0, np.array([900.0, 1100.0])) == pytest.approx(2.0)


def test_buy_and_hold_matches_fees_both_ways(xrp_1h: pd.DataFrame, doge_1h: pd.DataFrame) -> None:
    closes = np.column_stack([xrp_1h["close"].to_numpy()[-500:], doge_1h["close"].to_numpy()[-500:]])
    equity, trades = ev.buy_and_hold_equity(closes, 10_000.0, 0.004)
    expected = np.mean(closes[-1] / closes[0]) * 0.996**2 - 1
    assert equity[-1] / equity[0] - 1 == pytest.approx(expected)
    assert trades.pnls.sum() == pytest.approx(equity[-1] - 10_000.0)
    with pytest.raises(ValueError, match="shape"):
        ev.buy_and_hold_equity(closes[:1], 10_000.0, 0.004)


def test_momentum_probability_is_long_after_a_rise() -> None:
    prob = ev.momentum_probability(np.array([1.0, 2.0, 1.5, 1.0, 3.0]), 2)
    assert np.isnan(prob[:2]).all() and prob[2:].tolist() == [1.0, 0.0, 1.0]


def test_psr_matches_the_formula_on_real_returns(xrp_1h: pd.DataFrame) -> None:
    r = np.diff(np.log(xrp_1h["close"].to_numpy()[-2000:]))
    sr = r.mean() / r.std(ddof=1)
    g3, g4 = stats.skew(r), stats.kurtosis(r, fisher=False)
    z = (sr - 0.01) * math.sqrt(len(r) - 1) / math.sqrt(1 - g3 * sr + (g4 - 1) / 4 * sr**2)
    assert ev.probabilistic_sharpe_ratio(r, 0.01) == pytest.approx(stats.norm.cdf(z))
    assert ev.probabilistic_sharpe_ratio(r - r.mean()) == pytest.approx(0.5)


def test_expected_max_sharpe_matches_simulated_maxima_of_noise() -> None:
    # standard normal draws stand in for Sharpe estimates of skill-less trials (not prices)
    draws = np.random.default_rng(7).standard_normal((20_000, 100))
    simulated = draws.max(axis=1).mean()
    assert ev.expected_max_sharpe(100, 1.0) == pytest.approx(simulated, rel=0.02)
    assert ev.expected_max_sharpe(100, 0.25) == pytest.approx(0.5 * ev.expected_max_sharpe(100, 1.0))
    assert ev.expected_max_sharpe(1, 1.0) == 0.0


def test_deflated_sharpe_falls_as_more_trials_were_tried(xrp_1h: pd.DataFrame) -> None:
    r = np.diff(np.log(xrp_1h["close"].to_numpy()[-3000:])) + 0.0004  # a drift so the PSR is high
    one = ev.deflated_sharpe_ratio(r, 1)
    assert one == pytest.approx(ev.probabilistic_sharpe_ratio(r))
    many = [ev.deflated_sharpe_ratio(r, n) for n in (2, 10, 50, 200)]
    assert one > many[0] > many[1] > many[2] > many[3]
    sr0 = ev.expected_max_sharpe(50, 1 / (len(r) - 1))
    assert many[2] == pytest.approx(ev.probabilistic_sharpe_ratio(r, sr0))


def test_trading_metrics_of_flat_and_the_verdict_reports_a_loss() -> None:
    eq, trades = ev.flat_equity(100, 10_000.0)
    flat = ev.trading_metrics(eq, trades, 8760.0, 1, "baseline_flat")
    assert flat["baseline_flat_net_return"] == 0.0 and flat["baseline_flat_n_trades"] == 0.0
    model = ev.trading_metrics(np.linspace(10_000, 9_000, 100), ev.Trades(np.array([-1000.0]), 20_000.0),
                               8760.0, 50, "holdout")
    assert model["holdout_net_return"] == pytest.approx(-0.1)
    assert model["holdout_max_drawdown"] == pytest.approx(0.1)
    assert model["holdout_turnover"] == pytest.approx(20_000 / 9_500)
    text = ev.verdict({**model, **flat, "baseline_buy_and_hold_net_return": 0.05})
    assert "LOSES to buy_and_hold (+5.00%), flat (+0.00%)" in text and "not distinguishable from luck" in text
