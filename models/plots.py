"""PNG plots a registered model is judged by: holdout equity vs baselines, feature importance (gain),
calibration (reliability). Matplotlib's object API (no pyplot): no global state, no display needed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from core.files import write_atomic


def _save(fig: Figure, path: Path) -> Path:
    """Write atomically (tmp + rename) so a half-written PNG never reaches DVC or MLflow."""
    return write_atomic(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight",
                                                      metadata={"Software": None}))


def equity_plot(curves: Mapping[str, tuple[np.ndarray, np.ndarray]], path: Path, title: str) -> Path:
    """Equity (quote currency) of the model and each baseline, each as (dates, equity), over the holdout."""
    fig = Figure(figsize=(9, 4.5))
    ax = fig.subplots()
    for name, (dates, equity) in curves.items():
        ax.plot(dates, equity, label=name, linewidth=1.6 if name == "model" else 1.0)
    ax.set(title=title, ylabel="equity (USD)")
    ax.grid(alpha=0.3)
    ax.legend(loc="best")
    fig.autofmt_xdate()
    return _save(fig, path)


def importance_plot(names: Sequence[str], gain: np.ndarray, path: Path) -> Path:
    """Total split gain per feature, largest first, as a share of all gain."""
    g = np.asarray(gain, dtype=np.float64)
    share = g / g.sum() if g.sum() > 0 else g
    order = np.argsort(share)
    fig = Figure(figsize=(7, 0.35 * len(names) + 1.2))
    ax = fig.subplots()
    ax.barh([names[i] for i in order], share[order])
    ax.set(title="feature importance (gain)", xlabel="share of total split gain")
    return _save(fig, path)


def calibration_table(y_true: np.ndarray, prob: np.ndarray, bins: int = 10) -> tuple[np.ndarray, ...]:
    """(mean predicted, observed frequency, rows) per equal-width probability bin; empty bins dropped."""
    p = np.asarray(prob, dtype=np.float64)
    y = np.asarray(y_true, dtype=np.float64)
    which = np.clip((p * bins).astype(int), 0, bins - 1)
    rows = np.bincount(which, minlength=bins)
    keep = rows > 0
    mean_p = np.bincount(which, weights=p, minlength=bins)[keep] / rows[keep]
    freq = np.bincount(which, weights=y, minlength=bins)[keep] / rows[keep]
    return mean_p, freq, rows[keep]


def calibration_plot(y_true: np.ndarray, prob: np.ndarray, path: Path, bins: int = 10) -> Path:
    """Reliability diagram on the holdout: a calibrated model sits on the diagonal."""
    mean_p, freq, rows = calibration_table(y_true, prob, bins)
    fig = Figure(figsize=(5.5, 5))
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfectly calibrated")
    ax.plot(mean_p, freq, marker="o", label="model")
    for x, f, n in zip(mean_p, freq, rows, strict=True):
        ax.annotate(str(int(n)), (x, f), textcoords="offset points", xytext=(4, -10), fontsize=7)
    ax.set(title="calibration on the holdout (rows per bin annotated)", xlabel="predicted probability",
           ylabel="observed frequency", xlim=(0, 1), ylim=(0, 1))
    ax.legend(loc="upper left")
    return _save(fig, path)
