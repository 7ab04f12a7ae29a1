"""Live-trader fixtures: a real MLflow registry (sqlite) holding a real @champion, and settings that point
the trader at the emulator."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from pydantic import SecretStr
from tests_support import EMULATOR_KEY, EMULATOR_SECRET
from trader_helpers import PARAMS, register_model, train_small_booster

from core.settings import Settings
from features.spec import spec_from_params
from market.emulator.kraken_api import RateTier
from market.emulator.server import EmulatorHandle, running_emulator

SPEC = spec_from_params(PARAMS.features)


@pytest.fixture
def settings(tmp_path: Path, emulator, xrp_1h: pd.DataFrame, mlflow_template: Path) -> Settings:  # type: ignore[no-untyped-def]
    """A registry holding one real @champion, and settings pointing the trader at the emulator."""
    shutil.copy(mlflow_template, tmp_path / "mlflow.db")
    s = Settings(state_dir=tmp_path, kraken_url=emulator.url, kraken_key=SecretStr(EMULATOR_KEY),
                 kraken_secret=SecretStr(EMULATOR_SECRET), ledger_url=f"sqlite:///{tmp_path / 'ledger.db'}")
    spec = spec_from_params(PARAMS.features)
    register_model(s, train_small_booster(spec, xrp_1h), spec.to_json())
    return s


@pytest.fixture(scope="module")
def booster_and_median(xrp_1h: pd.DataFrame) -> tuple[Any, float]:
    """A tiny real model and its median probability on the real candles (thresholds there: it trades often)."""
    booster = train_small_booster(SPEC, xrp_1h)
    return booster, float(np.median(booster.predict(SPEC.batch(xrp_1h)[SPEC.warmup :])))


@pytest.fixture
def fast_emulator() -> Iterator[EmulatorHandle]:
    """Kraken's rate counter raised: these runs poll as fast as they can (the rate-limit tests use the
    ordinary `emulator` fixture)."""
    with running_emulator(tier=RateTier(max_counter=1e9)) as handle:
        handle.add_key(EMULATOR_KEY, EMULATOR_SECRET)
        yield handle
