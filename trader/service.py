"""The trader process for live (or emulator) trading: load @champion, check the key, warm up, poll.

One API key per process (Kraken nonces are per key). Secrets come from Settings as SecretStr and are
only unwrapped at the ccxt boundary; they are never logged.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from core.params import Params
from core.settings import Settings
from market.frame import timeframe_to_timedelta
from market.kraken import KrakenClient, make_exchange
from models import registry
from trader.brokers.kraken import KrakenBroker
from trader.engine import Engine
from trader.ledger import Ledger
from trader.live import LiveLoop
from trader.model import trading_model
from trader.strategy import ThresholdStrategy

log = logging.getLogger(__name__)


class UnsafeKeyError(RuntimeError):
    """The API key can withdraw funds: a trading process must only hold a trade-only key."""


@dataclass
class LiveSession:
    loop: LiveLoop
    broker: KrakenBroker
    model_name: str
    model_version: int


def connect(settings: Settings, throttle: bool = True) -> KrakenClient:
    if settings.kraken_key is None or settings.kraken_secret is None:
        raise ValueError("live trading needs KRAKENFLOW_KRAKEN_KEY and KRAKENFLOW_KRAKEN_SECRET")
    exchange = make_exchange(settings.kraken_url, settings.kraken_key.get_secret_value(),
                             settings.kraken_secret.get_secret_value(), throttle=throttle)
    return KrakenClient(exchange)


def open_session(params: Params, settings: Settings, client: KrakenClient, model_ref: str = "champion"
                 ) -> LiveSession:
    """Refuse withdraw-capable keys, load the model (spec-hash checked), wire broker + ledger + engine."""
    if client.key_can_withdraw():
        raise UnsafeKeyError("refusing to trade: this API key may withdraw funds; create a trade-only key")
    registry.configure(settings.tracking_uri, settings.mlflow_registry_uri)
    model = trading_model(registry.load_model(params.registry.model_name, model_ref))
    ledger = Ledger(settings.ledger_uri)
    broker = KrakenBroker(client, ledger, model.version)
    strategy = ThresholdStrategy(params.trade.enter_threshold, params.trade.exit_threshold,
                                 params.trade.position_fraction)
    candle_ms = int(timeframe_to_timedelta(params.data.timeframe).total_seconds() * 1000)
    engine = Engine(model.spec, model.score, strategy, broker, risk=params.risk, candle_ms=candle_ms,
                    id_prefix=f"kf{int(time.time()) % 10**8}-")  # unique across restarts, ≤ 18 chars
    loop = LiveLoop(client, engine, list(params.pairs), params.data.timeframe)
    ledger.audit("session_start", {"model": model.name, "version": model.version, "url": settings.kraken_url})
    return LiveSession(loop, broker, model.name, model.version)


class StopFlag:
    """Set by SIGTERM/SIGINT: the loop finishes the current poll, then returns (state is in the ledger)."""

    def __init__(self) -> None:
        self.stopped = False

    def __call__(self, signum: int, _frame: object) -> None:
        log.info("signal %s: stopping after this poll", signum)
        self.stopped = True

    def install(self) -> StopFlag:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self)
        return self


def run(session: LiveSession, poll_seconds: float, max_polls: int | None = None,
        after_poll: Callable[[int], None] | None = None, dead_man_s: int = 0,
        stop: StopFlag | None = None) -> None:
    """Warm up, then poll until SIGTERM or `max_polls`. With `dead_man_s` > 0 Kraken's
    CancelAllOrdersAfter is re-armed after every healthy poll, so a hung process leaves no open orders."""
    stop = stop or StopFlag().install()
    session.loop.warm_up()
    polls = 0
    while not stop.stopped and (max_polls is None or polls < max_polls):
        session.loop.poll()
        if dead_man_s > 0:
            session.loop.client.cancel_all_after(dead_man_s)
        polls += 1
        if after_poll is not None:
            after_poll(polls)
        elif poll_seconds > 0:
            time.sleep(poll_seconds)
