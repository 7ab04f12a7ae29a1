"""Hot model reload: the service watches the registry alias (`@champion`); a new version is loaded, its
feature-spec hash checked against this code, its features warmed on the same candles the engine has
seen, and swapped in between two candles, so no candle is missed and no decision mixes two models.

A refused version (spec mismatch, not enough history to warm up, corrupt or unloadable artifacts — any
failure to load) is audited once and the current model keeps trading.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from features.spec import FeatureSpec, OnlineFeatures, SpecMismatchError
from market.kraken import KrakenClient
from models import registry
from trader.model import TradingModel, trading_model

log = logging.getLogger(__name__)


class ReloadRefused(RuntimeError):
    """A new model version cannot take over safely; the current one keeps trading."""


def warm_states(spec: FeatureSpec, client: KrakenClient, pairs: Sequence[str], timeframe: str,
                through_ts: Mapping[str, int]) -> dict[str, OnlineFeatures]:
    """Fresh feature states for `spec`, fed the exchange's candles up to the last one the engine saw."""
    states = {}
    for pair in pairs:
        state = spec.online()
        for candle in client.fetch_candles(pair, timeframe):
            if candle.ts <= through_ts.get(pair, -1):
                state.update(candle)
        if not state.ready:
            raise ReloadRefused(f"{pair}: only {state.seen} candles to warm features that need {spec.warmup}")
        states[pair] = state
    return states


@dataclass
class ModelWatcher:
    """Polls `name@alias` at most every `every_s` seconds (monotonic clock, injectable for tests)."""

    name: str
    alias: str
    every_s: float
    clock: Callable[[], float] = time.monotonic
    refused: set[int] = field(default_factory=set)
    _next_check: float = 0.0

    def new_version(self, current: int | None, pinned: int | None = None) -> int | None:
        """The alias's version (or the operator's `pinned` one) if it is due, differs from `current` and was
        not refused before."""
        now = self.clock()
        if now < self._next_check:
            return None
        self._next_check = now + self.every_s
        version = pinned if pinned is not None else registry.alias_version(self.name, self.alias)
        if version is None or version == current or version in self.refused:
            return None
        return version


    def check_now(self) -> None:
        """The next `new_version` call looks at once (an operator asked for a reload or a pin)."""
        self._next_check = 0.0


def load_for_swap(name: str, version: int) -> TradingModel:
    """Load a version as a trading model; every reason it cannot trade becomes ReloadRefused, so a bad
    version (corrupt artifact: registry.ModelArtifactError; wrong features; a registry error) never stops
    the model that trades now."""
    try:
        return trading_model(registry.load_model(name, str(version)))
    except (SpecMismatchError, LookupError, OSError, ValueError) as err:  # incl. ModelArtifactError
        raise ReloadRefused(f"{name} v{version}: {err}") from err
    except Exception as err:  # LightGBM, MLflow, I/O, anything: the current model trades on
        log.exception("loading %s v%s failed", name, version)
        raise ReloadRefused(f"{name} v{version} cannot be loaded: {type(err).__name__}: {err}") from err
