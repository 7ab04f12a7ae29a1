"""`krakenflow` — one Typer app wiring commands to the packages."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from cli.env import prepare_environment, use_home, use_project
from cli.output import console, load_params_or_exit, print_ab, print_pipeline, print_trade_report, print_trained

DISTRIBUTION = "krakenflow"
"""The installed distribution (pyproject.toml `[project] name`) whose version `--version` prints."""

app = typer.Typer(add_completion=True, no_args_is_help=True, help="krakenflow: Kraken MLOps pipeline + trader")
flow_app = typer.Typer(no_args_is_help=True, help="Run Prefect flows.")
app.add_typer(flow_app, name="flow")

ParamsOpt = Annotated[Path | None, typer.Option("--params", help="params.yaml to use; default: the project's "
                                                "(see krakenflow --home)")]
PairOpt = Annotated[list[str] | None, typer.Option("--pair", help="pair(s) from params.yaml `pairs`; default: all")]
FromOpt = Annotated[str | None, typer.Option("--from", help="first candle to trade (UTC); default: the first "
                                             "candle after the model's training window")]
ToOpt = Annotated[str | None, typer.Option("--to", help="last candle (UTC); default: the newest stored")]
DataOpt = Annotated[list[str] | None, typer.Option("--data", help="PAIR=FILE of candles instead of the candle "
                                                   "store; repeatable")]
ModelOpt = Annotated[str, typer.Option("--model", help="alias (champion | challenger | previous) or version in "
                                       "the registry")]


def _print_version(wanted: bool) -> None:
    if wanted:
        from importlib.metadata import version

        typer.echo(f"{DISTRIBUTION} {version(DISTRIBUTION)}")
        raise typer.Exit()


@app.callback()
def root(
    home: Annotated[Path | None, typer.Option(
        "--home", envvar="KRAKENFLOW_HOME", show_envvar=True, file_okay=False,
        help="the project folder (params.yaml, data/; state in <home>/.krakenflow or KRAKENFLOW_STATE_DIR); "
             "default: the nearest folder from here up with a params.yaml, else the source checkout")] = None,
    show_version: Annotated[bool, typer.Option("--version", is_eager=True, callback=_print_version,
                                               help="print the version and exit")] = False,
) -> None:
    """krakenflow: Kraken MLOps pipeline + trader. Works from any directory: the project is found or named."""
    if home is not None:
        use_home(home)


def _paths() -> Any:
    from core.settings import Settings
    from pipeline.paths import DataPaths

    settings = Settings()
    return DataPaths(settings.data_dir, settings.home)


def _params_path(params_file: Path | None) -> str:
    """For flows, which load params themselves: the file, absolute, after the same checks as every command."""
    load_params_or_exit(params_file)
    return str(use_project(params_file))


@app.command()
def stage(
    name: Annotated[str, typer.Argument(help="prepare | featurize | train | evaluate | register | promote")],
    params_file: ParamsOpt = None,
) -> None:
    """Run one pipeline stage (what `dvc repro` calls)."""
    params, paths = load_params_or_exit(params_file), _paths()
    from core.settings import Settings
    from pipeline.stages import STAGES

    if name not in STAGES:
        console.print(f"[red]error:[/red] unknown stage {name!r}; choose one of {', '.join(STAGES)}")
        raise typer.Exit(2)
    try:
        console.print(STAGES[name](params, paths, Settings()))
    except (LookupError, ValueError) as err:
        console.print(f"[red]error:[/red] {err}")
        raise typer.Exit(2) from None


@app.command()
def validate(
    file: Annotated[Path, typer.Argument(help="candles: parquet, feather, freqtrade json, Kraken OHLCVT or trades "
                                         "CSV, CryptoDataDownload CSV")],
    timeframe: Annotated[str | None, typer.Option(help="candle interval; default: inferred from the candle "
                                                  "spacing, as import does")] = None,
    quarantine: Annotated[Path | None, typer.Option(help="on failure: batch + GX result + Data Docs here")] = None,
    params_file: ParamsOpt = None,
) -> None:
    """Run the data-quality gate (repair rules + Great Expectations suite) on any file; exit 1 if it fails."""
    from market.frame import CandleDataError
    from quality.check_file import check_file

    params = load_params_or_exit(params_file)
    try:
        checked = check_file(file, params.quality, timeframe, quarantine)
    except CandleDataError as err:
        console.print(f"[red]rejected:[/red] {err}")
        raise typer.Exit(1) from None
    for line in checked.repairs:
        console.print(f"repair: {line}")
    for line in checked.warnings:
        console.print(f"[yellow]warning:[/yellow] {line}")
    verdict = "[green]passed[/green]" if checked.validation.success else "[red]FAILED[/red]"
    console.print(f"{file} ({checked.format}, {checked.timeframe}): {verdict} — {checked.validation.summary()} "
                  f"(GX {checked.seconds:.2f} s incl. start-up)")
    if checked.data_docs:
        console.print(f"quarantined: {checked.data_docs.parent.parent} (Data Docs: {checked.data_docs})")
    if not checked.validation.success:
        raise typer.Exit(1)


@app.command()
def promote(params_file: ParamsOpt = None) -> None:
    """A/B: shadow-run @champion and @challenger on the same unseen candles, test, move aliases."""
    from core.settings import Settings
    from pipeline.promote import run_ab

    try:
        outcome = run_ab(load_params_or_exit(params_file), _paths(), Settings())
    except (LookupError, ValueError) as err:
        console.print(f"[red]error:[/red] {err}")
        raise typer.Exit(2) from None
    print_ab(outcome.as_dict())


@app.command()
def challenge(
    version: Annotated[int | None, typer.Option(help="the registered version; default: the one `dvc repro` "
                                                "registered last (data/reports/registered.json)")] = None,
    params_file: ParamsOpt = None,
) -> None:
    """Nominate a registered version as @challenger for the next A/B (`dvc repro` registers without one)."""
    from core.settings import Settings
    from models.registry import ModelArtifactError
    from pipeline.register import nominate

    params = load_params_or_exit(params_file)
    try:
        chosen = nominate(params, _paths(), Settings(), version)
    except (LookupError, ModelArtifactError) as err:
        console.print(f"[red]error:[/red] {err}")
        raise typer.Exit(2) from None
    console.print(f"@challenger → {params.registry.model_name} v{chosen}; `krakenflow promote` runs the A/B")


@app.command()
def resume(
    reason: Annotated[str, typer.Option(help="why trading may go on (kept in the ledger's audit)")],
    who: Annotated[str, typer.Option(envvar="USER", help="who resumes (audit); default: $USER")] = "",
) -> None:
    """Clear a kill-switch or daily-loss halt of a stopped trader (its ledger; the equity peak restarts)."""
    from core.settings import Settings
    from trader.ledger import Ledger, LedgerError, LedgerLocked, resume_trading, safe_url

    settings = Settings()
    try:
        ledger = Ledger(settings.ledger_uri, exclusive=True)
    except LedgerLocked:
        console.print(f"[red]error:[/red] a trader is running on {safe_url(settings.ledger_uri)}: stop it first "
                      "(a running trader keeps its halt), then resume")
        raise typer.Exit(2) from None
    except LedgerError as err:
        console.print(f"[red]error:[/red] {err}")
        raise typer.Exit(2) from None
    try:
        cleared = resume_trading(ledger, who or "unknown", reason)
    except ValueError as err:
        console.print(f"[red]error:[/red] {err}")
        raise typer.Exit(2) from None
    finally:
        ledger.close()
    console.print(f"resumed: cleared “{cleared}”; the next start trades again" if cleared
                  else "not halted: nothing changed")


@app.command()
def rollback(params_file: ParamsOpt = None) -> None:
    """Swap @champion and @previous (undo the last promotion)."""
    from core.settings import Settings
    from pipeline.promote import rollback as do_rollback

    try:
        champion, previous = do_rollback(load_params_or_exit(params_file), Settings())
    except LookupError as err:
        console.print(f"[red]error:[/red] {err}")
        raise typer.Exit(2) from None
    console.print(f"rolled back: @champion → v{champion}, @previous → v{previous}")


@app.command()
def retrain(params_file: ParamsOpt = None, promote: bool = typer.Option(
        True, help="run the A/B promotion flow after retraining")) -> None:
    """Retrain on the latest validated data as a Prefect flow (→ @challenger), then A/B-promote."""
    params_path = _params_path(params_file)
    from flows.pipeline import ab_promote_flow, retrain_flow

    trained = retrain_flow(params_file=params_path, data_dir=str(_paths().root))
    print_trained(trained)
    if promote:
        print_ab(ab_promote_flow(params_file=params_path, data_dir=str(_paths().root)))


@flow_app.command("run")
def flow_run(params_file: ParamsOpt = None) -> None:
    """Run the whole training pipeline as a Prefect flow (ephemeral local Prefect unless configured)."""
    params_path = _params_path(params_file)
    from flows.pipeline import pipeline_flow

    result = pipeline_flow(params_file=params_path, data_dir=str(_paths().root))
    print_pipeline(result)


@app.command()
def trade(
    mode: Annotated[str, typer.Option(help="paper (replay the store or --data files through the SimulatedBroker), "
                                      "dry-run (poll Kraken or the emulator at KRAKENFLOW_KRAKEN_URL like live, "
                                      "simulated fills, a ledger of its own) or live")] = "paper",
    model: ModelOpt = "champion",
    pair: PairOpt = None,
    trade_from: FromOpt = None,
    trade_to: ToOpt = None,
    data: DataOpt = None,
    poll_seconds: Annotated[float, typer.Option(help="live: seconds between polls")] = 30.0,
    max_polls: Annotated[int | None, typer.Option(help="live: stop after this many polls")] = None,
    adopt_exchange_positions: Annotated[bool, typer.Option(
        help="live: at start-up take the exchange's balances as the truth whatever the difference "
             "(audited), e.g. after a human checked a reconciliation halt")] = False,
    status_port: Annotated[int, typer.Option(help="live: serve the dashboard, /status and /metrics on "
                                             "STATUS_HOST:PORT (0 = off)")] = 0,
    status_host: Annotated[str, typer.Option(envvar="KRAKENFLOW_STATUS_HOST", help="live: the address the status "
                                             "port listens on (0.0.0.0 inside a container, for Prometheus)")]
    = "127.0.0.1",
    log_level: Annotated[str, typer.Option(envvar="KRAKENFLOW_LOG_LEVEL", help="DEBUG, INFO (a line per poll, "
                                           "order, fill, reconcile, reload), WARNING or ERROR")] = "INFO",
    log_json: Annotated[bool, typer.Option(envvar="KRAKENFLOW_LOG_JSON", help="log JSON lines instead of "
                                           "text (for journald/Loki/ELK)")] = False,
    log_file: Annotated[Path | None, typer.Option(envvar="KRAKENFLOW_LOG_FILE", dir_okay=False,
                                                  help="also append the log to FILE (rotated at 50 MB)")] = None,
    params_file: ParamsOpt = None,
) -> None:
    """Trade with the promoted model, in paper mode (replay) or live mode (same engine)."""
    params = load_params_or_exit(params_file)
    _configure_logs(log_level, log_json, log_file)
    if mode in ("live", "dry-run"):
        _trade_live(params, model, poll_seconds, max_polls, adopt_exchange_positions, status_port, mode, status_host)
        return
    if mode != "paper":
        console.print(f"[red]error:[/red] --mode must be paper, dry-run or live, got {mode!r}")
        raise typer.Exit(2)
    from core.settings import Settings
    from pipeline.backtest import run_replay

    try:
        report, _ = run_replay(params, _paths(), Settings(), model, pair, trade_from, trade_to, data)
    except (LookupError, ValueError) as err:
        console.print(f"[red]error:[/red] {err}")
        raise typer.Exit(2) from None
    print_trade_report(report)


def _configure_logs(level: str, json_lines: bool, file: Path | None) -> None:
    """Logs to stderr (and `file`), every secret the settings hold redacted."""
    from core.alerts import settings_secrets
    from core.logs import configure_logging
    from core.settings import Settings

    try:
        configure_logging(level, json_lines, file, settings_secrets(Settings()))
    except (ValueError, OSError) as err:
        console.print(f"[red]error:[/red] {err}")
        raise typer.Exit(2) from None


def _halt_alert(alerter: Any, settings: Any) -> Any:
    """The live trader's loss-limit halt as a critical alert (the ledger already holds the halt)."""
    from core.alerts import Alert
    from trader.ledger import safe_url

    def send(reason: str) -> None:
        kind = "kill_switch" if reason.startswith("kill switch") else "halt"
        alerter.send(Alert(kind, "critical", f"krakenflow trader halted: {reason}",
                           f"Every position is being sold and no new orders are placed (ledger "
                           f"{safe_url(settings.ledger_uri)}). After a look: `krakenflow resume --reason ...`."))
    return send


