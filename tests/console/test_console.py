"""The console over a real paper run: every page and API read answers from the ledger and the registry,
bad input is a 404/422 with a message (never a 500), a source that is down is named while the rest renders,
and control calls need the token, are audited, and the running trader applies them between two polls."""

from __future__ import annotations

from console_support import TOKEN, PaperRun
from fastapi.testclient import TestClient

from console import views
from trader.ledger import Ledger

PAGES = ("/", "/trades", "/chart", "/models", "/ab", "/reconcile", "/pipelines", "/drift", "/data")
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def test_every_page_renders_from_the_paper_ledger(paper_run: PaperRun) -> None:
    client = TestClient(paper_run.app())
    for path in PAGES:
        response = client.get(path)
        assert response.status_code == 200, (path, response.text[:500])
        assert "<nav>" in response.text and "/static/plotly.min.js" in response.text
        assert "cdn." not in response.text and "https://" not in response.text.replace("https://"
                                                                                         "github", "")
    home = client.get("/").text
    assert 'id="equity-chart"' in home, "no equity chart over a ledger with equity marks"
    assert client.get("/static/plotly.min.js").status_code == 200
    assert client.get("/docs").status_code == 200 and "/api/v1/control/{kind}" in client.get("/openapi.json").text


def test_trades_are_round_trips_of_the_ledgers_fills(paper_run: PaperRun) -> None:
    client = TestClient(paper_run.app())
    fills = client.get("/api/v1/fills").json()
    assert len(fills) >= 4, "the paper run should have traded"
    trades = client.get("/api/v1/trades").json()
    closed = [t for t in trades["trips"] if t["exit_ts"] is not None]
    total = trades["summary"][-1]
    assert total["pair"] == "TOTAL" and total["trades"] == len(closed)
    assert abs(total["total_profit"] - sum(t["pnl"] for t in closed)) < 1e-6
    sells = sum(f["quantity"] for f in fills if f["side"] == "sell")
    assert abs(sum(t["quantity"] for t in closed) - sells) < 1e-6 * max(1.0, sells)


def test_decisions_hide_holds_unless_asked_and_page(paper_run: PaperRun) -> None:
    client = TestClient(paper_run.app())
    shown = client.get("/api/v1/decisions", params={"size": 500}).json()
    everything = client.get("/api/v1/decisions", params={"size": 500, "holds": True}).json()
    assert everything["total"] > shown["total"] > 0
    assert not {d["action"] for d in shown["rows"]} & set(views.HOLDS)
    pair = paper_run.params.pairs[0]
    one = client.get("/api/v1/decisions", params={"pair": pair, "holds": True, "size": 10, "page": 2}).json()
    assert len(one["rows"]) == 10 and {d["pair"] for d in one["rows"]} == {pair}
    assert "holds hidden" in client.get("/trades").text


def test_bad_input_is_a_message_never_a_500(paper_run: PaperRun) -> None:
    client = TestClient(paper_run.app())
    missing = client.get("/api/v1/models/999")
    assert missing.status_code == 404 and "no version 999" in missing.json()["detail"]
    assert client.get("/models/999").status_code == 404 and "no version 999" in client.get("/models/999").text
    assert client.get("/chart", params={"pair": "NOPE/USD"}).status_code == 404
    assert "not traded here" in client.get("/api/v1/decisions", params={"pair": "NOPE/USD"}).json()["detail"]
    for url, query in (("/api/v1/decisions", {"page": 0}), ("/api/v1/decisions", {"size": "many"}),
                       ("/trades", {"page": "x"}), ("/api/v1/equity", {"limit": -1}),
                       ("/api/v1/stream", {"channels": "gossip"})):
        assert client.get(url, params=query).status_code == 422, (url, query)


