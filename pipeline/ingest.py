"""Jobs `ingest` and `import`: the candle store's two doors, both behind the quality gate.

`ingest_pair_job` takes one pair/timeframe from Kraken (OHLC window + Trades backfill of older gaps);
`import_history` takes a history file (the pair from its symbol column when it has one). A refused batch
leaves the store as it was. The CLI adds progress bars, the ingest flow retries and caching."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from core.params import Params
from core.timeframe import to_ms
from market.backfill import IngestReport, Progress, ingest_pair
from market.frame import CandleDataError
from market.history import ImportResult, import_file, infer_timeframe
from market.kraken import KrakenClient
from market.store import UpsertReport, pair_slug
from pipeline.candles import candle_store, store_gate
from pipeline.paths import DataPaths


def expected_candles(params: Params, paths: DataPaths, client: KrakenClient, pair: str, timeframe: str,
                     since_ms: int | None) -> int:
    """Candles from the oldest one wanted (since, else the newest stored) to the exchange's now."""
    newest = candle_store(params, paths).last_date(pair, timeframe)
    start = since_ms if since_ms is not None else (newest.value // 1_000_000 if newest is not None else None)
    if start is None:
        return 720
    return max(1, (client.server_time_ms() - start) // to_ms(timeframe))


def ingest_pair_job(params: Params, paths: DataPaths, client: KrakenClient, pair: str, timeframe: str,
                    since_ms: int | None = None, progress: Progress | None = None,
                    run_id: str | None = None) -> IngestReport:
    run_id = run_id or "ingest-" + time.strftime("%Y%m%dT%H%M%S")
    return ingest_pair(client, candle_store(params, paths), pair, timeframe, params.ingest, since_ms=since_ms,
                       validate=store_gate(params, timeframe, f"{pair_slug(pair)}-{timeframe}", paths, run_id),
                       progress=progress)


@dataclass(frozen=True)
class ImportOutcome:
    imported: ImportResult
    pair: str
    timeframe: str
    report: UpsertReport
    stored_candles: int
    gaps: int
    largest_gap: str


def import_history(params: Params, paths: DataPaths, file: Path, pair: str | None, timeframe: str | None,
                   progress: Callable[[int], None] | None = None,
                   started: Callable[[str, str, int], None] | None = None) -> ImportOutcome:
    """The pair comes from the file's symbol column when it has one (`pair` then only confirms it: a
    mismatch is refused), else from `pair`; `started(pair, timeframe, rows)` is told before the write."""
    store = candle_store(params, paths)
    imported = import_file(file, timeframe, pair)
    if imported.pair is None:
        raise CandleDataError(f"{file}: no symbol column names the pair; pass --pair (e.g. --pair XRP/USD)")
    name: str = imported.pair
    tf = timeframe or infer_timeframe(imported.frame, str(file))
    if started is not None:
        started(name, tf, len(imported.frame))
    run_id = "import-" + time.strftime("%Y%m%dT%H%M%S")
    report = store.upsert(name, tf, imported.frame, str(file), "keep",
                          store_gate(params, tf, f"{pair_slug(name)}-{tf}", paths, run_id), progress=progress)
    gaps = store.gap_report(name, tf)
    largest = str(max(gaps, key=lambda g: g.missing)) if gaps else ""
    return ImportOutcome(imported, name, tf, report, len(store.read(name, tf)), len(gaps), largest)
