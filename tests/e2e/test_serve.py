"""Deployments: names, schedules and parameters, registered on a real (test-harness) Prefect API."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from flows.serve import build_deployments

pytestmark = pytest.mark.slow


def test_deployments_register_with_their_schedules(tmp_path: Path) -> None:
    from prefect.client.orchestration import get_client
    from prefect.testing.utilities import prefect_test_harness

    deployments = {d.name: d for d in build_deployments("params.yaml", "data", str(tmp_path))}
    assert set(deployments) == {"validate-hourly", "drift-hourly", "retrain-weekly", "ab-promote-daily",
                                "pipeline-manual"}
    with prefect_test_harness(server_startup_timeout=180):
        ids = [d.apply() for d in deployments.values()]

        async def read() -> list:
            async with get_client() as client:
                return [await client.read_deployment(i) for i in ids]

        stored = {d.name: d for d in asyncio.run(read())}
    assert stored["retrain-weekly"].schedules[0].schedule.cron == "0 3 * * 1"
    assert stored["ab-promote-daily"].schedules[0].schedule.cron == "30 4 * * *"
    assert stored["pipeline-manual"].schedules == []
    assert stored["drift-hourly"].schedules[0].schedule.cron == "15 * * * *"
    # absolute, under the project home: a worker's current directory never changes what a run reads
    assert stored["retrain-weekly"].parameters == {"params_file": str(tmp_path / "params.yaml"),
                                                   "data_dir": str(tmp_path / "data"), "home": str(tmp_path)}
