"""Where the project and its state live and which secrets to use: environment (KRAKENFLOW_*) over
embedded defaults. Every path is absolute once loaded, so no job depends on the current directory."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

from pydantic import SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

KRAKEN_PUBLIC_URL = "https://api.kraken.com"
PARAMS_NAME = "params.yaml"
FLOW_HEARTBEAT_S = 60
"""Seconds between a flow run's heartbeats (PREFECT_FLOWS_HEARTBEAT_FREQUENCY for every krakenflow process,
unless set): the server calls a Running run crashed after three missed ones (flows.zombies). Prefect's own
default is 180 s; its minimum 30 s."""
CHECKOUT = Path(__file__).resolve().parents[1]
"""The source checkout this package runs from (an editable install); in site-packages it holds no params.yaml."""


class ProjectNotFound(LookupError):
    """No project home: the message names where it looked and the three ways to name one."""


def nearest_project(cwd: Path) -> Path | None:
    """The nearest folder from `cwd` up that holds a params.yaml."""
    cwd = cwd.resolve()
    return next((folder for folder in (cwd, *cwd.parents) if (folder / PARAMS_NAME).is_file()), None)


def find_home(cwd: Path, params_file: Path | None = None, checkout: Path | None = CHECKOUT) -> Path:
    """The project home when KRAKENFLOW_HOME is not set: the nearest folder from `cwd` up that holds a
    params.yaml; else the folder of an explicitly given params file; else the source checkout (if it has a
    params.yaml)."""
    cwd = cwd.resolve()
    nearest = nearest_project(cwd)
    if nearest is not None:
        return nearest
    if params_file is not None:
        return (cwd / params_file).resolve().parent
    if checkout is not None and (checkout / PARAMS_NAME).is_file():
        return checkout
    raise ProjectNotFound(f"no {PARAMS_NAME} in {cwd} or its parents: pass --home DIR, set KRAKENFLOW_HOME, "
                          "or --params FILE")


class Settings(BaseSettings):
    """Embedded defaults need no server: SQLite under `state_dir`, files under `data_dir`, all in the project."""

    model_config = SettingsConfigDict(env_prefix="KRAKENFLOW_", frozen=True, extra="ignore")

    home: Path = Path()
    """The project: the folder with params.yaml and data/ (`krakenflow --home`, KRAKENFLOW_HOME; when not
    given, find_home from the current directory — never this placeholder)."""
    state_dir: Path = Path(".krakenflow")
    """MLflow sqlite and artifacts, the Prefect home, the ledger (KRAKENFLOW_STATE_DIR)."""
    data_dir: Path = Path("data")
    params_file: Path = Path(PARAMS_NAME)
    kraken_url: str = KRAKEN_PUBLIC_URL
    kraken_key: SecretStr | None = None
    kraken_secret: SecretStr | None = None
    kraken_throttle: bool = True
    """ccxt's client-side pacing (about one call per second); off only where the server paces itself
    (the emulator enforces Kraken's rate counter) or a higher Kraken tier allows it."""
    mlflow_tracking_uri: str | None = None
    mlflow_registry_uri: str | None = None
    prefect_api_url: str | None = None
    ledger_url: str | None = None
    console_token: SecretStr | None = None
    """Bearer token of the console's control API (KRAKENFLOW_CONSOLE_TOKEN); none: every control call is
    refused (reading needs no token)."""
    alert_urls: Annotated[list[str], NoDecode] = []
    """Apprise URLs for alerts (KRAKENFLOW_ALERT_URLS, space- or comma-separated; a comma splits only before
    the next `scheme://`, so `mailto://…?to=a@x.org,b@x.org` stays one URL); none: alerts are only logged."""

    @field_validator("alert_urls", mode="before")
    @classmethod
    def _split_urls(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        return [url.strip(",") for url in re.split(r"\s+|,+(?=[A-Za-z][A-Za-z0-9+.-]*://)", value) if url.strip(",")]

    @model_validator(mode="before")
    @classmethod
    def _locate(cls, values: Any) -> Any:
        """Absolute paths: the home as given (relative to the current directory) or found; state, data and
        params relative to the home unless absolute."""
        if not isinstance(values, dict):
            return values
        given = {key: value for key, value in values.items() if value not in (None, "")}
        params = Path(given["params_file"]) if "params_file" in given else None
        home = Path(given["home"]).expanduser() if "home" in given else find_home(Path.cwd(), params)
        home = home.resolve()
        located = {key: home / Path(given.get(key, cls.model_fields[key].default)).expanduser()
                   for key in ("state_dir", "data_dir", "params_file")}
        return {**values, "home": home, **located}

    @property
    def tracking_uri(self) -> str:
        if self.mlflow_tracking_uri:
            return self.mlflow_tracking_uri
        return f"sqlite:///{self.state_dir / 'mlflow.db'}"

    @property
    def artifact_root(self) -> str:
        return (self.state_dir / "mlartifacts").as_uri()

    @property
    def prefect_home(self) -> Path:
        return self.state_dir / "prefect"

    @property
    def instruments_cache(self) -> Path:
        """The live trader's copy of Kraken's AssetPairs, refreshed at each start (market.instruments)."""
        return self.state_dir / "instruments.json"

    @property
    def ledger_uri(self) -> str:
        return self.ledger_url or f"sqlite:///{self.state_dir / 'ledger.db'}"

    def ensure_state_dir(self) -> Path:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        return self.state_dir
