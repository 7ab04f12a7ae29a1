"""The live loop: poll finished candles from Kraken (or the emulator), feed the one engine.

Warm-up: the engine's online features are fed Kraken's last 720 finished candles without deciding.
Then each poll reads the exchange's clock, fetches every pair, and only then feeds the candles newer than
the last one seen, in time order across pairs. Of a backlog (after an outage, or at start-up) only the
newest candle of each pair may trade — and only while it is fresh by the exchange's clock; the older ones
warm the features up. A poll that fails before feeding consumes nothing, so no candle is lost or fed twice.
A simulated venue (paper trading) works every pair's orders at a timestamp's open before the engine decides
on any candle of it, as a backtest does, so paper on live candles fills like a file replay.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from core.params import RiskParams
from core.types import Candle
from market.errors import ExchangeError
from market.kraken import KrakenClient
from trader.engine import Decision, Engine
from trader.risk import stale_data

log = logging.getLogger(__name__)

BACKLOG = "backlog: a newer candle of this pair came in the same poll (replayed as warm-up, no order)"


class ClockWentBack(ExchangeError):
    """The exchange's clock is earlier than it was: its data can no longer be trusted to move forward."""


@dataclass
class ExchangeClock:
    """Exchange time in epoch ms: the last server time read, plus local monotonic time since (a poll can
    last long, e.g. an AddOrder timeout). Refuses a server time earlier than the previous one."""

    tolerance_ms: int = 5_000
    monotonic: Callable[[], float] = time.monotonic
    _server_ms: int | None = None
    _at: float = 0.0

    def observe(self, server_ms: int) -> int:
        previous = self._server_ms
        if previous is not None and server_ms < previous - self.tolerance_ms:
            raise ClockWentBack(f"the exchange clock went backwards from {_iso(previous)} to {_iso(server_ms)} "
                                f"(restarted or replaying old data): trading halted until a human looks")
        self._server_ms, self._at = server_ms, self.monotonic()
        return server_ms

    def now_ms(self) -> int:
        if self._server_ms is None:
            raise RuntimeError("the exchange clock has not been read yet")
        return self._server_ms + int((self.monotonic() - self._at) * 1000)


def _iso(ms: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ms / 1000))


@dataclass
class LiveLoop:
    client: KrakenClient
    engine: Engine
    pairs: Sequence[str]
    timeframe: str
    last_ts: dict[str, int] = field(default_factory=dict)
    clock: ExchangeClock = field(default_factory=ExchangeClock)

    def __post_init__(self) -> None:
        self.engine.clock = self.clock.now_ms  # freshness and risk are judged by the exchange's clock

    def warm_up(self) -> int:
        """Feed history without decisions; returns how many candles warmed the features."""
        self.clock.observe(self.client.server_time_ms())
        fetched = {pair: self.client.fetch_candles(pair, self.timeframe) for pair in self.pairs}
        self.engine.trade_from_ts = 2**62  # history only warms the features up: no decisions on it
        newest = 0
        for pair, candles in fetched.items():
            for candle in candles:
                self.engine.on_candle(pair, candle)
            if candles:
                self.last_ts[pair] = candles[-1].ts
                newest = max(newest, candles[-1].ts)
        self.engine.trade_from_ts = newest + 1
        return sum(len(c) for c in fetched.values())

    def poll(self) -> list[Decision]:
        """Read the exchange clock, sync orders and cash (once), fetch every pair, then feed what is new
        (all pairs, in time order)."""
        self.clock.observe(self.client.server_time_ms())
        self.engine.broker.sync()
        fresh: list[tuple[int, str, Candle]] = []
        for pair in self.pairs:
            since = self.last_ts.get(pair)
            fresh.extend((c.ts, pair, c) for c in self.client.fetch_candles(pair, self.timeframe, since)
                         if since is None or c.ts > since)
        fresh.sort(key=lambda t: (t[0], t[1]))
        newest = {pair: ts for ts, pair, _ in fresh}  # time order: the last one per pair wins
        decisions = []
        for _, batch in itertools.groupby(fresh, key=lambda t: t[0]):
            same_time = list(batch)
            for _, pair, candle in same_time:  # every pair's orders meet this open before any decision at it
                self.engine.broker.on_candle(pair, candle)  # (a paper venue fills there; Kraken's: no-op)
            for ts, pair, candle in same_time:
                self.last_ts[pair] = ts  # consumed before it is fed: an error below never feeds it twice
                if ts < newest[pair]:
                    decisions.append(self.engine.warm(pair, candle, BACKLOG))
                    continue
                decision = self.engine.on_candle(pair, candle)
                if decision is not None:
                    decisions.append(decision)
        return decisions

    def newest_ts(self) -> int | None:
        """Open time (epoch ms) of the newest finished candle seen over all pairs."""
        return max(self.last_ts.values(), default=None)

    def stale_data(self, limits: RiskParams, candle_ms: int) -> str:
        """Why the market data is stale by the exchange's clock ('' while every pair's newest finished
        candle is young enough to trade on: `risk.stale_after_candles`)."""
        if not self.last_ts:
            return ""
        now = self.clock.now_ms()
        ages = {pair: now - (ts + candle_ms) for pair, ts in self.last_ts.items()}
        pair = max(ages, key=lambda p: ages[p])
        why = stale_data(ages[pair], candle_ms, limits)
        return f"{pair}: {why}" if why else ""
