"""The Great Expectations (1.x) suite for candle frames, built once per process and reused.

GX checks columns, so row-to-row rules are turned into *derived columns* first (pure pandas, one
vectorised pass) and then validated with built-in expectations:

- `gap_candles`     — time since the previous row in candles (float; 1.0 on a complete grid)
- `grid_offset_s`   — seconds between the candle open time and the timeframe grid (0 on the grid)
- `abs_log_return`  — |ln(close / previous close)|, the size of a single-candle jump
- `seconds_ahead`   — candle open time minus "now" in seconds (> 0 means from the future)

The grid is anchored on the UTC epoch for timeframes that divide a day (Kraken and Binance label
candles by open time on those multiples), and on the first candle for longer ones (1w, 15d), whose
anchor is the exchange's choice. A file whose first candle is off that grid (e.g. a rolling
download window resampled to 1h) is rejected, not shifted: see quality/repairs.py.

The GX context is ephemeral (in memory) and created lazily: importing GX costs ~3 s, building a
suite ~0.1 s, validating 60k candles ~0.1 s. Data Docs are only written for a failing batch.
"""

from __future__ import annotations

import shutil
import sys
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.params import QualityParams
from core.timeframe import to_timedelta
from market.frame import CANDLE_COLUMNS, PRICE_COLUMNS
from quality.data_docs import make_offline

OPTIONAL_COLUMNS = ("trades",)
DERIVED_COLUMNS = ("gap_candles", "grid_offset_s", "abs_log_return", "seconds_ahead")
_FINITE_MAX = sys.float_info.max  # "≤ the largest float" is how a Between expectation rejects +inf
_LOCK = threading.Lock()  # GX contexts are not thread-safe; Prefect may run tasks in threads


@dataclass(frozen=True)
class Rule:
    """One expectation of the suite, with the sentence a user reads when it fails."""

    meaning: str
    config: Any  # a great_expectations Expectation instance


def _anchor(dates: pd.Series, step: pd.Timedelta) -> pd.Timestamp:
    """Grid anchor: the UTC epoch when the step divides a day, else the first candle (see module doc)."""
    if pd.Timedelta(days=1) % step == pd.Timedelta(0) or dates.empty:
        return pd.Timestamp(0, tz="UTC")
    return dates.iloc[0]


def _numeric(frame: pd.DataFrame, column: str) -> np.ndarray:
    """A column as float64 (NaN where absent or not a number); the dtype rule reports the cause."""
    if column not in frame:
        return np.full(len(frame), np.nan)
    return pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype="float64")


def _dates(frame: pd.DataFrame) -> pd.Series:
    """Open times as UTC (naive values read as UTC, unparseable as NaT); the tz rule reports naive ones."""
    if "date" not in frame:
        return pd.Series(pd.NaT, index=frame.index, dtype="datetime64[ns, UTC]")
    return pd.to_datetime(frame["date"], utc=True, errors="coerce")


def _gaps_in_candles(epoch_s: np.ndarray, step_s: float) -> np.ndarray:
    """Candles since the previous row (NaN for the first). A lone candle has no predecessor, so no gap and
    no step to judge: it counts as one step (a wrong timeframe needs two candles to show; e.g. the newest
    candle of a new series must still pass the gate)."""
    if len(epoch_s) == 1:
        return np.ones(1)
    return np.concatenate([[np.nan], np.diff(epoch_s) / step_s]) if len(epoch_s) else np.empty(0)


