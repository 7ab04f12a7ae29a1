"""Paper trading on live candles (issue K item 7): the live loop polling the Kraken emulator's public
endpoints, filled by the simulated fill model, writing the live ledger — and never calling a private
endpoint. Its P&L equals a file replay of the same candles through `trader.backtest.replay`."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from tests_support import EMULATOR_KEY, EMULATOR_SECRET
from trader_helpers import PARAMS, register_model

from core.params import Params
from core.settings import Settings
from core.types import OrderIntent, Side
from features.spec import spec_from_params
from market.emulator.server import EmulatorHandle
from market.kraken import KrakenClient, make_exchange, public_client
from trader.backtest import ReplayConfig, replay
from trader.ledger import Ledger
from trader.service import LedgerModeError, LiveSession, StopFlag, open_paper_session, open_session, run

SPEC = spec_from_params(PARAMS.features)
POLLS = 150



@pytest.fixture
def emu(fast_emulator: EmulatorHandle) -> EmulatorHandle:
    return fast_emulator


def paper_params(median: float) -> Params:
    """Thresholds at the model's median probability: it flips often, so the session trades."""
    return PARAMS.model_copy(update={
        "trade": PARAMS.trade.model_copy(update={"enter_threshold": median, "exit_threshold": median})})


def key_less_settings(tmp_path: Path, emu: EmulatorHandle, booster: Any, mlflow_template: Path) -> Settings:
    """No API key at all: paper trading must not need one."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    shutil.copy(mlflow_template, tmp_path / "mlflow.db")
    s = Settings(state_dir=tmp_path, kraken_url=emu.url, kraken_key=None, kraken_secret=None,
                 ledger_url=f"sqlite:///{tmp_path / 'ledger.db'}")
    register_model(s, booster, SPEC.to_json())
    return s


def poll(session: LiveSession, emu: EmulatorHandle, polls: int) -> None:
    run(session, 0, max_polls=polls, after_poll=lambda _: emu.advance(1), stop=StopFlag())


def test_paper_session_trades_live_candles_without_a_private_call_and_matches_a_file_replay(  # type: ignore[no-untyped-def]
        emu, booster_and_median, tmp_path, mlflow_template) -> None:
    booster, median = booster_and_median
    params = paper_params(median)
    settings = key_less_settings(tmp_path, emu, booster, mlflow_template)
    # a client holding a real key: the paper session could sign private calls, and must not
    keyed = KrakenClient(make_exchange(emu.url, EMULATOR_KEY, EMULATOR_SECRET, throttle=False))
    c0 = emu.venue.cursor
    session = open_paper_session(params, settings, keyed)
    poll(session, emu, POLLS)

    api_key = emu.keys.keys[EMULATOR_KEY]
    assert api_key.last_nonce == 0 and api_key.counter == 0, "a signed (private) call reached the exchange"
    assert emu.venue.orders == {} and emu.venue.accounts == {}

    ledger = session.broker.ledger
    fills = ledger.fills()
    acted = [d for d in ledger.decisions() if d[2] in ("buy", "sell")]
    assert len(fills) >= 6 and len(acted) >= len(fills)
    assert {r.status for r in ledger.intents_with_status("filled")} == {"filled"}
    assert dict(ledger.audit_trail())["session_start"]["mode"] == "paper"
    assert ledger.balances()["USD"] == pytest.approx(session.broker.cash)

    # the same candles as a file replay: the warm-up window, then every finished candle the polls fed
    last_fed = c0 + POLLS - 2  # the first poll finds nothing new; each later one a candle
    candles = {pair: seq[c0 - 719 : last_fed + 1] for pair, seq in emu.venue.candles.items()}
    backtest = replay(candles, ReplayConfig.from_params(params, emu.venue.candles["XRP/USD"][c0].ts),
                      session.engine.spec, session.engine.score)
    assert [(f.pair, f.side, f.quantity, f.price, f.fee, f.ts) for f in fills] == \
        [(f.pair, f.side, f.quantity, f.price, f.fee, f.ts) for f in backtest.fills]
    # (orders' decisions are written with their intents, the others after the poll: compare in candle order)
    assert sorted((ts, pair, action) for ts, pair, action, _ in ledger.decisions()) == \
        sorted((d.ts, d.pair, d.action) for d in backtest.decisions)
    assert session.engine.equity() == pytest.approx(backtest.metrics["final_equity"], abs=0.005)  # to the cent
    session.close()


def test_paper_restart_rebuilds_the_account_from_the_ledger(emu, booster_and_median, tmp_path,  # type: ignore[no-untyped-def]
                                                             mlflow_template) -> None:
    booster, median = booster_and_median
    settings = key_less_settings(tmp_path, emu, booster, mlflow_template)
    first = open_paper_session(paper_params(median), settings, public_client(emu.url))
    poll(first, emu, 40)
    cash, positions = first.broker.cash, {p: first.broker.position(p) for p in PARAMS.pairs}
    pending = [r.intent.client_id for r in first.broker.ledger.unresolved_intents()]
    assert first.broker.ledger.fills()
    first.close()

    again = open_paper_session(paper_params(median), settings, public_client(emu.url))
    assert again.broker.cash == pytest.approx(cash, abs=1e-9)
    assert {p: again.broker.position(p) for p in PARAMS.pairs} == pytest.approx(positions, abs=1e-12)
    assert not again.broker.ledger.unresolved_intents()  # the old process's simulated orders died with it
    dropped = [d["client_id"] for k, d in again.broker.ledger.audit_trail() if k == "paper_order_dropped"]
    assert dropped == pending
    again.close()


def test_paper_and_live_never_share_a_ledger(emu, booster_and_median, tmp_path, mlflow_template) -> None:  # type: ignore[no-untyped-def]
    booster, median = booster_and_median
    settings = key_less_settings(tmp_path / "paper", emu, booster, mlflow_template)
    paper = open_paper_session(paper_params(median), settings, public_client(emu.url))
    poll(paper, emu, 40)
    assert paper.broker.ledger.fills()
    paper.close()
    live_settings = settings.model_copy(update={"kraken_key": SecretStr(EMULATOR_KEY),
                                                "kraken_secret": SecretStr(EMULATOR_SECRET)})
    keyed = KrakenClient(make_exchange(emu.url, EMULATOR_KEY, EMULATOR_SECRET, throttle=False))
    with pytest.raises(LedgerModeError, match=r"holds paper orders.*KRAKENFLOW_LEDGER_URL"):
        open_session(paper_params(median), live_settings, keyed)

    live_ledger = tmp_path / "live.db"
    ledger = Ledger(f"sqlite:///{live_ledger}")
    ledger.record_intent(OrderIntent("kf1-1", "XRP/USD", Side.BUY, 50.0), 1)  # a live ledger's order
    ledger.close()
    with pytest.raises(LedgerModeError, match=r"holds live orders.*KRAKENFLOW_LEDGER_URL"):
        open_paper_session(paper_params(median), settings.model_copy(update={"ledger_url": f"sqlite:///{live_ledger}"}),
                           public_client(emu.url))
