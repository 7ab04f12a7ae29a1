"""`krakenflow trade --mode dry-run` (Freqtrade's dry run): the live loop on the emulator's live candles,
simulated fills, its own ledger, no API key and no private call."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
from tests_support import EMULATOR_KEY, EMULATOR_SECRET
from trader_helpers import register_model, train_small_booster

from core.params import load_params
from core.settings import Settings
from features.spec import spec_from_params
from market.emulator.kraken_api import RateTier
from market.emulator.server import running_emulator
from trader.ledger import Ledger

ROOT = Path(__file__).resolve().parents[2]


def test_dry_run_polls_live_candles_into_its_own_ledger_without_a_key(
        tmp_path: Path, xrp_1h: pd.DataFrame, mlflow_template: Path) -> None:
    spec = spec_from_params(load_params(ROOT / "params.yaml").features)
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(mlflow_template, home / "mlflow.db")
    register_model(Settings(state_dir=home), train_small_booster(spec, xrp_1h), spec.to_json())
    with running_emulator(tier=RateTier(max_counter=1e9)) as emu:
        emu.add_key(EMULATOR_KEY, EMULATOR_SECRET)  # exists, but the dry run is given no key at all
        env = {k: v for k, v in os.environ.items() if not k.startswith("KRAKENFLOW_")}
        env.update(KRAKENFLOW_STATE_DIR=str(home), KRAKENFLOW_KRAKEN_URL=emu.url, COLUMNS="200")
        done = subprocess.run([sys.executable, "-c", "from cli.app import main; main()", "trade", "--mode",
                               "dry-run", "--max-polls", "2", "--poll-seconds", "0"], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=180)
        out = done.stdout + done.stderr
        assert done.returncode == 0, out[-3000:]
        assert emu.keys.keys[EMULATOR_KEY].last_nonce == 0 and emu.venue.orders == {}
    assert "dry-run (simulated fills) trading XRP/USD, DOGE/USD" in out, out[-3000:]
    assert not (home / "ledger.db").exists()  # never the live trader's default ledger
    ledger = Ledger(f"sqlite:///{home / 'dry-run-ledger.db'}")
    starts = [detail for _, detail in ledger.audit_trail("session_start")]
    ledger.close()
    assert starts and starts[0]["mode"] == "paper"
