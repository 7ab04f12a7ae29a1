"""Plotly figures for the console, as JSON the page hands to the plotly.js shipped inside the plotly package
(served at /static/plotly.min.js: no CDN, works offline)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pandas as pd
import plotly.graph_objects as go
from plotly.utils import PlotlyJSONEncoder

LAYOUT: dict[str, Any] = {"margin": {"l": 50, "r": 20, "t": 30, "b": 40}, "height": 320, "template": "plotly_white",
                          "legend": {"orientation": "h", "y": 1.12}}


def _json(fig: go.Figure) -> str:
    return json.dumps(fig.to_plotly_json(), cls=PlotlyJSONEncoder)


def _dates(ts: Sequence[int]) -> list[pd.Timestamp]:
    return list(pd.to_datetime(list(ts), unit="ms", utc=True))


def equity_figure(ts: Sequence[int], equity: Sequence[float], drawdown_pct: Sequence[float]) -> str:
    """Equity (USD) and, below it on its own axis, the drawdown from the running peak (%)."""
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=_dates(ts), y=list(equity), name="equity (USD)", line={"color": "#1f77b4"}))
    fig.add_trace(go.Scatter(x=_dates(ts), y=list(drawdown_pct), name="drawdown (%)", yaxis="y2", fill="tozeroy",
                             line={"color": "#d62728", "width": 1}))
    fig.update_layout(**LAYOUT, yaxis={"title": "USD", "domain": [0.35, 1]},
                      yaxis2={"title": "drawdown %", "domain": [0, 0.28], "anchor": "x"})
    return _json(fig)


def candles_figure(candles: pd.DataFrame, fills: Sequence[dict[str, Any]], decisions: Sequence[dict[str, Any]],
                   pair: str) -> str:
    """Candles of one pair with the trader's entries and exits, and the model's probability under them."""
    fig = go.Figure()
    if len(candles):
        fig.add_trace(go.Candlestick(x=candles["date"], open=candles["open"], high=candles["high"],
                                     low=candles["low"], close=candles["close"], name=pair))
    for side, symbol, colour in (("buy", "triangle-up", "#2ca02c"), ("sell", "triangle-down", "#d62728")):
        picked = [f for f in fills if f["side"] == side]
        if picked:
            fig.add_trace(go.Scatter(x=_dates([f["ts"] for f in picked]), y=[f["price"] for f in picked],
                                     mode="markers", name=f"{side}s", marker={"symbol": symbol, "size": 11,
                                                                              "color": colour}))
    scored = [d for d in decisions if d["prob"] is not None and d["prob"] == d["prob"]]
    if scored:
        fig.add_trace(go.Scatter(x=_dates([d["ts"] for d in scored]), y=[d["prob"] for d in scored],
                                 name="model probability", yaxis="y2", line={"color": "#9467bd", "width": 1}))
    fig.update_layout(**{**LAYOUT, "height": 460}, xaxis={"rangeslider": {"visible": False}},
                      yaxis={"title": "USD", "domain": [0.3, 1]},
                      yaxis2={"title": "probability", "domain": [0, 0.24], "range": [0, 1], "anchor": "x"})
    return _json(fig)


def drift_figure(history: Sequence[dict[str, Any]], threshold: float) -> str:
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=[h["at"] for h in history], y=[h["share"] for h in history], mode="lines+markers",
                             name="drifted share of columns",
                             marker={"color": ["#d62728" if h["drifted"] else "#1f77b4" for h in history]}))
    fig.add_hline(y=threshold, line_dash="dot", annotation_text=f"retrain at {threshold:.0%}")
    fig.update_layout(**LAYOUT, yaxis={"title": "share", "range": [0, 1]})
    return _json(fig)
