"""Market-data ingestion as a Prefect flow: per pair and timeframe, Kraken's OHLC window + Trades backfill
into the candle store, through the quality gate, with a markdown artifact of what changed.

Thin: the work is the job `pipeline.ingest.ingest_pair_job`. Tasks retry on exchange trouble (ingestion is
idempotent, so a retry can never store a candle twice) and are cached on their inputs, which include the
exchange's current candle: a second run inside the same candle asks Kraken nothing (no new candle can
have finished since the first).
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import timedelta
from typing import Any

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import INPUTS

from core.params import load_params
from core.settings import Settings
from core.timeframe import to_ms
from flows.alerts import HOOKS
from flows.project import BY_MODULE, data_paths, locate
from market.backfill import parse_since
from market.errors import ExchangeUnavailable, RateLimited
from market.kraken import public_client
from pipeline.ingest import ingest_pair_job

SCHEDULED_TIMEFRAMES = ("5m", "1h")
"""One deployment each, ingest-<timeframe>, on its params.yaml `schedules:` entry (by default 5-minute candles
every 5 minutes, hourly candles two minutes past each hour)."""


@task(name="exchange clock", retries=2, retry_delay_seconds=5)
def exchange_candle_task(kraken_url: str, timeframe: str) -> int:
    """Open time (epoch ms) of the exchange's current, unfinished candle (Kraken's Time): part of the
    ingest task's cache key, so the cache lasts until the next candle can have finished."""
    now_ms = public_client(kraken_url).server_time_ms()
    step = to_ms(timeframe)
    return now_ms // step * step


def _exchange_trouble(_task: Any, _run: Any, state: Any) -> bool:
    """Retry only what a retry can fix: network/5xx and rate limits, not bad data or a failed gate."""
    try:
        state.result()
    except (ExchangeUnavailable, RateLimited):
        return True
    except Exception:
        return False
    return False


@task(name="ingest pair/timeframe", retries=2, retry_delay_seconds=10, retry_condition_fn=_exchange_trouble,
      cache_policy=INPUTS,
      cache_expiration=timedelta(hours=2), persist_result=True,
      task_run_name="ingest {pair} {timeframe}")
def ingest_task(params_file: str, data_dir: str, home: str, kraken_url: str, pair: str, timeframe: str,
                since: str | None, exchange_candle_ms: int) -> dict[str, Any]:
    """`exchange_candle_ms` is only part of the cache key (see exchange_candle_task)."""
    params, paths = load_params(params_file), data_paths(data_dir, home)
    report = ingest_pair_job(params, paths, public_client(kraken_url), pair, timeframe, parse_since(since))
    return asdict(report)


def ingest_markdown(reports: list[dict[str, Any]], kraken_url: str) -> str:
    """The artifact: one row per pair/timeframe, then the gaps found and still open."""
    rows = "\n".join(
        f"| {r['pair']} | {r['timeframe']} | {r['added']} | {r['replaced']} | {r['ohlc_candles']} | "
        f"{r['backfilled_candles']} ({r['trade_pages']} pages) | {len(r['gaps_before'])} | {len(r['gaps_after'])} |"
        for r in reports)
    details = "".join(
        f"\n- {r['pair']} {r['timeframe']}: gaps before: {'; '.join(r['gaps_before'][:5]) or 'none'}; "
        f"still open: {'; '.join(r['gaps_after'][:5]) or 'none'}{''.join('; ' + n for n in r['notes'])}"
        for r in reports)
    return (f"# krakenflow ingest from {kraken_url}\n\n"
            "| pair | timeframe | rows added | replaced | from OHLC | rebuilt from Trades | gaps found | gaps open |\n"
            "|---|---|---:|---:|---:|---:|---:|---:|\n" + rows + "\n" + details + "\n")


@flow(name="krakenflow-ingest", log_prints=True, **HOOKS)
def ingest_flow(params_file: str | None = None, data_dir: str | None = None, pairs: list[str] | None = None,
                timeframes: list[str] | None = None, since: str | None = None,
                kraken_url: str | None = None, home: str | None = None) -> list[dict[str, Any]]:
    """Ingest Kraken candles (OHLC window + Trades backfill of gaps) into the candle store."""
    params_file, data_dir, home = locate(params_file, data_dir, home)
    params = load_params(params_file)
    url = kraken_url or Settings().kraken_url
    reports = []
    for pair in pairs or list(params.pairs):
        for timeframe in timeframes or list(params.ingest.timeframes):
            candle = exchange_candle_task(url, timeframe)
            report = ingest_task(params_file, data_dir, home, url, pair, timeframe, since, candle)
            print(f"{pair} {timeframe}: {report['added']} added, {report['backfilled_candles']} rebuilt from "
                  f"{report['trade_pages']} Trades pages, {len(report['gaps_after'])} gap(s) open")
            reports.append(report)
    create_markdown_artifact(ingest_markdown(reports, url), key="krakenflow-ingest",
                             description="candles added, gaps found and filled")
    return reports


def ingest_deployments(params_file: str | None = None, data_dir: str | None = None,
                       home: str | None = None) -> list[Any]:
    """One deployment per timeframe, scheduled as params.yaml `schedules:` says; their parameters name this
    project's files absolutely, so the worker's directory does not matter."""
    project = locate(params_file, data_dir, home)
    schedules = load_params(project.params_file).schedules.by_deployment()
    deployments = []
    for tf in SCHEDULED_TIMEFRAMES:
        when = schedules[f"ingest-{tf}"]
        deployments.append(ingest_flow.to_deployment(
            name=f"ingest-{tf}", cron=when.cron, interval=when.interval, tags=["krakenflow", "ingest"],
            parameters={**project._asdict(), "timeframes": [tf]},
            description=f"Ingest {tf} Kraken candles into the store ({when})", entrypoint_type=BY_MODULE))
    return deployments
