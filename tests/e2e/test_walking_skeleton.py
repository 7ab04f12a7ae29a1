"""The whole path on a small slice of the real sample: candles → gate → features → train → MLflow
@champion → paper trader, through the real CLI (Prefect ephemeral server, MLflow on sqlite)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def _slice_project(tmp: Path, rows: int) -> Path:
    """params.yaml pointing at the last `rows` real candles of each bundled pair."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    sliced = {}
    for pair, src in params["data"]["sample"].items():
        frame = pd.read_parquet(ROOT / src).tail(rows)
        dst = tmp / Path(src).name
        frame.to_parquet(dst, index=False)
        sliced[pair] = str(dst)
    params["data"]["sample"] = sliced
    params["train"]["n_estimators"] = 40
    path = tmp / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def _krakenflow(args: list[str], tmp: Path, **extra_env: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **extra_env, "KRAKENFLOW_STATE_DIR": str(tmp / "home"),
           "KRAKENFLOW_DATA_DIR": str(tmp / "data"), "PREFECT_HOME": str(tmp / "home" / "prefect"), "COLUMNS": "200"}
    env.pop("PREFECT_API_URL", None)
    cmd = [sys.executable, "-c", "from cli.app import main; main()", *args]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def test_demo_path_end_to_end_on_real_slice(tmp_path: Path) -> None:
    params = _slice_project(tmp_path, rows=3000)
    done = _krakenflow(["demo", "--params", str(params)], tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    assert "champion: krakenflow v1" in out
    assert "A/B champion v1 vs challenger v2" in out
    assert "drift check:" in out
    assert (tmp_path / "data" / "reports" / "drift.html").stat().st_size > 10_000
    assert "paper P&L" in out and "max drawdown" in out
    assert "live (ccxt → local Kraken emulator" in out and "live-vs-emulator P&L" in out
    metrics = json.loads((tmp_path / "data" / "reports" / "metrics.json").read_text())
    assert {"holdout_auc", "holdout_net_return", "baseline_buy_and_hold_net_return"} <= set(metrics)
    assert (tmp_path / "home" / "mlflow.db").exists()
    # data/reports describes @champion: the rejected (or promoted) challenger trained in its own workspace
    champion = int(re.search(r"champion: krakenflow v(\d+)", out).group(1))  # type: ignore[union-attr]
    assert json.loads((tmp_path / "data" / "reports" / "registered.json").read_text())["version"] == champion
    found = re.findall(r"(paper|live-vs-emulator) P&L: ([+-][\d,.]+) USD", out)
    pnl = {kind: float(amount.replace(",", "")) for kind, amount in found}
    assert set(pnl) == {"paper", "live-vs-emulator"} and pnl["paper"] == pnl["live-vs-emulator"], out[-2000:]
    assert "= paper, to the cent" in out

    again = _krakenflow(["flow", "run", "--params", str(params)], tmp_path)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    # the demo registered v1 (champion) and v2 (its A/B challenger); this run registers v3
    assert "registered version 3 as @challenger" in again.stdout
    assert "A/B champion v1 vs challenger v3" in again.stdout
    assert "@champion is v1" in again.stdout  # an identical retrain is never promoted

    report = _krakenflow(["backtest", "--params", str(params), "--model", "champion", "--out",
                          str(tmp_path / "bt")], tmp_path)
    assert report.returncode == 0, report.stdout[-2000:] + report.stderr[-2000:]
    saved = json.loads((tmp_path / "bt" / "backtest.json").read_text())
    curve = [e["equity"] for e in saved["equity"]]
    assert saved["metrics"]["net_return"] == pytest.approx(curve[-1] / curve[0] - 1)
    assert "<svg" in (tmp_path / "bt" / "backtest.html").read_text()

    bad = _krakenflow(["trade", "--params", str(params), "--data", "XRP/USD=nowhere.parquet"], tmp_path)
    assert bad.returncode == 2 and "nowhere.parquet: file not found" in bad.stdout, bad.stdout

    _live_trading_against_a_running_emulator(params, tmp_path)


CANARY_SECRET = "Y2FuYXJ5LXNlY3JldC1tdXN0LW5ldmVyLWFwcGVhci1pbi1hbnktbG9nLTAwMDA="


def _live_trading_against_a_running_emulator(params: Path, tmp_path: Path) -> None:
    """`krakenflow trade --mode live` as a separate process against a real emulator server."""
    from market.emulator.kraken_api import RateTier
    from market.emulator.server import running_emulator

    with running_emulator(tier=RateTier(max_counter=1e9)) as emu:
        emu.add_key("trade-only", CANARY_SECRET)
        emu.add_key("can-withdraw", CANARY_SECRET, frozenset({"query", "trade", "withdraw"}))
        env = {"KRAKENFLOW_KRAKEN_URL": emu.url, "KRAKENFLOW_KRAKEN_SECRET": CANARY_SECRET}
        refused = _krakenflow(["trade", "--mode", "live", "--params", str(params), "--max-polls", "1"], tmp_path,
                              KRAKENFLOW_KRAKEN_KEY="can-withdraw", **env)
        assert refused.returncode == 2 and "may withdraw funds" in refused.stdout
        live = _krakenflow(["trade", "--mode", "live", "--params", str(params), "--max-polls", "2",
                            "--poll-seconds", "0"], tmp_path, KRAKENFLOW_KRAKEN_KEY="trade-only", **env)
        assert live.returncode == 0, live.stdout[-3000:] + live.stderr[-3000:]
        assert "live trading" in live.stdout and "XRP/USD" in live.stdout and "fills in the ledger" in live.stdout
    for output in (refused.stdout, refused.stderr, live.stdout, live.stderr):
        assert CANARY_SECRET not in output
    for stored in (tmp_path / "home").rglob("*"):  # logs, artifacts, and the ledger/MLflow databases too
        if stored.is_file():
            assert CANARY_SECRET.encode() not in stored.read_bytes(), stored
