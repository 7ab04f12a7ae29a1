"""The backtest report: what a run did next to the baselines it must beat, as plain data, then written as HTML,
JSON and Markdown.

`report_model` is pure: the engine's equity and fills plus the candles they traded become curves (the model,
buy-and-hold of each pair, staying flat, a naive momentum rule — same candles, same taker fee), the drawdown
from the running peak, trade markers, a per-pair trade table (as Freqtrade's backtest table), monthly returns
and metrics with their units. `write_reports` is the edge that renders and writes the files
(trader.report_render: Jinja2 templates, plotly.js inlined, so the HTML opens offline).

Units: equity and profits in quote currency (USD); returns and drawdowns are fractions in the model and
percent in the rendered text; times are epoch milliseconds (UTC).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from core.metrics import max_drawdown, period_returns, sharpe, total_return
from core.types import Candle, Fill, Side
from models.evaluate import buy_and_hold_equity, momentum_probability
from trader.backtest import BacktestResult

Unit = Literal["%", "USD", "count", "ratio"]
MODEL = "model"
FLAT = "flat"


@dataclass(frozen=True)
class Curve:
    """One strategy's equity (USD) marked at the close of each candle of the report's clock."""

    name: str
    ts: tuple[int, ...]
    equity: tuple[float, ...]


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    value: float | None
    unit: Unit
    text: str
    """The value as read: "+12.34 %", "1,234.56 USD", "20", "1.05"; "n/a" for a missing or non-finite value."""


@dataclass(frozen=True)
class StrategyRow:
    """One curve's headline numbers, so the model sits in one table with its baselines."""

    name: str
    metrics: tuple[Metric, ...]


@dataclass(frozen=True)
class TradeMarker:
    """A fill, placed on the equity chart at the equity marked when it happened."""

    ts: int
    pair: str
    side: str
    price: float
    quantity: float
    fee: float
    equity: float


@dataclass(frozen=True)
class RoundTrip:
    """A closed trade of one pair: from the fill that left a flat position to the fill that made it flat again.
    `cost` is what was paid in (buys plus buy fees, USD); `profit` is net of every fee (USD)."""

    pair: str
    opened: int
    closed: int
    cost: float
    profit: float

    @property
    def profit_fraction(self) -> float:
        return self.profit / self.cost if self.cost else 0.0


@dataclass(frozen=True)
class PairRow:
    """Freqtrade's backtest table row: closed trades, win share, mean profit per trade (fraction of its cost),
    total profit (USD and fraction of starting cash), mean holding time (hours)."""

    pair: str
    trades: int
    win_fraction: float
    avg_profit_fraction: float
    total_profit_usd: float
    total_profit_fraction: float
    avg_duration_h: float
    cells: tuple[str, ...] = ()
    """The row as displayed, in PAIR_COLUMNS order."""


PAIR_COLUMNS = ("pair", "trades", "win %", "avg profit %", "total profit USD", "total profit %", "avg duration")


@dataclass(frozen=True)
class MonthRow:
    month: str
    """UTC calendar month, "2025-03"."""
    returns: tuple[float | None, ...]
    """Return of each curve over the month (fraction), in the report's curve order; None = no mark that month."""
    cells: tuple[str, ...] = ()


@dataclass(frozen=True)
class BacktestReport:
    title: str
    context: tuple[tuple[str, str], ...]
    metrics: tuple[Metric, ...]
    curves: tuple[Curve, ...]
    """The model first, then the baselines."""
    strategies: tuple[StrategyRow, ...]
    drawdown: tuple[Curve, ...]
    """Drawdown from the running peak of the model and of each buy-and-hold (fraction, ≥ 0), on the same clock."""
    markers: tuple[TradeMarker, ...]
    pairs: tuple[PairRow, ...]
    """One row per traded pair, then a TOTAL row."""
    months: tuple[MonthRow, ...]
    notes: tuple[str, ...] = field(default=())


# ---- metrics with units ---------------------------------------------------------------------------

_KNOWN: dict[str, tuple[str, Unit]] = {
    "net_return": ("net return", "%"),
    "max_drawdown": ("max drawdown (peak to trough)", "%"),
    "sharpe": ("Sharpe ratio (annualised)", "ratio"),
    "n_fills": ("fills", "count"),
    "n_round_trips": ("round trips (sells)", "count"),
    "fees_paid": ("fees paid", "USD"),
    "final_equity": ("final equity", "USD"),
    "kill_switch_trips": ("loss-limit halts", "count"),
}


