"""Candle quality gate. Rules are computed over the frame; a failing batch is quarantined with the
result, and the store is never touched.

(Great Expectations suite: issue D extends this module; the public names here are the contract.)
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.params import QualityParams
from market.frame import timeframe_to_timedelta


@dataclass(frozen=True)
class FailedExpectation:
    expectation: str
    column: str
    unexpected_count: int
    examples: tuple[str, ...] = ()


@dataclass(frozen=True)
class CandleValidation:
    success: bool
    rows: int
    checked: int
    failures: tuple[FailedExpectation, ...] = ()
    gx_result: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> str:
        if self.success:
            return f"{self.rows} candles passed {self.checked} expectations"
        return "; ".join(f"{f.expectation} on {f.column}: {f.unexpected_count} of {self.rows} rows"
                         for f in self.failures)


class DataQualityError(ValueError):
    """A batch failed the gate; the message names the failed expectations and row counts."""


def _examples(frame: pd.DataFrame, mask: np.ndarray) -> tuple[str, ...]:
    return tuple(str(d) for d in frame["date"].to_numpy()[mask][:3])


def _rules(
    frame: pd.DataFrame, rules: QualityParams, timeframe: str, now: pd.Timestamp
) -> list[tuple[str, str, np.ndarray]]:
    step = timeframe_to_timedelta(timeframe)
    dates = frame["date"]
    gaps = dates.diff().to_numpy()[1:] / step.to_timedelta64()
    logret = np.abs(np.diff(np.log(frame["close"].to_numpy())))
    zero_vol = (frame["volume"] == 0).to_numpy()
    too_many_zero = zero_vol if zero_vol.mean() > rules.max_zero_volume_share else np.zeros(len(frame), bool)
    return [
        ("expect_column_values_to_be_on_timeframe_grid", "date",
         ((dates - dates.iloc[0]) % step != pd.Timedelta(0)).to_numpy()),
        ("expect_column_values_to_be_increasing", "date", np.concatenate([[False], gaps <= 0])),
        ("expect_gap_length_at_most", "date", np.concatenate([[False], gaps > rules.max_gap_candles])),
        ("expect_column_values_to_not_be_in_future", "date", (dates > now).to_numpy()),
        ("expect_abs_log_return_at_most", "close", np.concatenate([[False], logret > rules.max_abs_log_return])),
        ("expect_zero_volume_share_at_most", "volume", too_many_zero),
    ]


def validate_candles(frame: pd.DataFrame, rules: QualityParams, timeframe: str, name: str,
                     now: pd.Timestamp | None = None) -> CandleValidation:
    now = now or pd.Timestamp.now(tz="UTC")
    checks = _rules(frame, rules, timeframe, now)
    failures = tuple(FailedExpectation(exp, col, int(mask.sum()), _examples(frame, mask))
                     for exp, col, mask in checks if mask.any())
    result = {"name": name, "success": not failures, "rows": len(frame),
              "results": [{"expectation": e, "column": c, "unexpected_count": int(m.sum())} for e, c, m in checks]}
    return CandleValidation(not failures, len(frame), len(checks), failures, result)


def gate(frame: pd.DataFrame, rules: QualityParams, timeframe: str, name: str, quarantine_root: Path,
         run_id: str) -> CandleValidation:
    """Validate; on failure write the batch + result to quarantine_root/run_id/name/ and raise."""
    result = validate_candles(frame, rules, timeframe, name)
    if result.success:
        return result
    target = quarantine_root / run_id / name
    target.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(target / "batch.parquet", index=False)
    (target / "validation.json").write_text(json.dumps(result.gx_result, indent=2, default=str))
    raise DataQualityError(f"{name}: quality gate failed ({result.summary()}); batch quarantined in {target}")
