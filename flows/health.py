"""Health of the scheduling side, as the trader's /healthz is for trading: is the Prefect server up, is a
worker pulling (scheduled runs do not go Late), is any flow run stuck in Running. `probe` reads the Prefect
API (the I/O); `stack_problems` is the pure verdict; `Watch` turns verdict changes into alerts and
Prometheus gauges (`krakenflow watch`)."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import httpx
from prometheus_client import CollectorRegistry, Counter, Gauge, ProcessCollector

from core.alerts import Alert, Alerter, Severity

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunInfo:
    """One flow run as the verdict needs it (times in UTC epoch seconds)."""

    name: str
    deployment: str
    state: str              # Prefect state name: Scheduled, Late, Pending, Running, Completed, Failed, Crashed...
    expected_start: float   # when the scheduler wanted it to start
    started: float | None   # when it entered Running


@dataclass(frozen=True)
class CrashedRun:
    """A run the server marked Crashed because its heartbeats stopped (flows.zombies)."""

    id: str
    name: str
    deployment: str
    message: str


@dataclass(frozen=True)
class Snapshot:
    server_up: bool
    server_error: str = ""
    runs: tuple[RunInfo, ...] = ()
    zombies: tuple[CrashedRun, ...] = ()


@dataclass(frozen=True)
class HealthLimits:
    late_after_s: float = 300.0
    """A scheduled run not started this long after its time means no worker is pulling."""
    stuck_after_s: float = 6 * 3600.0
    """A run in Running this long is stuck (a retrain takes minutes, not hours)."""


def stack_problems(snapshot: Snapshot, now: float, limits: HealthLimits) -> dict[str, str]:
    """Pure: problem key → what is wrong. Keys are stable (server, worker:<deployment>, stuck:<run>), so a
    watcher alerts when one appears and again when it clears, not on every probe."""
    if not snapshot.server_up:
        return {"server": f"the Prefect server does not answer ({snapshot.server_error}): nothing is scheduled "
                          "or run; start it (`krakenflow server`) or check PREFECT_API_URL"}
    problems: dict[str, str] = {}
    for run in snapshot.runs:
        waiting = now - run.expected_start
        if run.state in ("Scheduled", "Late") and waiting > limits.late_after_s:
            problems[f"worker:{run.deployment}"] = (
                f"scheduled run {run.name} of {run.deployment} has waited {waiting / 60:.0f} min: no worker is "
                "pulling (start `krakenflow serve`, or check the worker's log)")
        if run.state == "Running" and run.started is not None and now - run.started > limits.stuck_after_s:
            problems[f"stuck:{run.name}"] = (
                f"flow run {run.name} of {run.deployment} has been Running for {(now - run.started) / 3600:.1f} h: "
                "stuck (its worker may have died); cancel it in the Prefect UI, the next run starts clean")
    return problems


def zombie_alerts(snapshot: Snapshot, reported: set[str]) -> list[Alert]:
    """Pure: one critical alert per run the zombie automation crashed and nobody was told of yet (the run's own
    crash hook died with its process, so this is the only one)."""
    return [Alert("flow_run_crashed", "critical", f"flow run {run.name} of {run.deployment} crashed: its worker died",
                  f"{run.message} (flow run {run.id}). The deployment's next run starts clean; if the worker does not "
                  "come back by itself, start `krakenflow serve` again.", dedupe_key=f"zombie:{run.id}")
            for run in snapshot.zombies if run.id not in reported]


def probe(api_url: str, timeout_s: float = 5.0) -> Snapshot:
    """Read the Prefect API: /health, then the flow runs that are waiting or running, and the recent runs the
    zombie automation crashed."""
    try:
        httpx.get(f"{api_url.rstrip('/')}/health", timeout=timeout_s).raise_for_status()
    except httpx.HTTPError as err:
        return Snapshot(False, f"{type(err).__name__}: {err}")
    runs, zombies = asyncio.run(_read_runs(api_url))
    return Snapshot(True, "", tuple(runs), tuple(zombies))


ZOMBIE_LOOKBACK = dt.timedelta(hours=6)
"""Crashed runs older than this are history (a watch started later does not alert them)."""


async def _read_runs(api_url: str) -> tuple[list[RunInfo], list[CrashedRun]]:
    from prefect.client.orchestration import PrefectClient
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterEndTime,
        FlowRunFilterState,
        FlowRunFilterStateName,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.types import DateTime

    from flows.zombies import CRASH_MESSAGE

    wanted = FlowRunFilterState(name=FlowRunFilterStateName(any_=["Scheduled", "Late", "Pending", "Running"]))
    since = cast(DateTime, dt.datetime.now(dt.UTC) - ZOMBIE_LOOKBACK)
    crashed = FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.CRASHED])),
                            end_time=FlowRunFilterEndTime(after_=since))
    async with PrefectClient(api_url) as client:
        runs = await client.read_flow_runs(flow_run_filter=FlowRunFilter(state=wanted), limit=200)
        ended = await client.read_flow_runs(flow_run_filter=crashed, limit=200)
        names = {d.id: d.name for d in await client.read_deployments()}

    def deployment(run: Any) -> str:
        return names.get(run.deployment_id, "-") if run.deployment_id else "-"

    return ([RunInfo(r.name, deployment(r), (r.state.name if r.state else None) or "?",
                     _epoch(r.expected_start_time), _epoch(r.start_time)) for r in runs],
            [CrashedRun(str(r.id), r.name, deployment(r), r.state.message or "") for r in ended
             if r.state is not None and (r.state.message or "").startswith(CRASH_MESSAGE)])


def _epoch(when: dt.datetime | None) -> float:
    return when.timestamp() if when is not None else float("nan")


@dataclass
class Watch:
    """Probe → verdict → alerts on changes → gauges. One per `krakenflow watch` process."""

    api_url: str
    alerter: Alerter
    limits: HealthLimits = HealthLimits()
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    active: dict[str, str] = field(default_factory=dict)
    reported_zombies: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.up = Gauge("krakenflow_prefect_server_up", "1 when the Prefect server answers /health",
                        registry=self.registry)
        self.problem_count = Gauge("krakenflow_stack_problems", "open scheduling-side problems, by kind",
                                   ["kind"], registry=self.registry)
        self.zombies = Counter("krakenflow_zombie_flow_runs", "flow runs crashed because their heartbeats stopped",
                               registry=self.registry)
        self.healthy = Gauge("krakenflow_stack_healthy", "1 when server, workers and flow runs are fine",
                             registry=self.registry)
        self.flow_runs = Gauge("krakenflow_flow_runs", "flow runs waiting or running, by Prefect state (none at "
                               "all: no schedule is active)", ["state"], registry=self.registry)
        ProcessCollector(registry=self.registry)

    def check(self, now: float) -> dict[str, str]:
        snapshot = probe(self.api_url)
        found = stack_problems(snapshot, now, self.limits)
        self._alert_changes(found)
        for alert in zombie_alerts(snapshot, self.reported_zombies):
            self.alerter.send(alert)
            self.zombies.inc()
        self.reported_zombies |= {run.id for run in snapshot.zombies}
        self.active = found
        self.up.set(1 if snapshot.server_up else 0)
        for kind in ("server", "worker", "stuck"):
            self.problem_count.labels(kind).set(sum(1 for key in found if key.split(":")[0] == kind))
        self.healthy.set(0 if found else 1)
        for state in ("Scheduled", "Late", "Pending", "Running"):
            self.flow_runs.labels(state).set(sum(1 for run in snapshot.runs if run.state == state))
        return found

    def _alert_changes(self, found: dict[str, str]) -> None:
        for key in sorted(set(found) - set(self.active)):
            severity: Severity = "critical" if key == "server" else "warning"
            self.alerter.send(Alert("stack_unhealthy", severity, f"krakenflow scheduling: {key.split(':')[0]} problem",
                                    found[key], dedupe_key=f"stack:{key}"))
        for key in sorted(set(self.active) - set(found)):
            self.alerter.send(Alert("stack_recovered", "info", f"krakenflow scheduling: {key} recovered",
                                    f"was: {self.active[key]}", dedupe_key=f"stack-ok:{key}"))


def problems_text(found: dict[str, str]) -> Sequence[str]:
    return [f"{key}: {why}" for key, why in sorted(found.items())]
