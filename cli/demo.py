"""`krakenflow demo`: the whole product on bundled real candles, with a summary of where to look."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from pydantic import SecretStr
from rich.console import Console
from rich.panel import Panel

from core.settings import Settings

CHALLENGER_EXPERIMENT = {"num_leaves": 31, "learning_rate": 0.05}
"""The demo's challenger: the same pipeline with two LightGBM knobs changed (a DVC-style experiment)."""


def _experiment_params(params_file: Path, home: Path) -> Path:
    raw = yaml.safe_load(params_file.read_text())
    raw["train"].update(CHALLENGER_EXPERIMENT)
    raw.setdefault("optuna", {})["n_trials"] = 0  # exactly these knobs, not a search that starts from them
    path = home / "demo-challenger-params.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def run_demo(console: Console, params_file: Path) -> None:
    from cli.output import load_params_or_exit, print_ab, print_pipeline, print_trade_report, print_trained
    from flows.drift import drift_flow
    from flows.pipeline import ab_promote_flow, pipeline_flow, retrain_flow
    from pipeline.backtest import run_replay
    from pipeline.paths import DataPaths

    started = time.monotonic()
    settings = Settings()
    params = load_params_or_exit(params_file)
    data_dir = str(settings.data_dir)
    console.rule("0/4 ingest (Prefect flow): local Kraken emulator → OHLC window + Trades backfill → gate → store")
    ingest_from_emulator(console, params_file, params, data_dir)
    console.rule("1/4 pipeline (Prefect flow): store → quality gate → features → train → evaluate → MLflow → A/B")
    first = pipeline_flow(params_file=str(params_file), data_dir=data_dir)
    print_pipeline(first)
    console.rule(f"2/4 drift (Evidently) → retrain a challenger ({CHALLENGER_EXPERIMENT}) → A/B vs @champion")
    experiment = _experiment_params(params_file, settings.ensure_state_dir())
    checked = drift_flow(params_file=str(params_file), data_dir=data_dir, retrain_on_drift=False)
    console.print(f"drift check: {'DRIFT' if checked['drift']['drifted'] else 'no drift'} — "
                  f"{checked['drift']['reason']} (report: {settings.data_dir / 'reports' / 'drift.html'})")
    workspace = challenger_workspace(settings)
    console.print(f"the demo retrains a challenger either way, in {workspace} (so {settings.data_dir} keeps "
                  "describing @champion unless the A/B promotes it)")
    checked["retrain"] = retrain_flow(params_file=str(experiment), data_dir=str(workspace))
    checked["promotion"] = ab_promote_flow(params_file=str(experiment), data_dir=str(workspace))
    print_trained(checked["retrain"])
    ab = checked["promotion"]
    print_ab(ab)
    if ab["decision"] == "promote":
        adopt_workspace(workspace, settings.data_dir)
    console.rule("3/4 trader, paper: @champion replayed on unseen candles (SimulatedBroker, Kraken taker fees)")
    report, _ = run_replay(params, DataPaths(settings.data_dir, settings.home), settings, "champion")
    print_trade_report(report)
    console.rule("4/4 trader, live mode: the same candles served by the local Kraken emulator, orders via ccxt")
    live = live_against_emulator(console, params_file, settings, pd.Timestamp(report.trade_from))
    paper_pnl = round(report.result.metrics["final_equity"] - report.starting_cash, 2)
    live_pnl = round(live["equity"] - params.trade.starting_cash, 2)
    parity = ("= paper, to the cent" if paper_pnl == live_pnl
              else f"[red]differs from paper by {live_pnl - paper_pnl:+,.2f}[/red]")
    console.print(Panel.fit(
        f"champion: {params.registry.model_name} v{report.model_version}   A/B: {ab['decision']} "
        f"(p={ab['p_value']:.3g})   paper P&L: {paper_pnl:+,.2f} USD"
        f"   live-vs-emulator P&L: {live_pnl:+,.2f} USD ({parity})"
        f"   took {time.monotonic() - started:.0f} s\n\n"
        f"MLflow UI:   .venv/bin/mlflow ui --backend-store-uri {settings.tracking_uri}  → http://127.0.0.1:5000\n"
        f"Prefect UI:  .venv/bin/krakenflow server  → http://127.0.0.1:4200 (its database holds the demo's runs)\n"
        f"Console:     .venv/bin/krakenflow console --ledger {live['ledger']}  → http://127.0.0.1:8050 "
        f"(equity, trades, models, A/B, reconciliation, pipelines, drift, data; API /api/v1, docs /docs)\n"
        f"Reports:     {settings.data_dir / 'reports'} (metrics.json, equity.csv, validation.json, drift.html)",
        title="krakenflow demo done",
    ))


def challenger_workspace(settings: Settings) -> Path:
    """A data dir for the demo's challenger with a copy of the candle store: its models and reports land
    there, not over the champion's in data/ (a rejected challenger must not be what data/reports shows)."""
    workspace = settings.state_dir / "demo-challenger"
    shutil.rmtree(workspace, ignore_errors=True)
    shutil.copytree(settings.data_dir / "store", workspace / "store")
    return workspace


