"""The ledger on real databases: SQLite (default) and the machine's PostgreSQL (skipped with a reason
if it is not running). Each Postgres test gets its own schema and drops it afterwards."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from core.types import Fill, OrderIntent, Side
from trader.ledger import Ledger

PG_URL = "postgresql+psycopg2://root@127.0.0.1:5432/test"


def _postgres_available() -> bool:
    try:
        with create_engine(PG_URL).connect() as conn:
            conn.execute(text("select 1"))
        return True
    except Exception:
        return False


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ledger.db'}"
        return
    if not _postgres_available():
        pytest.skip("PostgreSQL is not reachable at 127.0.0.1:5432 (db test, user root)")
    schema = f"kf_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f"create schema {schema}"))
    yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(text(f"drop schema {schema} cascade"))
    admin.dispose()


def _buy(cid: str = "kf-1") -> OrderIntent:
    return OrderIntent(cid, "XRP/USD", Side.BUY, 100.0, "p=0.61")


def test_intent_is_durable_before_any_send_and_survives_reopen(ledger_url: str) -> None:
    Ledger(ledger_url).record_intent(_buy(), model_version=3)
    reopened = Ledger(ledger_url)  # a new process after a crash
    (rec,) = reopened.unresolved_intents()
    assert rec.intent == _buy() and rec.status == "new" and rec.model_version == 3


def test_status_moves_and_resolved_intents_leave_the_unresolved_list(ledger_url: str) -> None:
    ledger = Ledger(ledger_url)
    ledger.record_intent(_buy("a"), 1)
    ledger.record_intent(_buy("b"), 1)
    ledger.mark("a", "unknown")
    ledger.mark("b", "filled", txid="OABC-1")
    assert [r.intent.client_id for r in ledger.unresolved_intents()] == ["a"]
    assert ledger.intent("b").txid == "OABC-1"  # type: ignore[union-attr]
    with pytest.raises(KeyError, match="no intent 'zzz'"):
        ledger.mark("zzz", "filled")


def test_duplicate_intent_id_is_refused(ledger_url: str) -> None:
    ledger = Ledger(ledger_url)
    ledger.record_intent(_buy(), 1)
    with pytest.raises(Exception, match=r"(?i)unique|duplicate"):
        ledger.record_intent(_buy(), 1)


def test_fills_are_stored_once_and_positions_follow(ledger_url: str) -> None:
    ledger = Ledger(ledger_url)
    ledger.record_intent(_buy("a"), 1)
    ledger.record_intent(OrderIntent("s", "XRP/USD", Side.SELL, 40.0), 1)
    fill = Fill("a", "XRP/USD", Side.BUY, 100.0, 0.5, 0.2, 1000)
    assert ledger.record_fill(fill, "T-1") is True
    assert ledger.record_fill(fill, "T-1") is False  # replayed trade history: no double count
    ledger.record_fill(Fill("s", "XRP/USD", Side.SELL, 40.0, 0.6, 0.1, 2000), "T-2")
    assert ledger.position("XRP/USD") == pytest.approx(60.0)
    assert ledger.position("DOGE/USD") == 0.0
    assert [f.client_id for f in ledger.fills()] == ["a", "s"]


def test_counter_strictly_increases_across_reopen(ledger_url: str) -> None:
    first = Ledger(ledger_url)
    a = first.next_counter("nonce:key1", at_least=1_000)
    b = first.next_counter("nonce:key1", at_least=0)
    c = Ledger(ledger_url).next_counter("nonce:key1", at_least=0)
    assert a == 1_000 and b == 1_001 and c == 1_002


def test_balances_and_audit_trail(ledger_url: str) -> None:
    ledger = Ledger(ledger_url)
    ledger.set_balances({"USD": 10_000.0, "XRP": 5.0})
    ledger.audit("reconcile", {"asset": "XRP", "ledger": 4.0, "exchange": 5.0})
    assert ledger.balances() == {"USD": 10_000.0, "XRP": 5.0}
    assert ledger.audit_trail("reconcile") == [("reconcile", {"asset": "XRP", "ledger": 4.0, "exchange": 5.0})]


def test_sqlite_runs_in_wal_with_full_sync(tmp_path: Path) -> None:
    ledger = Ledger(f"sqlite:///{tmp_path / 'l.db'}")
    with ledger.engine.connect() as conn:
        assert conn.execute(text("pragma journal_mode")).scalar() == "wal"
        assert conn.execute(text("pragma synchronous")).scalar() == 2  # FULL


def test_reconciliation_adjustment_moves_the_position_and_is_audited_in_one_transaction(ledger_url: str) -> None:
    ledger = Ledger(ledger_url)
    ledger.record_intent(_buy("a"), 1)
    ledger.record_fill(Fill("a", "XRP/USD", Side.BUY, 100.0, 0.5, 0.2, 1), "T1")
    ledger.record_adjustment("XRP/USD", -0.25, "exchange holds 99.75")
    reopened = Ledger(ledger_url)
    assert reopened.position("XRP/USD") == pytest.approx(99.75)
    assert reopened.adjustments() == [("XRP/USD", -0.25, "exchange holds 99.75")]
    assert reopened.audit_trail("reconcile_adjust")[0][1]["quantity"] == -0.25


def test_decisions_keep_the_model_version_that_took_them(ledger_url: str) -> None:
    from trader.engine import Decision

    ledger = Ledger(ledger_url)
    ledger.record_decisions([Decision(1, "XRP/USD", 0.7, "buy"), Decision(1, "DOGE/USD", float("nan"),
                                                                            "stand_aside", "warming")], 4)
    ledger.record_decisions([Decision(2, "XRP/USD", 0.2, "sell")], 5)
    assert Ledger(ledger_url).decisions() == [(1, "XRP/USD", "buy", 4), (1, "DOGE/USD", "stand_aside", 4),
                                              (2, "XRP/USD", "sell", 5)]
