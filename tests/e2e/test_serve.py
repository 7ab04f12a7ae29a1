"""Deployments: names, schedules and parameters, registered on a real (test-harness) Prefect API."""

from __future__ import annotations

import asyncio

import pytest

from flows.serve import build_deployments

pytestmark = pytest.mark.slow


def test_deployments_register_with_their_schedules() -> None:
    from prefect.client.orchestration import get_client
    from prefect.testing.utilities import prefect_test_harness

    deployments = {d.name: d for d in build_deployments("params.yaml", "data")}
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
    assert stored["retrain-weekly"].parameters == {"params_file": "params.yaml", "data_dir": "data"}
