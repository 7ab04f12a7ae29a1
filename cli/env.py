"""Process environment for the embedded defaults: Prefect home, telemetry off — before any import."""

from __future__ import annotations

import os

from core.settings import Settings


def prepare_environment(settings: Settings | None = None) -> Settings:
    settings = settings or Settings()
    settings.ensure_home()
    os.environ.setdefault("PREFECT_HOME", str(settings.prefect_home))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_LOGGING_TO_API_ENABLED", "true")
    # The first start migrates a fresh SQLite database: Prefect's 20 s default is too short on 2 cores.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("DO_NOT_TRACK", "true")
    if settings.prefect_api_url:
        os.environ.setdefault("PREFECT_API_URL", settings.prefect_api_url)
    return settings