def unit_of(key: str) -> tuple[str, Unit]:
    """The label and unit of a metric key (the engine's names, else guessed from the name's ending)."""
    if key in _KNOWN:
        return _KNOWN[key]
    label = key.replace("_", " ")
    if key.endswith(("return", "drawdown", "hit_rate", "fraction", "share")):
        return label, "%"
    if key.startswith("n_") or key.endswith(("trips", "trades", "count", "rows")):
        return label, "count"
    if key.endswith(("equity", "paid", "usd", "cash", "profit")):
        return label, "USD"
    return label, "ratio"


def format_value(value: float | None, unit: Unit, signed: bool = False) -> str:
    if value is None or not math.isfinite(value):
        return "n/a"
    if unit == "%":
        return f"{value * 100:+.2f} %" if signed else f"{value * 100:.2f} %"
    if unit == "USD":
        return f"{value:+,.2f} USD" if signed else f"{value:,.2f} USD"
    if unit == "count":
        return f"{round(value):d}"
    return f"{value:.2f}"


def format_metric(key: str, value: float | None) -> Metric:
    label, unit = unit_of(key)
    return Metric(key, label, value, unit, format_value(value, unit, signed=key == "net_return"))


# ---- baselines on the report's clock (pure, vectorised, the run's taker fee) ----------------------

def closes_on_clock(candles: Sequence[Candle], ts: np.ndarray) -> np.ndarray:
    """Close of each pair's latest candle opened at or before each clock time (a missing candle keeps the
    previous close); before the pair's first candle its first close stands in (holding it costs nothing)."""
    opens = np.fromiter((c.ts for c in candles), np.int64, len(candles))
    closes = np.fromiter((c.close for c in candles), np.float64, len(candles))
    at = np.searchsorted(opens, ts, side="right") - 1
    return np.asarray(closes[np.clip(at, 0, None)])


def buy_and_hold_curve(closes: np.ndarray, cash: float, taker_fee: float) -> np.ndarray:
    """All of `cash` into one pair at the first close, out at the last, taker fee both ways."""
    if closes.size < 2:
        return np.full(closes.size, float(cash))
    return buy_and_hold_equity(closes.reshape(-1, 1), cash, taker_fee)[0]


def momentum_curve(closes: np.ndarray, cash: float, taker_fee: float, lookback: int) -> np.ndarray:
    """All of `cash` long over the next candle while the close is above its value `lookback` candles before,
    flat otherwise; each switch pays the taker fee on the equity switched, and a position still open at the
    end pays its exit fee on the last candle (as buy-and-hold). Signals use closes up to the decision only."""
    c = np.asarray(closes, dtype=np.float64)
    long = np.nan_to_num(momentum_probability(c, lookback)) > 0.5
    equity = np.empty(c.size)
    value = float(cash)
    for i in range(c.size):
        if i and long[i - 1]:
            value *= c[i] / c[i - 1]
        was_long = bool(long[i - 1]) if i else False
        if bool(long[i]) != was_long:
            value *= 1.0 - taker_fee
        equity[i] = value
    if c.size and long[-1]:
        equity[-1] *= 1.0 - taker_fee
    return equity


def drawdown_series(equity: Sequence[float] | np.ndarray) -> np.ndarray:
    """Fall from the running peak at each mark, as a fraction of that peak (0 at a new high)."""
    eq = np.asarray(equity, dtype=np.float64)
    if eq.size == 0:
        return eq
    peaks = np.maximum.accumulate(eq)
    return np.asarray((peaks - eq) / peaks)


def baseline_curves(candles: Mapping[str, Sequence[Candle]], ts: Sequence[int], cash: float, taker_fee: float,
                    lookback: int) -> list[Curve]:
    """Buy-and-hold of each pair (and equal-weight when several), momentum over equal sleeves, flat."""
    clock = np.asarray(ts, dtype=np.int64)
    traded = {pair: closes_on_clock(seq, clock) for pair, seq in sorted(candles.items()) if seq}
    key = tuple(int(t) for t in clock)
    curves = [Curve(f"buy & hold {pair}", key, tuple(buy_and_hold_curve(c, cash, taker_fee).tolist()))
              for pair, c in traded.items()]
    if len(traded) > 1 and clock.size >= 2:
        weighted, _ = buy_and_hold_equity(np.column_stack(list(traded.values())), cash, taker_fee)
        curves.append(Curve("buy & hold (equal weight)", key, tuple(weighted.tolist())))
    if traded:
        sleeve = cash / len(traded)
        momentum = sum(momentum_curve(c, sleeve, taker_fee, lookback) for c in traded.values())
        curves.append(Curve(f"momentum ({lookback} candles)", key, tuple(np.asarray(momentum).tolist())))
    curves.append(Curve(FLAT, key, (float(cash),) * clock.size))
    return curves


