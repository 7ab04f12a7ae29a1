"""A Kraken pair that is not bundled goes import → train → backtest → paper with one params.yaml line:
BTC/USD from the real Binance BTC/USDT hourly file in ../shared/data (a USD proxy, see its PROVENANCE.md).

Run as a user would: the `krakenflow` CLI in a project folder outside the repository. Besides the pairs
line, the test only lowers two training knobs (no Optuna search, 40 trees: seconds, not minutes) and the
entry thresholds (see _project).
The file is used from 2022 on: four years of hourly candles train in seconds, and the whole file would
also be refused — Binance was down for 33 hours in February 2018, a hole the quality gate rightly refuses
(max_gap_candles 24; tests/fixtures/real holds that stretch for the gate's own tests)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
BTC = ROOT.parent / "shared" / "data" / "binance" / "BTC_USDT-1h.feather"

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not BTC.exists(), reason=f"needs the real BTC candles at {BTC} (../shared)")]


def _project(tmp_path: Path) -> Path:
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["pairs"] = ["BTC/USD"]          # the one line a user adds (here: instead of the bundled pairs)
    raw["data"]["sample"] = {}          # nothing bundled for BTC: the store is the only source
    raw["optuna"]["n_trials"] = 0       # speed only
    raw["train"]["n_estimators"] = 40   # speed only
    # BTC rarely moves more than the 0.8 % round-trip fee in 4 hours, so its probabilities stay below 0.5
    # (the model would rightly never trade); lower thresholds make the path trade so fills can be checked
    raw["trade"].update(enter_threshold=0.3, exit_threshold=0.25)
    project = tmp_path / "project"
    project.mkdir()
    (project / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    return project


def _btc_file(tmp_path: Path) -> Path:
    frame = pd.read_feather(BTC)
    path = tmp_path / "BTC_USDT-1h.feather"
    frame[frame["date"] >= pd.Timestamp("2022-01-01", tz="UTC")].reset_index(drop=True).to_feather(path)
    return path


def _cli(project: Path, *args: str) -> tuple[int, str]:
    env = {**os.environ, "KRAKENFLOW_STATE_DIR": str(project / ".krakenflow"), "COLUMNS": "200"}
    env.pop("PREFECT_API_URL", None)
    done = subprocess.run([sys.executable, "-c", "from cli.app import main; main()", *args], cwd=project, env=env,
                          capture_output=True, text=True, timeout=600)
    return done.returncode, done.stdout + done.stderr


def test_btc_usd_from_a_file_goes_import_train_backtest_paper(tmp_path: Path) -> None:
    project, btc = _project(tmp_path), _btc_file(tmp_path)

    code, out = _cli(project, "backtest", "--pair", "BTC/USD")
    assert code == 2 and "Traceback" not in out, out[-3000:]
    code, out = _cli(project, "stage", "prepare")  # the store lacks the pair: the error names the fix
    assert code == 2 and "krakenflow ingest --pair BTC/USD" in out and "krakenflow import" in out, out[-3000:]
    assert not (project / "data" / "validated").exists()

    code, out = _cli(project, "import", str(btc))  # the file has no symbol column
    assert code == 2 and "--pair" in out, out[-3000:]
    code, out = _cli(project, "import", str(btc), "--pair", "BTC/USD")
    assert code == 0, out[-3000:]
    assert "as BTC/USD 1h" in out, out
    assert list((project / "data" / "store" / "kraken" / "BTC-USD" / "1h").glob("*.parquet"))

    for stage in ("prepare", "featurize", "train", "evaluate", "register"):
        code, out = _cli(project, "stage", stage)
        assert code == 0, f"stage {stage}:\n{out[-3000:]}"
    code, out = _cli(project, "stage", "promote")  # what dvc registers is nobody's challenger by itself
    assert code == 2 and "has no @challenger" in out, out[-3000:]
    code, out = _cli(project, "challenge")  # by hand: the version the register stage wrote
    assert code == 0 and "@challenger → krakenflow v1" in out, out[-3000:]
    code, out = _cli(project, "stage", "promote")
    assert code == 0, out[-3000:]
    metrics = json.loads((project / "data" / "reports" / "metrics.json").read_text())
    validated = project / "data" / "validated" / "BTC-USD-1h.parquet"
    assert validated.exists() and metrics["holdout_n_fills"] > 0, metrics

    code, out = _cli(project, "backtest", "--pair", "BTC/USD", "--out", str(project / "reports"))
    assert code == 0, out[-3000:]
    report = json.loads((project / "reports" / "backtest.json").read_text())
    assert report["metrics"]["n_fills"] > 0 and "round trips" in out, out
    assert {f["pair"] for f in report["fills"]} == {"BTC/USD"}

    code, out = _cli(project, "trade", "--mode", "paper")
    assert code == 0 and "paper P&L" in out and "BTC/USD" in out, out[-3000:]
