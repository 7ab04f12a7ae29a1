"""The backtest report (trader.report's model) as HTML, JSON and Markdown text. Pure: text in, nothing written.

The HTML comes from a Jinja2 template with the plotly.js that ships inside the plotly package inlined once
(`plotly.offline.get_plotlyjs()`, ~3.6 MB), so the file opens from disk with no network: no CDN, no MathJax.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from dataclasses import asdict
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from trader.backtest import BacktestResult
from trader.report import MODEL, PAIR_COLUMNS, STRATEGY_COLUMNS, BacktestReport, Curve, TradeMarker

TEMPLATES = Path(__file__).resolve().parent / "templates"
FILLS_SHOWN = 200
PLOTLY_CONFIG = {"displaylogo": False, "responsive": True}
LAYOUT: dict[str, Any] = {"template": "plotly_white", "margin": {"l": 60, "r": 20, "t": 40, "b": 40},
                          "legend": {"orientation": "h", "y": -0.15}, "hovermode": "x unified"}
COLOURS = {MODEL: "#1f77b4", "flat": "#7f7f7f"}


@lru_cache(maxsize=1)
def _environment() -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html.j2"]),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters["utc"] = utc
    return env


def utc(ts_ms: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(ts_ms / 1000))


def _dates(ts: Sequence[int]) -> list[str]:
    return [utc(t) for t in ts]


def _line(curve: Curve, scale: float = 1.0) -> dict[str, Any]:
    model = curve.name == MODEL
    line: dict[str, Any] = {"width": 2.2 if model else 1.2}
    if curve.name in COLOURS:
        line["color"] = COLOURS[curve.name]
    if curve.name == "flat":
        line["dash"] = "dot"
    return {"type": "scatter", "mode": "lines", "name": curve.name, "x": _dates(curve.ts),
            "y": [v * scale for v in curve.equity], "line": line}


def _markers(markers: Sequence[TradeMarker], side: str, symbol: str, colour: str) -> dict[str, Any]:
    picked = [m for m in markers if m.side == side]
    return {"type": "scatter", "mode": "markers", "name": f"{side}s ({len(picked)})",
            "x": _dates([m.ts for m in picked]), "y": [m.equity for m in picked],
            "marker": {"symbol": symbol, "size": 9, "color": colour},
            "text": [f"{m.side} {m.quantity:,.4f} {m.pair} @ {m.price:.6g}, fee {m.fee:.2f} USD" for m in picked],
            "hovertemplate": "%{text}<extra></extra>"}


def equity_figure(report: BacktestReport) -> dict[str, Any]:
    traces = [_line(c) for c in report.curves]
    traces += [_markers(report.markers, "buy", "triangle-up", "#2ca02c"),
               _markers(report.markers, "sell", "triangle-down", "#d62728")]
    return {"data": traces, "layout": {**LAYOUT, "height": 460, "title": {"text": "equity vs baselines (USD)"},
                                       "yaxis": {"title": {"text": "USD"}}}}


def drawdown_figure(report: BacktestReport) -> dict[str, Any]:
    traces = [{**_line(c, -100.0), **({"fill": "tozeroy"} if c.name == MODEL else {})} for c in report.drawdown]
    return {"data": traces, "layout": {**LAYOUT, "height": 300, "title": {"text": "drawdown from the running peak (%)"},
                                       "yaxis": {"title": {"text": "%"}, "ticksuffix": " %"}}}


def monthly_figure(report: BacktestReport) -> dict[str, Any]:
    months = [row.month for row in report.months]
    traces = [{"type": "bar", "name": curve.name, "x": months,
               "y": [None if (r := row.returns[k]) is None else r * 100 for row in report.months]}
              for k, curve in enumerate(report.curves) if curve.name != "flat"]
    return {"data": traces, "layout": {**LAYOUT, "height": 320, "barmode": "group", "hovermode": "closest",
                                       "title": {"text": "monthly returns (%)"}, "xaxis": {"type": "category"},
                                       "yaxis": {"title": {"text": "%"}, "ticksuffix": " %"}}}


def _finite(value: Any) -> Any:
    """JSON has no NaN or infinity: they become null."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _figures(report: BacktestReport) -> dict[str, str]:
    from plotly.utils import PlotlyJSONEncoder

    return {name: json.dumps(_finite(fig), cls=PlotlyJSONEncoder).replace("</", "<\\/") for name, fig in
            (("equity", equity_figure(report)), ("drawdown", drawdown_figure(report)),
             ("monthly", monthly_figure(report)))}


@lru_cache(maxsize=1)
def plotly_js() -> str:
    """plotly.min.js as shipped inside the Python plotly package (read from disk, never fetched)."""
    from plotly.offline import get_plotlyjs

    return str(get_plotlyjs())


def render_html(report: BacktestReport) -> str:
    fills = report.markers[-FILLS_SHOWN:]
    return _environment().get_template("backtest_report.html.j2").render(
        report=report, figures=_figures(report), plotly_js=plotly_js(), config=json.dumps(PLOTLY_CONFIG),
        pair_columns=PAIR_COLUMNS, strategy_columns=STRATEGY_COLUMNS, fills=fills)


def render_markdown(report: BacktestReport) -> str:
    return _environment().get_template("backtest_report.md.j2").render(
        report=report, pair_columns=PAIR_COLUMNS, strategy_columns=STRATEGY_COLUMNS)


def render_json(report: BacktestReport, result: BacktestResult) -> str:
    """The report model as JSON, plus the run's raw numbers (metrics as floats, every fill, the equity marks)."""
    body = asdict(report)
    curves, drawdown, formatted = body.pop("curves"), body.pop("drawdown"), body.pop("metrics")
    data = {
        **body,
        "context": dict(report.context),
        "metrics": dict(result.metrics),
        "metrics_formatted": formatted,
        "ts": list(result.equity_ts),
        "curves": {c["name"]: c["equity"] for c in curves},
        "drawdown": {d["name"]: d["equity"] for d in drawdown},
        "fills": [{**asdict(f), "side": f.side.value} for f in result.fills],
        "equity": [{"ts": t, "equity": e} for t, e in zip(result.equity_ts, result.equity, strict=True)],
    }
    return json.dumps(_finite(data), indent=1)
