"""Kraken emulator throughput: sustained signed private requests per second through unmodified ccxt
on loopback, and the latency it adds (p50/p99), next to a bare public call for scale."""

from __future__ import annotations

import base64
import subprocess
import sys
import time

import httpx
import numpy as np

from market.emulator.kraken_api import RateTier
from market.emulator.server import free_port, running_emulator
from market.kraken import make_exchange

SECRET = base64.b64encode(b"bench-secret-for-the-local-emulator-only-000000").decode()


def _timed(call: object, n: int) -> np.ndarray:
    out = np.empty(n)
    for i in range(n):
        t0 = time.perf_counter()
        call()  # type: ignore[operator]
        out[i] = time.perf_counter() - t0
    return out


def _measure(url: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    ex = make_exchange(url, "bench", SECRET, throttle=False)
    ex.load_markets()
    _timed(ex.fetch_balance, 50)  # warm
    return (_timed(ex.fetch_balance, 1500), _timed(lambda: ex.fetch_open_orders(), 500),
            _timed(lambda: ex.fetch_ticker("XRP/USD"), 500))


def _separate_process() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The emulator as its own process (as in the reliability suite): client and server on 2 cores."""
    port = free_port()
    cmd = [sys.executable, "-c", "from cli.app import main; main()", "emulator", "--port", str(port),
           "--api-key", "bench", "--api-secret", SECRET, "--seconds-per-candle", "0", "--tier", "unlimited"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(url + "/0/public/Time", timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        return _measure(url)
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def run() -> list[dict]:
    private, orders, public = _separate_process()
    with running_emulator(tier=RateTier(max_counter=1e12)) as emu:
        emu.add_key("bench", SECRET)
        same, _, _ = _measure(emu.url)
    rate = len(private) / private.sum()
    return [
        {"name": "emulator: signed private requests through ccxt (BalanceEx), sustained", "value": f"{rate:,.0f}",
         "unit": "req/s", "target": "≥ 500 req/s", "ok": rate >= 500,
         "note": f"emulator in its own process, one ccxt client, loopback, HMAC checked; in-process (shared GIL): "
                 f"{len(same) / same.sum():,.0f} req/s"},
        {"name": "emulator: private request latency p50 / p99", "unit": "ms", "target": "—", "ok": None,
         "value": f"{np.percentile(private, 50) * 1e3:.2f} / {np.percentile(private, 99) * 1e3:.2f}",
         "note": f"OpenOrders p50 {np.percentile(orders, 50) * 1e3:.2f} ms; public Ticker p50 "
                 f"{np.percentile(public, 50) * 1e3:.2f} ms (includes ccxt's own parsing)"},
    ]


if __name__ == "__main__":
    for row in run():
        print(row)
