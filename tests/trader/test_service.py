"""The live trading session against the emulator: key check, dead-man switch re-arm, SIGTERM stop."""

from __future__ import annotations

import signal

import pytest
from tests_support import EMULATOR_SECRET

from core.params import load_params
from core.settings import Settings
from market.kraken import KrakenClient, make_exchange
from trader.service import StopFlag, UnsafeKeyError, open_session, run

PARAMS = load_params()


def test_dead_man_switch_is_re_armed_while_healthy(settings: Settings, emulator, kraken_client) -> None:  # type: ignore[no-untyped-def]
    params = PARAMS.model_copy(update={"live": PARAMS.live.model_copy(update={"dead_man_s": 7200})})
    session = open_session(params, settings, kraken_client)
    run(session, 0, max_polls=2, after_poll=lambda _: emulator.advance(1), stop=StopFlag())
    # re-armed for 2 h at the last poll, then one hourly candle passed: 1 h left on the switch
    assert emulator.venue.dead_man_deadline == pytest.approx(emulator.venue.now() + 3600, abs=1)
    assert [k for k, _ in session.broker.ledger.audit_trail()][:2] == ["instruments", "session_start"]


def test_sigterm_stops_the_loop_after_the_current_poll(settings: Settings, emulator, kraken_client) -> None:  # type: ignore[no-untyped-def]
    session = open_session(PARAMS, settings, kraken_client)
    stop = StopFlag()
    polls: list[int] = []

    def after(n: int) -> None:
        polls.append(n)
        if n == 2:
            stop(signal.SIGTERM, None)

    run(session, 0, max_polls=50, after_poll=after, stop=stop)
    assert polls == [1, 2]


def test_withdraw_capable_key_is_refused(settings: Settings, emulator) -> None:  # type: ignore[no-untyped-def]
    emulator.add_key("w", EMULATOR_SECRET, frozenset({"query", "trade", "withdraw"}))
    client = KrakenClient(make_exchange(emulator.url, "w", EMULATOR_SECRET, throttle=False))
    with pytest.raises(UnsafeKeyError, match="may withdraw"):
        open_session(PARAMS, settings, client)


def test_nonces_keep_rising_across_a_restart_whose_clock_stepped_back(settings: Settings, emulator) -> None:  # type: ignore[no-untyped-def]
    from tests_support import EMULATOR_KEY

    from market.errors import InvalidNonce

    def client_an_hour_behind() -> KrakenClient:
        exchange = make_exchange(emulator.url, EMULATOR_KEY, EMULATOR_SECRET, throttle=False)
        wall = exchange.milliseconds
        exchange.milliseconds = lambda: wall() - 3_600_000  # NTP stepped the clock back an hour
        return KrakenClient(exchange)

    first = open_session(PARAMS, settings, KrakenClient(make_exchange(emulator.url, EMULATOR_KEY, EMULATOR_SECRET,
                                                                      throttle=False)))
    first.loop.client.balances()
    with pytest.raises(InvalidNonce):  # what ccxt's wall-clock nonce does after the step back
        client_an_hour_behind().balances()
    first.close()  # the process ends; the restart takes the ledger over
    restarted = open_session(PARAMS, settings, client_an_hour_behind())  # the ledger's counter leads
    assert "ZUSD" in str(emulator.venue.account(EMULATOR_KEY)) and restarted.loop.client.balances()["USD"] > 0


def test_start_up_refreshes_the_instrument_table_from_the_exchange_into_the_state_dir(  # type: ignore[no-untyped-def]
        settings: Settings, emulator, kraken_client) -> None:
    import json

    session = open_session(PARAMS, settings, kraken_client)
    cached = json.loads(settings.instruments_cache.read_text(encoding="utf-8"))
    assert cached["source"] == emulator.url and cached["fetched_at"].startswith("20")
    assert session.instruments.get("DOGE/USD").kraken_id == "XDGUSD"  # the exchange's own answer, parsed
    assert dict(session.broker.ledger.audit_trail())["instruments"]["origin"].startswith("fetched from")


def test_start_up_falls_back_to_the_cached_table_when_asset_pairs_fails(  # type: ignore[no-untyped-def]
        settings: Settings, emulator, kraken_client) -> None:
    from market.emulator.faults import Fault

    open_session(PARAMS, settings, kraken_client).close()  # a first start writes the cache
    written = settings.instruments_cache.read_bytes()
    emulator.add_fault(Fault("AssetPairs", "http_status", times=10, status=503))
    session = open_session(PARAMS, settings, kraken_client)
    assert "AssetPairs:http_status" in emulator.faults.fired  # the refresh was tried, and failed
    origin = [v for k, v in session.broker.ledger.audit_trail() if k == "instruments"][-1]["origin"]
    assert origin.startswith(f"cached at {settings.instruments_cache}")
    assert settings.instruments_cache.read_bytes() == written  # a failed refresh leaves the cache alone
    assert set(PARAMS.pairs) <= set(session.instruments.instruments)


def test_start_up_refuses_when_the_exchange_has_no_table_and_nothing_is_cached(  # type: ignore[no-untyped-def]
        settings: Settings, emulator, kraken_client) -> None:
    from market.emulator.faults import Fault
    from market.instruments import InstrumentsUnavailable
    from trader.ledger import Ledger

    emulator.add_fault(Fault("AssetPairs", "malformed_json", times=10))
    with pytest.raises(InstrumentsUnavailable, match=r"no cached instrument table.*check KRAKENFLOW_KRAKEN_URL"):
        open_session(PARAMS, settings, kraken_client)
    assert not settings.instruments_cache.exists()
    ledger = Ledger(settings.ledger_uri)
    try:
        assert "session_start" not in dict(ledger.audit_trail())  # refused before it traded or recorded anything
    finally:
        ledger.close()
