"""Deployments: names, params.yaml `schedules:` and parameters, registered on a real (test-harness) Prefect API;
`krakenflow serve` refuses to run without a persistent server."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from core.params import SchedulesParams
from flows.ingest import ingest_deployments
from flows.serve import FLOWS, build_deployments

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def _read(ids: list) -> dict:
    from prefect.client.orchestration import get_client

    async def read() -> list:
        async with get_client() as client:
            return [await client.read_deployment(i) for i in ids]

    return {d.name: d for d in asyncio.run(read())}


def test_every_deployment_has_a_schedules_entry() -> None:
    ingest = {d.name for d in ingest_deployments(str(ROOT / "params.yaml"), "data", str(ROOT))}
    assert set(FLOWS) | ingest == set(SchedulesParams.deployments())


def test_deployments_register_with_their_schedules(tmp_path: Path) -> None:
    from prefect.testing.utilities import prefect_test_harness

    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["schedules"] = {"drift-hourly": "10s", "retrain-weekly": None, "ab-promote-daily": "7d"}
    (tmp_path / "edited.yaml").write_text(yaml.safe_dump(params))
    defaults = {d.name: d for d in build_deployments(str(ROOT / "params.yaml"), "data", str(tmp_path))}
    assert set(defaults) == {"validate-hourly", "drift-hourly", "retrain-weekly", "ab-promote-daily",
                             "pipeline-manual"}
    with prefect_test_harness(server_startup_timeout=180):
        stored = _read([d.apply() for d in defaults.values()])
        edited = _read([d.apply() for d in build_deployments(str(tmp_path / "edited.yaml"), "data", str(tmp_path))])
    assert stored["retrain-weekly"].schedules[0].schedule.cron == "0 3 * * 1"
    assert stored["ab-promote-daily"].schedules[0].schedule.cron == "30 4 * * *"
    assert stored["pipeline-manual"].schedules == []
    assert stored["drift-hourly"].schedules[0].schedule.cron == "15 * * * *"
    assert stored["validate-hourly"].schedules[0].schedule.cron == "5 * * * *"
    # absolute, under the project home: a worker's current directory never changes what a run reads
    # and the scheduled retrain goes on to its A/B (`promote`)
    assert stored["retrain-weekly"].parameters == {"params_file": str(ROOT / "params.yaml"),
                                                   "data_dir": str(tmp_path / "data"), "home": str(tmp_path),
                                                   "promote": True}
    assert "promote" not in stored["drift-hourly"].parameters
    # edited params.yaml: an interval, a null (manual only), the rest keep their defaults
    assert edited["drift-hourly"].schedules[0].schedule.interval.total_seconds() == 10
    assert edited["ab-promote-daily"].schedules[0].schedule.interval.total_seconds() == 7 * 86_400
    assert edited["retrain-weekly"].schedules == []
    assert edited["validate-hourly"].schedules[0].schedule.cron == "5 * * * *"


def test_serve_without_a_server_says_how_to_start_one(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_API_URL", "KRAKENFLOW_"))}
    env["KRAKENFLOW_STATE_DIR"] = str(tmp_path / "state")
    done = subprocess.run([sys.executable, "-c", "from cli.app import main; main()", "serve"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stdout + done.stderr
    out = " ".join(done.stdout.split())
    assert "scheduled runs need a persistent Prefect server" in out
    assert "krakenflow server" in out and "export PREFECT_API_URL=http://127.0.0.1:4200/api" in out
