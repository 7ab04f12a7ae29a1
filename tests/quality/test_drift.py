"""Drift verdicts: the pure rule exhaustively, Evidently once on real features."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from core.params import load_params
from features.spec import spec_from_params
from quality.drift import column_drift_from_report, drift_decision, run_drift_report

RULES = load_params().drift  # share_threshold 0.5, min_rows 200


def test_share_at_threshold_is_drift_below_is_not() -> None:
    assert drift_decision({"a": True, "b": False}, 1000, 1000, RULES).drifted
    d = drift_decision({"a": True, "b": False, "c": False}, 1000, 1000, RULES)
    assert not d.drifted and d.share == pytest.approx(1 / 3) and "1/3 columns drifted" in d.reason


def test_too_few_rows_gives_no_verdict() -> None:
    d = drift_decision({"a": True}, 1000, 50, RULES)
    assert not d.drifted and "not enough rows" in d.reason


def test_no_columns_means_no_drift() -> None:
    assert not drift_decision({}, 1000, 1000, RULES).drifted


def test_report_metrics_are_read_per_column() -> None:
    metrics = [
        {"metric_name": "DriftedColumnsCount(drift_share=0.5)", "value": {"count": 1.0, "share": 0.5}},
        {"metric_name": "ValueDrift(column=rsi_14,method=Wasserstein distance (normed),threshold=0.1)", "value": 0.31},
        {"metric_name": "ValueDrift(column=prediction,method=Wasserstein distance (normed),threshold=0.1)",
         "value": 0.02},
    ]
    assert column_drift_from_report(metrics) == {"rsi_14": True, "prediction": False}


@pytest.mark.slow
def test_evidently_on_real_features_same_window_vs_another_regime(xrp_1h: pd.DataFrame, doge_1h: pd.DataFrame,
                                                                  tmp_path: Path) -> None:
    spec = spec_from_params(load_params().features)
    names = list(spec.names)
    xrp = pd.DataFrame(spec.batch(xrp_1h), columns=names).iloc[spec.warmup :].dropna()
    doge = pd.DataFrame(spec.batch(doge_1h), columns=names).iloc[spec.warmup :].dropna()
    same = run_drift_report(xrp.iloc[:4000], xrp.iloc[:4000], names, RULES, tmp_path / "same.html")
    assert not same.drifted and same.share == 0.0
    other = run_drift_report(xrp.iloc[:4000], doge.iloc[-2000:] * 3.0, names, RULES, tmp_path / "other.html")
    assert other.drifted and other.share >= 0.5
    assert (tmp_path / "other.html").stat().st_size > 10_000
