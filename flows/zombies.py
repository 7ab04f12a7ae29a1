"""Flow runs whose process died together with its worker (a machine that went down, an OOM kill of the whole
service, `kill -9` of the process group) stay Running forever: nothing is left to report how they ended, and
their own crash hooks died with them. Every flow run sends the Prefect server a heartbeat event; the server keeps
one automation (made here, by `krakenflow serve`) that marks a run Crashed when its heartbeats stop, and
`krakenflow watch` alerts on the runs it marked (flows.health).

Prefect's documented recipe ("detect zombie flows"), with the heartbeat and the silence it tolerates derived
from one setting.
"""

from __future__ import annotations

import os
from datetime import timedelta

from prefect.automations import Automation
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import StateType
from prefect.events.actions import ChangeFlowRunState
from prefect.events.schemas.automations import EventTrigger, Posture
from prefect.events.schemas.events import ResourceSpecification

from core.settings import FLOW_HEARTBEAT_S

AUTOMATION_NAME = "krakenflow: crash flow runs whose heartbeats stopped"
CRASH_MESSAGE = "no heartbeat from its process"
"""Starts the state message of a run the automation crashed: how `krakenflow watch` tells them apart."""
HEARTBEAT_SETTING = "PREFECT_FLOWS_HEARTBEAT_FREQUENCY"
MISSED_BEATS = 3
"""Heartbeats a run may miss before it is called crashed (one late event is ordinary load)."""


def heartbeat_seconds() -> int:
    """The flow runs' heartbeat period: Prefect's setting when the environment sets it, else ours
    (core.settings.FLOW_HEARTBEAT_S). Set in this process's environment so the flow-run processes the worker
    starts inherit it."""
    seconds = max(30, int(os.environ.get(HEARTBEAT_SETTING) or FLOW_HEARTBEAT_S))
    os.environ[HEARTBEAT_SETTING] = str(seconds)
    return seconds


def zombie_automation(heartbeat_s: int) -> Automation:
    """After a run's heartbeat, expect another one (or its end) within MISSED_BEATS periods; else Crashed."""
    silence = timedelta(seconds=MISSED_BEATS * heartbeat_s)
    return Automation(
        name=AUTOMATION_NAME,
        description=f"A flow run that sent no heartbeat for {silence.total_seconds():.0f} s (heartbeat every "
                    f"{heartbeat_s} s) died with its worker: mark it Crashed. Made by `krakenflow serve`.",
        enabled=True,
        trigger=EventTrigger(
            after={"prefect.flow-run.heartbeat"},
            expect={"prefect.flow-run.heartbeat", "prefect.flow-run.Completed", "prefect.flow-run.Failed",
                    "prefect.flow-run.Cancelled", "prefect.flow-run.Crashed"},
            match=ResourceSpecification({"prefect.resource.id": ["prefect.flow-run.*"]}),
            for_each={"prefect.resource.id"},
            posture=Posture.Proactive,
            threshold=1,
            within=silence,
        ),
        actions=[ChangeFlowRunState(
            name="Crashed", state=StateType.CRASHED, force=False,
            message=f"{CRASH_MESSAGE} for {silence.total_seconds():.0f} s: it died with its worker "
                    "(marked by the krakenflow zombie automation)")],
    )


def ensure_zombie_automation(heartbeat_s: int) -> None:
    """Exactly one such automation on the server, matching this heartbeat (a worker restarted with another
    period replaces it)."""
    wanted = zombie_automation(heartbeat_s)
    with get_client(sync_client=True) as client:
        for old in client.read_automations_by_name(AUTOMATION_NAME):
            client.delete_automation(old.id)
    wanted.create()
