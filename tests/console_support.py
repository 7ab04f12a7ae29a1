"""A ledger from a real paper run: the paper trader polls the Kraken emulator (real bundled candles), fills
with the simulated fill model and writes decisions, fills, equity marks and audit rows; a real @champion in a
sqlite MLflow; the console reads them."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from tests_support import EMULATOR_KEY, EMULATOR_SECRET
from trader_helpers import PARAMS, register_model, train_small_booster

from console.app import make_console
from console.sources import Sources
from core.params import Params
from core.settings import Settings
from features.spec import spec_from_params
from market.emulator.kraken_api import RateTier
from market.emulator.server import EmulatorHandle, running_emulator
from market.kraken import public_client
from trader.service import LiveSession, StopFlag, open_paper_session, run

SPEC = spec_from_params(PARAMS.features)
TOKEN = "console-test-token"


@dataclass
class PaperRun:
    params: Params
    settings: Settings
    emulator: EmulatorHandle
    session: LiveSession
    tmp: Path

    def poll(self, polls: int) -> None:
        run(self.session, 0, max_polls=polls, after_poll=lambda _: self.emulator.advance(1), stop=StopFlag())

    def sources(self, **changes: Any) -> Sources:
        settings = self.settings.model_copy(update=changes) if changes else self.settings
        return Sources(self.params, settings, self.tmp / "data", "")

    def app(self, token: str | None = TOKEN, **changes: Any) -> Any:
        return make_console(self.sources(**changes), token)


@pytest.fixture(scope="module")
def paper_run(tmp_path_factory: pytest.TempPathFactory, xrp_1h: pd.DataFrame,
              mlflow_template: Path) -> Iterator[PaperRun]:
    tmp = tmp_path_factory.mktemp("console")
    booster = train_small_booster(SPEC, xrp_1h)
    median = float(np.median(booster.predict(SPEC.batch(xrp_1h)[SPEC.warmup:])))
    params = PARAMS.model_copy(update={  # thresholds at the model's median: it trades often
        "trade": PARAMS.trade.model_copy(update={"enter_threshold": median, "exit_threshold": median})})
    with running_emulator(tier=RateTier(max_counter=1e9)) as emu:
        emu.add_key(EMULATOR_KEY, EMULATOR_SECRET)
        shutil.copy(mlflow_template, tmp / "mlflow.db")
        settings = Settings(state_dir=tmp, kraken_url=emu.url, kraken_key=None, kraken_secret=None,
                            ledger_url=f"sqlite:///{tmp / 'ledger.db'}", data_dir=tmp / "data")
        register_model(settings, booster, SPEC.to_json())
        session = open_paper_session(params, settings, public_client(emu.url))
        paper = PaperRun(params, settings, emu, session, tmp)
        paper.poll(200)
        try:
            yield paper
        finally:
            session.close()
