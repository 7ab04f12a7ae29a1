"""Out-of-sample classification metrics. Trading metrics come from the trader's own engine
(trader.backtest) and are merged by the evaluate stage; this module never imports the trader."""

from __future__ import annotations

import numpy as np


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
