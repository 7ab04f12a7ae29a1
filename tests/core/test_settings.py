from pathlib import Path

import pytest

from core.settings import Settings


def test_defaults_are_embedded_sqlite(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("KRAKENFLOW_HOME", "KRAKENFLOW_MLFLOW_TRACKING_URI", "KRAKENFLOW_LEDGER_URL"):
        monkeypatch.delenv(var, raising=False)
    s = Settings()
    assert s.home == Path(".krakenflow")
    assert s.tracking_uri.startswith("sqlite:///") and s.tracking_uri.endswith("mlflow.db")
    assert s.ledger_uri.endswith("ledger.db")


def test_env_overrides_and_secret_is_hidden(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KRAKENFLOW_KRAKEN_SECRET", "c2VjcmV0LWNhbmFyeQ==")
    monkeypatch.setenv("KRAKENFLOW_MLFLOW_TRACKING_URI", "postgresql://root@127.0.0.1/test")
    s = Settings()
    assert s.tracking_uri == "postgresql://root@127.0.0.1/test"
    assert "c2VjcmV0LWNhbmFyeQ" not in repr(s) and "c2VjcmV0LWNhbmFyeQ" not in str(s.model_dump())
    assert s.kraken_secret is not None and s.kraken_secret.get_secret_value() == "c2VjcmV0LWNhbmFyeQ=="
