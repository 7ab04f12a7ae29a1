"""`krakenflow` — one Typer app wiring commands to the packages."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from cli.env import prepare_environment

app = typer.Typer(add_completion=False, no_args_is_help=True, help="krakenflow: Kraken MLOps pipeline + trader")
flow_app = typer.Typer(no_args_is_help=True, help="Run Prefect flows.")
app.add_typer(flow_app, name="flow")
console = Console()

ParamsOpt = Annotated[Path, typer.Option("--params", help="params.yaml to use")]


def _params(path: Path) -> Any:
    """Load params.yaml; a pair the instrument table does not hold is refused here, before any command starts,
    rather than as a KeyError deep in live trading."""
    from core.params import ParamsError, load_params
    from market.instruments import UnknownPairError, bundled

    try:
        params = load_params(path)
        bundled().require(params.pairs)
    except ParamsError as err:
        console.print(f"[red]error:[/red] {err}")
        raise typer.Exit(2) from None
    except UnknownPairError as err:
        console.print(f"[red]error:[/red] {path}: data.sample: {err}")
        raise typer.Exit(2) from None
    return params


def _paths() -> Any:
    from core.settings import Settings
    from pipeline.paths import DataPaths

    return DataPaths(Settings().data_dir)


@app.command()
def stage(
    name: Annotated[str, typer.Argument(help="prepare | featurize | train | evaluate | register | promote")],
    params_file: ParamsOpt = Path("params.yaml"),
) -> None:
    """Run one pipeline stage (what `dvc repro` calls)."""
    from core.settings import Settings
    from pipeline import stages
    from pipeline.ab import run_ab

    params, paths = _params(params_file), _paths()
    runners = {
        "prepare": lambda: [vars(p) for p in stages.prepare(params, paths)],
        "featurize": lambda: stages.featurize(params, paths),
        "train": lambda: stages.train(params, paths),
        "evaluate": lambda: stages.evaluate_model(params, paths),
        "register": lambda: stages.register(params, paths, Settings()),
        "promote": lambda: run_ab(params, paths, Settings()).as_dict(),
    }
    if name not in runners:
        console.print(f"[red]error:[/red] unknown stage {name!r}; choose one of {', '.join(runners)}")
        raise typer.Exit(2)
    try:
        console.print(runners[name]())
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
    params_file: ParamsOpt = Path("params.yaml"),
) -> None:
    """Run the data-quality gate (repair rules + Great Expectations suite) on any file; exit 1 if it fails."""
    from market.frame import CandleDataError
    from quality.check_file import check_file

    params = _params(params_file)
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
def promote(params_file: ParamsOpt = Path("params.yaml")) -> None:
    """A/B: shadow-run @champion and @challenger on the same unseen candles, test, move aliases."""
    from core.settings import Settings
    from pipeline.ab import run_ab

    try:
        outcome = run_ab(_params(params_file), _paths(), Settings())
    except (LookupError, ValueError) as err:
        console.print(f"[red]error:[/red] {err}")
        raise typer.Exit(2) from None
    _print_ab(outcome.as_dict())


@app.command()
def rollback(params_file: ParamsOpt = Path("params.yaml")) -> None:
    """Swap @champion and @previous (undo the last promotion)."""
    from core.settings import Settings
    from pipeline.ab import rollback as do_rollback

    try:
        champion, previous = do_rollback(_params(params_file), Settings())
    except LookupError as err:
        console.print(f"[red]error:[/red] {err}")
        raise typer.Exit(2) from None
    console.print(f"rolled back: @champion → v{champion}, @previous → v{previous}")


@app.command()
def retrain(params_file: ParamsOpt = Path("params.yaml"), promote: bool = typer.Option(
        True, help="run the A/B promotion flow after retraining")) -> None:
    """Retrain on the latest validated data as a Prefect flow (→ @challenger), then A/B-promote."""
    _params(params_file)
    from flows.pipeline import ab_promote_flow, retrain_flow

    trained = retrain_flow(params_file=str(params_file), data_dir=str(_paths().root))
    _print_trained(trained)
    if promote:
        _print_ab(ab_promote_flow(params_file=str(params_file), data_dir=str(_paths().root)))


def _print_ab(o: dict[str, Any]) -> None:
    if o["champion_before"] is None:
        console.print(f"no @champion yet: v{o['challenger']} becomes @champion (nothing to compare against)")
        return
    console.print(
        f"A/B champion v{o['champion_before']} vs challenger v{o['challenger']} on candles from {o['shadow_from']}: "
        f"[bold]{o['decision']}[/bold] (p-value {o['p_value']:.4g}, effect {o['effect'] * 1e4:+.2f} bp/candle, "
        f"{o['n_periods']} paired candles, {o['challenger_trades']} challenger trades) — {o['reason']}; "
        f"@champion is v{o['champion_after']}"
    )


@flow_app.command("run")
def flow_run(params_file: ParamsOpt = Path("params.yaml")) -> None:
    """Run the whole training pipeline as a Prefect flow (ephemeral local Prefect unless configured)."""
    _params(params_file)
    from flows.pipeline import pipeline_flow

    result = pipeline_flow(params_file=str(params_file), data_dir=str(_paths().root))
    _print_pipeline(result)


def _print_trained(result: dict[str, Any]) -> None:
    table = Table(title="validated candles")
    for col in ("pair", "rows", "first", "last", "quality gate"):
        table.add_column(col)
    for p in result["prepared"]:
        table.add_row(p["pair"], str(p["rows"]), p["first"], p["last"], p["summary"])
    console.print(table)
    from models.evaluate import verdict

    m = result["metrics"]
    momentum = m.get("baseline_momentum_net_return")
    console.print(
        f"holdout: AUC {m['holdout_auc']:.3f}, model net return {m['holdout_net_return']:+.2%}, "
        f"max drawdown {m['holdout_max_drawdown']:.2%}, {int(m['holdout_n_round_trips'])} round trips; "
        f"buy & hold {m['baseline_buy_and_hold_return']:+.2%}, flat +0.00%"
        + (f", momentum {momentum:+.2%}" if momentum is not None else "")
    )
    console.print(f"verdict: {verdict(m)}")
    console.print(f"registered version {result['version']} as @challenger")


def _print_pipeline(result: dict[str, Any]) -> None:
    _print_trained(result)
    _print_ab(result["promotion"])


@app.command()
def trade(
    mode: Annotated[str, typer.Option(help="paper (replay through the SimulatedBroker) or live "
                                      "(Kraken or the emulator at KRAKENFLOW_KRAKEN_URL)")] = "paper",
    replay: Annotated[list[str] | None, typer.Option(help="paper: [PAIR=]FILE of candles; repeatable")] = None,
    model: Annotated[str, typer.Option(help="alias or version in the registry")] = "champion",
    trade_from: Annotated[str | None, typer.Option("--from", help="paper: first candle to trade (UTC); "
                                                   "default: the day after the model's training window")] = None,
    poll_seconds: Annotated[float, typer.Option(help="live: seconds between polls")] = 30.0,
    max_polls: Annotated[int | None, typer.Option(help="live: stop after this many polls")] = None,
    adopt_exchange_positions: Annotated[bool, typer.Option(
        help="live: at start-up take the exchange's balances as the truth whatever the difference "
             "(audited), e.g. after a human checked a reconciliation halt")] = False,
    status_port: Annotated[int, typer.Option(help="live: serve the dashboard, /status and /metrics on "
                                             "127.0.0.1:PORT (0 = off)")] = 0,
    params_file: ParamsOpt = Path("params.yaml"),
) -> None:
    """Trade with the promoted model, in paper mode (replay) or live mode (same engine)."""
    params = _params(params_file)
    if mode == "live":
        _trade_live(params, model, poll_seconds, max_polls, adopt_exchange_positions, status_port)
        return
    if mode != "paper":
        console.print(f"[red]error:[/red] --mode must be paper or live, got {mode!r}")
        raise typer.Exit(2)
    from trader import replay as replay_mod

    try:
        report = replay_mod.paper_replay(params, replay or [], model, trade_from)
    except (LookupError, ValueError) as err:
        console.print(f"[red]error:[/red] {err}")
        raise typer.Exit(2) from None
    print_trade_report(report)


def _trade_live(params: Any, model: str, poll_seconds: float, max_polls: int | None, adopt: bool,
                status_port: int) -> None:
    from core.settings import Settings
    from market.errors import ExchangeError
    from trader.ledger import LedgerError, LedgerLocked, safe_url
    from trader.service import StatusPortError, UnsafeKeyError, connect, open_session, run, serve_status

    settings = Settings()
    try:
        client = connect(settings)
        session = open_session(params, settings, client, model)
    except (ValueError, LookupError, UnsafeKeyError, ExchangeError, LedgerError, LedgerLocked) as err:
        console.print(f"[red]error:[/red] {err}")
        raise typer.Exit(2) from None
    console.print(f"live trading {', '.join(params.pairs)} on {settings.kraken_url} with "
                  f"{session.model_name} v{session.model_version}; ledger {safe_url(settings.ledger_uri)}")
    try:
        if status_port:
            serve_status(session, "127.0.0.1", status_port)
            console.print(f"dashboard http://127.0.0.1:{status_port}/ (also /status, /metrics, /healthz)")
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


def print_trade_report(report: Any, max_rows: int = 12) -> None:
    table = Table(title=f"paper trades — model {report.model_name} v{report.model_version}")
    for col in ("time (UTC)", "pair", "side", "qty", "price", "fee"):
        table.add_column(col)
    fills = report.result.fills
    shown = fills if len(fills) <= max_rows else fills[: max_rows // 2] + fills[-max_rows // 2 :]
    for f in shown:
        when = time.strftime("%Y-%m-%d %H:%M", time.gmtime(f.ts / 1000))
        table.add_row(when, f.pair, f.side.value, f"{f.quantity:.2f}", f"{f.price:.5f}", f"{f.fee:.2f}")
    console.print(table)
    if len(fills) > max_rows:
        console.print(f"({len(fills) - len(shown)} more fills not shown)")
    m = report.result.metrics
    console.print(
        f"paper P&L {m['final_equity'] - report.starting_cash:+,.2f} USD ({m['net_return']:+.2%}) over "
        f"{report.candles_traded} candles from {report.trade_from}; max drawdown {m['max_drawdown']:.2%}; "
        f"{int(m['n_fills'])} fills, fees {m['fees_paid']:,.2f} USD"
    )


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
    data: Annotated[list[str] | None, typer.Option(help="PAIR=FILE of candles to replay; repeatable "
                                                   "(default: the bundled XRP/USD and DOGE/USD samples)")] = None,
    api_key: Annotated[list[str] | None, typer.Option(help="API key to accept; repeatable")] = None,
    api_secret: Annotated[list[str] | None, typer.Option(help="its base64 secret, in the same order")] = None,
    permissions: Annotated[list[str] | None, typer.Option(help="per key: 'trade' or 'trade,withdraw'")] = None,
    balance: Annotated[list[str] | None, typer.Option(help="starting balance, e.g. USD=10000")] = None,
    seconds_per_candle: Annotated[float, typer.Option(help="replay speed; 0 = manual clock "
                                                      "(POST /_emulator/advance)")] = 0.1,
    tier: Annotated[str, typer.Option(help="Kraken rate-counter tier: starter, intermediate, pro, "
                                      "unlimited")] = "intermediate",
) -> None:
    """Run the local Kraken emulator (REST API, HMAC auth, replayed real candles, faults)."""
    from market.emulator.kraken_api import RATE_TIERS
    from market.emulator.server import DEFAULT_DATA, make_emulator

    if tier not in RATE_TIERS:
        raise typer.BadParameter(f"--tier must be one of {', '.join(RATE_TIERS)}")

    keys, secrets, perms = api_key or [], api_secret or [], permissions or []
    if len(keys) != len(secrets):
        raise typer.BadParameter("give one --api-secret per --api-key")
    files = {pair: Path(f) for pair, f in _kv(data or [], "--data").items()} or DEFAULT_DATA
    balances = {ASSET_CODES.get(a.upper(), a): float(v) for a, v in _kv(balance or ["USD=10000"], "--balance").items()}
    handle = make_emulator(files, balances, port=port, seconds_per_candle=seconds_per_candle or None,
                           tier=RATE_TIERS[tier])
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
def serve(params_file: ParamsOpt = Path("params.yaml")) -> None:
    """Serve the scheduled deployments (weekly retrain, daily A/B promotion, manual pipeline)."""
    _params(params_file)
    from flows.serve import serve_all

    serve_all(params_file=str(params_file), data_dir=str(_paths().root))


@app.command()
def backtest(
    pair: Annotated[list[str] | None, typer.Option(help="pair(s) from params.yaml; default: all")] = None,
    model: Annotated[str, typer.Option(help="champion | challenger | previous | <version>")] = "champion",
    start: Annotated[str | None, typer.Option("--from", help="first traded candle (UTC); "
                                              "default: after the model's training window")] = None,
    end: Annotated[str | None, typer.Option("--to", help="last candle (UTC)")] = None,
    out: Annotated[Path, typer.Option(help="folder for backtest.json and backtest.html")] = Path("data/reports"),
    params_file: ParamsOpt = Path("params.yaml"),
) -> None:
    """Backtest a registered model on the trader's engine; write JSON and a self-contained HTML report."""
    from trader.replay import backtest as run
    from trader.report import write_reports

    params = _params(params_file)
    try:
        result, trading, first = run(params, pair or [], model, start, end)
    except (LookupError, ValueError) as err:
        console.print(f"[red]error:[/red] {err}")
        raise typer.Exit(2) from None
    title = f"backtest {trading.name} v{trading.version} ({model}) from {first}"
    json_path, html_path = write_reports(result, out, title, {"pairs": ", ".join(pair or params.pairs),
                                                               "from": first, "to": end or "end of data"})
    m = result.metrics
    console.print(f"{title}: net {m['net_return']:+.2%}, max drawdown {m['max_drawdown']:.2%}, "
                  f"Sharpe {m['sharpe']:.2f}, {int(m['n_round_trips'])} round trips → {json_path}, {html_path}")


