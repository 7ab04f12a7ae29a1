"""What the CLI prints and how it loads params: shared by every command and the demo (no command imports
another command's module)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from cli.env import use_project

console = Console()


def load_params_or_exit(path: Path | None) -> Any:
    """Load `path` (default: the project's params.yaml, found from any directory: cli.env.use_project); a pair
    the instrument table does not hold is refused here, before any command starts, rather than as a KeyError
    deep in live trading."""
    from core.params import ParamsError, load_params
    from core.settings import ProjectNotFound
    from market.instruments import UnknownPairError, bundled

    try:
        path = use_project(path)
    except ProjectNotFound as err:
        console.print(f"[red]error:[/red] {err}")
        raise typer.Exit(2) from None
    try:
        params = load_params(path)
        bundled().require(params.pairs)
    except ParamsError as err:
        console.print(f"[red]error:[/red] {err}")
        raise typer.Exit(2) from None
    except UnknownPairError as err:
        console.print(f"[red]error:[/red] {path}: pairs: {err}")
        raise typer.Exit(2) from None
    return params


def print_ab(o: dict[str, Any]) -> None:
    if o["champion_before"] is None:
        console.print(f"no @champion yet: v{o['challenger']} becomes @champion (nothing to compare against)")
        return
    console.print(
        f"A/B champion v{o['champion_before']} vs challenger v{o['challenger']} on candles from {o['shadow_from']}: "
        f"[bold]{o['decision']}[/bold] (p-value {o['p_value']:.4g}, effect {o['effect'] * 1e4:+.2f} bp/candle, "
        f"{o['n_periods']} paired candles, {o['challenger_trades']} challenger trades) — {o['reason']}; "
        f"@champion is v{o['champion_after']}"
    )


def print_trained(result: dict[str, Any]) -> None:
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
        f"buy & hold {m['baseline_buy_and_hold_net_return']:+.2%}, flat +0.00%"
        + (f", momentum {momentum:+.2%}" if momentum is not None else "")
    )
    console.print(f"verdict: {verdict(m)}")
    console.print(f"registered version {result['version']} as @challenger")


def print_pipeline(result: dict[str, Any]) -> None:
    print_trained(result)
    print_ab(result["promotion"])


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
