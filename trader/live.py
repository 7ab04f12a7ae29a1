"""The live loop: poll finished candles from Kraken (or the emulator), feed the one engine.

Warm-up: the engine's online features are fed Kraken's last 720 finished candles without deciding.
Then each poll feeds only candles newer than the last one seen, in time order across pairs.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from core.types import Candle
from market.kraken import KrakenClient
from trader.engine import Decision, Engine

log = logging.getLogger(__name__)


@dataclass
class LiveLoop:
    client: KrakenClient
    engine: Engine
    pairs: Sequence[str]
    timeframe: str
    last_ts: dict[str, int] = field(default_factory=dict)

    def warm_up(self) -> int:
        """Feed history without decisions; returns how many candles warmed the features."""
        fed = 0
        newest = 0
        self.engine.trade_from_ts = 2**62  # history only warms the features up: no decisions on it
        for pair in self.pairs:
            candles = self.client.fetch_candles(pair, self.timeframe)
            for candle in candles:
                self.engine.on_candle(pair, candle)
            if candles:
                self.last_ts[pair] = candles[-1].ts
                newest = max(newest, candles[-1].ts)
            fed += len(candles)
        self.engine.trade_from_ts = newest + 1
        return fed

    def poll(self) -> list[Decision]:
        """Fetch, then feed every new finished candle (all pairs, in time order)."""
        fresh: list[tuple[int, str, Candle]] = []
        for pair in self.pairs:
            since = self.last_ts.get(pair)
            for candle in self.client.fetch_candles(pair, self.timeframe, since):
                if since is None or candle.ts > since:
                    fresh.append((candle.ts, pair, candle))
        decisions = []
        for ts, pair, candle in sorted(fresh, key=lambda t: (t[0], t[1])):
            self.last_ts[pair] = ts  # consumed before it is fed: an error below never feeds it twice
            decision = self.engine.on_candle(pair, candle)
            if decision is not None:
                decisions.append(decision)
        return decisions
