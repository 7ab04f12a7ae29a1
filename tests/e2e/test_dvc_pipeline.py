"""`dvc repro` from a fresh clone: a committed dvc.lock that matches the code, real stages, metrics that
`dvc metrics show` prints, a no-op rerun, and README's reset after `dvc exp run` restoring the baseline."""

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


def stale_stages(status: dict[str, list[object]]) -> dict[str, list[object]]:
    """Stages whose recorded code or params differ from the clone. A fresh clone has no outputs, so outs
    (and upstream outputs used as deps) that are "deleted" / "not in cache" are expected; a dep that is
    "modified" or any changed params means dvc.lock was not committed with the code."""
    def stale(entry: object) -> bool:
        if not isinstance(entry, dict):
            return True
        deps = entry.get("changed deps", {})
        return bool(set(entry) - {"changed outs", "changed deps"}
                    or set(deps.values()) - {"deleted", "not in cache"})
    return {stage: entries for stage, entries in status.items() if any(stale(e) for e in entries)}


def test_stale_stages_catches_a_changed_dependency() -> None:
    fresh = {"prepare": [{"changed outs": {"data/validated": "not in cache"}}],
             "train": [{"changed deps": {"data/features": "deleted"}}, {"changed outs": {"data/models": "deleted"}}]}
    edited = {"evaluate": [{"changed deps": {"trader/engine.py": "modified"}}, {"changed outs": {"x": "deleted"}}]}
    assert stale_stages(fresh) == {} and stale_stages(edited) == edited


def test_dvc_repro_from_fresh_clone(tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True, timeout=120)
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ.get('PATH', '')}",
           "KRAKENFLOW_STATE_DIR": str(tmp_path / "home")}
    env.pop("KRAKENFLOW_DATA_DIR", None)
    dvc = [str(Path(bin_dir) / "dvc")]
    status = json.loads(_run([*dvc, "status", "--json"], clone, env) or "{}")
    assert stale_stages(status) == {}, f"dvc.lock is stale: commit `dvc repro`'s dvc.lock with the code ({status})"
    _run([*dvc, "repro", "--force"], clone, env)
    metrics = json.loads((clone / "data" / "reports" / "metrics.json").read_text())
    assert 0.0 <= metrics["holdout_auc"] <= 1.0
    shown = _run([*dvc, "metrics", "show"], clone, env)
    assert "holdout_net_return" in shown and "data/reports/metrics.json" in shown
    again = _run([*dvc, "repro"], clone, env)
    assert "Data and pipelines are up to date" in again
    rerun = json.loads((clone / "data" / "reports" / "metrics.json").read_text())
    assert rerun == metrics

    # README: an experiment is applied to the workspace; `git checkout params.yaml dvc.lock && dvc repro`
    # brings the baseline back from DVC's run cache (it used to be `dvc checkout`, which deleted data/models)
    baseline_model = (clone / "data" / "models" / "model.lgb").read_bytes()
    _run([*dvc, "exp", "run", "-S", "train.num_leaves=7", "-S", "optuna.n_trials=0"], clone, env)
    assert (clone / "data" / "models" / "model.lgb").read_bytes() != baseline_model
    _run(["git", "checkout", "params.yaml", "dvc.lock"], clone, env)
    restored = _run([*dvc, "repro"], clone, env)
    assert "Running stage 'train'" not in restored, restored  # restored from the run cache, not retrained
    assert (clone / "data" / "models" / "model.lgb").read_bytes() == baseline_model
    assert json.loads((clone / "data" / "reports" / "metrics.json").read_text()) == metrics
    assert "up to date" in _run([*dvc, "status"], clone, env)
