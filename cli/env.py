"""Process environment: telemetry off before any import, then the project this command works on (its
Prefect home and state folder), whatever the current directory."""

from __future__ import annotations

import os
from pathlib import Path

from core.settings import FLOW_HEARTBEAT_S, ProjectNotFound, Settings, nearest_project


def prepare_environment() -> None:
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_LOGGING_TO_API_ENABLED", "true")
    # The first start migrates a fresh SQLite database: Prefect's 20 s default is too short on 2 cores.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("DO_NOT_TRACK", "true")
    # one heartbeat period for every flow run we start, so the zombie automation's window fits them all
    os.environ.setdefault("PREFECT_FLOWS_HEARTBEAT_FREQUENCY", str(FLOW_HEARTBEAT_S))


def use_home(home: Path) -> None:
    """Pin the project home for everything this process runs (jobs and Prefect tasks build their own Settings)."""
    os.environ["KRAKENFLOW_HOME"] = str(home.expanduser().resolve())


def use_project(params_file: Path | None) -> Path:
    """The params.yaml a command loads (`--params`, else the project's) as an absolute path; prepares the
    project's state folder and Prefect home. Raises ProjectNotFound with the fix when there is no project."""
    if params_file is not None:
        params_file = params_file.expanduser().resolve()
        if not os.environ.get("KRAKENFLOW_HOME") and nearest_project(Path.cwd()) is None:
            use_home(params_file.parent)  # no project around here: the file's folder is the project
    settings = Settings()
    path = params_file or settings.params_file
    if params_file is None and not path.is_file():
        raise ProjectNotFound(f"no {path.name} in {path.parent}: the project home (--home or KRAKENFLOW_HOME) is "
                              "the folder with params.yaml and data/ (state lives in KRAKENFLOW_STATE_DIR); pass "
                              "--home DIR, set KRAKENFLOW_HOME, or --params FILE")
    settings.ensure_state_dir()
    os.environ.setdefault("PREFECT_HOME", str(settings.prefect_home))
    if settings.prefect_api_url:
        os.environ.setdefault("PREFECT_API_URL", settings.prefect_api_url)
    return path
