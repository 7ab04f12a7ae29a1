"""What an operator sees, in headless Debian chromium, offline: every console page over a real paper run
loads without a console error or a request leaving the machine, the charts draw, a halt sent through the API
with the token reaches the page by itself (server-sent events, no reload), and the page's control buttons are
refused without the token. Screenshots go to tests/artifacts/screenshots."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from browser_support import browser, not_blank, watch
from console_support import TOKEN, PaperRun

from trader.service import StopFlag, run

pytestmark = pytest.mark.slow
PAGES = ("/", "/trades", "/chart", "/models", "/ab", "/reconcile", "/pipelines", "/drift", "/data", "/docs")
CHARTS = {"/": "#equity-chart", "/chart": "#candles-chart"}


@pytest.fixture(scope="module")
def console_url(paper_run: PaperRun) -> Iterator[str]:
    """The console on a loopback port, while the paper trader keeps polling (one candle every 0.2 s)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(paper_run.app(), log_level="warning"))
    serving = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    serving.start()
    stop = StopFlag()

    def advance(_: int) -> None:
        paper_run.emulator.advance(1)
        time.sleep(0.2)

    trading = threading.Thread(target=run, args=(paper_run.session, 0), daemon=True,
                               kwargs={"after_poll": advance, "stop": stop})
    trading.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        stop.stopped = True
        trading.join(timeout=30)
        server.should_exit = True
        serving.join(timeout=10)


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    with browser() as launched:
        yield launched


def test_every_page_loads_cleanly_and_the_charts_draw(console_url: str, chromium: Any) -> None:
    for path in PAGES:
        page = chromium.new_page(viewport={"width": 1300, "height": 900})
        seen = watch(page)
        response = page.goto(console_url + path, wait_until="networkidle" if path == "/docs" else "load")
        assert response is not None and response.status == 200, path
        if path == "/docs":
            try:
                page.wait_for_selector(".swagger-ui .opblock", timeout=15_000)
            except Exception as err:
                seen.screenshot("console-docs-failed")
                raise AssertionError(f"Swagger UI did not render: {seen.problems()}") from err
        if path in CHARTS:
            page.wait_for_selector(f"{CHARTS[path]} .main-svg", timeout=15_000)
            traces = page.eval_on_selector(CHARTS[path], "el => el.data.length")
            assert traces >= 2, f"{path}: {traces} traces"
        page.wait_for_function("document.getElementById('live-clock') === null || "
                               "document.getElementById('live-clock').textContent.startsWith('updated')",
                               timeout=10_000)
        shot = seen.screenshot("console" + (path.replace("/", "-") if path != "/" else "-overview"))
        assert not_blank(shot), f"{path}: blank screenshot"
        assert seen.problems() == [], f"{path}: {seen.problems()}"
        page.close()


def test_a_halt_through_the_api_shows_on_the_open_page_within_seconds(console_url: str, chromium: Any) -> None:
    page = chromium.new_page()
    seen = watch(page)
    page.goto(console_url + "/trades")
    page.wait_for_function("document.getElementById('live-clock').textContent.startsWith('updated')",
                           timeout=10_000)
    refused = httpx.post(f"{console_url}/api/v1/control/halt", json={"reason": "browser test"}, timeout=10)
    assert refused.status_code == 401
    queued = httpx.post(f"{console_url}/api/v1/control/halt", json={"reason": "browser test"}, timeout=10,
                        headers={"Authorization": f"Bearer {TOKEN}"})
    assert queued.status_code == 202
    started = time.monotonic()
    try:
        page.wait_for_function(
            "document.getElementById('live-banner').textContent.includes('operator halt by console')", timeout=15_000)
    except Exception as err:
        commands = httpx.get(f"{console_url}/api/v1/commands", timeout=10).json()
        raise AssertionError(f"banner: {page.inner_text('#live-banner')!r}; commands: {commands}") from err
    took = time.monotonic() - started
    seen.screenshot("console-halted")
    assert took < 15 and seen.problems() == []
    httpx.post(f"{console_url}/api/v1/control/resume", json={"reason": "browser test done"}, timeout=10,
               headers={"Authorization": f"Bearer {TOKEN}"})
    try:
        page.wait_for_function("!document.getElementById('live-banner').textContent.includes('operator halt')",
                               timeout=15_000)
    except Exception as err:
        commands = httpx.get(f"{console_url}/api/v1/commands", timeout=10).json()
        raise AssertionError(f"banner: {page.inner_text('#live-banner')!r}; commands: {commands}") from err
    page.close()


def test_the_pages_control_buttons_are_refused_without_the_token(console_url: str, chromium: Any) -> None:
    page = chromium.new_page()
    watch(page)
    page.goto(console_url + "/")
    page.fill("#reason", "a stranger")
    page.click("button[data-cmd=halt]")
    page.wait_for_function("document.getElementById('control-answer').textContent.length > 0", timeout=10_000)
    assert "bearer token" in page.inner_text("#control-answer")
    page.fill("#token", TOKEN)
    page.click("button[data-cmd=stop_buying]")
    page.wait_for_function("document.getElementById('control-answer').textContent.startsWith('queued')",
                           timeout=10_000)
    page.wait_for_function("document.getElementById('halt-state').textContent.includes('buying stopped')",
                           timeout=15_000)
    page.close()


def test_the_stream_carries_decisions_equity_and_status_as_the_trader_trades(console_url: str) -> None:
    events: dict[str, list[dict[str, Any]]] = {}
    deadline = time.monotonic() + 20
    with httpx.stream("GET", f"{console_url}/api/v1/stream", params={"channels": "status,decisions,equity"},
                      timeout=30) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        event = ""
        for line in response.iter_lines():
            if line.startswith("event: "):
                event = line.removeprefix("event: ")
            elif line.startswith("data: "):
                events.setdefault(event, []).append(json.loads(line.removeprefix("data: ")))
            if {"status", "decisions", "equity"} <= set(events) or time.monotonic() > deadline:
                break
    assert {"status", "decisions", "equity"} <= set(events), sorted(events)
    assert all("halted" in s and "equity" in s for s in events["status"])
    ids = [d["id"] for d in events["decisions"]]
    assert ids == sorted(ids) and len(set(ids)) == len(ids), "decisions out of order or twice"
