"""The one event engine behind backtest, paper and live: candle → online features → model score →
strategy → order intent → broker. No pandas here: this is the hot path.

Loss limits act (Engine._watch_risk): when `trader.risk.risk_breach` reports the drawdown kill switch or
the daily loss limit, the engine halts with the reason and sells every position through the broker like
any other order. Deterministic on candle data (equity is marked at candle closes), so a backtest and a
live run trip on the same candle."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

from core.params import RiskParams
from core.types import Candle, Fill, OrderIntent, Side
from features.spec import FeatureSpec, OnlineFeatures
from trader.risk import (
    KILL_SWITCH,
    RiskState,
    RiskTracker,
    RiskView,
    check_order,
    halt_lifts_at,
    risk_breach,
    stale_data,
)
from trader.strategy import ThresholdStrategy

WARMING_UP = "features warming up"
NON_FINITE = "non-finite feature"
FLATTEN_ATTEMPTS = 5
"""Flatten sells per pair per halt (one per candle at most): a position the venue keeps refusing (dust
under its minimum order) is then left for a human instead of an order every candle."""

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


class RiskMemory(Protocol):
    """Where the risk state outlives the process (the ledger); backtests keep it in memory only."""

    def save_risk_state(self, state: RiskState, audit: tuple[str, dict[str, Any]] | None = None) -> None:
        """Persist `state`, with the audit row (kind, detail) of a halt set or lifted in the same transaction."""


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
    """Non-empty: why trading is halted (e.g. the ledger disagrees with the exchange); no orders at all,
    except the flatten sells of a loss-limit halt (`risk_halt`)."""
    paused: str = ""
    """Non-empty: why an operator halted trading (trader.controls): no orders, but a loss-limit flatten sells."""
    no_buys: str = ""
    """Non-empty: why an operator stopped buying; sells go on."""
    risk_halt: str = ""
    """Non-empty: why a loss limit (kill switch, daily loss) halted trading. A restart keeps it (risk_memory);
    the kill switch's is cleared only by `trader.ledger.resume_trading`, the daily loss limit's also by the
    next UTC day (`halted_until_ms`)."""
    halted_at_ms: int | None = None
    """When the loss-limit halt was set (epoch ms: the exchange clock live, the candle's close in backtests)."""
    halted_until_ms: int | None = None
    """Open time of the first candle on which the loss-limit halt lifts by itself (None: never)."""
    risk_halts: list[tuple[int, str]] = field(default_factory=list)
    """(epoch ms, reason) of every loss-limit halt this engine set (what a backtest reports)."""
    on_halt: Callable[[str], None] | None = None
    """Called once with the reason when a loss limit halts trading, after its flatten orders are submitted
    (e.g. to send an alert); it must not raise."""
    risk_memory: RiskMemory | None = None
    """The ledger, live: the peak, the day and the halt are written through it as they change."""
    decisions: list[Decision] = field(default_factory=list)
    _states: dict[str, OnlineFeatures] = field(default_factory=dict)
    _last_close: dict[str, float] = field(default_factory=dict)
    _seq: int = 0
    _risk_state: RiskTracker = field(default_factory=RiskTracker)
    _flatten_tries: dict[str, int] = field(default_factory=dict)

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
            self._watch_risk(pair, candle)
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

    def _watch_risk(self, pair: str, candle: Candle) -> None:
        """Mark equity at this close; lift a daily halt whose day is over; halt and flatten if a loss limit
        is reached. The peak, the day and the halt are persisted (risk_memory) when they move, so a restart
        keeps them."""
        assert self.risk is not None
        equity = self.equity()
        moved = self._risk_state.observe(candle.ts, equity)
        if self.halted_until_ms is not None and candle.ts >= self.halted_until_ms:
            self._remember(self._lift(candle))
            moved = False
        if not self.halted:  # another halt distrusts the ledger, and so the equity marked from it
            breach = risk_breach(self._view(pair, candle, equity), self.risk)
            if breach:
                self._trip(breach, equity, pair, candle)
                return
        if moved:
            self._remember()

    def _remember(self, audit: tuple[str, dict[str, Any]] | None = None) -> None:
        if self.risk_memory is not None:
            self.risk_memory.save_risk_state(self.risk_snapshot(), audit)

    def _lift(self, candle: Candle) -> tuple[str, dict[str, Any]]:
        """The daily loss limit's day is over: trade again (the day's start equity is already the new one's)."""
        detail = {"reason": self.risk_halt, "halted_at_ms": self.halted_at_ms, "lifted_at_ms": self._now(candle)}
        if self.halted == self.risk_halt:
            self.halted = ""
        self.risk_halt, self.halted_at_ms, self.halted_until_ms = "", None, None
        return "risk_halt_lifted", detail

    def _trip(self, reason: str, equity: float, pair: str, candle: Candle) -> None:
        """Halt (persisted and audited first: a crash after this still restarts halted and flattening), sell
        the other pairs' positions now (this candle's pair is sold by `_act`), then tell `on_halt`."""
        self.halted = self.risk_halt = reason
        self.halted_at_ms = self._now(candle)
        self.halted_until_ms = halt_lifts_at(reason, candle.ts)
        self.risk_halts.append((self.halted_at_ms, reason))
        self._flatten_tries.clear()
        st = self._risk_state
        self._remember(("kill_switch" if reason.startswith(KILL_SWITCH) else "daily_loss_halt", {
            "reason": reason, "equity": equity, "peak_equity": st.peak_equity,
            "day_start_equity": st.day_start_equity, "halted_at_ms": self.halted_at_ms,
            "halted_until_ms": self.halted_until_ms}))
        for other in sorted(self._last_close):
            if other != pair and self._should_flatten(other):
                decision = self._flatten(Decision(candle.ts, other, math.nan, "sell"), self._now(candle))
                if self.keep_decisions:
                    self.decisions.append(decision)
        if self.on_halt is not None:
            self.on_halt(reason)

    def _flattening(self) -> bool:
        """A loss-limit halt sells; any other halt (the ledger disagrees with the exchange) must not trade."""
        return bool(self.risk_halt) and self.halted == self.risk_halt

    def _should_flatten(self, pair: str) -> bool:
        return (self._flattening() and self.broker.position(pair) > 0 and not self.broker.has_pending(pair)
                and self._flatten_tries.get(pair, 0) < FLATTEN_ATTEMPTS)

    def _flatten(self, decision: Decision, now_ms: int) -> Decision:
        """Sell the whole position at market, whatever the candle's age or the recent order rate: a trader
        whose loss limit tripped wants out, and a market sell does not need a fresh candle's price (as
        Freqtrade still exits on its stop-loss when the candles are outdated, and falls back to an emergency
        market exit when exit orders keep failing). At most one sell per pair per candle, none while an
        order of the pair is pending, at most FLATTEN_ATTEMPTS per halt, so it cannot run away."""
        pair = decision.pair
        self._flatten_tries[pair] = self._flatten_tries.get(pair, 0) + 1
        why = f"flatten: {self.risk_halt}"
        return self._submit(decision._replace(reason=why), Side.SELL, self.broker.position(pair), now_ms, why)

    def _act(self, pair: str, candle: Candle, prob: float, why_not: str) -> Decision:
        if self._should_flatten(pair):
            return self._flatten(Decision(candle.ts, pair, prob, "sell"), self._now(candle))
        if why_not:
            return Decision(candle.ts, pair, math.nan, "stand_aside", why_not)
        if self.halted:
            return Decision(candle.ts, pair, prob, "stand_aside", self._halted_reason(pair))
        if self.paused:
            return Decision(candle.ts, pair, prob, "stand_aside", f"halted: {self.paused}")
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
        if wants and self.no_buys:
            return Decision(candle.ts, pair, prob, "blocked", self.no_buys)
        if wants:
            qty = self.strategy.position_fraction * self.equity() / candle.close
            refused = self._risk_refusal(pair, candle, qty * candle.close)
            if refused:
                return Decision(candle.ts, pair, prob, "blocked", refused)
            return self._submit(Decision(candle.ts, pair, prob, "buy"), Side.BUY, qty, self._now(candle))
        return self._submit(Decision(candle.ts, pair, prob, "sell"), Side.SELL, broker.position(pair),
                            self._now(candle))

    def flatten_now(self, pair: str, ts: int, reason: str) -> Decision | None:
        """An operator's flatten: sell the whole position at market now (None: nothing to sell, or an order of
        the pair is pending). Decided on candle `ts`, the pair's newest."""
        qty = self.broker.position(pair)
        if qty <= 0 or self.broker.has_pending(pair):
            return None
        now_ms = self.clock() if self.clock else ts + self.candle_ms
        return self._submit(Decision(ts, pair, math.nan, "sell", reason), Side.SELL, qty, now_ms, reason)

    def _halted_reason(self, pair: str) -> str:
        if self._flattening() and self._flatten_tries.get(pair, 0) >= FLATTEN_ATTEMPTS \
                and self.broker.position(pair) > 0 and not self.broker.has_pending(pair):
            return f"halted: {self.halted}; {FLATTEN_ATTEMPTS} flatten sells left a position: sell it by hand"
        return f"halted: {self.halted}"

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
        return check_order(Side.BUY, notional, self._view(pair, candle, self.equity()), self.risk)

    def _view(self, pair: str, candle: Candle, equity: float) -> RiskView:
        now = self._now(candle)
        st = self._risk_state
        return RiskView(equity, st.peak_equity, st.day_start_equity, self.broker.position(pair) * candle.close,
                        st.orders_in_last_minute(now), now - (candle.ts + self.candle_ms), self.candle_ms)

    def risk_snapshot(self) -> RiskState:
        """The risk state to persist: peak, day, day-start equity and the loss-limit halt."""
        st = self._risk_state
        return RiskState(st.peak_equity, st.day, st.day_start_equity, self.risk_halt, self.halted_at_ms,
                         self.halted_until_ms)

    def restore_risk(self, state: RiskState) -> None:
        """Start from a persisted risk state (a restart): same peak and day; still halted — and flattening
        what is left — if a loss limit had halted trading (a daily one lifts on the next day's first candle)."""
        self._risk_state.restore(state)
        self.risk_halt, self.halted_at_ms, self.halted_until_ms = (state.halted, state.halted_at_ms,
                                                                   state.halted_until_ms)
        if state.halted and not self.halted:
            self.halted = state.halted

    def _submit(self, decision: Decision, side: Side, qty: float, now_ms: int, why: str = "") -> Decision:
        if self.risk is not None:
            self._risk_state.order_sent(now_ms)
        self._seq += 1
        intent = OrderIntent(f"{self.id_prefix}{self._seq}", decision.pair, side, qty,
                             why or f"p={decision.prob:.3f}")
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
