"""The proof of issue K: the whole stack runs unattended — 30 simulated days here, 180 in `make autopilot`
(KRAKENFLOW_AUTOPILOT_DAYS) — and everything that must happen by itself did, with the right alert for every
fault. The harness and what it compresses: tests/autopilot_support.py. The timeline is printed (shown on
failure or with -rP) and written to KRAKENFLOW_AUTOPILOT_TIMELINE when set (`make autopilot`: AUTOPILOT.md)."""

from __future__ import annotations

import bisect
import itertools
import json
import os
from collections import defaultdict
from pathlib import Path

import pandas as pd
import pytest
from autopilot_support import HOUR_MS, Autopilot, Evidence, Plan
from tests_support import AlertReceiver

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def autopilot(tmp_path_factory: pytest.TempPathFactory) -> tuple[Autopilot, Evidence]:
    plan = Plan.from_env()
    with AlertReceiver() as receiver:
        pilot = Autopilot(tmp_path_factory.mktemp("autopilot"), plan, receiver)
        try:
            evidence = pilot.run()
        finally:
            report = pilot.timeline()
            print(report)
            if os.environ.get("KRAKENFLOW_AUTOPILOT_TIMELINE"):
                Path(os.environ["KRAKENFLOW_AUTOPILOT_TIMELINE"]).write_text(report, encoding="utf-8")
    return pilot, evidence


def test_the_schedules_ran_the_loop_by_themselves(autopilot: tuple[Autopilot, Evidence]) -> None:
    pilot, ev = autopilot
    clock_s = pilot.plan.candles * pilot.plan.seconds_per_candle
    ingests = max(2, int(clock_s / pilot.plan.INGEST_EVERY_S / 2))  # half the schedule: the worker runs one at a time
    for deployment, at_least in (("ingest-1h", ingests), ("drift-hourly", 1), ("retrain-weekly", 1)):
        done = ev.completed(deployment)
        assert len(done) >= at_least, f"{deployment}: {len(done)} completed runs"
        assert all(run["auto_scheduled"] for run in done), f"{deployment}: a run nobody scheduled"
    by_id = {d["id"]: name for name, d in ev.deployments.items()}
    for run in [r for r in ev.runs if r["state_type"] in ("FAILED", "CRASHED")]:  # e.g. an ingest in the 5xx burst
        assert any(run["id"] in str(body.get("message")) and run["state_type"].lower() in str(body.get("title"))
                   for _, body in ev.alerts), f"{run['name']} ({run['state_type']}) not alerted"
        later = [r for r in ev.completed(by_id[run["deployment_id"]]) if r["start_time"] > run["start_time"]]
        assert later, f"{run['name']} ({by_id[run['deployment_id']]}) failed and no later run completed"
    scheduled_ab = [ab for ab in ev.ab if ab.get("champion_version") not in (None, "None")]
    assert scheduled_ab, f"no A/B after the first promotion: {ev.ab}"


def test_the_store_grew_without_gaps(autopilot: tuple[Autopilot, Evidence]) -> None:
    pilot, ev = autopilot
    assert ev.seed_last is not None and ev.last_candle is not None
    ingest_lag = pd.Timedelta(hours=3 * pilot.plan.ingest_every_candles)  # a worker busy with a retrain delays one
    for pair, frame in ev.store.items():
        new = frame.loc[frame["date"] > ev.seed_last, "date"]
        assert len(new) > pilot.plan.candles // 2, f"{pair}: only {len(new)} candles ingested"
        steps = new.diff().dropna()
        assert new.iloc[0] == ev.seed_last + pd.Timedelta(hours=1), f"{pair}: a gap after the seed"
        assert (steps == pd.Timedelta(hours=1)).all(), f"{pair}: gaps {new[steps.ne(pd.Timedelta(hours=1))]}"
        assert new.iloc[-1] >= ev.last_candle - ingest_lag, f"{pair}: the store stopped at {new.iloc[-1]}"


def _exchange_ms(pilot: Autopilot, wall: float) -> float:
    walls = [w for w, _ in pilot.samples]
    return pilot.samples[max(0, bisect.bisect_right(walls, wall) - 1)][1]


