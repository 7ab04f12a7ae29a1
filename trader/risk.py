"""Risk checks: pure functions over plain numbers. Selling down a position is always allowed (it only
reduces risk); buying must pass every limit. The engine records why an order was refused.

Two limits do more than refuse: when equity's drawdown from its peak reaches `max_drawdown` (the kill
switch) or the day's loss reaches `daily_loss_limit`, `risk_breach` says so and the engine sells every
position and halts (`halt_lifts_at`: the kill switch until a human resumes, `trader.ledger.resume_trading`;
the daily loss limit for the rest of that UTC day)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from core.params import RiskParams
from core.types import Side

DAY_MS = 86_400_000
KILL_SWITCH = "kill switch"
DAILY_LOSS = "daily loss limit"


@dataclass(frozen=True)
class RiskView:
    """What the checks need to know at one moment (quote currency = USD, times in epoch ms)."""

    equity: float
    peak_equity: float
    day_start_equity: float
    position_notional: float     # this pair's current position, marked at the last close
    orders_last_minute: int
    candle_age_ms: int           # now − newest candle's close time
    candle_ms: int               # one candle's length


@dataclass(frozen=True)
class RiskState:
    """What the risk limits remember across a restart (the ledger's `risk_state` row).

    `peak_equity` and `day_start_equity` in USD (0.0 = not seen yet: the next equity becomes them), `day`
    = UTC day number of the candle that started the day (−1 = none yet), `halted` = why the loss limits
    halted trading ('' = they did not), `halted_at_ms` = when (epoch ms, the engine's clock), `halted_until_ms`
    = the open time of the first candle the halt lifts on by itself (None = only a resume lifts it)."""

    peak_equity: float = 0.0
    day: int = -1
    day_start_equity: float = 0.0
    halted: str = ""
    halted_at_ms: int | None = None
    halted_until_ms: int | None = None


def risk_breach(view: RiskView, limits: RiskParams) -> str:
    """'' while equity is inside both loss limits; otherwise why every position must be sold and trading
    halted: the drawdown from the peak (kill switch) or the loss since the day's start (fractions of equity)."""
    if view.peak_equity > 0:
        drawdown = 1 - view.equity / view.peak_equity
        if drawdown >= limits.max_drawdown:
            return f"{KILL_SWITCH}: drawdown {drawdown:.1%} ≥ {_pct(limits.max_drawdown)}"
    if view.day_start_equity > 0:
        loss = 1 - view.equity / view.day_start_equity
        if loss >= limits.daily_loss_limit:
            return f"{DAILY_LOSS}: lost {loss:.1%} of the day's start equity ≥ {_pct(limits.daily_loss_limit)}"
    return ""


def halt_lifts_at(breach: str, candle_ts: int) -> int | None:
    """When a loss-limit halt set on the candle opened at `candle_ts` lifts by itself (epoch ms, compared with
    later candles' open times). The kill switch never does (None): a 15 % drawdown wants a human. The daily
    loss limit does at the next UTC day, whose start equity is then the flat account's: it is a limit per
    day, and a halt for good would leave every backtest flat after its first bad day (on the bundled
    candles, within the first two weeks)."""
    if breach.startswith(DAILY_LOSS):
        return (candle_ts // DAY_MS + 1) * DAY_MS
    return None


def _pct(fraction: float) -> str:
    return f"{fraction * 100:.4g}%"


def check_order(side: Side, notional: float, view: RiskView, limits: RiskParams) -> str:
    """'' when the order may go, otherwise the reason it may not."""
    if side is Side.SELL:
        return ""
    breach = risk_breach(view, limits)
    if breach:
        return breach
    stale = stale_data(view.candle_age_ms, view.candle_ms, limits)
    if stale:
        return stale
    if view.orders_last_minute >= limits.max_orders_per_minute:
        return f"order rate limit: {view.orders_last_minute} orders in the last minute"
    if notional > limits.max_order_notional:
        return f"order notional {notional:,.2f} > {limits.max_order_notional:,.2f} USD"
    if view.position_notional + notional > limits.max_position_fraction * view.equity * (1 + 1e-9):
        return f"position would exceed {limits.max_position_fraction:.0%} of equity"
    return ""


def stale_data(candle_age_ms: int, candle_ms: int, limits: RiskParams) -> str:
    """'' while the newest candle is young enough to trade on, otherwise why not (both sides, live)."""
    if candle_age_ms > limits.stale_after_candles * candle_ms:
        return f"stale market data: newest candle is {candle_age_ms / 1000:.0f} s old"
    return ""


@dataclass
class RiskTracker:
    """The running numbers behind RiskView: equity peak, start-of-day equity, recent order times."""

    peak_equity: float = 0.0
    day: int = -1
    day_start_equity: float = 0.0
    order_times: deque[int] = field(default_factory=deque)

    def observe(self, now_ms: int, equity: float) -> bool:
        """Take one equity mark (USD at epoch ms); True if the peak or the day moved (worth persisting)."""
        changed = equity > self.peak_equity
        self.peak_equity = max(self.peak_equity, equity)
        if now_ms // DAY_MS != self.day:
            self.day, self.day_start_equity = now_ms // DAY_MS, equity
            changed = True
        return changed

    def restore(self, state: RiskState) -> None:
        self.peak_equity, self.day, self.day_start_equity = state.peak_equity, state.day, state.day_start_equity

    def order_sent(self, now_ms: int) -> None:
        self.order_times.append(now_ms)

    def orders_in_last_minute(self, now_ms: int) -> int:
        while self.order_times and self.order_times[0] <= now_ms - 60_000:
            self.order_times.popleft()
        return len(self.order_times)
