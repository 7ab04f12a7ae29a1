"""Risk checks: pure functions over plain numbers. Selling down a position is always allowed (it only
reduces risk); buying must pass every limit. The engine records why an order was refused."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from core.params import RiskParams
from core.types import Side

DAY_MS = 86_400_000


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


def check_order(side: Side, notional: float, view: RiskView, limits: RiskParams) -> str:
    """'' when the order may go, otherwise the reason it may not."""
    if side is Side.SELL:
        return ""
    if view.peak_equity > 0 and 1 - view.equity / view.peak_equity >= limits.max_drawdown:
        return f"kill switch: drawdown {1 - view.equity / view.peak_equity:.1%} ≥ {limits.max_drawdown:.0%}"
    if view.day_start_equity > 0 and 1 - view.equity / view.day_start_equity >= limits.daily_loss_limit:
        return f"daily loss limit {limits.daily_loss_limit:.0%} reached"
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

    def observe(self, now_ms: int, equity: float) -> None:
        self.peak_equity = max(self.peak_equity, equity)
        if now_ms // DAY_MS != self.day:
            self.day, self.day_start_equity = now_ms // DAY_MS, equity

    def order_sent(self, now_ms: int) -> None:
        self.order_times.append(now_ms)

    def orders_in_last_minute(self, now_ms: int) -> int:
        while self.order_times and self.order_times[0] <= now_ms - 60_000:
            self.order_times.popleft()
        return len(self.order_times)
