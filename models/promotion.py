"""Promotion decision: pure, over plain numbers (issue G replaces the rule with a paired A/B test)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class PromotionDecision:
    decision: Literal["promote", "keep", "insufficient_evidence"]
    reason: str


def decide_first_rule(
    challenger: Mapping[str, float], champion: Mapping[str, float] | None, min_trades: int
) -> PromotionDecision:
    """Promote when there is no champion, or when the challenger's holdout net return (from the
    trader's own backtest) is at least the champion's; never on fewer than `min_trades` round trips."""
    if champion is None:
        return PromotionDecision("promote", "no champion yet: the first registered model bootstraps the alias")
    trades = int(challenger.get("holdout_n_round_trips", 0))
    if trades < min_trades:
        return PromotionDecision("insufficient_evidence", f"{trades} holdout round trips < {min_trades}")
    ours = challenger.get("holdout_net_return", float("-inf"))
    theirs = champion.get("holdout_net_return", float("-inf"))
    if ours >= theirs:
        return PromotionDecision("promote", f"holdout net return {ours:+.2%} ≥ champion's {theirs:+.2%}")
    return PromotionDecision("keep", f"holdout net return {ours:+.2%} < champion's {theirs:+.2%}")
