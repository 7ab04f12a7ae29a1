"""Candle quality gate: a Great Expectations suite (quality/gx_suite.py) over every batch before it
reaches the store, training or the trader. A failing batch is quarantined in
`<quarantine>/<run_id>/<name>/` with the batch, the GX validation result (validation.json) and a
Data Docs site (data_docs/index.html); the store is never touched and DataQualityError names the
failed expectations and their row counts.

The public names here (validate_candles, gate, CandleValidation, FailedExpectation,
DataQualityError) are the contract used by pipeline/stages.py and the flows.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from core.params import QualityParams
from quality.gx_suite import CandleSuite, candle_suite, run_suite, write_data_docs

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FailedExpectation:
    expectation: str          # GX expectation type, e.g. expect_column_values_to_be_between
    column: str               # column (or columns) it ran on; "table" for table-level rules
    unexpected_count: int     # rows that broke it (all rows for a table-level rule)
    examples: tuple[str, ...] = ()   # a few offending candle times or observed values
    meaning: str = ""         # the rule in words, e.g. "no gap longer than 24 candles"


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
        return "; ".join(f"{f.expectation} on {f.column}{f' ({f.meaning})' if f.meaning else ''}: "
                         f"{f.unexpected_count} of {self.rows} rows"
                         + (f", e.g. {', '.join(f.examples)}" if f.examples else "")
                         for f in self.failures)


class DataQualityError(ValueError):
    """A batch failed the gate; the message names the failed expectations and row counts."""


def _column_of(kwargs: dict[str, Any]) -> str:
    if "column" in kwargs:
        return str(kwargs["column"])
    if "column_A" in kwargs:
        return f"{kwargs['column_A']},{kwargs['column_B']}"
    if "column_list" in kwargs:
        return ",".join(kwargs["column_list"])
    return "table"


def _examples(result: dict[str, Any], frame: pd.DataFrame) -> tuple[str, ...]:
    """Up to three offending candle times (or the observed value of an aggregate rule)."""
    index = result.get("partial_unexpected_index_list") or []
    if index and "date" in frame:
        return tuple(str(frame["date"].iloc[i]) for i in index[:3])
    if "details" in result:
        return (str(result["details"].get("mismatched", result["details"])),)
    if "observed_value" in result:
        return (f"observed {result['observed_value']}",)
    return ()


def _failure(res: Any, meaning: str, rows: int, frame: pd.DataFrame) -> FailedExpectation:
    config, result = res.expectation_config, dict(res.result or {})
    if res.exception_info and res.exception_info.get("raised_exception"):
        message = str(res.exception_info.get("exception_message", "")).splitlines()[0][:160]
        return FailedExpectation(config.type, _column_of(config.kwargs), rows, (f"could not be evaluated: {message}",),
                                 meaning)
    count = int(result.get("unexpected_count", rows) or 0) if "unexpected_count" in result else rows
    return FailedExpectation(config.type, _column_of(config.kwargs), count, _examples(result, frame), meaning)


def _meanings(suite: CandleSuite) -> dict[str, str]:
    """GX expectation id → our sentence (GX may reorder results, ids stay)."""
    return {str(rule.config.id): rule.meaning for rule in suite.rules if rule.config.id}


def validate_candles(frame: pd.DataFrame, rules: QualityParams, timeframe: str, name: str,
                     now: pd.Timestamp | None = None) -> CandleValidation:
    """Run the GX candle suite on one frame (no I/O). `now` bounds "no candle from the future"."""
    now = now or pd.Timestamp.now(tz="UTC")
    result, _ = run_suite(frame, rules, timeframe, now)
    meanings = _meanings(candle_suite(rules))
    failures = tuple(_failure(r, meanings.get(str(r.expectation_config.id), ""), len(frame), frame)
                     for r in result.results if not r.success)
    gx_json = {"name": name, "timeframe": timeframe, "now": str(now), **result.to_json_dict()}
    return CandleValidation(not failures, len(frame), len(result.results), failures, gx_json)


def quarantine(frame: pd.DataFrame, result: CandleValidation, rules: QualityParams, timeframe: str,
               target: Path, now: pd.Timestamp | None = None) -> Path:
    """Write the failing batch, its GX result and a Data Docs site into `target`; returns the docs index."""
    target.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(target / "batch.parquet", index=False)
    (target / "validation.json").write_text(json.dumps(result.gx_result, indent=2, default=str))
    _, checked = run_suite(frame, rules, timeframe, now or pd.Timestamp(str(result.gx_result["now"])))
    return write_data_docs(checked, rules, target / "data_docs")


def gate(frame: pd.DataFrame, rules: QualityParams, timeframe: str, name: str, quarantine_root: Path,
         run_id: str, now: pd.Timestamp | None = None) -> CandleValidation:
    """Validate; on failure write the batch + result + Data Docs to quarantine_root/run_id/name/ and raise."""
    result = validate_candles(frame, rules, timeframe, name, now=now)
    if result.success:
        log.info("%s: %s", name, result.summary())
        return result
    target = quarantine_root / run_id / name
    docs = quarantine(frame, result, rules, timeframe, target, now)
    raise DataQualityError(f"{name}: quality gate failed ({result.summary()}); batch quarantined in {target} "
                           f"(Data Docs: {docs})")