def test_a_promotion_switches_the_traders_model_between_two_candles(autopilot: tuple[Autopilot, Evidence]) -> None:
    _, ev = autopilot
    assert ev.trader_stopped is not None
    before_end = ev.trader_stopped.timestamp() * 1000 - 2 * HOUR_MS  # the trader still had a candle to decide on
    promoted = [ab for ab in ev.ab if ab.get("decision") == "promote" and ab.get("champion_version") not in
                (None, "None") and _exchange_ms(autopilot[0], ab["start_time"] / 1000) < before_end]
    if not promoted:
        pytest.skip(f"no challenger beat the champion while the trader traded ({[ab.get('decision') for ab in ev.ab]}"
                    "); `make autopilot` runs long enough for one")
    reloads = [json.loads(detail) for _, kind, detail in ev.audit if kind == "model_reloaded"]
    if not reloads:  # a promotion that lands while the trader restarts is picked up at start, not swapped
        started_with = {json.loads(detail).get("version") for _, kind, detail in ev.audit if kind == "session_start"}
        missed = [ab for ab in promoted if int(ab["challenger_version"]) not in started_with]
        assert not missed, f"promoted while the trader ran, never swapped: {missed}"
        pytest.skip("every promotion landed while the trader was restarting (it started on the new version)")
    last_by_candle: dict[tuple[str, int], int | None] = {}
    for ts, pair, version, _ in ev.decisions:
        last_by_candle[(pair, ts)] = version
    series: dict[str, list[tuple[int, int | None]]] = defaultdict(list)
    for (pair, ts), version in sorted(last_by_candle.items()):
        series[pair].append((ts, version))
    for reload in reloads:  # a hot swap: the decision before on the old version, the next candle's on the new
        old, new = reload["from"], reload["to"]
        switches = [(pair, ts0, ts1) for pair, rows in series.items()
                    for (ts0, v0), (ts1, v1) in itertools.pairwise(rows) if (v0, v1) == (old, new)]
        assert switches, f"reloaded v{old}→v{new} but no decision changed version"
        assert all(ts1 - ts0 == HOUR_MS for _, ts0, ts1 in switches), f"a candle skipped at the swap: {switches}"


def test_the_kill_switch_flattened_halted_alerted_and_resume_was_audited(
        autopilot: tuple[Autopilot, Evidence]) -> None:
    _, ev = autopilot
    kinds = [kind for _, kind, _ in ev.audit]
    assert "kill_switch" in kinds and "trading_resumed" in kinds, kinds
    assert kinds.index("kill_switch") < kinds.index("trading_resumed")
    assert ev.shock_flat and all(qty < 1e-6 for qty in ev.shock_flat.values()), ev.shock_flat
    assert any("halted: kill switch" in title for title in ev.alert_titles()), ev.alert_titles()


def test_every_fault_produced_its_alert(autopilot: tuple[Autopilot, Evidence]) -> None:
    _, ev = autopilot
    titles = ev.alert_titles()
    for fault, text in (("5xx burst", "polls failed in a row"), ("dropped AddOrder answer", "answer lost"),
                        ("trader SIGKILL", "restarted after a crash"), ("price shock", "halted: kill switch"),
                        ("flow run killed", " crashed"),
                        ("first promotion", "promoted to @champion")):
        assert any(text in title for title in titles), f"{fault}: no alert with {text!r} in {titles}"


def test_ledger_equals_the_exchange_and_no_order_was_sent_twice(autopilot: tuple[Autopilot, Evidence]) -> None:
    _, ev = autopilot
    ids = ev.exchange_client_ids
    assert len(ids) >= 4, f"only {len(ids)} orders in the whole run"
    assert len(ids) == len(set(ids)), "a client order id reached the exchange twice"
    assert set(ids) <= set(ev.intents), "an order on the exchange has no intent in the ledger"
    assert not {s for s in ev.intents.values() if s in ("new", "sent", "unknown")}, "intents left open"
    assert set(ev.ledger_fills) == set(ev.exchange_trades), "ledger fills differ from the exchange's trades"
    for trade_id, qty in ev.ledger_fills.items():
        assert qty == pytest.approx(ev.exchange_trades[trade_id])
    assert ev.adjustments == 0, "positions only matched after reconciliation corrected them"
    assert "reconcile_halt" not in [kind for _, kind, _ in ev.audit]


def test_nothing_is_left_running(autopilot: tuple[Autopilot, Evidence]) -> None:
    _, ev = autopilot
    assert ev.left_running == []
    assert not [r["name"] for r in ev.runs if r["state_type"] in ("RUNNING", "PENDING")]
