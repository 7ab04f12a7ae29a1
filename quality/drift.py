"""Drift: an Evidently report compares the champion's training window (reference) with the newest
candles (current) on the model's inputs and its prediction. The verdict is a pure function of the
report's numbers, so it is tested without Evidently; Evidently is imported lazily (≈ 8 s)."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from core.params import DriftParams


@dataclass(frozen=True)
class DriftDecision:
    drifted: bool
    share: float                        # fraction of checked columns that drifted
    n_reference: int
    n_current: int
    reason: str
    columns: dict[str, bool] = field(default_factory=dict)


def drift_decision(column_drift: Mapping[str, bool], n_reference: int, n_current: int,
                   rules: DriftParams) -> DriftDecision:
    """Pure: retrain when the drifted share reaches the threshold, given enough rows on both sides."""
    share = sum(column_drift.values()) / len(column_drift) if column_drift else 0.0
    if min(n_reference, n_current) < rules.min_rows:
        return DriftDecision(False, share, n_reference, n_current,
                             f"not enough rows for a verdict ({n_reference} reference, {n_current} current, "
                             f"need {rules.min_rows})", dict(column_drift))
    drifted = [c for c, d in column_drift.items() if d]
    if share >= rules.share_threshold:
        return DriftDecision(True, share, n_reference, n_current,
                             f"{len(drifted)}/{len(column_drift)} columns drifted ({share:.0%} ≥ "
                             f"{rules.share_threshold:.0%}): {', '.join(drifted)}", dict(column_drift))
    return DriftDecision(False, share, n_reference, n_current,
                         f"{len(drifted)}/{len(column_drift)} columns drifted ({share:.0%} < "
                         f"{rules.share_threshold:.0%})", dict(column_drift))


_VALUE_DRIFT = re.compile(r"ValueDrift\(column=(?P<col>[^,]+),.*threshold=(?P<thr>[0-9.eE+-]+)\)")


def column_drift_from_report(metrics: Sequence[Mapping[str, object]]) -> dict[str, bool]:
    """Evidently's ValueDrift metrics → {column: drifted}. Distance methods drift at value ≥ threshold."""
    out = {}
    for metric in metrics:
        match = _VALUE_DRIFT.match(str(metric.get("metric_name", "")))
        if match:
            out[match["col"]] = float(metric["value"]) >= float(match["thr"])  # type: ignore[arg-type]
    return out


def run_drift_report(reference: pd.DataFrame, current: pd.DataFrame, columns: Sequence[str], rules: DriftParams,
                     html_path: Path) -> DriftDecision:
    os.environ.setdefault("DO_NOT_TRACK", "true")
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    definition = DataDefinition(numerical_columns=list(columns))
    snapshot = Report([DataDriftPreset(columns=list(columns))]).run(
        current_data=Dataset.from_pandas(current[list(columns)], data_definition=definition),
        reference_data=Dataset.from_pandas(reference[list(columns)], data_definition=definition),
    )
    html_path.parent.mkdir(parents=True, exist_ok=True)
    snapshot.save_html(str(html_path))
    flags = column_drift_from_report(snapshot.dict()["metrics"])
    return drift_decision(flags, len(reference), len(current), rules)