def _trade_live(params: Any, model: str, poll_seconds: float, max_polls: int | None, adopt: bool,
                status_port: int, mode: str = "live", status_host: str = "127.0.0.1") -> None:
    from core.alerts import alerter_from_settings
    from core.settings import Settings
    from market.errors import ExchangeError
    from market.instruments import InstrumentsUnavailable
    from trader.ledger import LedgerError, LedgerLocked, safe_url
    from trader.service import StatusPortError, UnsafeKeyError, connect, open_session, run, serve_status

    settings = Settings()
    if mode == "dry-run" and not settings.ledger_url:  # never the live trader's ledger by default
        settings = settings.model_copy(update={"ledger_url": f"sqlite:///{settings.state_dir / 'dry-run-ledger.db'}"})
    alerter = alerter_from_settings(settings)
    try:
        if mode == "dry-run":
            from market.kraken import public_client
            from trader.service import open_paper_session

            settings.ensure_state_dir()
            session = open_paper_session(params, settings, public_client(settings.kraken_url), model,
                                         on_halt=_halt_alert(alerter, settings), alerter=alerter)
        else:
            client = connect(settings)
            session = open_session(params, settings, client, model, on_halt=_halt_alert(alerter, settings),
                                   alerter=alerter)
    except (ValueError, LookupError, UnsafeKeyError, ExchangeError, InstrumentsUnavailable, LedgerError,
            LedgerLocked) as err:
        console.print(f"[red]error:[/red] {err}")
        raise typer.Exit(2) from None
    console.print(f"{'dry-run (simulated fills)' if mode == 'dry-run' else 'live'} trading "
                  f"{', '.join(params.pairs)} on {settings.kraken_url} with "
                  f"{session.model_name} v{session.model_version}; ledger {safe_url(settings.ledger_uri)}")
    try:
        if status_port:
            _warn_exposed(status_host, settings)
            serve_status(session, status_host, status_port,
                         make=lambda snap, view: _console_app(params, settings, snap, view,
                                                              f"krakenflow {session.mode} trader"))
            console.print(f"console http://{status_host}:{status_port}/ (API /api/v1, /status, /metrics, /healthz)",
                          highlight=False)
        run(session, poll_seconds, max_polls, adopt_exchange_positions=adopt)
    except StatusPortError as err:
        console.print(f"[red]error:[/red] {err}")
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        console.print("stopped; open intents stay in the ledger and are looked up on the next start")
    except ExchangeError as err:  # not transient (e.g. the key was revoked): stop with the reason
        console.print(f"[red]error:[/red] {err}")
        raise typer.Exit(2) from None
    finally:
        session.close()
    if session.engine.halted:
        console.print(f"[red]halted:[/red] {session.engine.halted}")
    fills = session.broker.ledger.fills()
    console.print(f"{len(fills)} fills in the ledger; positions: "
                  + ", ".join(f"{p} {session.broker.position(p):.4f}" for p in params.pairs))


