"""Live-trader fixtures: a real MLflow registry (sqlite) holding a real @champion, and settings that point
the trader at the emulator."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
from pydantic import SecretStr
from tests_support import EMULATOR_KEY, EMULATOR_SECRET
from trader_helpers import PARAMS, register_model, train_small_booster

from core.settings import Settings
from features.spec import spec_from_params


@pytest.fixture
def settings(tmp_path: Path, emulator, xrp_1h: pd.DataFrame, mlflow_template: Path) -> Settings:  # type: ignore[no-untyped-def]
    """A registry holding one real @champion, and settings pointing the trader at the emulator."""
    shutil.copy(mlflow_template, tmp_path / "mlflow.db")
    s = Settings(state_dir=tmp_path, kraken_url=emulator.url, kraken_key=SecretStr(EMULATOR_KEY),
                 kraken_secret=SecretStr(EMULATOR_SECRET), ledger_url=f"sqlite:///{tmp_path / 'ledger.db'}")
    spec = spec_from_params(PARAMS.features)
    register_model(s, train_small_booster(spec, xrp_1h), spec.to_json())
    return s
