"""`krakenflow ingest` and `krakenflow import`: the candle store's two doors, with Rich progress bars.

Both call the same jobs as the ingest flow (pipeline.ingest) behind the same quality
gate (pipeline.candles.store_gate); errors are printed as one clear line and exit with status 2.
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


def run_ingest(console: Console, params: Any, paths: Any, pairs: list[str], timeframes: list[str],
               since: str | None, url: str | None) -> list[Any]:
    from core.settings import Settings
    from market.backfill import parse_since
    from market.errors import ExchangeError
    from market.frame import CandleDataError
    from market.kraken import public_client
    from pipeline.candles import candle_store
    from pipeline.ingest import expected_candles, ingest_pair_job
    from quality.expectations import DataQualityError

    url = url or Settings().kraken_url
    run_id = "ingest-" + time.strftime("%Y%m%dT%H%M%S")
    reports = []
    try:
        client = public_client(url)
        since_ms = parse_since(since)
        for pair in pairs or list(params.pairs):
            for tf in timeframes or list(params.ingest.timeframes):
                with _progress(console) as bar:
                    task = bar.add_task(f"{pair} {tf} ← {url}",
                                        total=expected_candles(params, paths, client, pair, tf, since_ms))

                    def advance(_what: str, n: int, bar: Progress = bar, task: Any = task) -> None:
                        bar.advance(task, n)

                    reports.append(ingest_pair_job(params, paths, client, pair, tf, since_ms, advance, run_id))
    except (ExchangeError, CandleDataError, DataQualityError, ValueError) as err:
        _fail(console, err)
    _print_ingest(console, reports, candle_store(params, paths))
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
    from market.frame import CandleDataError
    from pipeline.candles import candle_store
    from pipeline.ingest import import_history
    from quality.expectations import DataQualityError

    with _progress(console) as bar:
        tasks: list[Any] = []

        def started(name: str, tf: str, rows: int) -> None:
            tasks.append(bar.add_task(f"{file.name} → {name} {tf}", total=rows))

        try:
            done = import_history(params, paths, file, pair, timeframe, lambda n: bar.advance(tasks[-1], n), started)
        except (CandleDataError, DataQualityError, ValueError, OSError) as err:
            bar.stop()
            _fail(console, err)
    for line in done.imported.repairs:
        console.print(f"repair: {line}")
    report, folder = done.report, candle_store(params, paths).series_dir(done.pair, done.timeframe)
    console.print(f"imported {file} ({done.imported.format}) as {done.pair} {done.timeframe}: {report.added} added, "
                  f"{report.unchanged} already stored, {report.conflicts_kept} differing from stored (kept), "
                  f"{len(report.files_written)} month file(s) written under {folder}")
    console.print(f"store now holds {done.stored_candles} candles, {done.gaps} gap(s)"
                  + (f"; largest: {done.largest_gap}" if done.gaps else ""))
    return report
