"""Crash-only trader: `krakenflow trade --mode live` is killed with SIGKILL at random moments while it
trades against the emulator, restarted each time, and must end with no lost and no duplicated order:
every exchange order has its intent in the ledger, no client id reaches the exchange twice, and the
ledger's fills and positions equal the exchange's trades and balances."""

from __future__ import annotations

import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from pydantic import SecretStr
from tests_support import EMULATOR_KEY, EMULATOR_SECRET
from trader_helpers import PARAMS, register_model, train_small_booster

from core.settings import Settings
from features.spec import spec_from_params
from market.emulator.faults import Fault

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow
KILLS = int(os.environ.get("KRAKENFLOW_CRASH_KILLS", "5"))
"""5 in `make test`; `make reliability` runs the same test with many more."""


def _env(tmp: Path, url: str) -> dict[str, str]:
    env = {**os.environ, "KRAKENFLOW_STATE_DIR": str(tmp / "home"), "KRAKENFLOW_KRAKEN_URL": url,
           "KRAKENFLOW_KRAKEN_KEY": EMULATOR_KEY, "KRAKENFLOW_KRAKEN_SECRET": EMULATOR_SECRET, "COLUMNS": "200",
           "KRAKENFLOW_KRAKEN_THROTTLE": "false"}  # the emulator paces (its rate counter is raised here)
    env.pop("PREFECT_API_URL", None)
    return env


def _trader(tmp: Path, params: Path, url: str, *extra: str) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-c", "from cli.app import main; main()", "trade", "--mode", "live",
           "--params", str(params), "--poll-seconds", "0.05", *extra]
    return subprocess.Popen(cmd, cwd=ROOT, env=_env(tmp, url), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


def _intents(ledger: Path) -> int:
    if not ledger.exists():
        return 0
    try:
        with sqlite3.connect(ledger, timeout=5) as conn:
            return int(conn.execute("select count(*) from intents").fetchone()[0])
    except sqlite3.OperationalError:  # schema not migrated yet
        return 0


def _kill_after_new_intents(proc: subprocess.Popen[str], ledger: Path, rng: random.Random, stalled: bool) -> None:
    """SIGKILL once this process has committed intents of its own, so it dies mid-trading. `stalled`: the
    emulator holds back the answer to the next AddOrder (the order is placed), so the kill lands for sure
    between the intent's commit and the exchange's answer; otherwise a random few milliseconds later."""
    before, deadline = _intents(ledger), time.monotonic() + 90
    while _intents(ledger) < before + (1 if stalled else rng.randint(1, 3)) and time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[0][-3000:]
        time.sleep(0.01)
    time.sleep(0.2 if stalled else rng.uniform(0, 0.05))
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)


def test_sigkill_at_random_points_loses_and_duplicates_no_order(tmp_path: Path, xrp_1h, mlflow_template) -> None:  # type: ignore[no-untyped-def]
    from market.emulator.kraken_api import RateTier
    from market.emulator.server import running_emulator

    spec = spec_from_params(PARAMS.features)
    booster = train_small_booster(spec, xrp_1h)
    median = float(np.median(booster.predict(spec.batch(xrp_1h)[spec.warmup :])))
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    # enter and exit at the model's median probability: it flips often, so many chances to die mid-order
    params["trade"].update(enter_threshold=median, exit_threshold=median)
    params["risk"].update(max_orders_per_minute=1000)
    # an intent killed before AddOrder left is taken as absent after one lookup a second later (the
    # default waits 90 s for a slow exchange; this emulator answers at once or not at all)
    params["live"].update(lookup_window_s=1, min_lookups=1)
    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump(params))
    ledger = tmp_path / "home" / "ledger.db"
    rng = random.Random(20261124)
    ledger.parent.mkdir(parents=True)
    shutil.copy(mlflow_template, ledger.parent / "mlflow.db")

    with running_emulator(tier=RateTier(max_counter=1e9), seconds_per_candle=0.05) as emu:
        emu.add_key(EMULATOR_KEY, EMULATOR_SECRET)
        settings = Settings(state_dir=tmp_path / "home", kraken_url=emu.url, kraken_key=SecretStr(EMULATOR_KEY),
                            kraken_secret=SecretStr(EMULATOR_SECRET))
        register_model(settings, booster, spec.to_json())
        for round_ in range(KILLS):
            stalled = round_ % 2 == 0
            if stalled:
                emu.add_fault(Fault("AddOrder", "drop_response", delay_ms=3_000))
            _kill_after_new_intents(_trader(tmp_path, params_file, emu.url), ledger, rng, stalled)
        emu.venue.frozen = True  # no new candles: the last start only recovers and reconciles
        final = _trader(tmp_path, params_file, emu.url, "--max-polls", "2")
        out, _ = final.communicate(timeout=120)
        assert final.returncode == 0, out[-3000:]
        assert "halted" not in out, out[-3000:]

        exchange_orders = [o for o in emu.venue.orders.values() if o.key == EMULATOR_KEY]
        exchange_trades = {t.trade_id: t for t in emu.venue.trades.values() if t.order.key == EMULATOR_KEY}
        balances = dict(emu.venue.account(EMULATOR_KEY))

    with sqlite3.connect(ledger) as conn:
        intents = dict(conn.execute("select client_id, status from intents").fetchall())
        fills = dict(conn.execute("select trade_id, quantity from fills").fetchall())
    client_ids = [o.cl_ord_id for o in exchange_orders]
    assert len(exchange_orders) >= KILLS
    assert len(client_ids) == len(set(client_ids)), "a client order id reached the exchange twice"
    assert set(client_ids) <= set(intents), "an order on the exchange has no intent in the ledger"
    assert not {s for s in intents.values() if s in ("new", "sent", "unknown", "open")}, intents
    assert set(fills) == set(exchange_trades), "ledger fills differ from the exchange's trades"
    for trade_id, qty in fills.items():
        assert qty == pytest.approx(exchange_trades[trade_id].volume)
    with sqlite3.connect(ledger) as conn:
        adjusted = conn.execute("select count(*) from adjustments").fetchone()[0]
        audit = dict(conn.execute("select kind, count(*) from audit group by kind").fetchall())
    assert adjusted == 0, "positions only matched after reconciliation corrected them"
    # every stalled round left an intent whose order was placed but never confirmed: found, not resent
    assert audit.get("lookup_found", 0) >= (KILLS + 1) // 2, audit
    assert audit["session_start"] == KILLS + 1
    assert balances.get("XXRP", 0.0) >= 0 and balances.get("XXDG", 0.0) >= 0
