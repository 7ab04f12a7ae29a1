"""The A/B promotion decision. Return series here are synthetic on purpose: the test needs series
with a known true edge (or none) to check that the statistics find it (or do not)."""

from __future__ import annotations

import numpy as np
import pytest

from models.promotion import ABRules, block_bootstrap_p_value, decide_promotion

RULES = ABRules(alpha=0.05, min_periods=200, min_trades=5, max_drawdown=0.25, n_boot=1000)


def _series(edge: float, n: int = 2000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    champ = rng.normal(0.0, 0.004, n)
    chall = champ + edge + rng.normal(0.0, 0.002, n)
    return champ, chall


def test_clear_edge_is_promoted_with_small_p_value() -> None:
    champ, chall = _series(edge=0.0005)
    r = decide_promotion(champ, chall, challenger_trades=40, rules=RULES)
    assert r.decision == "promote" and r.p_value < 0.01 and r.effect > 0 and r.n_periods == 2000


def test_no_edge_is_kept() -> None:
    champ, chall = _series(edge=0.0)
    r = decide_promotion(champ, chall, challenger_trades=40, rules=RULES)
    assert r.decision == "keep" and r.p_value > 0.05


def test_worse_challenger_is_kept() -> None:
    champ, chall = _series(edge=-0.0005)
    assert decide_promotion(champ, chall, 40, RULES).decision == "keep"


def test_short_shadow_run_or_few_trades_is_insufficient_evidence() -> None:
    champ, chall = _series(edge=0.001, n=100)
    assert decide_promotion(champ, chall, 40, RULES).decision == "insufficient_evidence"
    champ, chall = _series(edge=0.001)
    r = decide_promotion(champ, chall, 2, RULES)
    assert r.decision == "insufficient_evidence" and "2 trades" in r.reason


def test_drawdown_limit_blocks_a_profitable_challenger() -> None:
    champ = np.zeros(400)
    chall = np.concatenate([np.full(100, -0.004), np.full(300, 0.003)])  # −33 % then recovery
    r = decide_promotion(champ, chall, 10, RULES)
    assert r.decision == "keep" and "drawdown" in r.reason


def test_identical_models_are_kept_with_p_one() -> None:
    champ, _ = _series(0.0)
    r = decide_promotion(champ, champ.copy(), 40, RULES)
    assert r.decision == "keep" and r.p_value == 1.0


def test_misaligned_series_are_refused() -> None:
    with pytest.raises(ValueError, match="must align"):
        decide_promotion(np.zeros(300), np.zeros(299), 10, RULES)


def test_p_value_is_roughly_uniform_under_the_null() -> None:
    ps = [block_bootstrap_p_value(np.random.default_rng(s).normal(0, 1, 400), 300, s) for s in range(60)]
    assert 0.3 < float(np.mean(ps)) < 0.7
    assert 0.0 < float(np.mean(np.array(ps) < 0.1)) < 0.3
