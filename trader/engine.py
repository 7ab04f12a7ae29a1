"""The one event engine behind backtest, paper and live: candle → online features → model score →
strategy → order intent → broker. No pandas here: this is the hot path."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from core.params import RiskParams
from core.types import Candle, Fill, OrderIntent, Side
from features.spec import FeatureSpec, OnlineFeatures
from trader.risk import RiskTracker, RiskView, check_order, stale_data
from trader.strategy import ThresholdStrategy

WARMING_UP = "features warming up"
NON_FINITE = "non-finite feature"

Scorer = Callable[[Sequence[float]], float]
"""Feature vector → probability that a long trade pays after fees."""


class Broker(Protocol):
    def submit(self, intent: OrderIntent, decision: Decision | None = None) -> None:
        """`decision`: the engine's decision behind the intent (a ledger stores both in one transaction)."""
    def on_candle(self, pair: str, candle: Candle) -> list[Fill]: ...
    def sync(self) -> list[Fill]:
        """Live, once per poll before any candle is fed: what the venue did since (the simulated broker
        fills on each candle and has nothing to learn)."""
    def position(self, pair: str) -> float: ...
    def has_pending(self, pair: str) -> bool: ...
    @property
    def cash(self) -> float: ...


class Decision(NamedTuple):
    """What the engine decided on one candle, and why (kept for audits and parity tests).
    A NamedTuple: one is made per candle, and it is 3× cheaper to build than a frozen dataclass."""

    ts: int
    pair: str
    prob: float
    action: str          # "buy", "sell", "hold", "blocked", "stand_aside"
    reason: str = ""