def _asset_codes() -> dict[str, str]:
    from market.instruments import bundled

    return bundled().asset_codes()


ASSET_CODES = _asset_codes()
"""What a person may write for an asset (USD, DOGE, XDG, BTC, XBT, XXBT...) → its Kraken asset code."""


def _kv(items: list[str], what: str) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            raise typer.BadParameter(f"{what} must look like KEY=VALUE, got {item!r}")
        out[key] = value
    return out


@app.command()
def emulator(
    port: Annotated[int, typer.Option(help="loopback port")] = 8765,
    pair: PairOpt = None,
    data: DataOpt = None,
    api_key: Annotated[list[str] | None, typer.Option(help="API key to accept; repeatable")] = None,
    api_secret: Annotated[list[str] | None, typer.Option(help="its base64 secret, in the same order")] = None,
    permissions: Annotated[list[str] | None, typer.Option(help="per key: 'trade' or 'trade,withdraw'")] = None,
    balance: Annotated[list[str] | None, typer.Option(help="starting balance, e.g. USD=10000")] = None,
    seconds_per_candle: Annotated[float, typer.Option(help="replay speed; 0 = manual clock "
                                                      "(POST /_emulator/advance)")] = 0.1,
    tier: Annotated[str, typer.Option(help="Kraken rate-counter tier: starter, intermediate, pro, "
                                      "unlimited")] = "intermediate",
    params_file: ParamsOpt = None,
) -> None:
    """Run the local Kraken emulator (REST API, HMAC auth, replayed real candles, faults)."""
    from market.emulator.kraken_api import RATE_TIERS
    from market.emulator.server import make_emulator
    from pipeline.candles import store_candles

    if tier not in RATE_TIERS:
        raise typer.BadParameter(f"--tier must be one of {', '.join(RATE_TIERS)}")

    keys, secrets, perms = api_key or [], api_secret or [], permissions or []
    if len(keys) != len(secrets):
        raise typer.BadParameter("give one --api-secret per --api-key")
    from pipeline.backtest import parse_data_specs

    try:
        files = parse_data_specs(data or [])
    except ValueError as err:
        raise typer.BadParameter(str(err)) from None
    balances = {ASSET_CODES.get(a.upper(), a): float(v) for a, v in _kv(balance or ["USD=10000"], "--balance").items()}
    candles = None
    if not files:  # the candle store's pairs (seeded from the bundled files on a fresh clone)
        params, paths = load_params_or_exit(params_file), _paths()
        try:
            candles = store_candles(params, paths, pair)
        except (LookupError, ValueError) as err:
            console.print(f"[red]error:[/red] {err}")
            raise typer.Exit(2) from None
    handle = make_emulator(files, balances, port=port, seconds_per_candle=seconds_per_candle or None,
                           tier=RATE_TIERS[tier], candles=candles)
    for i, (key, secret) in enumerate(zip(keys, secrets, strict=True)):
        scope = perms[i] if i < len(perms) else "trade"
        handle.add_key(key, secret, frozenset({"query", *scope.split(",")}))
    handle.start()
    clock = f"{seconds_per_candle} s per candle" if seconds_per_candle else "manual clock"
    console.print(f"Kraken emulator on {handle.url} — pairs {', '.join(handle.venue.candles)}, "
                  f"{len(keys)} key(s), {clock}. Ctrl-C stops it.")
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        handle.stop()


