"""Where state lives and which secrets to use: environment (KRAKENFLOW_*) over embedded defaults."""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

KRAKEN_PUBLIC_URL = "https://api.kraken.com"


class Settings(BaseSettings):
    """Embedded defaults need no server: SQLite under `home`, files under `data_dir`."""

    model_config = SettingsConfigDict(env_prefix="KRAKENFLOW_", frozen=True, extra="ignore")

    home: Path = Path(".krakenflow")
    data_dir: Path = Path("data")
    params_file: Path = Path("params.yaml")
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

    @property
    def tracking_uri(self) -> str:
        if self.mlflow_tracking_uri:
            return self.mlflow_tracking_uri
        return f"sqlite:///{(self.home / 'mlflow.db').resolve()}"

    @property
    def artifact_root(self) -> str:
        return (self.home / "mlartifacts").resolve().as_uri()

    @property
    def prefect_home(self) -> Path:
        return (self.home / "prefect").resolve()

    @property
    def ledger_uri(self) -> str:
        return self.ledger_url or f"sqlite:///{(self.home / 'ledger.db').resolve()}"

    def ensure_home(self) -> Path:
        self.home.mkdir(parents=True, exist_ok=True)
        return self.home