@app.command()
def ingest(
    pair: Annotated[list[str] | None, typer.Option(help="pair(s), e.g. XRP/USD; default: params.yaml pairs")] = None,
    timeframe: Annotated[list[str] | None, typer.Option(help="1h, 5m, …; default: params.yaml ingest.timeframes")]
    = None,
    since: Annotated[str | None, typer.Option(help="backfill from this UTC time (e.g. 2024-01-01); older than "
                                              "Kraken's 720-candle window → rebuilt from public Trades")] = None,
    url: Annotated[str | None, typer.Option(help="Kraken or emulator URL; default KRAKENFLOW_KRAKEN_URL")] = None,
    params_file: ParamsOpt = Path("params.yaml"),
) -> None:
    """Ingest Kraken candles into the store: OHLC window, then Trades backfill of older gaps (quality-gated)."""
    from cli.ingest_cmd import run_ingest

    run_ingest(console, _params(params_file), _paths(), pair or [], timeframe or [], since, url)


@app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(help="Kraken OHLCVT CSV, Kraken trades CSV (needs --timeframe), "
                                         "CryptoDataDownload CSV, freqtrade feather/parquet/json")],
    pair: Annotated[str | None, typer.Option(help="the pair these candles are, e.g. XRP/USD; default: the file's "
                                             "symbol column (--pair then only confirms it)")] = None,
    timeframe: Annotated[str | None, typer.Option(help="default: inferred from the candle spacing")] = None,
    params_file: ParamsOpt = Path("params.yaml"),
) -> None:
    """Import a history file into the candle store (quality-gated; stored candles are never changed)."""
    from cli.ingest_cmd import run_import

    run_import(console, _params(params_file), _paths(), file, pair, timeframe)


