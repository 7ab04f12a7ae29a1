"""`krakenflow watch` through the CLI: a dead server is reported, alerted once and exported."""

from __future__ import annotations

from typing import Any

import httpx
from stack_support import free_port
from typer.testing import CliRunner

from cli.app import app


def test_watch_reports_a_server_that_does_not_answer(monkeypatch: Any, alert_receiver: Any) -> None:
    monkeypatch.setenv("PREFECT_API_URL", f"http://127.0.0.1:{free_port()}/api")
    done = CliRunner().invoke(app, ["watch", "--every", "0.1", "--max-probes", "3"])
    assert done.exit_code == 0, done.output
    assert done.output.count("server: the Prefect server does not answer") == 3, done.output
    assert len(alert_receiver.bodies) == 1 and "server problem" in alert_receiver.titles[0]


def test_watch_without_a_server_url_says_what_to_set(monkeypatch: Any) -> None:
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.delenv("KRAKENFLOW_PREFECT_API_URL", raising=False)
    done = CliRunner().invoke(app, ["watch", "--max-probes", "1"])
    assert done.exit_code == 2 and "export PREFECT_API_URL" in done.output, done.output


def test_watch_serves_its_gauges(monkeypatch: Any, alert_receiver: Any) -> None:
    import threading
    import time

    port = free_port()
    monkeypatch.setenv("PREFECT_API_URL", f"http://127.0.0.1:{free_port()}/api")
    runner = threading.Thread(target=CliRunner().invoke, args=(app, ["watch", "--every", "1", "--max-probes", "4",
                                                                     "--metrics-port", str(port)]), daemon=True)
    runner.start()
    deadline, text = time.monotonic() + 10, ""
    while time.monotonic() < deadline and "krakenflow_prefect_server_up 0.0" not in text:
        time.sleep(0.2)
        try:
            text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
        except httpx.HTTPError:
            continue
    runner.join(timeout=10)
    assert "krakenflow_prefect_server_up 0.0" in text and "krakenflow_stack_healthy 0.0" in text, text[-2000:]