def derived_columns(frame: pd.DataFrame, timeframe: str, now: pd.Timestamp) -> pd.DataFrame:
    """The frame plus the derived columns GX validates (pure; the input is not modified)."""
    step = to_timedelta(timeframe)
    dates = _dates(frame)
    step_s = step.total_seconds()
    epoch_s = (dates - pd.Timestamp(0, tz="UTC")).dt.total_seconds().to_numpy()
    anchor_s = (_anchor(dates.dropna(), step) - pd.Timestamp(0, tz="UTC")).total_seconds()
    close = _numeric(frame, "close")
    with np.errstate(divide="ignore", invalid="ignore"):
        log_close = np.where(close > 0, np.log(np.where(close > 0, close, 1.0)), np.nan)
    out = frame.copy(deep=False)
    if "trades" not in out:
        out["trades"] = np.nan  # optional column: present-but-empty keeps the schema rule exact
    out["gap_candles"] = _gaps_in_candles(epoch_s, step_s)
    out["grid_offset_s"] = np.mod(epoch_s - anchor_s, step_s)
    out["abs_log_return"] = np.abs(np.concatenate([[np.nan], np.diff(log_close)])) if len(out) else []
    out["seconds_ahead"] = epoch_s - (now - pd.Timestamp(0, tz="UTC")).total_seconds()
    return out


def candle_rules(rules: QualityParams) -> list[Rule]:
    """The candle suite as (meaning, expectation) pairs; every threshold comes from params.yaml."""
    import great_expectations.expectations as gxe

    price_rules = [r for col in PRICE_COLUMNS for r in (
        Rule(f"{col} is float64", gxe.ExpectColumnValuesToBeInTypeList(column=col, type_list=["float64"])),
        Rule(f"{col} is present (not NaN)", gxe.ExpectColumnValuesToNotBeNull(column=col)),
        Rule(f"{col} is finite and > 0", gxe.ExpectColumnValuesToBeBetween(
            column=col, min_value=0, strict_min=True, max_value=_FINITE_MAX)),
    )]
    pairs = [("high", "open"), ("high", "close"), ("open", "low"), ("close", "low")]
    return [
        Rule("at least one candle", gxe.ExpectTableRowCountToBeBetween(min_value=1)),
        Rule("columns are exactly date, open, high, low, close, volume [, trades]",
             gxe.ExpectTableColumnsToMatchSet(column_set=[*CANDLE_COLUMNS, *OPTIONAL_COLUMNS, *DERIVED_COLUMNS],
                                              exact_match=True)),
        Rule("date is a timezone-aware timestamp (UTC)", gxe.ExpectColumnValuesToBeOfType(column="date",
                                                                                           type_="Timestamp")),
        Rule("date is present", gxe.ExpectColumnValuesToNotBeNull(column="date")),
        Rule("dates are unique", gxe.ExpectColumnValuesToBeUnique(column="date")),
        Rule("dates strictly increase", gxe.ExpectColumnValuesToBeIncreasing(column="date", strictly=True)),
        Rule("candles sit on the timeframe grid", gxe.ExpectColumnValuesToBeBetween(
            column="grid_offset_s", min_value=0, max_value=0)),
        Rule("the typical step is one candle (right timeframe)", gxe.ExpectColumnMedianToBeBetween(
            column="gap_candles", min_value=1, max_value=1)),
        Rule(f"no gap longer than {rules.max_gap_candles} candles", gxe.ExpectColumnValuesToBeBetween(
            column="gap_candles", max_value=rules.max_gap_candles)),
        Rule("no candle from the future", gxe.ExpectColumnValuesToBeBetween(column="seconds_ahead", max_value=0)),
        *price_rules,
        *[Rule(f"{a} ≥ {b}", gxe.ExpectColumnPairValuesAToBeGreaterThanB(column_A=a, column_B=b, or_equal=True))
          for a, b in pairs],
        Rule("volume is float64", gxe.ExpectColumnValuesToBeInTypeList(column="volume", type_list=["float64"])),
        Rule("volume is present (not NaN)", gxe.ExpectColumnValuesToNotBeNull(column="volume")),
        Rule("volume is finite and ≥ 0", gxe.ExpectColumnValuesToBeBetween(
            column="volume", min_value=0, max_value=_FINITE_MAX)),
        Rule(f"at most {rules.max_zero_volume_share:.1%} zero-volume candles", gxe.ExpectColumnValuesToBeBetween(
            column="volume", min_value=0, strict_min=True, mostly=1 - rules.max_zero_volume_share)),
        Rule(f"no single-candle |log return| above {rules.max_abs_log_return}", gxe.ExpectColumnValuesToBeBetween(
            column="abs_log_return", max_value=rules.max_abs_log_return)),
        Rule("no traded candle repeats another's OHLCV under a different time (mislabelled rows)",
             gxe.ExpectCompoundColumnsToBeUnique(column_list=["open", "high", "low", "close", "volume"],
                                                 row_condition="volume > 0", condition_parser="pandas")),
    ]


