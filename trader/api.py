"""The trader's HTTP face: a self-refreshing dashboard page, /status (JSON), /metrics (Prometheus) and
/healthz. Read-only: nothing here can place, cancel or change anything.

`krakenflow dashboard` serves it over any ledger; `krakenflow trade --mode live --status-port N` serves it
from inside the running trader, with its equity, halt state and model version added.
"""

from __future__ import annotations

import html
import time
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from trader.telemetry import snapshot_registry

Snapshot = Callable[[], dict[str, Any]]


def make_app(snap: Snapshot, title: str = "krakenflow trader") -> FastAPI:
    app = FastAPI(title=title, docs_url=None, redoc_url=None)
    registry = snapshot_registry(snap)  # a trader serves its own registry instead (TraderTelemetry.serve_metrics)

    @app.get("/healthz")
    def healthz() -> JSONResponse:
        """503 while halted, while polls keep failing, or while the trading loop is hung."""
        live = snap()["live"]
        problems = list(live["problems"]) if live else []
        return JSONResponse({"ok": not problems, "halted": live["halted"] if live else "", "problems": problems},
                            status_code=503 if problems else 200)

    @app.get("/status")
    def status() -> dict[str, Any]:
        return snap()

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/", response_class=HTMLResponse)
    def page() -> str:
        return render_page(snap(), title)

    return app


def _when(ts_ms: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(ts_ms / 1000))


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body or '<tr><td>—</td></tr>'}</table>"


def render_page(s: dict[str, Any], title: str) -> str:
    """One self-contained page (no scripts from elsewhere), refreshing itself every 10 s."""
    live = s["live"]
    state = ("<p class=bad>HALTED: " + html.escape(live["halted"]) + "</p>") if live and live["halted"] else ""
    head = (f"<p>{live['mode']} · model {html.escape(live['model_name'])} v{live['model_version']} · equity "
            f"{live['equity']:,.2f} USD · cash {live['cash']:,.2f} USD</p>" if live else
            "<p>ledger view (no trader attached)</p>")
    sections = [
        ("Positions", _table(["pair", "quantity"], [[p, f"{q:.6f}"] for p, q in s["positions"].items()])),
        ("Decisions (newest first, with the model version that took them)", _table(
            ["candle (UTC)", "pair", "prob", "action", "reason", "model"],
            [[_when(d["ts"]), d["pair"], "" if d["prob"] is None else f"{d['prob']:.3f}", d["action"], d["reason"],
              d["model_version"]] for d in s["decisions"]])),
        (f"Fills ({s['n_fills']}, fees {s['fees_paid']:,.2f} USD)", _table(
            ["time (UTC)", "pair", "side", "qty", "price", "fee", "client id"],
            [[_when(f["ts"]), f["pair"], f["side"], f"{f['quantity']:.4f}", f"{f['price']:.5f}", f"{f['fee']:.4f}",
              f["client_id"]] for f in s["fills"]])),
        ("Audit trail", _table(["at", "kind", "detail"], [[a["at"], a["kind"], a["detail"]] for a in s["audit"]])),
    ]
    style = ("body{font-family:system-ui,sans-serif;margin:1.5em}table{border-collapse:collapse;font-size:13px}"
             "td,th{border:1px solid #ccc;padding:2px 6px;text-align:left}.bad{color:#b00;font-weight:bold}")
    body = "".join(f"<h2>{html.escape(h)}</h2>{t}" for h, t in sections)
    return (f"<!doctype html><html><head><meta charset=utf-8><meta http-equiv=refresh content=10>"
            f"<title>{html.escape(title)}</title><style>{style}</style></head><body><h1>{html.escape(title)}</h1>"
            f"{state}{head}{body}<p><a href=/status>/status</a> · <a href=/metrics>/metrics</a></p></body></html>")
