"""The live trading session against the emulator: key check, dead-man switch re-arm, SIGTERM stop."""

from __future__ import annotations

import signal
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
from pydantic import SecretStr
from tests_support import EMULATOR_KEY, EMULATOR_SECRET

from core.params import load_params
from core.settings import Settings
from features.spec import spec_from_params
from market.kraken import KrakenClient, make_exchange
from models import registry
from trader.service import StopFlag, UnsafeKeyError, open_session, run

PARAMS = load_params()


@pytest.fixture
def settings(tmp_path: Path, emulator, xrp_1h: pd.DataFrame) -> Settings:  # type: ignore[no-untyped-def]
    """A registry holding one real @champion, and settings pointing the trader at the emulator."""
    s = Settings(home=tmp_path, kraken_url=emulator.url, kraken_key=SecretStr(EMULATOR_KEY),
                 kraken_secret=SecretStr(EMULATOR_SECRET), ledger_url=f"sqlite:///{tmp_path / 'ledger.db'}")
    spec = spec_from_params(PARAMS.features)
    X = spec.batch(xrp_1h.iloc[:3000])[spec.warmup :]
    y = (np.diff(xrp_1h["close"].to_numpy()[spec.warmup : 3001]) > 0).astype(float)
    booster = lgb.train({"objective": "binary", "verbosity": -1, "num_threads": 1}, lgb.Dataset(X, label=y), 5)
    registry.configure(s.tracking_uri)
    exp = registry.ensure_experiment("t", s.artifact_root)
    run_id, uri = registry.log_training_run(experiment_id=exp, run_name="r", booster=booster,
                                            spec_json=spec.to_json(), params={}, metrics={}, tags={})
    registry.set_alias("krakenflow", "champion", registry.register(uri, "krakenflow", run_id, {}))
    return s


def test_dead_man_switch_is_re_armed_while_healthy(settings: Settings, emulator, kraken_client) -> None:  # type: ignore[no-untyped-def]
    session = open_session(PARAMS, settings, kraken_client)
    run(session, 0, max_polls=2, after_poll=lambda _: emulator.advance(1), dead_man_s=7200, stop=StopFlag())
    # re-armed for 2 h at the last poll, then one hourly candle passed: 1 h left on the switch
    assert emulator.venue.dead_man_deadline == pytest.approx(emulator.venue.now() + 3600, abs=1)
    assert next(k for k, _ in session.broker.ledger.audit_trail()) == "session_start"


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
