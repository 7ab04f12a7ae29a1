"""Labels: is a long trade opened at this candle's close worth it after Kraken fees both ways?"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray


def forward_net_log_return(close: NDArray[np.float64], horizon: int, taker_fee: float) -> NDArray[np.float64]:
    """log(close_{t+h}/close_t) + 2·log(1−fee): the net log return of buying now and selling h candles
    later with market orders. NaN for the last `horizon` candles (their future is unknown)."""
    logc = np.log(np.asarray(close, dtype=np.float64))
    out = np.full(len(logc), np.nan)
    if len(logc) > horizon:
        out[:-horizon] = logc[horizon:] - logc[:-horizon] + 2.0 * math.log1p(-taker_fee)
    return out


def direction_label(net_return: NDArray[np.float64], min_net_return: float) -> NDArray[np.float64]:
    """1.0 where the trade clears `min_net_return`, 0.0 where not, NaN where unknown."""
    return np.where(np.isnan(net_return), np.nan, (net_return > min_net_return).astype(np.float64))
