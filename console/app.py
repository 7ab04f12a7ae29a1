"""`krakenflow console`: the operator's window (Jinja2 pages, plotly charts from the bundled plotly.js, live
updates over server-sent events) and its REST API under /api/v1 (OpenAPI at /docs).

Reading needs nothing; control calls (halt, resume, flatten, stop/allow buying, reload/pin a model) need the
bearer token of KRAKENFLOW_CONSOLE_TOKEN, are queued in the ledger with an audit row, and the running trader
applies them between two polls (trader.service.apply_commands). Served standalone over a ledger, MLflow and
the Prefect API, or by a running trader (`trade --status-port`), which adds its live view.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import math
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

import plotly
import swagger_ui_bundle
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, Field
from starlette.staticfiles import StaticFiles

from console import charts, views
from console.sources import Down, Sources, guarded
from trader.controls import KINDS, CommandRefused, validated

HERE = Path(__file__).resolve().parent
PLOTLY_JS = Path(plotly.__file__).resolve().parent / "package_data" / "plotly.min.js"
PAGES = (("/", "Overview"), ("/trades", "Trades"), ("/chart", "Chart"), ("/models", "Models"), ("/ab", "A/B"),
         ("/reconcile", "Reconciliation"), ("/pipelines", "Pipelines"), ("/drift", "Drift"), ("/data", "Data"))
ALERT_KINDS = ("alert", "kill_switch", "daily_loss_halt", "reconcile_halt", "trading_resumed")
RECONCILE_KINDS = ("reconcile_ok", "reconcile_halt")
STREAM_EVERY_S = 1.0
TRIPS_SHOWN = 500


class ControlBody(BaseModel):
    """What a control call carries (unused fields are refused by the command's own check)."""

    reason: str | None = Field(default=None, max_length=500)
    pair: str | None = Field(default=None, max_length=32)
    version: int | None = None


def _when(ts_ms: float | None) -> str:
    if ts_ms is None or ts_ms != ts_ms:
        return ""
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(ts_ms / 1000))


def _num(value: Any, digits: int = 2) -> str:
    if not isinstance(value, int | float) or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:,.{digits}f}"


