"""Pure parts of the ccxt adapter, on real Kraken responses (ccxt's static fixtures, MIT)."""

from __future__ import annotations

import json
from pathlib import Path

import ccxt
import pytest

from market import errors
from market.kraken import _translate, finished_candles

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "kraken_api"


def _real_ohlc_rows() -> list[list]:
    """The raw Kraken OHLC answer, parsed the way ccxt parses it (ms, floats, 6 fields)."""
    case = json.loads((FIXTURES / "ccxt_static_response_kraken.json").read_text())["methods"]["fetchOHLCV"][0]
    raw = next(iter(case["httpResponse"]["result"].values()))
    return [[r[0] * 1000, *(float(x) for x in r[1:5]), float(r[6])] for r in raw]


def test_unfinished_last_candle_is_dropped_and_order_fixed() -> None:
    rows = _real_ohlc_rows()
    candles = finished_candles([*reversed(rows), rows[0]], "1h")
    assert [c.ts for c in candles] == [r[0] for r in rows[:-1]]
    assert candles[0].open == 43437.5 and candles[0].volume == pytest.approx(18.7543011)


def test_empty_and_garbage_ohlc() -> None:
    assert finished_candles([], "1h") == []
    with pytest.raises(errors.BadMarketData, match="not numeric"):
        finished_candles([[1, "x", 1, 1, 1, 1], [2, 1, 1, 1, 1, 1]], "1h")


@pytest.mark.parametrize(("ccxt_error", "ours"), [
    (ccxt.InvalidNonce("kraken EAPI:Invalid nonce"), errors.InvalidNonce),
    (ccxt.InsufficientFunds("kraken EOrder:Insufficient funds"), errors.InsufficientFunds),
    (ccxt.DDoSProtection("kraken EAPI:Rate limit exceeded"), errors.RateLimited),
    (ccxt.RateLimitExceeded("kraken 429"), errors.RateLimited),
    (ccxt.ExchangeError("kraken EAPI:Invalid signature"), errors.AuthenticationFailed),
    (ccxt.ExchangeError("kraken EService:Throttled"), errors.RateLimited),
    (ccxt.InvalidOrder("kraken EOrder:Unknown order"), errors.OrderNotFound),
    (ccxt.InvalidOrder("kraken EOrder:Order minimum not met"), errors.OrderRejected),
    (ccxt.ExchangeNotAvailable("kraken EService:Unavailable"), errors.ExchangeUnavailable),
    (ccxt.RequestTimeout("timed out"), errors.ExchangeUnavailable),
])
def test_ccxt_errors_become_ours(ccxt_error: Exception, ours: type) -> None:
    translated = _translate(ccxt_error)
    assert type(translated) is ours
    assert str(ccxt_error) in str(translated)
