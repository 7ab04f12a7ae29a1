"""`krakenflow resume`: the only way out of a kill-switch halt, audited, refused while a trader runs."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.app import app
from trader.ledger import Ledger
from trader.risk import RiskState

HALT = "kill switch: drawdown 15.2% ≥ 15%"


@pytest.fixture
def ledger_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    monkeypatch.setenv("KRAKENFLOW_LEDGER_URL", url)
    monkeypatch.setenv("KRAKENFLOW_STATE_DIR", str(tmp_path / "home"))
    ledger = Ledger(url)
    ledger.save_risk_state(RiskState(peak_equity=10_500.0, day=20_000, day_start_equity=9_000.0, halted=HALT,
                                     halted_at_ms=1_728_000_000_000),
                           ("kill_switch", {"reason": HALT}))
    ledger.close()
    return url


def _resume(*args: str) -> tuple[int, str]:
    done = CliRunner().invoke(app, ["resume", *args])
    return done.exit_code, done.output


def test_resume_clears_the_halt_with_an_audit_row_and_only_once(ledger_url: str) -> None:
    code, out = _resume("--reason", "checked the fills with the exchange", "--who", "ops")
    assert code == 0 and f"cleared “{HALT}”" in out, out
    ledger = Ledger(ledger_url)
    assert ledger.risk_state() == RiskState()  # not halted, the peak starts again from the next equity mark
    resumed = [detail for _, detail in ledger.audit_trail("trading_resumed")]
    ledger.close()
    assert resumed == [{"who": "ops", "reason": "checked the fills with the exchange", "halt_cleared": HALT,
                        "halted_at_ms": 1_728_000_000_000, "peak_equity_dropped": 10_500.0}]
    code, out = _resume("--reason", "again", "--who", "ops")
    assert code == 0 and "not halted: nothing changed" in out


def test_resume_is_refused_while_a_trader_holds_the_ledger(ledger_url: str) -> None:
    running = Ledger(ledger_url, exclusive=True)  # what a running trader holds
    try:
        code, out = _resume("--reason", "x", "--who", "ops")
    finally:
        running.close()
    assert code == 2 and "a trader is running" in out and "stop it first" in out, out
    ledger = Ledger(ledger_url)
    assert ledger.risk_state().halted == HALT  # nothing changed
    ledger.close()


def test_resume_needs_a_reason() -> None:
    code, out = _resume("--who", "ops")
    assert code == 2 and "--reason" in out
