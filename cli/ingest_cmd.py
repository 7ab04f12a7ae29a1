"""`krakenflow ingest` and `krakenflow import`: the candle store's two doors, with Rich progress bars.

Both run the same functions as the ingest flow (market.backfill, market.store) behind the same quality
gate (pipeline.stages.store_gate); errors are printed as one clear line and exit with status 2.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table


def _fail(console: Console, err: Exception) -> None:
    console.print(f"[red]error:[/red] {err}")
    raise typer.Exit(2) from None


def _progress(console: Console) -> Progress:
    return Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("candles"), TimeElapsedColumn(), console=console, transient=True)


def _expected_candles(store: Any, client: Any, pair: str, timeframe: str, since_ms: int | None) -> int | None:
    """Bar length: candles from the oldest one wanted (since, else the newest stored) to the exchange's now."""
    from market.backfill import timeframe_ms

    newest = store.last_date(pair, timeframe)
    start = since_ms if since_ms is not None else (newest.value // 1_000_000 if newest is not None else None)
    if start is None:
        return 720
    now_ms = client.server_time_ms()
    return max(1, (now_ms - start) // timeframe_ms(timeframe))


def run_ingest(console: Console, params: Any, paths: Any, pairs: list[str], timeframes: list[str],
               since: str | None, url: str | None) -> list[Any]:
    from core.settings import Settings
    from market.backfill import ingest_pair, parse_since
    from market.errors import ExchangeError
    from market.frame import CandleDataError
    from market.kraken import public_client
    from pipeline.stages import candle_store, store_gate
    from quality.expectations import DataQualityError

    url = url or Settings().kraken_url
    store = candle_store(params, paths)
    run_id = "ingest-" + time.strftime("%Y%m%dT%H%M%S")
    reports = []
    try:
        client = public_client(url)
        since_ms = parse_since(since)
        for pair in pairs or list(params.pairs):
            for tf in timeframes or list(params.ingest.timeframes):
                with _progress(console) as bar:
                    task = bar.add_task(f"{pair} {tf} ← {url}",
                                        total=_expected_candles(store, client, pair, tf, since_ms))

                    def advance(_what: str, n: int, bar: Progress = bar, task: Any = task) -> None:
                        bar.advance(task, n)

                    reports.append(ingest_pair(
                        client, store, pair, tf, params.ingest, since_ms=since_ms,
                        validate=store_gate(params, tf, f"{pair.replace('/', '-')}-{tf}", paths, run_id),
                        progress=advance))
    except (ExchangeError, CandleDataError, DataQualityError, ValueError) as err:
        _fail(console, err)
    _print_ingest(console, reports, store)
    return reports


def _print_ingest(console: Console, reports: list[Any], store: Any) -> None:
    table = Table(title=f"ingested into {store.root / store.exchange}")
    for col in ("pair", "tf", "added", "replaced", "from OHLC", "from Trades (pages)", "gaps before", "gaps open"):
        table.add_column(col)
    for r in reports:
        table.add_row(r.pair, r.timeframe, str(r.added), str(r.replaced), str(r.ohlc_candles),
                      f"{r.backfilled_candles} ({r.trade_pages})", str(len(r.gaps_before)), str(len(r.gaps_after)))
    console.print(table)
    for r in reports:
        for line in [*r.gaps_after[:3], *r.notes]:
            console.print(f"{r.pair} {r.timeframe}: {line}")


def run_import(console: Console, params: Any, paths: Any, file: Path, pair: str | None, timeframe: str | None) -> Any:
    """The pair comes from the file's symbol column when it has one (`pair` then only confirms it: a
    mismatch is refused), else from `pair`; a refused file leaves the store as it was."""
    from market.frame import CandleDataError
    from market.history import import_file, infer_timeframe
    from pipeline.stages import candle_store, store_gate
    from quality.expectations import DataQualityError

    store = candle_store(params, paths)
    try:
        imported = import_file(file, timeframe, pair)
        if imported.pair is None:
            raise CandleDataError(f"{file}: no symbol column names the pair; pass --pair (e.g. --pair XRP/USD)")
        pair_name: str = imported.pair
        tf = timeframe or infer_timeframe(imported.frame, str(file))
        run_id = "import-" + time.strftime("%Y%m%dT%H%M%S")
        with _progress(console) as bar:
            task = bar.add_task(f"{file.name} → {pair_name} {tf}", total=len(imported.frame))
            report = store.upsert(pair_name, tf, imported.frame, str(file), "keep",
                                  store_gate(params, tf, f"{pair_name.replace('/', '-')}-{tf}", paths, run_id),
                                  progress=lambda n: bar.advance(task, n))
    except (CandleDataError, DataQualityError, ValueError, OSError) as err:
        _fail(console, err)
    for line in imported.repairs:
        console.print(f"repair: {line}")
    console.print(f"imported {file} ({imported.format}) as {pair_name} {tf}: {report.added} added, "
                  f"{report.unchanged} already stored, {report.conflicts_kept} differing from stored (kept), "
                  f"{len(report.files_written)} month file(s) written under {store.series_dir(pair_name, tf)}")
    gaps = store.gap_report(pair_name, tf)
    console.print(f"store now holds {len(store.read(pair_name, tf))} candles, {len(gaps)} gap(s)"
                  + (f"; largest: {max(gaps, key=lambda g: g.missing)}" if gaps else ""))
    return report
