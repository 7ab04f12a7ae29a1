"""Plotly figures for the console, as JSON the page hands to the plotly.js shipped inside the plotly package
(served at /static/plotly.min.js: no CDN, works offline). Built as plain figure dicts (plotly's own schema)
rather than graph_objects, whose validation costs seconds on long series; series are thinned to MAX_POINTS."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

import pandas as pd

MAX_POINTS = 3000
"""Points per line a chart draws: more is invisible at page width and slows the browser."""
LAYOUT: dict[str, Any] = {"margin": {"l": 55, "r": 20, "t": 30, "b": 40}, "height": 320,
                          "legend": {"orientation": "h", "y": 1.12}, "paper_bgcolor": "#fff", "plot_bgcolor": "#fff",
                          "xaxis": {"type": "date", "gridcolor": "#eee"}}


def thin(n: int, keep: Sequence[int] = ()) -> list[int]:
    """Indices of at most ~MAX_POINTS evenly spread points of n, always with the last one and `keep`."""
    step = max(1, -(-n // MAX_POINTS))
    return sorted({*range(0, n, step), *(i for i in keep if 0 <= i < n), n - 1}) if n else []


def _iso(ts: Sequence[int]) -> list[str]:
    return [time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t / 1000)) for t in ts]


def _json(data: list[dict[str, Any]], layout: dict[str, Any]) -> str:
    return json.dumps({"data": data, "layout": layout}, default=str)


def equity_figure(ts: Sequence[int], equity: Sequence[float], drawdown_pct: Sequence[float]) -> str:
    """Equity (USD) and, below it on its own axis, the drawdown from the running peak (%); the deepest
    drawdown point is always drawn."""
    deepest = min(range(len(drawdown_pct)), key=drawdown_pct.__getitem__) if drawdown_pct else 0
    idx = thin(len(ts), [deepest])
    x = _iso([ts[i] for i in idx])
    return _json([
        {"type": "scatter", "x": x, "y": [equity[i] for i in idx], "name": "equity (USD)",
         "line": {"color": "#1f77b4"}},
        {"type": "scatter", "x": x, "y": [drawdown_pct[i] for i in idx], "name": "drawdown (%)", "yaxis": "y2",
         "fill": "tozeroy", "line": {"color": "#d62728", "width": 1}},
    ], {**LAYOUT, "yaxis": {"title": {"text": "USD"}, "domain": [0.35, 1], "gridcolor": "#eee"},
        "yaxis2": {"title": {"text": "drawdown %"}, "domain": [0, 0.28], "anchor": "x", "gridcolor": "#eee"}})


def candles_figure(candles: pd.DataFrame, fills: Sequence[dict[str, Any]], decisions: Sequence[dict[str, Any]],
                   pair: str) -> str:
    """Candles of one pair with the trader's entries and exits, and the model's probability under them."""
    data: list[dict[str, Any]] = []
    if len(candles):
        data.append({"type": "candlestick", "name": pair, "x": [str(d) for d in candles["date"]],
                     "open": candles["open"].tolist(), "high": candles["high"].tolist(),
                     "low": candles["low"].tolist(), "close": candles["close"].tolist()})
    for side, symbol, colour in (("buy", "triangle-up", "#2ca02c"), ("sell", "triangle-down", "#d62728")):
        picked = [f for f in fills if f["side"] == side]
        if picked:
            data.append({"type": "scatter", "mode": "markers", "name": f"{side}s", "x": _iso([f["ts"] for f in picked]),
                         "y": [f["price"] for f in picked],
                         "marker": {"symbol": symbol, "size": 11, "color": colour}})
    scored = sorted((d for d in decisions if d["prob"] is not None and d["prob"] == d["prob"]), key=lambda d: d["ts"])
    if scored:
        data.append({"type": "scatter", "name": "model probability", "yaxis": "y2",
                     "x": _iso([d["ts"] for d in scored]), "y": [d["prob"] for d in scored],
                     "line": {"color": "#9467bd", "width": 1}})
    return _json(data, {**LAYOUT, "height": 460, "xaxis": {**LAYOUT["xaxis"], "rangeslider": {"visible": False}},
                        "yaxis": {"title": {"text": "USD"}, "domain": [0.3, 1], "gridcolor": "#eee"},
                        "yaxis2": {"title": {"text": "probability"}, "domain": [0, 0.24], "range": [0, 1],
                                   "anchor": "x", "gridcolor": "#eee"}})


def drift_figure(history: Sequence[dict[str, Any]], threshold: float) -> str:
    xs = [h["at"] for h in history]
    return _json([
        {"type": "scatter", "mode": "lines+markers", "name": "drifted share of columns", "x": xs,
         "y": [h["share"] for h in history],
         "marker": {"color": ["#d62728" if h["drifted"] else "#1f77b4" for h in history], "size": 8}},
        {"type": "scatter", "mode": "lines", "name": f"retrain at {threshold:.0%}", "x": [xs[0], xs[-1]] if xs else [],
         "y": [threshold, threshold], "line": {"dash": "dot", "color": "#777"}},
    ], {**LAYOUT, "yaxis": {"title": {"text": "share"}, "range": [0, 1], "gridcolor": "#eee"}})
