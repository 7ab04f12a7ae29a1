"""The live service against the emulator: reconciliation at start-up and on schedule (exchange is the
truth, small drifts corrected with an audit record, large ones halt), and hot reload of @champion
between candles with the deciding model version recorded per decision."""

from __future__ import annotations

import copy
import itertools

import pandas as pd
import pytest
from tests_support import EMULATOR_KEY, EMULATOR_SECRET
from trader_helpers import PARAMS, register_model, train_small_booster

from core.settings import Settings
from features.spec import build_spec, spec_from_params
from market.emulator.faults import Fault
from market.emulator.kraken_api import RateTier
from market.emulator.server import running_emulator
from trader.service import StopFlag, open_session, reconcile, run


@pytest.fixture
def emulator():  # type: ignore[no-untyped-def]
    """Kraken's rate counter raised: these tests poll back to back instead of every 30 s
    (test_a_failing_poll_is_retried_... covers what happens when the exchange pushes back)."""
    with running_emulator(tier=RateTier(max_counter=1e9)) as handle:
        handle.add_key(EMULATOR_KEY, EMULATOR_SECRET)
        yield handle


def _params(**live: float):  # type: ignore[no-untyped-def]
    return PARAMS.model_copy(update={"live": PARAMS.live.model_copy(update={"dead_man_s": 0, **live})})


def _run(session, emulator, polls: int, **kwargs) -> None:  # type: ignore[no-untyped-def]
    run(session, 0, max_polls=polls, after_poll=lambda _: emulator.advance(1), stop=StopFlag(), **kwargs)


def test_startup_reconcile_adopts_a_small_exchange_balance_with_an_audit_record(
        settings: Settings, emulator, kraken_client) -> None:  # type: ignore[no-untyped-def]
    emulator.venue.account(EMULATOR_KEY)["XXRP"] = 20.0  # about 10 USD of XRP the ledger never saw
    session = open_session(_params(reconcile_halt_usd=50.0), settings, kraken_client)
    _run(session, emulator, 1)
    ledger = session.broker.ledger
    assert ledger.position("XRP/USD") == pytest.approx(20.0)
    assert ledger.adjustments()[0][:2] == ("XRP/USD", pytest.approx(20.0))
    assert "reconcile_adjust" in [k for k, _ in ledger.audit_trail()]
    assert not session.engine.halted


def test_large_difference_halts_trading_and_no_order_is_sent(settings: Settings, emulator, kraken_client) -> None:  # type: ignore[no-untyped-def]
    emulator.venue.account(EMULATOR_KEY)["XXRP"] = 100_000.0  # far beyond the halt threshold
    session = open_session(_params(reconcile_halt_usd=50.0), settings, kraken_client)
    session.engine.strategy = type(session.engine.strategy)(0.01, 0.005, 0.45)  # would buy on every candle
    _run(session, emulator, 3)
    assert "trading halted" in session.engine.halted
    assert emulator.venue.orders == {}
    actions = {a for _, _, a, _ in session.broker.ledger.decisions()}
    assert actions == {"stand_aside"}
    assert session.broker.ledger.position("XRP/USD") == 0.0  # nothing "corrected" on a halt
    assert [k for k, _ in session.broker.ledger.audit_trail("reconcile_halt")] == ["reconcile_halt"]


def test_adopting_exchange_positions_after_a_human_check_lifts_the_halt(
        settings: Settings, emulator, kraken_client) -> None:  # type: ignore[no-untyped-def]
    emulator.venue.account(EMULATOR_KEY)["XXRP"] = 100_000.0
    session = open_session(_params(reconcile_halt_usd=50.0), settings, kraken_client)
    _run(session, emulator, 1, adopt_exchange_positions=True)
    assert not session.engine.halted
    assert session.broker.ledger.position("XRP/USD") == pytest.approx(100_000.0)


def test_an_open_order_of_ours_missing_from_the_ledger_halts(settings: Settings, emulator, kraken_client) -> None:  # type: ignore[no-untyped-def]
    session = open_session(_params(), settings, kraken_client)
    session.loop.warm_up()
    assert not reconcile(session).halt
    kraken_client.exchange.create_order("XRP/USD", "limit", "buy", 1000, 0.05, {"clientOrderId": "kf1-lost"})
    result = reconcile(session)
    assert result.halt and len(result.unknown_orders) == 1 and "missing from the ledger" in session.engine.halted


def test_reconciliation_runs_on_schedule_and_fixes_drift_found_later(
        settings: Settings, emulator, kraken_client) -> None:  # type: ignore[no-untyped-def]
    now = [0.0]
    session = open_session(_params(reconcile_every_s=300.0), settings, kraken_client)

    def tick(poll: int) -> None:
        emulator.advance(1)
        now[0] += 120.0  # two minutes per poll: reconciliations after polls 3 and 5
        if poll == 1:
            emulator.venue.account(EMULATOR_KEY)["XXRP"] = 4.0  # appears on the exchange between polls

    run(session, 0, max_polls=4, after_poll=tick, stop=StopFlag(), clock=lambda: now[0])
    kinds = [k for k, _ in session.broker.ledger.audit_trail() if k.startswith("reconcile")]
    assert kinds == ["reconcile_ok", "reconcile_adjust", "reconcile_ok"]
    assert session.broker.ledger.position("XRP/USD") == pytest.approx(4.0)


