"""A corrupt champion artifact never freezes, crashes or segfaults the trader: a hot reload to it is refused
once (audited) while the current version trades on, and the CLI refuses it at start-up with a clear
error and exit code 2. Real MLflow registry, real LightGBM, the real emulator; the stored model.lgb is
corrupted on disk the three ways that hung, raised in and segfaulted the trader (measured)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from mlflow import MlflowClient
from tests_support import EMULATOR_KEY, EMULATOR_SECRET
from trader_helpers import PARAMS, register_model, train_small_booster

from core.settings import Settings
from features.spec import spec_from_params
from market.emulator.kraken_api import RateTier
from market.emulator.server import running_emulator
from market.kraken import KrakenClient
from models import registry
from trader.service import StopFlag, open_session, run

ROOT = Path(__file__).resolve().parents[2]
KRAKENFLOW = ROOT / ".venv" / "bin" / "krakenflow"


def truncated_with_junk(data: bytes) -> bytes:
    return data[: len(data) // 100] + b"\0" * 4096  # LightGBM's loader never returns on this


def random_bytes(data: bytes) -> bytes:
    return random.Random(0).randbytes(len(data))  # LightGBMError, uncaught in load_for_swap before


def truncated_half(data: bytes) -> bytes:
    return data[: len(data) // 2]  # segfaults LightGBM's loader (the trader exited 139)


CORRUPTIONS: dict[str, Callable[[bytes], bytes]] = {
    "truncated+junk": truncated_with_junk, "random-bytes": random_bytes, "truncated-half": truncated_half}


@pytest.fixture
def emulator():  # type: ignore[no-untyped-def]
    """Kraken's rate counter raised: these tests poll back to back."""
    with running_emulator(tier=RateTier(max_counter=1e9)) as handle:
        handle.add_key(EMULATOR_KEY, EMULATOR_SECRET)
        yield handle


def corrupt_stored_model(settings: Settings, version: int, corrupt: Callable[[bytes], bytes]) -> Path:
    """Corrupt the model.lgb MLflow stored for `version`, found under the settings' artifact root on disk."""
    registry.configure(settings.tracking_uri)
    model_id = str(MlflowClient().get_model_version("krakenflow", str(version)).source).removeprefix("models:/")
    (path,) = (settings.state_dir / "mlartifacts").rglob(f"{model_id}/artifacts/model.lgb")
    path.write_bytes(corrupt(path.read_bytes()))
    return path


@pytest.mark.parametrize("corrupt", CORRUPTIONS.values(), ids=CORRUPTIONS.keys())
def test_registry_refuses_a_corrupt_champion_quickly(settings: Settings, corrupt: Callable[[bytes], bytes]) -> None:
    path = corrupt_stored_model(settings, 1, corrupt)
    started = time.monotonic()
    with pytest.raises(registry.ModelArtifactError, match=r"model krakenflow v1: .*model\.lgb is corrupt") as err:
        registry.load_model("krakenflow", "champion")
    assert time.monotonic() - started < 5
    assert path.as_posix() in str(err.value) and "krakenflow rollback" in str(err.value)


@pytest.mark.parametrize("corrupt", CORRUPTIONS.values(), ids=CORRUPTIONS.keys())
def test_hot_reload_to_a_corrupt_champion_is_refused_once_and_the_old_version_trades_on(
        settings: Settings, emulator: Any, kraken_client: KrakenClient, xrp_1h: pd.DataFrame,
        corrupt: Callable[[bytes], bytes]) -> None:
    live = PARAMS.live.model_copy(update={"dead_man_s": 0, "model_check_every_s": 0.0})
    session = open_session(PARAMS.model_copy(update={"live": live}), settings, kraken_client)
    v1 = session.model_version
    spec = spec_from_params(PARAMS.features)
    v2 = register_model(settings, train_small_booster(spec, xrp_1h, rounds=9), spec.to_json())  # @champion → v2
    path = corrupt_stored_model(settings, v2, corrupt)
    started = time.monotonic()
    run(session, 0, max_polls=4, after_poll=lambda _: emulator.advance(1), stop=StopFlag())
    assert time.monotonic() - started < 30  # not hung in LightGBM's loader
    assert session.model_version == v1 and session.broker.model_version == v1
    made = session.broker.ledger.decisions()
    assert len([d for d in made if d[1] == "XRP/USD"]) == 3  # one per new candle: it kept trading
    assert {v for *_, v in made} == {v1}
    (refusal,) = session.broker.ledger.audit_trail("model_reload_refused")  # once, not on every poll
    assert refusal[1]["version"] == v2
    assert f"model krakenflow v{v2}" in refusal[1]["reason"] and path.as_posix() in refusal[1]["reason"]
    assert "is corrupt" in refusal[1]["reason"]
    assert session.broker.ledger.audit_trail("model_reloaded") == []


def _cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KRAKENFLOW_STATE_DIR": str(settings.state_dir), "COLUMNS": "2000",
           "KRAKENFLOW_KRAKEN_URL": settings.kraken_url, "KRAKENFLOW_KRAKEN_KEY": EMULATOR_KEY,
           "KRAKENFLOW_KRAKEN_SECRET": EMULATOR_SECRET, "KRAKENFLOW_KRAKEN_THROTTLE": "false"}
    env.pop("PREFECT_API_URL", None)
    return subprocess.run([str(KRAKENFLOW), *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          errors="replace", timeout=120)


def _assert_refused_cleanly(done: subprocess.CompletedProcess[str]) -> None:
    out = done.stdout + done.stderr
    assert done.returncode != -signal.SIGSEGV and done.returncode != 139, out[-2000:]
    assert done.returncode == 2, out[-2000:]
    assert "Traceback" not in out, out[-2000:]
    (line,) = [line for line in out.splitlines() if line.startswith("error:")]
    assert "model krakenflow v1" in line and "model.lgb is corrupt" in line


@pytest.mark.parametrize("corrupt", CORRUPTIONS.values(), ids=CORRUPTIONS.keys())
def test_paper_trading_on_a_corrupt_champion_exits_2_with_an_error_line(
        settings: Settings, corrupt: Callable[[bytes], bytes]) -> None:
    corrupt_stored_model(settings, 1, corrupt)
    _assert_refused_cleanly(_cli(settings, "trade", "--mode", "paper"))


def test_live_trading_on_a_corrupt_champion_exits_2_with_an_error_line(settings: Settings) -> None:
    corrupt_stored_model(settings, 1, truncated_half)  # exited 139 at start-up before
    _assert_refused_cleanly(_cli(settings, "trade", "--mode", "live", "--max-polls", "1"))


def test_backtest_of_a_corrupt_champion_exits_2_with_an_error_line(settings: Settings, tmp_path: Path) -> None:
    corrupt_stored_model(settings, 1, random_bytes)  # showed a traceback before
    _assert_refused_cleanly(_cli(settings, "backtest", "--out", str(tmp_path / "reports")))