def make_console(sources: Sources, token: str | None = None, title: str = "krakenflow console") -> FastAPI:
    # 3.0.3: the Swagger UI that ships in a Python package (4.15) predates OpenAPI 3.1
    app = FastAPI(title=title, version="1", docs_url=None, redoc_url=None,
                  description="Read the trader, registry, A/B, reconciliation, pipelines and data; control the "
                              "trader with a bearer token (KRAKENFLOW_CONSOLE_TOKEN).")
    app.openapi_version = "3.0.3"
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    templates.env.autoescape = True  # *.html.j2 is not in Jinja's html list: escape every value (reasons, audit)
    templates.env.filters.update(when=_when, num=_num)
    templates.env.globals.update(pages=PAGES, title=title, json=json.dumps)
    app.mount("/static", StaticFiles(directory=str(PLOTLY_JS.parent)), name="static")
    app.mount("/static-docs", StaticFiles(directory=swagger_ui_bundle.swagger_ui_path), name="static-docs")
    _trader_routes(app, sources, title)
    bearer = HTTPBearer(auto_error=False)

    def operator(credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> str:
        """The control API's guard: constant-time compare with the configured token."""
        if not token:
            raise HTTPException(403, "control is off: no KRAKENFLOW_CONSOLE_TOKEN is set for this console")
        if credentials is None or not hmac.compare_digest(credentials.credentials.encode(), token.encode()):
            raise HTTPException(401, "a valid bearer token is required (Authorization: Bearer <token>)",
                                headers={"WWW-Authenticate": "Bearer"})
        return "console"

    def page(request: Request, name: str, **context: Any) -> HTMLResponse:
        return templates.TemplateResponse(request, f"{name}.html.j2", {"path": request.url.path, **context})

    # --- data the pages and the API share ----------------------------------------------------------------
    def overview(chart: bool = True) -> dict[str, Any]:
        status = guarded(f"ledger {sources.ledger_url}", sources.light_status)
        if isinstance(status, Down):
            return {"down": [status]}
        ledger = sources.ledger()
        curve, performance = ledger.equity_overview(charts.MAX_POINTS) if chart else ([], {})
        values = [e for _, e in curve]
        latest = ledger.latest_equity()
        risk, op = ledger.risk_state(), ledger.operator_state()
        newest = max((d["ts"] for d in status["decisions"]), default=None)
        return {"down": [], "status": status, "live": status["live"], "risk": risk, "operator": op,
                "halted": "; ".join(dict.fromkeys(why for why in ((status["live"] or {}).get("halted"), risk.halted,
                                                                  op.halt) if why)),
                "no_buys": op.no_buys, "pinned": op.pinned_version,
                "equity_now": latest[1] if latest else None, "performance": performance,
                "equity_chart": charts.equity_figure([t for t, _ in curve], values, views.drawdown(values))
                if len(curve) > 1 else None,
                "open_orders": [{"client_id": r.intent.client_id, "pair": r.intent.pair, "side": r.intent.side.value,
                                 "quantity": r.intent.quantity, "status": str(getattr(r.status, "value", r.status)),
                                 "txid": r.txid} for r in ledger.unresolved_intents()],
                "newest_candle": newest, "candle_age_s": time.time() - newest / 1000 if newest else None,
                "alerts": ledger.audit_rows(ALERT_KINDS, 20), "commands": ledger.recent_commands(10),
                "kill_switch": sources.params.risk.max_drawdown * 100}

    def fills_rows(pair: str | None = None) -> list[dict[str, Any]]:
        return sources.ledger().fill_rows(pair)

    trips_cache: dict[str, Any] = {}

    def all_trips() -> list[views.RoundTrip]:
        """Every round trip, recomputed only when a fill was added (the ledger only ever appends fills)."""
        key = sources.ledger().fill_totals()
        if trips_cache.get("key") != key:
            trips_cache.update(key=key, trips=views.round_trips(fills_rows()))
        return list(trips_cache["trips"])

    def trades(limit: int = TRIPS_SHOWN) -> dict[str, Any]:
        """The per-pair table over every trip; the newest `limit` trips themselves."""
        trips = all_trips()
        return {"trips": [t.row() for t in reversed(trips[-limit:])], "n_trips": len(trips),
                "summary": views.pair_summary(trips)}

    def decisions(page_no: int, size: int, pair: str | None, action: str | None, holds: bool) -> dict[str, Any]:
        check_pair(pair)
        rows, total = sources.ledger().decisions_page((page_no - 1) * size, size,
                                                      **views.decision_filter(pair, action, holds))
        return {"rows": rows, "total": total, "page": page_no, "size": size, "pages": max(1, -(-total // size))}

    def check_pair(pair: str | None) -> None:
        if pair and pair not in sources.params.pairs:
            raise HTTPException(404, f"pair {pair!r} is not traded here; one of {', '.join(sources.params.pairs)}")

    def models() -> list[dict[str, Any]] | Down:
        return guarded(f"MLflow {sources.settings.tracking_uri}", sources.model_versions)

    def pipelines() -> dict[str, Any]:
        names = guarded("Prefect", sources.deployments)
        runs = guarded("Prefect", sources.flow_runs)
        upcoming = guarded("Prefect", sources.scheduled_runs)
        down = next((x for x in (names, runs, upcoming) if isinstance(x, Down)), None)
        if down is not None:
            return {"prefect_down": down}
        assert isinstance(names, dict) and isinstance(runs, list) and isinstance(upcoming, list)
        for run in [*runs, *upcoming]:
            run["deployment"] = names.get(run.get("deployment_id") or "", "—")
        return {"runs": runs, "upcoming": upcoming, "failures": [r for r in runs if r.get("state_type") in
                                                                 ("FAILED", "CRASHED")], "ui": sources.prefect_ui}

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        """Swagger UI from the files of the swagger-ui-bundle package (works offline)."""
        return get_swagger_ui_html(openapi_url="/openapi.json", title=f"{title} — API",
                                   swagger_js_url="/static-docs/swagger-ui-bundle.js",
                                   swagger_css_url="/static-docs/swagger-ui.css",
                                   swagger_favicon_url="/static-docs/favicon-32x32.png")

    # --- pages ----------------------------------------------------------------------------------------------
    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def overview_page(request: Request) -> HTMLResponse:
        return page(request, "overview", **overview())

    @app.get("/trades", response_class=HTMLResponse, include_in_schema=False)
    def trades_page(request: Request, page_no: Annotated[int, Query(alias="page", ge=1)] = 1,
                    size: Annotated[int, Query(ge=1, le=500)] = 50, pair: str | None = None,
                    action: str | None = None, holds: bool = False) -> HTMLResponse:
        return page(request, "trades", **trades(), decisions=decisions(page_no, size, pair, action, holds),
                    pair=pair or "", action=action or "", holds=holds, pairs=sources.params.pairs)

    @app.get("/chart", response_class=HTMLResponse, include_in_schema=False)
    def chart_page(request: Request, pair: str | None = None,
                   candles: Annotated[int, Query(ge=10, le=20_000)] = 500) -> HTMLResponse:
        pair = pair or sources.params.pairs[0]
        check_pair(pair)
        frame = guarded("candle store", lambda: sources.candles(pair, candles))
        ledger = sources.ledger()
        rows, _ = ledger.decisions_page(0, candles, pair=pair, count=False)
        fills = ledger.fill_rows(pair, since_ts=min((d["ts"] for d in rows), default=0))
        figure = None if isinstance(frame, Down) else charts.candles_figure(frame, fills, rows, pair)
        return page(request, "chart", pair=pair, pairs=sources.params.pairs, figure=figure,
                    down=[frame] if isinstance(frame, Down) else [])

    @app.get("/models", response_class=HTMLResponse, include_in_schema=False)
    def models_page(request: Request) -> HTMLResponse:
        found = models()
        return page(request, "models", versions=[] if isinstance(found, Down) else found,
                    down=[found] if isinstance(found, Down) else [], mlflow_ui=sources.mlflow_ui,
                    tracking=sources.settings.tracking_uri)

    @app.get("/models/{version}", response_class=HTMLResponse, include_in_schema=False)
    def model_page(request: Request, version: int) -> HTMLResponse:
        return page(request, "models", versions=[model_version(version)], down=[], mlflow_ui=sources.mlflow_ui,
                    tracking=sources.settings.tracking_uri)

    @app.get("/ab", response_class=HTMLResponse, include_in_schema=False)
    def ab_page(request: Request) -> HTMLResponse:
        found = guarded(f"MLflow {sources.settings.tracking_uri}", sources.ab_history)
        return page(request, "ab", rows=[] if isinstance(found, Down) else found,
                    down=[found] if isinstance(found, Down) else [])

    @app.get("/reconcile", response_class=HTMLResponse, include_in_schema=False)
    def reconcile_page(request: Request) -> HTMLResponse:
        ledger = sources.ledger()
        return page(request, "reconcile", runs=ledger.audit_rows(RECONCILE_KINDS, 200),
                    adjustments=list(reversed(ledger.adjustments())))

    @app.get("/pipelines", response_class=HTMLResponse, include_in_schema=False)
    def pipelines_page(request: Request) -> HTMLResponse:
        found = pipelines()
        return page(request, "pipelines", **found)

    @app.get("/drift", response_class=HTMLResponse, include_in_schema=False)
    def drift_page(request: Request) -> HTMLResponse:
        history = sources.drift_history()
        return page(request, "drift", history=list(reversed(history)),
                    figure=charts.drift_figure(history, sources.params.drift.share_threshold) if history else None)

    @app.get("/reports/drift/{name}", include_in_schema=False)
    def drift_report(name: str) -> FileResponse:
        folder = (sources.data_root / "reports" / "drift").resolve()
        path = (folder / name).resolve()
        if path.parent != folder or not path.is_file() or path.suffix != ".html":
            raise HTTPException(404, f"no drift report {name!r}")
        return FileResponse(path, media_type="text/html")

    @app.get("/data", response_class=HTMLResponse, include_in_schema=False)
    def data_page(request: Request) -> HTMLResponse:
        coverage = guarded("candle store", sources.coverage)
        return page(request, "data", coverage=[] if isinstance(coverage, Down) else coverage,
                    down=[coverage] if isinstance(coverage, Down) else [], quarantined=sources.quarantined())

    # --- the read API ---------------------------------------------------------------------------------------
    def model_version(version: int) -> dict[str, Any]:
        found = models()
        if isinstance(found, Down):
            raise HTTPException(503, f"{found.source} unavailable: {found.why}")
        match = [v for v in found if v["version"] == version]
        if not match:
            known = ", ".join(str(v["version"]) for v in found) or "none"
            raise HTTPException(404, f"no version {version} of {sources.params.registry.model_name} (known: {known})")
        return match[0]

    def or_503(found: Any) -> Any:
        if isinstance(found, Down):
            raise HTTPException(503, f"{found.source} unavailable: {found.why}")
        return found

    @app.get("/api/v1/status", tags=["read"])
    def api_status() -> dict[str, Any]:
        """Mode, halt state, positions, equity, open orders and the newest decisions (with the live view when
        served by the trader)."""
        found = overview(chart=False)
        if found["down"]:
            raise HTTPException(503, f"{found['down'][0].source} unavailable: {found['down'][0].why}")
        risk, op = found["risk"], found["operator"]
        return {**found["status"], "halted": found["halted"], "risk": vars(risk), "operator": vars(op),
                "equity": found["equity_now"],
                "open_orders": found["open_orders"], "candle_age_s": found["candle_age_s"]}

    @app.get("/api/v1/equity", tags=["read"])
    def api_equity(since_ts: Annotated[int, Query(ge=0)] = 0,
                   limit: Annotated[int, Query(ge=1, le=100_000)] = 10_000) -> list[dict[str, float]]:
        return [{"ts": t, "equity": e, "cash": c} for t, e, c in sources.ledger().equity_curve(since_ts, limit)]

    @app.get("/api/v1/trades", tags=["read"])
    def api_trades(limit: Annotated[int, Query(ge=1, le=100_000)] = TRIPS_SHOWN) -> dict[str, Any]:
        return trades(limit)

    @app.get("/api/v1/decisions", tags=["read"])
    def api_decisions(page_no: Annotated[int, Query(alias="page", ge=1)] = 1,
                      size: Annotated[int, Query(ge=1, le=500)] = 50, pair: str | None = None,
                      action: str | None = None, holds: bool = False) -> dict[str, Any]:
        return decisions(page_no, size, pair, action, holds)

    @app.get("/api/v1/fills", tags=["read"])
    def api_fills() -> list[dict[str, Any]]:
        return fills_rows()

    @app.get("/api/v1/models", tags=["read"])
    def api_models() -> list[dict[str, Any]]:
        return list(or_503(models()))

    @app.get("/api/v1/models/{version}", tags=["read"])
    def api_model(version: int) -> dict[str, Any]:
        return model_version(version)

    @app.get("/api/v1/ab", tags=["read"])
    def api_ab() -> list[dict[str, Any]]:
        return list(or_503(guarded(f"MLflow {sources.settings.tracking_uri}", sources.ab_history)))

    @app.get("/api/v1/reconciliation", tags=["read"])
    def api_reconciliation() -> dict[str, Any]:
        ledger = sources.ledger()
        return {"runs": ledger.audit_rows(RECONCILE_KINDS, 500),
                "adjustments": [{"pair": p, "quantity": q, "reason": r} for p, q, r in ledger.adjustments()]}

    @app.get("/api/v1/pipelines", tags=["read"])
    def api_pipelines() -> dict[str, Any]:
        found = pipelines()
        if "prefect_down" in found:
            raise HTTPException(503, f"{found['prefect_down'].source} unavailable: {found['prefect_down'].why}")
        return found

    @app.get("/api/v1/drift", tags=["read"])
    def api_drift() -> list[dict[str, Any]]:
        return sources.drift_history()

    @app.get("/api/v1/data", tags=["read"])
    def api_data() -> dict[str, Any]:
        return {"coverage": or_503(guarded("candle store", sources.coverage)), "quarantined": sources.quarantined()}

    @app.get("/api/v1/alerts", tags=["read"])
    def api_alerts(limit: Annotated[int, Query(ge=1, le=1000)] = 50) -> list[dict[str, Any]]:
        return sources.ledger().audit_rows(ALERT_KINDS, limit)

    @app.get("/api/v1/commands", tags=["read"])
    def api_commands(limit: Annotated[int, Query(ge=1, le=1000)] = 50) -> list[dict[str, Any]]:
        return sources.ledger().recent_commands(limit)

    # --- control ----------------------------------------------------------------------------------------------
    @app.post("/api/v1/control/{kind}", tags=["control"], status_code=202)
    def control(kind: str, body: ControlBody, who: str = Depends(operator)) -> dict[str, Any]:
        """Queue a command for the running trader (applied between two polls; GET /api/v1/commands shows what
        became of it). Kinds: halt, resume, flatten (pair or all), stop_buying, allow_buying, reload_model,
        pin_model (version), unpin_model."""
        args = {k: v for k, v in body.model_dump().items() if v is not None}
        try:
            args = validated(kind, args, sources.params.pairs)
        except CommandRefused as err:
            raise HTTPException(404 if kind not in KINDS else 422, str(err)) from None
        ledger = sources.ledger()
        command_id = ledger.enqueue_command(kind, args, who)
        ledger.audit("operator_request", {"command": command_id, "kind": kind, "args": args, "who": who})
        return {"command": command_id, "kind": kind, "args": args, "status": "pending"}

    # --- the stream ------------------------------------------------------------------------------------------
    @app.get("/api/v1/stream", tags=["read"])
    async def stream(request: Request, channels: str = "status,decisions,fills,equity,alerts") -> StreamingResponse:
        """Server-sent events: `status` every second, and each new decision, fill, equity mark and alert."""
        wanted = {c.strip() for c in channels.split(",") if c.strip()}
        unknown = wanted - {"status", "decisions", "fills", "equity", "alerts"}
        if unknown:
            raise HTTPException(422, f"unknown channel(s) {', '.join(sorted(unknown))}: status, decisions, fills, "
                                     "equity, alerts")
        return StreamingResponse(_events(request, wanted), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    async def _events(request: Request, wanted: set[str]) -> AsyncIterator[str]:
        ledger = sources.ledger()
        last = {table: await asyncio.to_thread(ledger.last_id, table) for table in ("decisions", "fills", "audit")}
        last_equity = -1
        while not await request.is_disconnected():
            chunks: list[str] = []
            if "status" in wanted:
                found = await asyncio.to_thread(api_status_safe)
                chunks.append(_sse("status", found))
            for table, channel in (("decisions", "decisions"), ("fills", "fills"), ("audit", "alerts")):
                rows = await asyncio.to_thread(ledger.rows_after, table, last[table])
                if rows:
                    last[table] = rows[-1]["id"]
                if channel in wanted:
                    chunks.extend(_sse(channel, row) for row in rows
                                  if channel != "alerts" or row["kind"] in ALERT_KINDS)
            if "equity" in wanted:
                marks = await asyncio.to_thread(ledger.equity_curve, last_equity + 1, 100)
                for ts, value, cash in marks:
                    chunks.append(_sse("equity", {"ts": ts, "equity": value, "cash": cash}))
                    last_equity = ts
            yield "".join(chunks) or ": keep-alive\n\n"
            await asyncio.sleep(STREAM_EVERY_S)

    def api_status_safe() -> dict[str, Any]:
        try:
            found = api_status()
        except HTTPException as err:
            return {"error": err.detail}
        return {"halted": found["halted"], "equity": found["equity"], "mode": found["mode"],
                "positions": found["positions"], "no_buys": found["operator"]["no_buys"],
                "candle_age_s": found["candle_age_s"], "generated_unix": found["generated_unix"]}

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Any:
        if request.url.path.startswith("/api/") or request.method != "GET":
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)
        return templates.TemplateResponse(request, "error.html.j2", {"path": request.url.path,
                                                                     "status": exc.status_code,
                                                                     "detail": exc.detail},
                                          status_code=exc.status_code)

    return app


def _trader_routes(app: FastAPI, sources: Sources, title: str) -> None:
    """/healthz, /status and /metrics as the trader serves them (trader.api), over the same snapshot."""
    from trader.api import make_app

    for route in make_app(sources.status, title).routes:
        if getattr(route, "path", "") in ("/healthz", "/status", "/metrics"):
            app.router.routes.append(route)


def _sse(event: str, data: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(data, default=str)}\n\n"
