"""Run the emulator: in a background thread (tests, the demo) or in the foreground (`krakenflow emulator`)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import uvicorn

from core.types import Candle
from market.emulator.faults import Fault, FaultBook
from market.emulator.kraken_api import KeyRing, KrakenApi, RateTier
from market.emulator.venue import Venue, VenueConfig
from market.frame import to_candles
from market.history import import_file

BUNDLED_ROOT = Path(__file__).resolve().parents[2]
"""The project the package was installed from: its data/sample holds the bundled real candles."""

DEFAULT_DATA = {
    "XRP/USD": BUNDLED_ROOT / "data/sample/binance/XRP_USDT-1h.parquet",
    "DOGE/USD": BUNDLED_ROOT / "data/sample/binance/DOGE_USDT-1h.parquet",
}
"""Tests' and a bare `running_emulator()`'s replay; the CLI replays the candle store instead."""


def load_candles(files: Mapping[str, Path]) -> dict[str, list[Candle]]:
    """Real candles per pair from files, cut to their common time range (see common_range)."""
    return common_range({pair: to_candles(import_file(path).frame) for pair, path in files.items()})


def common_range(series: Mapping[str, list[Candle]]) -> dict[str, list[Candle]]:
    """Candles cut to the time range every pair covers, so the replay clock is shared."""
    start = max(seq[0].ts for seq in series.values())
    end = min(seq[-1].ts for seq in series.values())
    return {pair: [c for c in seq if start <= c.ts <= end] for pair, seq in series.items()}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class EmulatorHandle:
    """A running emulator: its URL, state, keys and faults, plus replay and restart controls."""

    venue: Venue
    keys: KeyRing
    faults: FaultBook
    host: str = "127.0.0.1"
    port: int = 0
    seconds_per_candle: float | None = None
    _server: uvicorn.Server | None = None
    _threads: list[threading.Thread] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def add_key(self, key: str, secret_b64: str, permissions: frozenset[str] = frozenset({"query", "trade"})) -> None:
        self.keys.add(key, secret_b64, permissions)

    def add_fault(self, fault: Fault) -> None:
        self.faults.add(fault)

    def advance(self, n: int = 1) -> int:
        return self.venue.advance(n)

    def start(self) -> EmulatorHandle:
        self.port = self.port or free_port()
        config = uvicorn.Config(KrakenApi(self.venue, self.keys, self.faults).app, host=self.host, port=self.port,
                                log_level="warning", access_log=False, lifespan="off")
        self._server = uvicorn.Server(config)
        thread = threading.Thread(target=self._server.run, name="kraken-emulator", daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError(f"emulator did not start on {self.url}")
            time.sleep(0.02)
        self._threads.append(thread)
        if self.seconds_per_candle:
            self._start_replay_clock(self.seconds_per_candle)
        return self

    def _start_replay_clock(self, seconds: float) -> None:
        def tick() -> None:
            while not self._stop.wait(seconds):
                self.venue.advance(1)

        clock = threading.Thread(target=tick, name="emulator-clock", daemon=True)
        clock.start()
        self._threads.append(clock)

    def stop(self) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.should_exit = True
        for t in self._threads:
            t.join(timeout=10)
        self._threads.clear()
        self._stop = threading.Event()

    def restart(self, keep_state: bool = True) -> None:
        """Stop and start on the same port; keep_state=False loses accounts, orders and trades."""
        self.stop()
        if not keep_state:
            self.venue.reset()
        self.start()


def make_emulator(files: Mapping[str, Path] | None = None, balances: Mapping[str, float] | None = None,
                  config: VenueConfig | None = None, tier: RateTier | None = None, port: int = 0,
                  seconds_per_candle: float | None = None,
                  candles: Mapping[str, list[Candle]] | None = None) -> EmulatorHandle:
    """Replays `candles` (e.g. from the candle store) or else the candle `files` (default: DEFAULT_DATA)."""
    series = common_range(candles) if candles else load_candles(files or DEFAULT_DATA)
    venue = Venue(series, dict(balances or {"ZUSD": 10_000.0}), config)
    return EmulatorHandle(venue, KeyRing(tier), FaultBook(), port=port, seconds_per_candle=seconds_per_candle)


@contextlib.contextmanager
def running_emulator(**kwargs: object) -> Iterator[EmulatorHandle]:
    handle = make_emulator(**kwargs).start()  # type: ignore[arg-type]
    try:
        yield handle
    finally:
        handle.stop()
