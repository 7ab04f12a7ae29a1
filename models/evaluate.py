"""Out-of-sample classification metrics. Trading metrics come from the trader's own engine
(trader.backtest) and are merged by the evaluate stage; this module never imports the trader."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import norm

from core.metrics import max_drawdown, period_returns, sharpe, total_return


def auc(y_true: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve via the rank-sum identity (ties averaged); 0.5 if one class only."""
    y = np.asarray(y_true, dtype=bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return 0.5
    order = np.argsort(score, kind="mergesort")
    ranks = np.empty(len(score))
    sorted_scores = np.asarray(score)[order]
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    avg_rank = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(avg_rank, counts)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def log_loss(y_true: np.ndarray, prob: np.ndarray, eps: float = 1e-12) -> float:
    p = np.clip(np.asarray(prob, dtype=np.float64), eps, 1 - eps)
    y = np.asarray(y_true, dtype=np.float64)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def classification_metrics(y_true: np.ndarray, prob: np.ndarray, prefix: str) -> dict[str, float]:
    y = np.asarray(y_true, dtype=np.float64)
    return {
        f"{prefix}_auc": auc(y, prob),
        f"{prefix}_logloss": log_loss(y, prob),
        f"{prefix}_base_rate": float(y.mean()) if y.size else 0.0,
        f"{prefix}_rows": float(y.size),
    }


# ---- trading metrics over plain return / equity series ------------------------------------------
# Per-period simple returns (fraction per candle), equity in quote currency (USD). Sharpe, maximum
# drawdown and total return live in core.metrics (shared with the trader); these complete the set.

EULER_GAMMA = 0.5772156649015329


def sortino(returns: np.ndarray, periods_per_year: float) -> float:
    """Annualised Sortino ratio (target 0): mean return over the downside deviation, which counts every
    period (gains as 0) as in Sortino & Price; 0 when there is no downside or fewer than 2 periods."""
    r = np.asarray(returns, dtype=np.float64)
    if r.size < 2:
        return 0.0
    downside = math.sqrt(float(np.mean(np.minimum(r, 0.0) ** 2)))
    return 0.0 if downside == 0.0 else float(r.mean() / downside * math.sqrt(periods_per_year))


def round_trip_pnls(pair: np.ndarray, signed_qty: np.ndarray, price: np.ndarray, fee: np.ndarray) -> np.ndarray:
    """Net P&L (quote currency, fees included) of every closed trade, in order of closing. Fills are in
    time order; buys have qty > 0. A trade opens when a pair's position leaves 0 and closes when it
    returns to 0 (partial fills add up); a trade still open at the end is not counted."""
    position: dict[str, float] = {}
    cash: dict[str, float] = {}
    out: list[float] = []
    for p, q, px, f in zip(pair, signed_qty, price, fee, strict=True):
        position[p] = position.get(p, 0.0) + float(q)
        cash[p] = cash.get(p, 0.0) - float(q) * float(px) - float(f)
        if abs(position[p]) <= 1e-9 * max(abs(float(q)), 1.0):
            out.append(cash.pop(p))
            position[p] = 0.0
    return np.asarray(out, dtype=np.float64)


def hit_rate(pnls: np.ndarray) -> float:
    """Fraction of closed trades that made money after fees; 0 with no trades."""
    p = np.asarray(pnls, dtype=np.float64)
    return float((p > 0).mean()) if p.size else 0.0


def profit_factor(pnls: np.ndarray) -> float:
    """Gross profit over gross loss of closed trades (> 1 = profitable); 0 with no trades, +inf when no
    trade lost (callers that store JSON turn non-finite values into null)."""
    p = np.asarray(pnls, dtype=np.float64)
    gain, loss = float(p[p > 0].sum()), float(-p[p < 0].sum())
    if loss == 0.0:
        return math.inf if gain > 0 else 0.0
    return gain / loss


def turnover(traded_notional: float, equity: np.ndarray) -> float:
    """Traded notional (both sides, quote currency) over mean equity: 2.0 ≈ one full round trip."""
    eq = np.asarray(equity, dtype=np.float64)
    return float(traded_notional / eq.mean()) if eq.size and eq.mean() > 0 else 0.0


def _moments(returns: np.ndarray) -> tuple[float, float, float]:
    """(per-period Sharpe, skewness, kurtosis — non-excess, 3 for a normal) of the returns."""
    r = np.asarray(returns, dtype=np.float64)
    sd = float(r.std(ddof=1)) if r.size > 1 else 0.0
    if sd == 0.0:
        return 0.0, 0.0, 3.0
    z = (r - r.mean()) / r.std(ddof=0)
    return float(r.mean() / sd), float(np.mean(z**3)), float(np.mean(z**4))


def probabilistic_sharpe_ratio(returns: np.ndarray, benchmark_sr: float = 0.0) -> float:
    """PSR (Bailey & López de Prado 2012): probability that the true per-period Sharpe ratio exceeds
    `benchmark_sr` (per period, not annualised), given the sample's length, skewness and kurtosis."""
    r = np.asarray(returns, dtype=np.float64)
    if r.size < 3:
        return 0.0
    sr, skew, kurt = _moments(r)
    var = 1.0 - skew * sr + (kurt - 1.0) / 4.0 * sr**2
    if var <= 0.0:
        return 0.0
    return float(norm.cdf((sr - benchmark_sr) * math.sqrt(r.size - 1) / math.sqrt(var)))


def expected_max_sharpe(n_trials: int, sr_variance: float) -> float:
    """E[max] of `n_trials` Sharpe estimates whose true value is 0 (Bailey & López de Prado 2014,
    False Strategy Theorem): sqrt(V)·((1−γ)Φ⁻¹(1−1/N) + γΦ⁻¹(1−1/(N·e))); 0 for a single trial."""
    if n_trials <= 1:
        return 0.0
    a = norm.ppf(1.0 - 1.0 / n_trials)
    b = norm.ppf(1.0 - 1.0 / (n_trials * math.e))
    return float(math.sqrt(sr_variance) * ((1.0 - EULER_GAMMA) * a + EULER_GAMMA * b))


def deflated_sharpe_ratio(returns: np.ndarray, n_trials: int, sr_variance: float | None = None) -> float:
    """DSR: the PSR against the Sharpe ratio the best of `n_trials` skill-less trials would reach by luck.

    `sr_variance` is the variance of the per-period Sharpe estimates across trials; by default the
    variance of one Sharpe estimate when the true value is 0, 1/(T−1) — i.e. every trial is assumed to
    be noise measured on as many periods as this sample. A DSR below 0.95 means the result is
    indistinguishable from the luck of the search."""
    r = np.asarray(returns, dtype=np.float64)
    if r.size < 3:
        return 0.0
    variance = 1.0 / (r.size - 1) if sr_variance is None else sr_variance
    return probabilistic_sharpe_ratio(r, expected_max_sharpe(n_trials, variance))


@dataclass(frozen=True)
class Trades:
    """A strategy's closed-trade P&Ls (quote currency) and traded notional (both sides, quote)."""

    pnls: np.ndarray
    notional: float

    @staticmethod
    def none() -> Trades:
        return Trades(np.empty(0), 0.0)


def trading_metrics(equity: np.ndarray, trades: Trades, periods_per_year: float, n_trials: int,
                    prefix: str) -> dict[str, float]:
    """Every holdout number of one strategy, from its per-candle equity curve and closed trades. PSR and
    DSR use per-candle returns; DSR corrects for `n_trials` configurations tried (1 for a baseline)."""
    eq = np.asarray(equity, dtype=np.float64)
    r = period_returns(eq)
    return {
        f"{prefix}_net_return": total_return(eq),
        f"{prefix}_sharpe": sharpe(r, periods_per_year),
        f"{prefix}_sortino": sortino(r, periods_per_year),
        f"{prefix}_max_drawdown": max_drawdown(eq),
        f"{prefix}_hit_rate": hit_rate(trades.pnls),
        f"{prefix}_profit_factor": profit_factor(trades.pnls),
        f"{prefix}_n_trades": float(trades.pnls.size),
        f"{prefix}_turnover": turnover(trades.notional, eq),
        f"{prefix}_psr": probabilistic_sharpe_ratio(r),
        f"{prefix}_dsr": deflated_sharpe_ratio(r, max(n_trials, 1)),
    }


# ---- baselines (pure, vectorised, same fees) ------------------------------------------------------

def buy_and_hold_equity(closes: np.ndarray, cash: float, taker_fee: float) -> tuple[np.ndarray, Trades]:
    """Equal-weight buy at the first close of each column (pair) and sell at the last, taker fee both
    ways; `closes` is (candles × pairs) on a common clock. The exit fee is marked on the last candle only."""
    c = np.asarray(closes, dtype=np.float64)
    if c.ndim != 2 or c.shape[0] < 2:
        raise ValueError(f"buy-and-hold baseline needs ≥ 2 candles × ≥ 1 pair of closes (got shape {c.shape})")
    invested = cash / c.shape[1] * (1.0 - taker_fee)
    qty = invested / c[0]
    equity = (c * qty).sum(axis=1)
    equity[0] = cash  # before buying: the entry fee shows in the first period's return
    equity[-1] *= 1.0 - taker_fee
    pnls = qty * c[-1] * (1.0 - taker_fee) - cash / c.shape[1]
    notional = float(cash + (qty * c[-1]).sum())
    return equity, Trades(pnls, notional)


def flat_equity(n_periods: int, cash: float) -> tuple[np.ndarray, Trades]:
    """Never trading: equity stays at the starting cash."""
    return np.full(n_periods, float(cash)), Trades.none()


def momentum_probability(closes: np.ndarray, lookback: int) -> np.ndarray:
    """The naive momentum rule as a 'probability' the trader engine can act on: 1 when the close is above
    its value `lookback` candles ago, 0 when not, NaN before enough history."""
    c = np.asarray(closes, dtype=np.float64)
    prob = np.full(c.size, np.nan)
    if c.size > lookback:
        prob[lookback:] = (c[lookback:] > c[:-lookback]).astype(np.float64)
    return prob


def verdict(metrics: dict[str, float], model: str = "holdout") -> str:
    """One honest sentence: does the model beat every baseline on net return, and is its Sharpe more than
    the luck of the search (DSR ≥ 0.95)?"""
    mine = metrics[f"{model}_net_return"]
    rivals = {name: metrics[f"baseline_{name}_net_return"] for name in ("buy_and_hold", "flat", "momentum")
              if f"baseline_{name}_net_return" in metrics}
    lost_to = [f"{n} ({v:+.2%})" for n, v in rivals.items() if v >= mine]
    head = (f"the model ({mine:+.2%}) LOSES to " + ", ".join(lost_to) if lost_to
            else f"the model ({mine:+.2%}) beats every baseline")
    dsr = metrics.get(f"{model}_dsr", 0.0)
    skill = "its Sharpe is unlikely to be luck" if dsr >= 0.95 else "its Sharpe is not distinguishable from luck"
    return f"{head} on the holdout; DSR {dsr:.2f}: {skill}."
