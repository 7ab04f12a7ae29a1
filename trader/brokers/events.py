"""One INFO line per decision that acts, and per fill, with fields in `extra` for JSON logs: the same lines
for paper and live brokers."""

from __future__ import annotations

import logging
import math
from typing import Any

from core.types import Fill, OrderIntent


def log_order_decision(decision: Any, intent: OrderIntent, model_version: int | None, mode: str,
                       logger: logging.Logger) -> None:
    """One INFO line per decision that acts (buy/sell), with the order it makes (paper and live alike)."""
    prob = getattr(decision, "prob", math.nan)
    logger.info("%s %s p=%.3f qty=%.8f", intent.side.value, intent.pair, prob, intent.quantity,
                extra={"event": "decision", "mode": mode, "pair": intent.pair, "side": intent.side.value,
                       "prob": None if math.isnan(prob) else prob, "qty": intent.quantity,
                       "candle_ts": getattr(decision, "ts", None), "cl_ord_id": intent.client_id,
                       "model_version": model_version, "reason": intent.reason})


def log_fill(fill: Fill, mode: str, logger: logging.Logger) -> None:
    """One INFO line per fill recorded in the ledger (paper and live alike)."""
    logger.info("fill %s: %s %.8f %s @ %.8f, fee %.6f", fill.client_id, fill.side.value, fill.quantity, fill.pair,
                fill.price, fill.fee, extra={"event": "fill", "mode": mode, "cl_ord_id": fill.client_id,
                                             "pair": fill.pair, "side": fill.side.value, "qty": fill.quantity,
                                             "price": fill.price, "fee": fill.fee, "fill_ts": fill.ts})
