"""The risk state lives in the ledger: the equity peak, the day and a loss-limit halt survive a restart;
only `resume_trading` lifts the kill switch (audited, peak reset); the migration upgrades an old ledger.

Synthetic candles (a calm stretch, a rise to a peak, then a fall) for the same reason as in
test_kill_switch.py: the peak and the trip are then known; the engine, broker and SQLite ledger are real."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, insert, inspect, text

from core.params import load_params
from core.settings import Settings
from core.types import Candle
from features.spec import build_spec
from trader.brokers.simulated import SimulatedBroker, fill_model
from trader.controls import OperatorState
from trader.engine import WARMING_UP, Engine
from trader.ledger import MIGRATIONS, Ledger, LedgerLocked, resume_trading
from trader.ledger_schema import audit, intents
from trader.risk import RiskState
from trader.strategy import ThresholdStrategy

PARAMS = load_params()
SPEC = build_spec([1], [3], 3, 3, 3)
HOUR = 3_600_000
T0 = 1_767_225_600_000  # 2026-01-01 00:00 UTC
T0_DT = datetime.fromtimestamp(T0 / 1000, UTC)
LIMITS = PARAMS.risk.model_copy(update={"daily_loss_limit": 1.0, "max_drawdown": 0.05})


def candles(n_calm: int = 40, up: int = 10, down: int = 30, start: int = T0) -> list[Candle]:
    closes = [0.5 * (1 + 0.002 * math.sin(i)) for i in range(n_calm)]
    closes += [closes[-1] * 1.01 ** (k + 1) for k in range(up)]
    closes += [closes[-1] * 0.99 ** (k + 1) for k in range(down)]
    out, prev = [], closes[0]
    for i, close in enumerate(closes):
        out.append(Candle(start + i * HOUR, prev, max(prev, close) * 1.001, min(prev, close) * 0.999, close, 1e9))
        prev = close
    return out


def trader(ledger: Ledger, cash: float = 10_000.0) -> tuple[Engine, SimulatedBroker]:
    """What the service wires: an engine that writes its risk state through the ledger and starts from it."""
    broker = SimulatedBroker(cash, fill_model(PARAMS.fees))
    engine = Engine(SPEC, lambda _: 0.9, ThresholdStrategy(0.5, 0.4, 0.45), broker, risk=LIMITS, risk_memory=ledger)
    engine.restore_risk(ledger.risk_state())
    return engine, broker


def feed(engine: Engine, broker: SimulatedBroker, seq: list[Candle]) -> None:
    for candle in seq:
        broker.on_candle("XRP/USD", candle)
        engine.on_candle("XRP/USD", candle)


def tripped(url: str) -> tuple[Engine, SimulatedBroker]:
    engine, broker = trader(Ledger(url, exclusive=True))
    feed(engine, broker, candles())
    assert engine.halted.startswith("kill switch"), engine.halted
    return engine, broker


def test_peak_and_halt_survive_a_restart(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    first, broker = tripped(url)
    peak = first.risk_snapshot().peak_equity
    assert peak > 10_000.0  # the rise before the fall made a new peak
    assert isinstance(first.risk_memory, Ledger)
    first.risk_memory.close()  # the process ends

    reopened = Ledger(url, exclusive=True)  # a new process over the same file
    state = reopened.risk_state()
    assert state.peak_equity == peak and state.halted == first.halted and state.halted_at_ms == first.halted_at_ms
    second, broker2 = trader(reopened, cash=broker.cash)
    assert second.halted == first.halted
    feed(second, broker2, candles(start=T0 + 100 * HOUR))  # the model still wants long: nothing is bought
    assert broker2.fills == [] and not any(d.action == "buy" for d in second.decisions)
    assert all(d.reason.startswith("halted: kill switch") for d in second.decisions if d.reason != WARMING_UP)
    assert reopened.risk_state().halted == first.halted  # a restart never clears it


def test_the_peak_is_persisted_as_it_rises(tmp_path: Path) -> None:
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    engine, broker = trader(ledger)
    feed(engine, broker, candles(down=0))
    state = ledger.risk_state()
    assert not state.halted and state.peak_equity == engine.risk_snapshot().peak_equity > 10_000.0
    assert state.day == (T0 + 49 * HOUR) // 86_400_000 and state.day_start_equity > 0


def test_resume_trading_clears_the_halt_audits_and_resets_the_peak(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    first, broker = tripped(url)
    assert isinstance(first.risk_memory, Ledger)
    first.risk_memory.close()
    old = Ledger(url).risk_state()

    ledger = Ledger(url, exclusive=True)
    assert resume_trading(ledger, "alice", "checked the fall: a market-wide move") == old.halted
    assert ledger.risk_state() == RiskState()  # peak and day "not seen yet": the next equity becomes both
    ((_, detail),) = ledger.audit_trail("trading_resumed")
    assert detail == {"who": "alice", "reason": "checked the fall: a market-wide move", "halt_cleared": old.halted,
                      "halted_at_ms": old.halted_at_ms, "peak_equity_dropped": old.peak_equity}
    assert resume_trading(ledger, "alice", "again") == ""  # nothing to resume: no change, no row
    assert len(ledger.audit_trail("trading_resumed")) == 1

    # the restarted trader trades again from its current (flat) equity as the peak, and does not trip at once
    second, broker2 = trader(ledger, cash=broker.cash)
    assert not second.halted
    feed(second, broker2, candles(start=T0 + 100 * HOUR, down=0))
    assert any(d.action == "buy" for d in second.decisions) and not second.halted
    assert second.risk_snapshot().peak_equity < old.peak_equity


def test_resume_needs_the_trader_stopped(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    running, _ = tripped(url)  # holds the ledger's lock, as the trader process does
    with pytest.raises(ValueError, match="exclusive=True"):
        resume_trading(Ledger(url), "bob", "the trader is still running")
    with pytest.raises(LedgerLocked):
        Ledger(url, exclusive=True)
    assert Ledger(url).risk_state().halted == running.halted
    assert isinstance(running.risk_memory, Ledger)
    running.risk_memory.close()
    with pytest.raises(ValueError, match="who resumes and why"):
        resume_trading(Ledger(url, exclusive=True), " ", "")


def test_a_daily_halt_stays_over_a_restart_that_day_and_lifts_the_next(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    ledger = Ledger(url)
    ledger.save_risk_state(RiskState(10_000.0, T0 // 86_400_000, 10_000.0, "daily loss limit: lost 5.2% …",
                                     T0 + 9 * HOUR, T0 + 24 * HOUR))
    engine, broker = trader(Ledger(url))
    engine.trade_from_ts = T0 + 10 * HOUR  # the restart: features warm up on the candles before, then 10:00 day 1
    feed(engine, broker, candles(n_calm=60, up=0, down=0, start=T0 - 20 * HOUR))  # … to 15:00 day 2
    first_buy = next(d for d in engine.decisions if d.action == "buy")
    assert first_buy.ts == T0 + 24 * HOUR  # the first candle of the next UTC day
    assert all(d.reason.startswith("halted: daily loss") for d in engine.decisions if d.ts < T0 + 24 * HOUR)
    assert Ledger(url).audit_trail("risk_halt_lifted")[0][1]["reason"] == "daily loss limit: lost 5.2% …"


def test_a_trader_started_on_a_halted_ledger_stays_halted(settings: Settings, emulator, kraken_client) -> None:  # type: ignore[no-untyped-def]
    """The service itself (open_session) loads the risk state into the engine it wires."""
    from trader.service import open_session

    halt = RiskState(12_345.0, 20_000, 12_000.0, "kill switch: drawdown 15.2% ≥ 15%", T0, None)
    Ledger(settings.ledger_uri).save_risk_state(halt)
    session = open_session(PARAMS, settings, kraken_client)
    try:
        assert session.engine.halted == halt.halted and session.engine.risk_snapshot() == halt
        assert session.engine.risk_memory is session.broker.ledger
        assert session.broker.ledger.audit_trail("session_start")[-1][1]["halted"] == halt.halted
    finally:
        session.close()


def test_the_migration_upgrades_a_ledger_created_at_the_previous_head(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    old = create_engine(url)
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with old.begin() as conn:  # a ledger as the previous release left it, with rows in it
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0002")
        conn.execute(insert(intents).values(client_id="kf-1", pair="XRP/USD", side="buy", quantity=1.0, reason="",
                                            status="filled", created_at=T0_DT, updated_at=T0_DT))
        conn.execute(insert(audit).values(at=T0_DT, kind="session_start", detail="{}"))
    assert "risk_state" not in inspect(old).get_table_names()
    old.dispose()

    ledger = Ledger(url)  # opening upgrades it
    with ledger.engine.connect() as conn:
        assert conn.execute(text("select version_num from alembic_version")).scalar() == "0005"
    assert ledger.risk_state() == RiskState()  # an old ledger: nothing seen, not halted
    assert ledger.operator_state() == OperatorState() and ledger.equity_curve() == []  # 0004's tables, empty
    assert ledger.client_ids() == {"kf-1"} and ledger.audit_trail() == [("session_start", {})]
    ledger.save_risk_state(RiskState(1.0, 2, 3.0, "kill switch: x", 4, None))
    assert Ledger(url).risk_state() == RiskState(1.0, 2, 3.0, "kill switch: x", 4, None)