def test_a_source_that_is_down_is_named_and_the_rest_renders(paper_run: PaperRun) -> None:
    client = TestClient(paper_run.app(mlflow_tracking_uri="http://127.0.0.1:9"))
    page = client.get("/models")
    assert page.status_code == 200 and "is unavailable" in page.text and "127.0.0.1:9" in page.text
    assert client.get("/api/v1/models").status_code == 503
    assert client.get("/").status_code == 200  # the ledger still answers
    pipelines = client.get("/pipelines").text
    assert "Prefect is unavailable" in pipelines and "no Prefect server configured" in pipelines
    broken = TestClient(paper_run.app(ledger_url="postgresql://nobody@127.0.0.1:9/none"))
    overview = broken.get("/")
    assert overview.status_code == 200 and "is unavailable" in overview.text


def test_control_needs_the_token_and_is_audited(paper_run: PaperRun) -> None:
    client = TestClient(paper_run.app())
    body = {"reason": "checking the books"}
    assert client.post("/api/v1/control/halt", json=body).status_code == 401
    assert client.post("/api/v1/control/halt", json=body, headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert TestClient(paper_run.app(token=None)).post("/api/v1/control/halt", json=body,
                                                      headers=AUTH).status_code == 403
    assert client.post("/api/v1/control/halt", json={}, headers=AUTH).status_code == 422  # no reason
    assert client.post("/api/v1/control/launch", json=body, headers=AUTH).status_code == 404
    assert client.post("/api/v1/control/flatten", json={"reason": "x", "pair": "NOPE/USD"},
                       headers=AUTH).status_code == 422
    ledger = Ledger(paper_run.settings.ledger_uri)
    try:
        assert not ledger.pending_commands(), "a refused call was queued"
    finally:
        ledger.close()


def test_the_running_trader_applies_halt_flatten_and_resume(paper_run: PaperRun) -> None:
    client = TestClient(paper_run.app())
    session, engine = paper_run.session, paper_run.session.engine
    queued = client.post("/api/v1/control/halt", json={"reason": "checking the books"}, headers=AUTH)
    assert queued.status_code == 202 and queued.json()["status"] == "pending"
    paper_run.poll(3)
    assert engine.paused.startswith("operator halt by console: checking the books")
    status = client.get("/api/v1/status").json()
    assert "operator halt by console" in status["halted"] and "operator halt by console" in client.get("/").text
    done = client.get("/api/v1/commands").json()[0]
    assert done["status"] == "done" and done["kind"] == "halt"
    ledger = session.broker.ledger
    newest, _ = ledger.decisions_page(0, 2, exclude_actions=())
    assert {d["action"] for d in newest} == {"stand_aside"}  # no order while halted
    assert ("operator halt" if not engine.halted else engine.halted) in newest[0]["reason"]
    kinds = [row["kind"] for row in ledger.recent_audit(20)]
    assert "operator_request" in kinds and "operator_halt" in kinds

    held = [pair for pair in paper_run.params.pairs if ledger.position(pair) > 0]
    client.post("/api/v1/control/flatten", json={"reason": "get out"}, headers=AUTH)
    paper_run.poll(3)
    assert all(ledger.position(pair) < 1e-9 for pair in paper_run.params.pairs), "flatten left a position"
    result = client.get("/api/v1/commands").json()[0]
    assert result["status"] == "done" and (held == [] or "market sell sent" in result["result"])

    client.post("/api/v1/control/stop_buying", json={"reason": "calm day"}, headers=AUTH)
    client.post("/api/v1/control/resume", json={"reason": "books checked"}, headers=AUTH)
    paper_run.poll(40)
    assert engine.paused == "" and engine.no_buys.startswith("buying stopped by console")
    assert not [f for f in ledger.fills() if f.side.value == "buy" and f.ts > newest[0]["ts"]], "bought anyway"
    assert ledger.operator_state().no_buys, "the ledger forgot that buying is stopped (a restart would buy)"
    client.post("/api/v1/control/allow_buying", json={}, headers=AUTH)
    paper_run.poll(1)
    assert engine.no_buys == "" and not ledger.operator_state().no_buys
