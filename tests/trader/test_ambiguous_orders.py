"""The live broker against the Kraken emulator when AddOrder's outcome is unknown, across restarts."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.types import OrderIntent, Side
from market.emulator.faults import Fault
from market.instruments import bundled
from trader.brokers.kraken import KrakenBroker, LookupPolicy
from trader.ledger import Ledger
from trader.reconcile import reconcile_positions

BASES = bundled().base_assets()


def _broker(kraken_client, path: Path, lookup: LookupPolicy | None = None) -> KrakenBroker:  # type: ignore[no-untyped-def]
    return KrakenBroker(kraken_client, Ledger(f"sqlite:///{path}"), model_version=7, lookup=lookup)


QUICK = LookupPolicy(window_s=0.0, min_lookups=3)
"""Given up on after three lookups that found nothing (the default also waits 90 s)."""


def test_ambiguous_addorder_is_looked_up_not_resent(emulator, kraken_client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    emulator.add_fault(Fault("AddOrder", "drop_response", delay_ms=4_000))  # placed, answer lost
    broker = _broker(kraken_client, tmp_path / "l.db")
    broker.submit(OrderIntent("kf-a1", "XRP/USD", Side.BUY, 100.0))
    (record,) = broker.ledger.unresolved_intents()
    assert record.status == "unknown" and broker.has_pending("XRP/USD")
    broker.sync()  # looks the order up by cl_ord_id, finds it, records its fill
    assert len(emulator.venue.orders) == 1  # never resent
    assert broker.position("XRP/USD") == pytest.approx(100.0)
    assert broker.ledger.intent("kf-a1").status == "filled"  # type: ignore[union-attr]
    assert [k for k, _ in broker.ledger.audit_trail()] == ["ambiguous_send", "lookup_found"]


def test_ambiguous_send_that_never_arrived_is_closed_without_resending(emulator, kraken_client,  # type: ignore[no-untyped-def]
                                                                       tmp_path: Path) -> None:
    emulator.add_fault(Fault("AddOrder", "http_status", status=503))  # refused before placing anything
    broker = _broker(kraken_client, tmp_path / "l.db", QUICK)
    broker.submit(OrderIntent("kf-b1", "XRP/USD", Side.BUY, 100.0))
    assert broker.ledger.intent("kf-b1").status == "unknown"  # type: ignore[union-attr]
    broker.sync()
    broker.sync()  # two lookups found nothing: not yet proof, the pair stays blocked
    assert broker.ledger.intent("kf-b1").status == "unknown" and broker.has_pending("XRP/USD")  # type: ignore[union-attr]
    broker.sync()
    assert emulator.venue.orders == {}
    assert broker.ledger.intent("kf-b1").status == "not_found"  # type: ignore[union-attr]
    assert not broker.has_pending("XRP/USD") and broker.position("XRP/USD") == 0.0


def test_restart_after_crash_resolves_the_open_intent(emulator, kraken_client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    emulator.add_fault(Fault("AddOrder", "drop_response", delay_ms=4_000))
    _broker(kraken_client, tmp_path / "l.db").submit(OrderIntent("kf-c1", "XRP/USD", Side.BUY, 50.0))
    # the process dies here; a new one opens the same ledger (and the emulator filled the order meanwhile)
    emulator.advance(2)
    restarted = _broker(kraken_client, tmp_path / "l.db")
    assert restarted.has_pending("XRP/USD")
    restarted.sync()
    assert restarted.position("XRP/USD") == pytest.approx(50.0) and len(emulator.venue.orders) == 1


def test_rejected_order_is_recorded_with_its_reason(emulator, kraken_client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    broker = _broker(kraken_client, tmp_path / "l.db")
    broker.submit(OrderIntent("kf-d1", "XRP/USD", Side.BUY, 10**8))
    assert broker.ledger.intent("kf-d1").status == "rejected"  # type: ignore[union-attr]
    assert "Insufficient funds" in broker.ledger.audit_trail("rejected")[0][1]["error"]


def test_reconcile_corrects_small_drift_and_halts_on_large() -> None:
    small = reconcile_positions({"XRP/USD": 100.0}, {"XRP": 100.5, "USD": 10.0}, {"XRP/USD": 0.5}, 10.0, BASES)
    assert not small.halt and small.drifts[0].difference == pytest.approx(0.5)
    big = reconcile_positions({"XRP/USD": 100.0}, {"XRP": 0.0}, {"XRP/USD": 0.5}, 10.0, BASES)
    assert big.halt and "50.00 USD" in big.reason
    assert reconcile_positions({"XRP/USD": 1.0}, {"XRP": 1.0}, {"XRP/USD": 0.5}, 10.0, BASES).drifts == ()


def test_intent_committed_by_a_process_killed_before_addorder_is_closed_not_sent(  # type: ignore[no-untyped-def]
        emulator, kraken_client, tmp_path: Path) -> None:
    Ledger(f"sqlite:///{tmp_path / 'l.db'}").record_intent(OrderIntent("kf-e1", "XRP/USD", Side.BUY, 50.0), 7)
    restarted = _broker(kraken_client, tmp_path / "l.db", QUICK)  # kill -9 landed between commit and send
    assert restarted.has_pending("XRP/USD")
    for _ in range(3):
        restarted.sync()
    assert emulator.venue.orders == {} and not restarted.has_pending("XRP/USD")
    assert restarted.ledger.intent("kf-e1").status == "not_found"  # type: ignore[union-attr]


def test_intent_sent_by_a_process_killed_before_it_heard_back_is_found_and_filled(  # type: ignore[no-untyped-def]
        emulator, kraken_client, tmp_path: Path) -> None:
    Ledger(f"sqlite:///{tmp_path / 'l.db'}").record_intent(OrderIntent("kf-f1", "XRP/USD", Side.BUY, 50.0), 7)
    kraken_client.place_market_order("XRP/USD", Side.BUY, 50.0, "kf-f1")  # reached Kraken; then kill -9
    restarted = _broker(kraken_client, tmp_path / "l.db")
    restarted.sync()
    assert len(emulator.venue.orders) == 1 and restarted.position("XRP/USD") == pytest.approx(50.0)
    assert restarted.ledger.intent("kf-f1").status == "filled"  # type: ignore[union-attr]