def periods_per_year_of(ts: Sequence[int]) -> float:
    """Marks per 365 days from the median spacing of the clock (how the Sharpe ratio is annualised)."""
    if len(ts) < 2:
        return 1.0
    step = float(np.median(np.diff(np.asarray(ts, dtype=np.float64))))
    return 365 * 86_400_000 / step if step > 0 else 1.0


def strategy_row(curve: Curve, periods_per_year: float) -> StrategyRow:
    eq = np.asarray(curve.equity, dtype=np.float64)
    final = float(eq[-1]) if eq.size else None
    return StrategyRow(curve.name, (
        format_metric("net_return", total_return(eq)),
        format_metric("max_drawdown", max_drawdown(eq)),
        format_metric("sharpe", sharpe(period_returns(eq), periods_per_year)),
        format_metric("final_equity", final),
    ))


STRATEGY_COLUMNS = ("strategy", "net return", "max drawdown", "Sharpe", "final equity")


# ---- trades -----------------------------------------------------------------------------------------

def round_trips(fills: Sequence[Fill]) -> list[RoundTrip]:
    """Closed trades per pair, in closing order (fills in time order; partial fills add up). A trade still
    open at the end is not counted, as in models.evaluate.round_trip_pnls."""
    position: dict[str, float] = {}
    opened: dict[str, tuple[int, float, float]] = {}  # pair -> (open ts, cost paid in, cash flow so far)
    out: list[RoundTrip] = []
    for f in fills:
        qty = f.quantity if f.side is Side.BUY else -f.quantity
        start, cost, flow = opened.get(f.pair, (f.ts, 0.0, 0.0))
        cost += f.quantity * f.price + f.fee if f.side is Side.BUY else 0.0
        flow += -qty * f.price - f.fee
        position[f.pair] = position.get(f.pair, 0.0) + qty
        if abs(position[f.pair]) <= 1e-9 * max(f.quantity, 1.0):
            out.append(RoundTrip(f.pair, start, f.ts, cost, flow))
            position[f.pair] = 0.0
            opened.pop(f.pair, None)
        else:
            opened[f.pair] = (start, cost, flow)
    return out


def format_duration(hours: float) -> str:
    if not math.isfinite(hours) or hours <= 0:
        return "-"
    whole_minutes = round(hours * 60)
    days, rest = divmod(whole_minutes, 24 * 60)
    h, m = divmod(rest, 60)
    return f"{days} d {h} h" if days else f"{h} h {m:02d} min"


def pair_row(pair: str, trips: Sequence[RoundTrip], starting_cash: float) -> PairRow:
    n = len(trips)
    profit = sum(t.profit for t in trips)
    wins = sum(1 for t in trips if t.profit > 0) / n if n else 0.0
    avg = sum(t.profit_fraction for t in trips) / n if n else 0.0
    hours = sum(t.closed - t.opened for t in trips) / n / 3_600_000 if n else 0.0
    total = profit / starting_cash if starting_cash else 0.0
    cells = (pair, str(n), format_value(wins, "%"), format_value(avg, "%", True), format_value(profit, "USD", True),
             format_value(total, "%", True), format_duration(hours))
    return PairRow(pair, n, wins, avg, profit, total, hours, cells)


def pair_table(fills: Sequence[Fill], pairs: Sequence[str], starting_cash: float) -> tuple[PairRow, ...]:
    trips = round_trips(fills)
    rows = [pair_row(p, [t for t in trips if t.pair == p], starting_cash) for p in sorted(set(pairs))]
    return (*rows, pair_row("TOTAL", trips, starting_cash))


def trade_markers(fills: Sequence[Fill], ts: Sequence[int], equity: Sequence[float]) -> tuple[TradeMarker, ...]:
    clock = np.asarray(ts, dtype=np.int64)
    out = []
    for f in fills:
        at = int(np.clip(np.searchsorted(clock, f.ts, side="right") - 1, 0, max(len(equity) - 1, 0)))
        out.append(TradeMarker(f.ts, f.pair, f.side.value, f.price, f.quantity, f.fee,
                               float(equity[at]) if len(equity) else 0.0))
    return tuple(out)