def test_new_champion_is_swapped_in_between_candles_and_every_decision_names_its_version(
        settings: Settings, emulator, kraken_client, xrp_1h: pd.DataFrame) -> None:  # type: ignore[no-untyped-def]
    session = open_session(_params(model_check_every_s=0.0), settings, kraken_client)
    v1 = session.model_version
    spec = spec_from_params(PARAMS.features)

    def tick(poll: int) -> None:
        emulator.advance(1)  # one new candle for each later poll (the first poll finds none)
        if poll == 3:
            register_model(settings, train_small_booster(spec, xrp_1h, rounds=9), spec.to_json())

    run(session, 0, max_polls=6, after_poll=tick, stop=StopFlag())
    made = session.broker.ledger.decisions()
    versions = [v for _, pair, _, v in made if pair == "XRP/USD"]
    assert versions[:2] == [v1, v1] and set(versions[2:]) == {v1 + 1} and len(versions) == 5
    stamps = [ts for ts, pair, _, _ in made if pair == "XRP/USD"]
    assert all(b - a == 3_600_000 for a, b in itertools.pairwise(stamps))  # no candle missed
    assert session.broker.model_version == v1 + 1
    assert session.broker.ledger.audit_trail("model_reloaded")[0][1] == {"from": v1, "to": v1 + 1, "same_spec": True}


def test_champion_with_other_features_is_warmed_on_the_same_candles_before_the_swap(
        settings: Settings, emulator, kraken_client, xrp_1h: pd.DataFrame) -> None:  # type: ignore[no-untyped-def]
    session = open_session(_params(model_check_every_s=0.0), settings, kraken_client)
    other = build_spec([1, 2], [8, 30], 10, 12, 12)
    c0 = emulator.venue.cursor  # warm-up sees candles c0-719 … c0-1 (c0 is unfinished)

    def tick(poll: int) -> None:
        emulator.advance(1)
        if poll == 1:
            register_model(settings, train_small_booster(other, xrp_1h), other.to_json())

    run(session, 0, max_polls=3, after_poll=tick, stop=StopFlag())
    assert session.engine.spec.hash == other.hash and session.model_version == 2
    # swapped at poll 2: warmed on Kraken's window then (c0-718 … c0-1), then fed c0 and c0+1 by the polls
    expected = other.online()
    for candle in emulator.venue.candles["XRP/USD"][c0 - 718 : c0 + 2]:
        expected.update(candle)
    swapped = session.engine._states["XRP/USD"]
    assert swapped.seen == expected.seen == 720 and swapped.ready
    following = emulator.venue.candles["XRP/USD"][c0 + 2]
    assert copy.deepcopy(swapped).update(following) == copy.deepcopy(expected).update(following)


def test_champion_whose_feature_spec_does_not_match_this_code_is_refused_and_the_old_one_trades_on(
        settings: Settings, emulator, kraken_client, xrp_1h: pd.DataFrame) -> None:  # type: ignore[no-untyped-def]
    session = open_session(_params(model_check_every_s=0.0), settings, kraken_client)
    v1 = session.model_version
    spec = spec_from_params(PARAMS.features)
    stale = {**spec.to_json(), "hash": "0000000000000000"}  # trained by older feature code
    register_model(settings, train_small_booster(spec, xrp_1h), stale)
    _run(session, emulator, 3)
    assert session.model_version == v1
    assert {v for *_, v in session.broker.ledger.decisions()} == {v1}
    (refusal,) = session.broker.ledger.audit_trail("model_reload_refused")  # audited once, not every poll
    assert refusal[1]["version"] == v1 + 1 and "hash" in refusal[1]["reason"]


def test_a_failing_poll_is_retried_on_the_next_one_without_losing_or_repeating_a_candle(
        settings: Settings, emulator, kraken_client) -> None:  # type: ignore[no-untyped-def]
    session = open_session(_params(), settings, kraken_client)

    def tick(poll: int) -> None:
        emulator.advance(1)
        if poll == 1:  # OHLC down for longer than the client's retries: the whole next poll fails
            emulator.add_fault(Fault("OHLC", "kraken_error", times=4, error="EService:Unavailable"))

    run(session, 0, max_polls=4, after_poll=tick, stop=StopFlag())
    (failed,) = session.broker.ledger.audit_trail("poll_failed")
    assert "Unavailable" in failed[1]["error"]
    stamps = [ts for ts, pair, _, _ in session.broker.ledger.decisions() if pair == "XRP/USD"]
    assert len(stamps) == 3 and all(b - a == 3_600_000 for a, b in itertools.pairwise(stamps))
