"""Backtest results to JSON and a self-contained HTML page (inline SVG equity curve, no scripts)."""

from __future__ import annotations

import html
import json
import time
from dataclasses import asdict
from pathlib import Path

from trader.backtest import BacktestResult


def _svg_equity(ts: list[int], equity: list[float], width: int = 900, height: int = 260) -> str:
    if len(equity) < 2:
        return "<p>not enough candles for a curve</p>"
    lo, hi = min(equity), max(equity)
    span = (hi - lo) or 1.0
    step = max(1, len(equity) // 1500)
    pts = " ".join(f"{i / (len(equity) - 1) * width:.1f},{height - (e - lo) / span * height:.1f}"
                   for i, e in list(enumerate(equity))[::step])
    first, last = (time.strftime("%Y-%m-%d", time.gmtime(t / 1000)) for t in (ts[0], ts[-1]))
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height + 20}">'
            f'<polyline fill="none" stroke="#1f77b4" stroke-width="1.5" points="{pts}"/>'
            f'<text x="0" y="{height + 15}" font-size="11">{first}</text>'
            f'<text x="{width - 70}" y="{height + 15}" font-size="11">{last}</text>'
            f'<text x="0" y="11" font-size="11">{hi:,.0f}</text>'
            f'<text x="0" y="{height - 2}" font-size="11">{lo:,.0f}</text></svg>')


def write_reports(result: BacktestResult, out_dir: Path, title: str, context: dict[str, object]) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    data = {"title": title, "context": context, "metrics": result.metrics,
            "fills": [{**asdict(f), "side": f.side.value} for f in result.fills],
            "equity": [{"ts": t, "equity": e} for t, e in zip(result.equity_ts, result.equity, strict=True)]}
    json_path = out_dir / "backtest.json"
    json_path.write_text(json.dumps(data, indent=1, default=str))
    rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{v:,.4f}</td></tr>" for k, v in result.metrics.items())
    ctx = "".join(f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(str(v))}</td></tr>" for k, v in context.items())
    fills = "".join(
        f"<tr><td>{time.strftime('%Y-%m-%d %H:%M', time.gmtime(f.ts / 1000))}</td><td>{f.pair}</td>"
        f"<td>{f.side.value}</td><td>{f.quantity:,.4f}</td><td>{f.price:.6f}</td><td>{f.fee:.4f}</td></tr>"
        for f in result.fills[-200:])
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            "<style>body{font-family:sans-serif;margin:2em}td{padding:2px 10px}table{border-collapse:collapse}"
            "tr:nth-child(even){background:#f3f3f3}</style></head><body>"
            f"<h1>{html.escape(title)}</h1><table>{ctx}</table><h2>Equity (USD)</h2>"
            f"{_svg_equity(result.equity_ts, result.equity)}<h2>Metrics</h2><table>{rows}</table>"
            f"<h2>Fills (last {min(len(result.fills), 200)} of {len(result.fills)})</h2><table>"
            f"<tr><th>time (UTC)</th><th>pair</th><th>side</th><th>qty</th><th>price</th><th>fee</th></tr>{fills}"
            "</table></body></html>")
    html_path = out_dir / "backtest.html"
    html_path.write_text(page)
    return json_path, html_path
