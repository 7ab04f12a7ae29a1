"""The trader's logs (issue K item 8): a short live run against the emulator, logged as JSON lines by
core.logs.configure_logging, has a line per poll, decision, order, lookup, fill, reconciliation and model
reload with their fields — and the API secret appears nowhere, redaction off (nothing is there to redact)."""

from __future__ import annotations

import json
import logging
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

from core.logs import configure_logging
from core.settings import Settings
from features.spec import spec_from_params
from market.emulator.faults import Fault
from market.emulator.kraken_api import RateTier
from market.emulator.server import EmulatorHandle, running_emulator
from market.kraken import KrakenClient, make_exchange
from trader.service import StopFlag, open_session, run

SPEC = spec_from_params(PARAMS.features)


@pytest.fixture
def emu() -> Iterator[EmulatorHandle]:
    with running_emulator(tier=RateTier(max_counter=1e9)) as handle:
        handle.add_key(EMULATOR_KEY, EMULATOR_SECRET)
        yield handle


@pytest.fixture
def json_log(tmp_path: Path) -> Iterator[Path]:
    """JSON lines to a file for the test, the root logger put back afterwards."""
    root = logging.getLogger()
    level, before = root.level, list(root.handlers)
    file = tmp_path / "trader.jsonl"
    installed = configure_logging("INFO", json_lines=True, file=file)  # no secrets: nothing would be redacted
    yield file
    for handler in installed:
        root.removeHandler(handler)
        handler.close()
    root.handlers[:] = before
    root.setLevel(level)


def test_a_live_run_logs_polls_orders_lookups_fills_reconciles_and_reloads_without_the_secret(  # type: ignore[no-untyped-def]
        emu, tmp_path, mlflow_template, xrp_1h: pd.DataFrame, json_log: Path) -> None:
    booster = train_small_booster(SPEC, xrp_1h)
    median = float(np.median(booster.predict(SPEC.batch(xrp_1h)[SPEC.warmup :])))
    shutil.copy(mlflow_template, tmp_path / "mlflow.db")
    settings = Settings(state_dir=tmp_path, kraken_url=emu.url, kraken_key=SecretStr(EMULATOR_KEY),
                        kraken_secret=SecretStr(EMULATOR_SECRET), ledger_url=f"sqlite:///{tmp_path / 'ledger.db'}")
    register_model(settings, booster, SPEC.to_json())
    params = PARAMS.model_copy(update={
        "trade": PARAMS.trade.model_copy(update={"enter_threshold": median, "exit_threshold": median}),
        "live": PARAMS.live.model_copy(update={"dead_man_s": 0, "model_check_every_s": 0.0, "reconcile_every_s": 0.0,
                                               "lookup_window_s": 1.0})})
    client = KrakenClient(make_exchange(emu.url, EMULATOR_KEY, EMULATOR_SECRET, timeout_ms=1_500, throttle=False))
    session = open_session(params, settings, client)
    emu.add_fault(Fault("AddOrder", "delay", delay_ms=2_500))  # the first order's answer is late: looked up

    def after(n: int) -> None:
        if n == 4:
            register_model(settings, train_small_booster(SPEC, xrp_1h, rounds=9), SPEC.to_json())
        emu.advance(1)

    run(session, 0, max_polls=16, after_poll=after, stop=StopFlag())
    session.close()

    text = json_log.read_text(encoding="utf-8")
    assert EMULATOR_SECRET not in text
    lines = [json.loads(line) for line in text.splitlines()]
    by_event: dict[str, list[dict[str, Any]]] = {}
    for line in lines:
        by_event.setdefault(line.get("event", ""), []).append(line)

    polls = by_event["poll"]
    assert len(polls) == 16 and all(p["level"] == "INFO" for p in polls)
    assert polls[-1]["pairs"] == list(PARAMS.pairs) and polls[-1]["newest_candle"].startswith("20")
    assert isinstance(polls[-1]["decisions"], int) and polls[-1]["equity"] > 0
    decision = by_event["decision"][0]
    assert {"pair", "side", "prob", "qty", "cl_ord_id", "model_version"} <= set(decision)
    orders = by_event["order"]
    assert {o["status"] for o in orders} >= {"sent", "unknown"}
    assert all({"cl_ord_id", "pair", "side", "qty", "txid"} <= set(o) for o in orders)
    assert by_event["lookup"][0]["cl_ord_id"] == next(o["cl_ord_id"] for o in orders if o["status"] == "unknown")
    fill = by_event["fill"][0]
    assert {"cl_ord_id", "pair", "side", "qty", "price", "fee"} <= set(fill) and fill["price"] > 0
    assert {r["result"] for r in by_event["reconcile"]} == {"ok"}
    (reload,) = by_event["model_reload"]
    assert (reload["from_version"], reload["model_version"]) == (1, 2)