@app.command()
def dashboard(
    ledger: Annotated[str | None, typer.Option(help="ledger URL (sqlite:///… or postgresql://…) or a SQLite "
                                               "file; default: KRAKENFLOW_LEDGER_URL or .krakenflow/ledger.db")] = None,
    host: Annotated[str, typer.Option(help="interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port")] = 8050,
    params_file: ParamsOpt = Path("params.yaml"),
) -> None:
    """Serve a trader's ledger: decisions with the model version that took them, fills, positions, audit
    trail; plus /status (JSON) and /metrics (Prometheus). Read-only."""
    import uvicorn

    from core.settings import Settings
    from trader.api import make_app
    from trader.ledger import Ledger
    from trader.status import snapshot

    params = _params(params_file)
    url = ledger or Settings().ledger_uri
    if "://" not in url:
        url = f"sqlite:///{Path(url).resolve()}"
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        console.print(f"[red]error:[/red] no ledger at {url}: run a trader first (e.g. `make demo`) or pass --ledger")
        raise typer.Exit(2)
    book = Ledger(url)
    console.print(f"dashboard of {url} on http://{host}:{port}/ (also /status, /metrics); Ctrl-C stops it")
    uvicorn.run(make_app(lambda: snapshot(book, params.pairs), "krakenflow ledger"), host=host, port=port,
                log_level="warning")


@app.command()
def demo(params_file: ParamsOpt = Path("params.yaml")) -> None:
    """The whole product on the bundled real candles: pipeline flow → @champion → paper trader."""
    from cli.demo import run_demo

    run_demo(console, params_file)


def main() -> None:
    prepare_environment()
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    main()