@app.command()
def serve(params_file: ParamsOpt = None) -> None:
    """The worker: register the deployments, on their params.yaml `schedules:`, on the Prefect server at
    PREFECT_API_URL (or KRAKENFLOW_PREFECT_API_URL) and run their scheduled runs until Ctrl-C."""
    params_path = _params_path(params_file)
    from flows.serve import NoPrefectServer, serve_all

    try:
        serve_all(params_file=params_path, data_dir=str(_paths().root))
    except NoPrefectServer as err:
        console.print(f"[red]error:[/red] {err}", highlight=False)
        raise typer.Exit(2) from None


@app.command()
def watch(
    every: Annotated[float, typer.Option(help="seconds between probes")] = 60.0,
    metrics_port: Annotated[int, typer.Option(help="serve Prometheus /metrics on METRICS_HOST:PORT (0 = off)")] = 0,
    metrics_host: Annotated[str, typer.Option(envvar="KRAKENFLOW_METRICS_HOST",
                                              help="the address the metrics port listens on")] = "127.0.0.1",
    late_after: Annotated[float, typer.Option(help="a scheduled run waiting this many seconds = no worker")] = 300.0,
    stuck_after: Annotated[float, typer.Option(help="a run Running this many seconds = stuck")] = 6 * 3600.0,
    max_probes: Annotated[int | None, typer.Option(help="stop after this many probes")] = None,
) -> None:
    """Watch the scheduling side: the Prefect server, its workers and stuck runs; alert on every change
    (KRAKENFLOW_ALERT_URLS) and export gauges for Prometheus."""
    import time

    from core.alerts import alerter_from_settings
    from core.settings import Settings
    from flows.health import HealthLimits, Watch, problems_text

    use_project(None)
    api_url = os.environ.get("PREFECT_API_URL", "")
    if not api_url:
        console.print("[red]error:[/red] no Prefect server to watch: export PREFECT_API_URL (see `krakenflow server`)")
        raise typer.Exit(2)
    watcher = Watch(api_url, alerter_from_settings(Settings()), HealthLimits(late_after, stuck_after))
    if metrics_port:
        from prometheus_client import start_http_server

        start_http_server(metrics_port, addr=metrics_host, registry=watcher.registry)
        console.print(f"metrics on http://{metrics_host}:{metrics_port}/metrics", highlight=False)
    probes = 0
    while max_probes is None or probes < max_probes:
        found = watcher.check(time.time())
        console.print(f"{time.strftime('%H:%M:%S')} " + ("; ".join(problems_text(found)) or "healthy"),
                      highlight=False, soft_wrap=True)
        probes += 1
        if max_probes is None or probes < max_probes:
            time.sleep(every)


