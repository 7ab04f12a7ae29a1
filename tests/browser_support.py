"""Headless Debian chromium through Playwright, offline: what a user sees, checked in a real browser.

`browser()` yields a Playwright Browser on /usr/bin/chromium (KRAKENFLOW_CHROMIUM overrides); it skips, saying
why, only where chromium is not installed (`make test` installs it with apt). `Page` helpers collect console
errors and failed requests, so a test can assert a page loaded cleanly, and keep screenshots under
SCREENSHOTS (a test artifact folder, git-ignored).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOTS = Path(os.environ.get("KRAKENFLOW_SCREENSHOTS", ROOT / "tests" / "artifacts" / "screenshots"))
LOOPBACK = ("127.0.0.1", "localhost", "[::1]")


def chromium_path() -> str | None:
    wanted = os.environ.get("KRAKENFLOW_CHROMIUM")
    if wanted:
        return wanted if Path(wanted).is_file() else None
    return shutil.which("chromium") or shutil.which("chromium-browser")


@contextmanager
def browser() -> Iterator[Any]:
    path = chromium_path()
    if path is None:
        pytest.skip("Debian's chromium is not installed (`apt-get install chromium`; `make test` does it as root)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=path, headless=True,
                                              args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        try:
            yield launched
        finally:
            launched.close()


@dataclass
class Watched:
    """A page with everything that went wrong on it: console errors, page errors, requests that failed or left
    the machine (offline means no CDN)."""

    page: Any
    errors: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    external: list[str] = field(default_factory=list)

    def problems(self) -> list[str]:
        return [*self.errors, *self.failed, *(f"external request {url}" for url in self.external)]

    def screenshot(self, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


def watch(page: Any) -> Watched:
    """Record the page's console errors and uncaught exceptions, and block (and record) every request that
    is not to loopback or a file: a page that needs the internet shows as broken here, as it would offline."""
    watched = Watched(page)
    page.on("console", lambda msg: watched.errors.append(f"console {msg.type}: {msg.text}")
            if msg.type == "error" else None)
    page.on("pageerror", lambda exc: watched.errors.append(f"page error: {exc}"))
    page.on("requestfailed", lambda req: watched.failed.append(f"request failed: {req.url} ({req.failure})"))

    def route(handle: Any) -> None:
        url = handle.request.url
        if url.startswith(("file:", "data:", "blob:", "about:")) or any(f"//{host}" in url for host in LOOPBACK):
            handle.continue_()
        else:
            watched.external.append(url)
            handle.abort()

    page.route("**/*", route)
    return watched


def not_blank(png: Path) -> bool:
    """A screenshot with more than a handful of distinct colours: something was drawn."""
    from PIL import Image

    with Image.open(png) as image:
        colours = image.convert("RGB").getcolors(maxcolors=1 << 16)
    return colours is None or len(colours) > 8
