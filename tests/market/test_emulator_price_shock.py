"""The emulator's price shock: the pair gaps at the next open and stays there; served candles never move."""

from __future__ import annotations

import httpx


def test_a_price_shock_moves_only_the_candles_not_yet_served(emulator, kraken_client) -> None:  # type: ignore[no-untyped-def]
    before = list(emulator.venue.candles["XRP/USD"])
    cursor = emulator.venue.cursor
    answer = httpx.post(f"{emulator.url}/_emulator/shock", params={"pair": "XRP/USD", "fraction": "-0.3"}).json()
    assert answer["error"] == [] and answer["result"]["candles"] == len(before) - cursor - 1
    after = emulator.venue.candles["XRP/USD"]
    assert after[: cursor + 1] == before[: cursor + 1]
    nxt = after[cursor + 1]
    assert abs(nxt.open - 0.7 * before[cursor + 1].open) < 1e-12 and nxt.volume == before[cursor + 1].volume
    assert emulator.venue.candles["DOGE/USD"][cursor + 1].open > 0  # the other pair is untouched
    emulator.advance(2)
    served = kraken_client.exchange.fetch_ohlcv("XRP/USD", "1h", limit=3)  # what ccxt sees after the gap
    assert abs(served[-2][1] - 0.7 * before[cursor + 1].open) < 1e-9


def test_a_bad_shock_is_refused_naming_the_problem(emulator) -> None:  # type: ignore[no-untyped-def]
    for params, why in (({"pair": "BTC/USD", "fraction": "-0.3"}, "no pair 'BTC/USD'"),
                        ({"pair": "XRP/USD", "fraction": "-1.5"}, "is not a price"),
                        ({"pair": "XRP/USD"}, "is not a price")):
        answer = httpx.post(f"{emulator.url}/_emulator/shock", params=params).json()
        assert why in answer["error"][0], answer