@app.command()
def server(
    port: Annotated[int, typer.Option(min=1, max=65535, help="the API and UI port")] = 4200,
    host: Annotated[str, typer.Option(help="the address to listen on (0.0.0.0: every interface)")] = "127.0.0.1",
) -> None:
    """The project's persistent Prefect server (API, scheduler, UI): `prefect server start` with PREFECT_HOME in
    the state folder (SQLite there) and analytics off. `krakenflow serve` is the worker that runs its runs."""
    from core.settings import Settings

    use_project(None)
    prefect_home = Path(os.environ.get("PREFECT_HOME") or Settings().prefect_home)
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    own_db = any(os.environ.get(f"PREFECT_{kind}_DATABASE_CONNECTION_URL") for kind in ("API", "SERVER"))
    database = "the one PREFECT_API_DATABASE_CONNECTION_URL names" if own_db else f"SQLite {prefect_home}/prefect.db"
    console.print(f"Prefect UI: http://{shown}:{port}  (PREFECT_HOME {prefect_home}, database: {database})\n"
                  f"Workers, in another shell:  export PREFECT_API_URL=http://{shown}:{port}/api; krakenflow serve",
                  highlight=False, soft_wrap=True)
    from flows.serve import exec_server

    exec_server(prefect_home, host, port)