def adopt_workspace(workspace: Path, data_dir: Path) -> None:
    """The challenger won: its model and reports become data/'s (drift.html stays: it was checked there)."""
    shutil.rmtree(data_dir / "models", ignore_errors=True)
    shutil.copytree(workspace / "models", data_dir / "models")
    shutil.copytree(workspace / "reports", data_dir / "reports", dirs_exist_ok=True)


def ingest_from_emulator(console: Console, params_file: Path, params: Any, data_dir: str) -> list[dict[str, Any]]:
    """The demo's candles come through the ingest flow: an in-process Kraken emulator replays the bundled
    real candles with its clock at the newest one, and the flow stores Kraken's 720-candle OHLC window and
    rebuilds everything older from the public Trades endpoint, quality-gated, into the candle store that
    prepare reads. A rerun finds the store complete and writes nothing."""
    from flows.ingest import ingest_flow
    from market.emulator.server import make_emulator
    from market.emulator.venue import VenueConfig

    home = Settings().home  # params.yaml's seed files are relative to the project home
    files = {pair: home / src for pair, src in params.data.sample.items()}
    emulator = make_emulator(files, config=VenueConfig(warmup_candles=10**9)).start()  # clock at the last candle
    try:
        first = emulator.venue.candles[params.pairs[0]][0].ts
        since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(first / 1000))
        reports = ingest_flow(params_file=str(params_file), data_dir=data_dir, pairs=list(params.pairs),
                              timeframes=[params.data.timeframe], since=since, kraken_url=emulator.url)
    finally:
        emulator.stop()
    for r in reports:
        console.print(f"{r['pair']} {r['timeframe']}: {r['added']} candles added ({r['ohlc_candles']} from the "
                      f"OHLC window, {r['backfilled_candles']} rebuilt from {r['trade_pages']} Trades pages), "
                      f"{len(r['gaps_after'])} gap(s) open")
    return reports


def live_against_emulator(console: Console, params_file: Path, settings: Settings,
                          trade_from: pd.Timestamp) -> dict[str, Any]:
    """Start the Kraken emulator in-process at `trade_from` (where the paper run began trading: the first
    candle the champion never saw), and run the live trader (ccxt, HMAC auth, ledger) against it in
    lock-step with the replay clock.

    It ends where the paper run ends, to the cent: the emulator replays the paper run's own candles (the
    store, not the bundled files), fills like its SimulatedBroker (`VenueConfig.from_fees`, one fill model
    in market.fills), the trader decides on every candle the paper run decides on and fills (the last
    decision's order fills at the last candle's open), and equity is marked at the same last close."""
    import base64
    import secrets

    from rich.progress import Progress

    from cli.output import load_params_or_exit as _params
    from market.emulator.kraken_api import RateTier
    from market.emulator.server import make_emulator
    from market.emulator.venue import VenueConfig
    from market.instruments import bundled
    from pipeline.candles import store_candles
    from pipeline.paths import DataPaths
    from trader.service import connect, open_session, run

    params = _params(params_file)
    candles = store_candles(params, DataPaths(settings.data_dir, settings.home))
    from_ms = trade_from.value // 1_000_000
    first_unseen = next(i for i, c in enumerate(candles[params.pairs[0]]) if c.ts >= from_ms)
    emulator = make_emulator(balances={"ZUSD": params.trade.starting_cash}, candles=candles,
                             config=VenueConfig.from_fees(params.fees, warmup_candles=first_unseen),
                             tier=RateTier(max_counter=1e9)).start()
    key, secret = "demo-" + secrets.token_hex(6), base64.b64encode(secrets.token_bytes(48)).decode()
    emulator.add_key(key, secret)
    ledger = settings.state_dir / "demo-ledger.db"
    ledger.unlink(missing_ok=True)
    live_settings = settings.model_copy(update={
        "kraken_url": emulator.url, "kraken_key": SecretStr(key), "kraken_secret": SecretStr(secret),
        "ledger_url": f"sqlite:///{ledger.resolve()}"})
    try:
        client = connect(live_settings, throttle=False)
        session = open_session(params, live_settings, client)
        steps = emulator.venue.length - 1 - emulator.venue.cursor  # finished candles still to decide on
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task("live trader vs emulator (candles)", total=steps)

            def tick(_: int) -> None:
                emulator.advance(1)
                progress.advance(task)

            # the first poll finds nothing new (warm-up took it); the last one, at the final cursor candle,
            # decides on the last finished candle, whose order fills at once at the last candle's open
            run(session, poll_seconds=0, max_polls=steps + 1, after_poll=tick)
        session.broker.sync()  # the trader's next poll would record that last fill in the ledger
        balances = client.balances()
        last = {p: emulator.venue.candles[p][-1].close for p in params.pairs}
        table = bundled()  # balances arrive under ccxt's codes: DOGE for Kraken's XXDG
        equity = balances.get("USD", 0.0) + sum(balances.get(table.get(p).unified_base, 0.0) * last[p]
                                                for p in params.pairs)
        fills = session.broker.ledger.fills()
        session.close()
    finally:
        emulator.stop()
    console.print(f"live (ccxt → local Kraken emulator at {emulator.url}, model v{session.model_version}): "
                  f"{len(fills)} fills over {steps} candles per pair; equity {equity:,.2f} USD "
                  f"({equity / params.trade.starting_cash - 1:+.2%}); ledger {ledger}")
    return {"equity": equity, "fills": float(len(fills)), "candles": float(steps), "ledger": str(ledger)}
