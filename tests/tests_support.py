"""Constants and small fakes shared by tests (importable because pytest puts tests/ on sys.path)."""

from __future__ import annotations

EMULATOR_KEY = "kf-test-key"
EMULATOR_SECRET = "a3Jha2VuZmxvdy10ZXN0LXNlY3JldC1ub3QtcmVhbC1hdC1hbGwtMTIzNDU2Nzg5MA=="
"""A made-up base64 secret for the local emulator; it opens nothing anywhere else."""


import json  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer  # noqa: E402
from typing import Any  # noqa: E402


class AlertReceiver(ThreadingHTTPServer):
    """A local HTTP receiver for Apprise `json://` alerts: records every JSON body POSTed to it."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _RecordAlert)
        self.bodies: list[dict[str, Any]] = []
        self.times: list[float] = []  # when each body arrived (epoch seconds), same order
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"json://127.0.0.1:{self.server_address[1]}/alerts"

    @property
    def titles(self) -> list[str]:
        return [str(body.get("title", "")) for body in self.bodies]

    def wait_for(self, text: str, timeout_s: float = 10.0) -> dict[str, Any]:
        """The first alert whose title or message contains `text` (AssertionError after `timeout_s`)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for body in list(self.bodies):
                if text in str(body.get("title", "")) or text in str(body.get("message", "")):
                    return body
            time.sleep(0.05)
        raise AssertionError(f"no alert with {text!r} reached the receiver; got {self.titles}")

    def __enter__(self) -> AlertReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()


class _RecordAlert(BaseHTTPRequestHandler):
    server: AlertReceiver

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        body = json.loads(self.rfile.read(length) or b"{}")
        self.server.times.append(time.time())
        self.server.bodies.append(body)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:  # keep test output quiet
        pass