@dataclass
class CandleSuite:
    """A GX suite + validation definition on the process-wide ephemeral context."""

    context: Any
    validation: Any
    rules: list[Rule]

    def meaning(self, index: int) -> str:
        return self.rules[index].meaning


@lru_cache(maxsize=1)
def _context() -> Any:
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    context.data_sources.add_pandas("candles").add_dataframe_asset("frame").add_batch_definition_whole_dataframe(
        "whole")
    return context


@lru_cache(maxsize=16)
def candle_suite(rules: QualityParams) -> CandleSuite:
    """Build (once per distinct thresholds) the suite and its validation definition."""
    import great_expectations as gx

    context = _context()
    name = f"candles-{abs(hash(rules.model_dump_json())):x}"
    suite = context.suites.add(gx.ExpectationSuite(name=name))
    listed = candle_rules(rules)
    for rule in listed:
        suite.add_expectation(rule.config)
    batch = context.data_sources.get("candles").get_asset("frame").get_batch_definition("whole")
    validation = context.validation_definitions.add(gx.ValidationDefinition(name=name, data=batch, suite=suite))
    return CandleSuite(context, validation, listed)


def run_suite(frame: pd.DataFrame, rules: QualityParams, timeframe: str, now: pd.Timestamp) -> tuple[Any, Any]:
    """Validate one frame; returns (GX ExpectationSuiteValidationResult, derived frame)."""
    suite = candle_suite(rules)
    checked = derived_columns(frame, timeframe, now)
    with _LOCK:
        result = suite.validation.run(batch_parameters={"dataframe": checked}, result_format="SUMMARY")
    return result, checked


_DECORATIONS = ("static/fonts", "static/images/glossary_scroller.gif", "static/images/iterative-dev-loop.png",
                "static/images/validation_failed_unexpected_values.gif")


def _drop_decorations(site: Path) -> None:
    """GX copies ~4 MB of fonts and animated GIFs into every site; a quarantine keeps ~0.2 MB."""
    for rel in _DECORATIONS:
        path = site / rel
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def write_data_docs(checked: pd.DataFrame, rules: QualityParams, target: Path) -> Path:
    """Re-run the suite through a checkpoint whose UpdateDataDocsAction renders a Data Docs site
    into `target` (only for failing batches), rewritten to open offline; returns the site's index.html."""
    import great_expectations as gx

    suite = candle_suite(rules)
    site = f"q-{abs(hash(str(target))):x}"
    config = {"class_name": "SiteBuilder", "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
              "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(target)}}
    with _LOCK:
        context = suite.context
        context.add_data_docs_site(site, config)
        checkpoint = context.checkpoints.add(gx.Checkpoint(
            name=site, validation_definitions=[suite.validation], result_format="SUMMARY",
            actions=[gx.checkpoint.UpdateDataDocsAction(name="data-docs", site_names=[site])]))
        try:
            checkpoint.run(batch_parameters={"dataframe": checked})
        finally:
            context.checkpoints.delete(site)
            context.delete_data_docs_site(site)
    _drop_decorations(target)
    make_offline(target)  # GX's pages load their scripts and styles from CDNs: bundle or drop them
    return target / "index.html"