@dataclass
class Engine:
    spec: FeatureSpec
    score: Scorer
    strategy: ThresholdStrategy
    broker: Broker
    trade_from_ts: int = 0
    """Candles before this open time only warm the features up; no decision is taken on them."""
    risk: RiskParams | None = None
    """Limits checked before every buy (None: unchecked, e.g. for benchmarks of the bare loop)."""
    candle_ms: int = 3_600_000
    clock: Callable[[], int] | None = None
    """Wall clock in epoch ms for live trading; None = the candle's close time (backtests)."""
    id_prefix: str = "kf-"
    """Client order ids are id_prefix + a counter: give each live process its own prefix."""
    keep_decisions: bool = True
    """Off for long soaks/benchmarks: decisions are then only returned, not accumulated."""
    model_version: int | None = None
    """The registry version whose scores drive the decisions (changes on a hot reload)."""
    halted: str = ""
    """Non-empty: why trading is halted (e.g. the ledger disagrees with the exchange); no orders at all."""
    decisions: list[Decision] = field(default_factory=list)
    _states: dict[str, OnlineFeatures] = field(default_factory=dict)
    _last_close: dict[str, float] = field(default_factory=dict)
    _seq: int = 0
    _risk_state: RiskTracker = field(default_factory=RiskTracker)

    def on_candle(self, pair: str, candle: Candle) -> Decision | None:
        """Live and paper: update this pair's online features, score them, act."""
        state = self._state(pair)
        features = state.update(candle)
        if candle.ts < self.trade_from_ts:
            return self.on_scored_candle(pair, candle, math.nan, "")
        prob, why_not = self._score(features, state.ready)
        return self.on_scored_candle(pair, candle, prob, why_not)

    def warm(self, pair: str, candle: Candle, reason: str) -> Decision:
        """Live: a candle of a backlog (older than the newest one fetched) only moves the features and the
        marks on; no order is ever sent on it. Recorded as standing aside, with `reason`."""
        self._state(pair).update(candle)
        self._last_close[pair] = candle.close
        decision = Decision(candle.ts, pair, math.nan, "stand_aside", reason)
        if self.keep_decisions and candle.ts >= self.trade_from_ts:
            self.decisions.append(decision)
        return decision

    def _state(self, pair: str) -> OnlineFeatures:
        return self._states.get(pair) or self._states.setdefault(pair, self.spec.online())

    def on_scored_candle(self, pair: str, candle: Candle, prob: float, why_not: str) -> Decision | None:
        """Act on a candle whose score is already known (backtests score whole histories in batch,
        with features proven equal to the online ones). `why_not` non-empty = stand aside."""
        self.broker.on_candle(pair, candle)
        self._last_close[pair] = candle.close
        if candle.ts < self.trade_from_ts:
            return None
        if self.risk is not None:
            self._risk_state.observe(candle.ts, self.equity())
        decision = self._act(pair, candle, prob, why_not)
        if self.keep_decisions:
            self.decisions.append(decision)
        return decision

    def _score(self, features: list[float], ready: bool) -> tuple[float, str]:
        if not ready:
            return math.nan, WARMING_UP
        if any(math.isnan(x) or math.isinf(x) for x in features):
            return math.nan, NON_FINITE
        return float(self.score(features)), ""

    def _act(self, pair: str, candle: Candle, prob: float, why_not: str) -> Decision:
        if why_not:
            return Decision(candle.ts, pair, math.nan, "stand_aside", why_not)
        if self.halted:
            return Decision(candle.ts, pair, prob, "stand_aside", f"halted: {self.halted}")
        stale = self._stale(candle)
        if stale:
            return Decision(candle.ts, pair, prob, "stand_aside", stale)
        broker = self.broker
        if broker.has_pending(pair):
            return Decision(candle.ts, pair, prob, "hold", "order pending")
        is_long = broker.position(pair) > 0
        wants = self.strategy.wants_long(prob, is_long)
        if wants == is_long:
            return Decision(candle.ts, pair, prob, "hold")
        if wants:
            qty = self.strategy.position_fraction * self.equity() / candle.close
            refused = self._risk_refusal(pair, candle, qty * candle.close)
            if refused:
                return Decision(candle.ts, pair, prob, "blocked", refused)
            return self._submit(Decision(candle.ts, pair, prob, "buy"), Side.BUY, qty, self._now(candle))
        return self._submit(Decision(candle.ts, pair, prob, "sell"), Side.SELL, broker.position(pair),
                            self._now(candle))

    def _stale(self, candle: Candle) -> str:
        """With a wall clock (live), no order of either side on a candle older than the risk limit."""
        if self.clock is None or self.risk is None:
            return ""
        return stale_data(self.clock() - (candle.ts + self.candle_ms), self.candle_ms, self.risk)

    def _now(self, candle: Candle) -> int:
        return self.clock() if self.clock else candle.ts + self.candle_ms

    def _risk_refusal(self, pair: str, candle: Candle, notional: float) -> str:
        if self.risk is None:
            return ""
        now = self._now(candle)
        st = self._risk_state
        view = RiskView(self.equity(), st.peak_equity, st.day_start_equity,
                        self.broker.position(pair) * candle.close, st.orders_in_last_minute(now),
                        now - (candle.ts + self.candle_ms), self.candle_ms)
        return check_order(Side.BUY, notional, view, self.risk)

    def _submit(self, decision: Decision, side: Side, qty: float, now_ms: int) -> Decision:
        if self.risk is not None:
            self._risk_state.order_sent(now_ms)
        self._seq += 1
        intent = OrderIntent(f"{self.id_prefix}{self._seq}", decision.pair, side, qty, f"p={decision.prob:.3f}")
        self.broker.submit(intent, decision)
        return decision

    def swap_model(self, spec: FeatureSpec, score: Scorer, model_version: int | None,
                   warm_states: dict[str, OnlineFeatures] | None = None) -> None:
        """Hand the next candle to another model. With the same feature spec the warm feature state is
        kept; a different spec must come with states already warmed on the same history."""
        if spec.hash != self.spec.hash:
            if warm_states is None or set(warm_states) != set(self._states):
                raise ValueError("a model with another feature spec needs warmed feature states for every pair")
            self._states = dict(warm_states)
        self.spec, self.score, self.model_version = spec, score, model_version

    def last_close(self, pair: str) -> float | None:
        return self._last_close.get(pair)

    def equity(self) -> float:
        """Cash plus every position marked at its pair's last close (quote currency)."""
        equity = self.broker.cash
        for pair, close in self._last_close.items():
            equity += self.broker.position(pair) * close
        return equity
