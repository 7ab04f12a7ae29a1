"""`krakenflow validate FILE`: the same import, repair rules and GX suite as the prepare stage, on
any candle file, without touching the store. The timeframe is inferred from the candle spacing as
`krakenflow import` does, unless one is given. Quarantine output is optional (the CLI's --quarantine)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from core.params import QualityParams
from market.frame import check_candle_frame
from market.history import import_file, infer_timeframe
from quality.expectations import CandleValidation, quarantine, validate_candles
from quality.repairs import apply_repairs


@dataclass(frozen=True)
class FileCheck:
    path: Path
    format: str
    timeframe: str                 # the one given, else inferred from the candle spacing
    repairs: tuple[str, ...]
    warnings: tuple[str, ...]
    validation: CandleValidation
    seconds: float                 # wall time of the GX validation alone (s)
    data_docs: Path | None = None  # set when a failing batch was quarantined


def check_file(path: Path, rules: QualityParams, timeframe: str | None = None, quarantine_dir: Path | None = None,
               now: pd.Timestamp | None = None) -> FileCheck:
    """Raises CandleDataError for a file that cannot be read as candles; otherwise returns the verdict.
    `timeframe` None: inferred from the candle spacing, as `krakenflow import` does."""
    imported = import_file(path, timeframe)  # a Kraken trades file is aggregated into `timeframe` candles
    timeframe = timeframe or infer_timeframe(imported.frame, str(path))
    repaired = apply_repairs(imported.frame, timeframe, str(path))
    frame = check_candle_frame(repaired.frame, str(path))
    started = time.perf_counter()
    result = validate_candles(frame, rules, timeframe, path.stem, now=now)
    seconds = time.perf_counter() - started
    docs = None
    if not result.success and quarantine_dir is not None:
        docs = quarantine(frame, result, rules, timeframe, quarantine_dir / path.stem, now)
    return FileCheck(path, imported.format, timeframe, (*imported.repairs, *repaired.repairs),
                     (*imported.warnings, *repaired.warnings), result, seconds, docs)
