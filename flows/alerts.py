"""Prefect state hooks that turn a failed or crashed flow run into an alert (core.alerts; the receivers come
from KRAKENFLOW_ALERT_URLS). A hook must never fail the run it reports on, so every error here is logged."""

from __future__ import annotations

import logging
from typing import Any

from core.alerts import Alert, alerter_from_settings
from core.settings import Settings

log = logging.getLogger(__name__)


def _report(kind: str, flow: Any, flow_run: Any, state: Any) -> None:
    try:
        name = f"{getattr(flow, 'name', '?')}/{getattr(flow_run, 'name', '?')}"
        message = str(getattr(state, "message", "") or getattr(state, "name", ""))
        alerter_from_settings(Settings()).send(Alert(
            "flow_failed", "critical" if kind == "crashed" else "warning", f"flow run {name} {kind}",
            f"{message}\nflow run id {getattr(flow_run, 'id', '?')}; the next scheduled run starts clean. "
            "See the Prefect UI (Runs) for its logs.", dedupe_key=f"flow_failed:{getattr(flow, 'name', '?')}"))
    except Exception:  # the run's own state stands; an alert problem must not change it
        log.exception("could not send the %s alert for a flow run", kind)


def on_failure(flow: Any, flow_run: Any, state: Any) -> None:
    _report("failed", flow, flow_run, state)


def on_crashed(flow: Any, flow_run: Any, state: Any) -> None:
    _report("crashed", flow, flow_run, state)


HOOKS: dict[str, Any] = {"on_failure": [on_failure], "on_crashed": [on_crashed]}
"""`@flow(..., **HOOKS)`: every krakenflow flow alerts when its run fails or crashes."""
