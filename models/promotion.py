"""Promotion decisions: pure functions over plain numbers; the flows do the I/O around them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from core.metrics import max_drawdown

Verdict = Literal["promote", "keep", "insufficient_evidence"]


@dataclass(frozen=True)
class ABRules:
    alpha: float = 0.05            # one-sided significance level for "challenger earns more"
    min_periods: int = 200         # paired periods (candles) of the shadow run, at least
    min_trades: int = 5            # challenger round trips in the shadow run, at least
    max_drawdown: float = 0.25     # the challenger's shadow drawdown may not exceed this fraction
    n_boot: int = 2000
    seed: int = 7


@dataclass(frozen=True)
class ABResult:
    decision: Verdict
    p_value: float
    effect: float          # mean per-period net return, challenger minus champion (fraction)
    n_periods: int
    challenger_trades: int
    reason: str


def block_bootstrap_p_value(diff: np.ndarray, n_boot: int, seed: int) -> float:
    """One-sided p-value of mean(diff) > 0 by a moving-block bootstrap under the null (diff centred).
    Blocks of ~√n periods keep the autocorrelation that per-candle trading returns have."""
    n = len(diff)
    block = max(1, int(np.sqrt(n)))
    centred = diff - diff.mean()
    rng = np.random.default_rng(seed)
    n_blocks = -(-n // block)
    starts = rng.integers(0, n - block + 1, size=(n_boot, n_blocks))
    idx = (starts[:, :, None] + np.arange(block)[None, None, :]).reshape(n_boot, -1)[:, :n]
    boot_means = centred[idx].mean(axis=1)
    return float((1 + np.sum(boot_means >= diff.mean())) / (n_boot + 1))


def decide_promotion(
    champion_returns: np.ndarray, challenger_returns: np.ndarray, challenger_trades: int, rules: ABRules
) -> ABResult:
    """Compare per-period net returns of both models over the SAME unseen candles (paired)."""
    champ = np.asarray(champion_returns, dtype=np.float64)
    chall = np.asarray(challenger_returns, dtype=np.float64)
    if champ.shape != chall.shape:
        raise ValueError(f"paired returns must align: champion {champ.shape} vs challenger {chall.shape}")
    n = len(chall)
    diff = chall - champ
    effect = float(diff.mean()) if n else 0.0
    if n < rules.min_periods or challenger_trades < rules.min_trades:
        why = f"{n} periods (need {rules.min_periods}), {challenger_trades} trades (need {rules.min_trades})"
        return ABResult("insufficient_evidence", float("nan"), effect, n, challenger_trades, why)
    drawdown = max_drawdown(np.cumprod(1.0 + chall))
    p = block_bootstrap_p_value(diff, rules.n_boot, rules.seed) if np.any(diff != 0) else 1.0
    if drawdown > rules.max_drawdown:
        why = f"challenger drawdown {drawdown:.1%} exceeds the {rules.max_drawdown:.0%} limit"
        return ABResult("keep", p, effect, n, challenger_trades, why)
    if effect > 0 and p < rules.alpha:
        why = f"challenger earns {effect * 1e4:+.2f} bp/period more, p={p:.4f} < {rules.alpha}"
        return ABResult("promote", p, effect, n, challenger_trades, why)
    why = f"no significant gain: {effect * 1e4:+.2f} bp/period, p={p:.4f} ≥ {rules.alpha}" if effect > 0 else (
        f"challenger earns {effect * 1e4:+.2f} bp/period vs champion")
    return ABResult("keep", p, effect, n, challenger_trades, why)