@app.command()
def backtest(
    pair: PairOpt = None,
    model: ModelOpt = "champion",
    start: FromOpt = None,
    end: ToOpt = None,
    data: DataOpt = None,
    out: Annotated[Path | None, typer.Option(help="folder for backtest.html (offline), .json and .md; default: "
                                             "<data>/reports")] = None,
    params_file: ParamsOpt = None,
) -> None:
    """Backtest a registered model over the candle store on the trader's engine; write JSON and HTML reports."""
    from core.settings import Settings
    from pipeline.backtest import run_replay
    from trader.report import write_reports

    params, paths = load_params_or_exit(params_file), _paths()
    try:
        report, trading = run_replay(params, paths, Settings(), model, pair, start, end, data)
    except (LookupError, ValueError) as err:
        console.print(f"[red]error:[/red] {err}")
        raise typer.Exit(2) from None
    title = f"backtest {trading.name} v{trading.version} ({model}) from {report.trade_from}"
    files = write_reports(report.result, out or paths.reports, title,
                          {"pairs": ", ".join(report.pairs), "from": report.trade_from, "to": report.trade_to},
                          candles=report.candles, taker_fee=params.fees.taker, starting_cash=report.starting_cash,
                          momentum_lookback=params.evaluate.momentum_lookback)
    m = report.result.metrics
    console.print(f"{title}: net {m['net_return']:+.2%}, max drawdown {m['max_drawdown']:.2%}, "
                  f"Sharpe {m['sharpe']:.2f}, {int(m['n_round_trips'])} round trips → {files.html} (also .json, .md)")


@app.command()
def ingest(
    pair: Annotated[list[str] | None, typer.Option(help="pair(s), e.g. XRP/USD; default: params.yaml pairs")] = None,
    timeframe: Annotated[list[str] | None, typer.Option(help="1h, 5m, …; default: params.yaml ingest.timeframes")]
    = None,
    start: Annotated[str | None, typer.Option("--from", help="backfill from this UTC time (e.g. 2024-01-01); "
                                              "older than Kraken's 720-candle window → rebuilt from public "
                                              "Trades")] = None,
    since: Annotated[str | None, typer.Option("--since", hidden=True, help="the old name of --from")] = None,
    url: Annotated[str | None, typer.Option(help="Kraken or emulator URL; default KRAKENFLOW_KRAKEN_URL")] = None,
    params_file: ParamsOpt = None,
) -> None:
    """Ingest Kraken candles into the store: OHLC window, then Trades backfill of older gaps (quality-gated)."""
    from cli.ingest_cmd import run_ingest

    if start and since and start != since:
        raise typer.BadParameter(f"--from {start!r} and --since {since!r} disagree: --since is the old name of "
                                 "--from, give one")
    run_ingest(console, load_params_or_exit(params_file), _paths(), pair or [], timeframe or [], start or since,
               url)