# ---- calendar ---------------------------------------------------------------------------------------

def month_of(ts_ms: int) -> str:
    return time.strftime("%Y-%m", time.gmtime(ts_ms / 1000))


def monthly_returns(curves: Sequence[Curve]) -> tuple[MonthRow, ...]:
    """Each curve's return per UTC month: last mark of the month over the last mark before it (the first
    month over the first mark)."""
    if not curves or not curves[0].ts:
        return ()
    months = [month_of(t) for t in curves[0].ts]
    last_index = {m: i for i, m in enumerate(months)}
    rows = []
    previous = 0
    for month, end in last_index.items():
        returns = tuple(c.equity[end] / c.equity[previous] - 1.0 if c.equity[previous] else None for c in curves)
        rows.append(MonthRow(month, returns, (month, *(format_value(r, "%", True) for r in returns))))
        previous = end
    return tuple(rows)


# ---- the model --------------------------------------------------------------------------------------

def report_model(result: BacktestResult, title: str, context: Mapping[str, object], *,
                 candles: Mapping[str, Sequence[Candle]] | None = None, taker_fee: float = 0.0,
                 starting_cash: float | None = None, momentum_lookback: int = 24,
                 momentum: Sequence[float] | None = None) -> BacktestReport:
    """Everything the report shows, computed from the run and the candles it traded (no I/O).

    Without `candles` only the flat baseline can be drawn (a note says so). `momentum`, when given, is the
    momentum baseline's equity as the engine traded it on the same clock (the evaluate stage's), replacing the
    vectorised rule so the report and metrics.json agree."""
    cash = float(starting_cash if starting_cash is not None else (result.equity[0] if result.equity else 0.0))
    ts = tuple(result.equity_ts)
    model = Curve(MODEL, ts, tuple(result.equity))
    baselines = baseline_curves(candles or {}, ts, cash, taker_fee, momentum_lookback)
    if momentum is not None:
        named = f"momentum ({momentum_lookback} candles, engine)"
        baselines = [c for c in baselines if not c.name.startswith("momentum")]
        baselines.insert(-1, Curve(named, ts, tuple(float(v) for v in momentum)))
    curves = (model, *baselines)
    ppy = periods_per_year_of(ts)
    notes = () if candles else ("no candles were given: buy-and-hold and momentum baselines are not drawn",)
    held = [c for c in curves if c.name == MODEL or c.name.startswith("buy & hold")]
    traded_pairs = [*(candles or {}), *(f.pair for f in result.fills)]
    return BacktestReport(
        title=title,
        context=tuple((str(k), str(v)) for k, v in context.items()),
        metrics=tuple(format_metric(k, v) for k, v in result.metrics.items()),
        curves=curves,
        strategies=tuple(strategy_row(c, ppy) for c in curves),
        drawdown=tuple(Curve(c.name, ts, tuple(drawdown_series(c.equity).tolist())) for c in held),
        markers=trade_markers(result.fills, ts, result.equity),
        pairs=pair_table(result.fills, traded_pairs, cash),
        months=monthly_returns(curves),
        notes=notes,
    )


# ---- the edge ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ReportFiles:
    json: Path
    html: Path
    markdown: Path


def write_reports(result: BacktestResult, out_dir: Path, title: str, context: Mapping[str, object], *,
                  candles: Mapping[str, Sequence[Candle]] | None = None, taker_fee: float = 0.0,
                  starting_cash: float | None = None, momentum_lookback: int = 24,
                  momentum: Sequence[float] | None = None, stem: str = "backtest") -> ReportFiles:
    """Write `<stem>.json`, `<stem>.html` (self-contained: opens offline) and `<stem>.md` into `out_dir`."""
    from core.files import write_atomic
    from trader.report_render import render_html, render_json, render_markdown

    report = report_model(result, title, context, candles=candles, taker_fee=taker_fee, starting_cash=starting_cash,
                          momentum_lookback=momentum_lookback, momentum=momentum)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = ReportFiles(out_dir / f"{stem}.json", out_dir / f"{stem}.html", out_dir / f"{stem}.md")
    for path, text in ((files.json, render_json(report, result)), (files.html, render_html(report)),
                       (files.markdown, render_markdown(report))):
        write_atomic(path, lambda tmp, text=text: tmp.write_text(text, encoding="utf-8"))  # type: ignore[misc]
    return files
