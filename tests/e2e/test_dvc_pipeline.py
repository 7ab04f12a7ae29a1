"""`dvc repro` from a fresh clone: real stages, metrics that `dvc metrics show` prints, a no-op rerun."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def _run(cmd: list[str], cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{cmd}: {done.stdout[-2000:]}{done.stderr[-2000:]}"
    return done.stdout


def test_dvc_repro_from_fresh_clone(tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True, timeout=120)
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ.get('PATH', '')}", "KRAKENFLOW_HOME": str(tmp_path / "home")}
    env.pop("KRAKENFLOW_DATA_DIR", None)
    dvc = [str(Path(bin_dir) / "dvc")]
    _run([*dvc, "repro", "--force"], clone, env)
    metrics = json.loads((clone / "data" / "reports" / "metrics.json").read_text())
    assert 0.0 <= metrics["holdout_auc"] <= 1.0
    shown = _run([*dvc, "metrics", "show"], clone, env)
    assert "holdout_net_return" in shown and "data/reports/metrics.json" in shown
    again = _run([*dvc, "repro"], clone, env)
    assert "Data and pipelines are up to date" in again
    rerun = json.loads((clone / "data" / "reports" / "metrics.json").read_text())
    assert rerun == metrics