@app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(help="Kraken OHLCVT CSV, Kraken trades CSV (needs --timeframe), "
                                         "CryptoDataDownload CSV, freqtrade feather/parquet/json")],
    pair: Annotated[str | None, typer.Option(help="the pair these candles are, e.g. XRP/USD; default: the file's "
                                             "symbol column (--pair then only confirms it)")] = None,
    timeframe: Annotated[str | None, typer.Option(help="default: inferred from the candle spacing")] = None,
    params_file: ParamsOpt = None,
) -> None:
    """Import a history file into the candle store (quality-gated; stored candles are never changed)."""
    from cli.ingest_cmd import run_import

    run_import(console, load_params_or_exit(params_file), _paths(), file, pair, timeframe)


LOOPBACK = ("127.0.0.1", "localhost", "::1")


@app.command("console")
def console_command(
    ledger: Annotated[str | None, typer.Option(help="ledger URL (sqlite:///… or postgresql://…) or a SQLite "
                                               "file; default: KRAKENFLOW_LEDGER_URL or <state>/ledger.db")] = None,
    host: Annotated[str, typer.Option(help="interface to listen on (0.0.0.0: every interface)")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="port")] = 8050,
    params_file: ParamsOpt = None,
) -> None:
    """The operator console over a ledger, the MLflow registry and the Prefect API: pages, the REST API at
    /api/v1 (OpenAPI at /docs) and its control calls (bearer token KRAKENFLOW_CONSOLE_TOKEN)."""
    import uvicorn

    from core.settings import Settings

    params = load_params_or_exit(params_file)
    settings = Settings()
    url = ledger or settings.ledger_uri
    if "://" not in url:
        url = f"sqlite:///{Path(url).resolve()}"
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        console.print(f"[red]error:[/red] no ledger at {url}: run a trader first (e.g. `make demo`) or pass --ledger")
        raise typer.Exit(2)
    _warn_exposed(host, settings)
    app_ = _console_app(params, settings.model_copy(update={"ledger_url": url}))
    console.print(f"console http://{host}:{port}/ (API /api/v1, docs /docs); Ctrl-C stops it", highlight=False)
    uvicorn.run(app_, host=host, port=port, log_level="warning")


def _console_app(params: Any, settings: Any, live: Any = None, live_view: Any = None,
                 title: str = "krakenflow console") -> Any:
    from console.app import make_console
    from console.sources import Sources

    token = settings.console_token.get_secret_value() if settings.console_token else None
    prefect_api = os.environ.get("PREFECT_API_URL") or settings.prefect_api_url or ""
    return make_console(Sources(params, settings, settings.data_dir, prefect_api, live, live_view), token, title)


def _warn_exposed(host: str, settings: Any) -> None:
    if host not in LOOPBACK:
        note = ("control calls need its bearer token" if settings.console_token else
                "no KRAKENFLOW_CONSOLE_TOKEN is set: anyone who reaches it can read everything (control stays off)")
        console.print(f"[yellow]warning:[/yellow] the console listens on {host}, beyond this machine: {note}")


@app.command(hidden=True)
def dashboard(
    ledger: Annotated[str | None, typer.Option(help="ledger URL or a SQLite file")] = None,
    host: Annotated[str, typer.Option(help="interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port")] = 8050,
    params_file: ParamsOpt = None,
) -> None:
    """The old name of `krakenflow console`."""
    console_command(ledger, host, port, params_file)


@app.command()
def demo(params_file: ParamsOpt = None) -> None:
    """The whole product on the bundled real candles: pipeline flow → @champion → paper trader."""
    from cli.demo import run_demo

    load_params_or_exit(params_file)  # the clear errors and the Prefect home before the demo imports Prefect
    run_demo(console, use_project(params_file))


def main() -> None:
    from core.settings import ProjectNotFound

    prepare_environment()
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
    except ProjectNotFound as err:  # a command that needs the project before it loads params
        console.print(f"[red]error:[/red] {err}")
        sys.exit(2)


if __name__ == "__main__":
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    main()
