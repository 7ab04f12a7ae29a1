"""The unattended run (issue K item 9), shared by `make test` (30 simulated days) and `make autopilot` (180).

Everything real: a Prefect server (`krakenflow server`), the worker (`krakenflow serve`) running the
deployments on compressed params.yaml `schedules:`, the Kraken emulator replaying the bundled real candles
on a fast clock (in this process, so faults and its books are at hand), and `krakenflow trade --mode live`
against it. Nobody calls a flow once it runs: ingests fill the store, drift checks and retrains run on their
schedules, a retrain goes on to its A/B, a promotion moves @champion and the trader swaps. On the way the
harness injects faults — a burst of 5xx, a dropped AddOrder answer, a SIGKILL of the trader, a price shock
that trips the kill switch — and plays the operator only where the product wants a human: after a
kill-switch halt it stops the trader, runs `krakenflow resume` and starts it again. Afterwards it collects
the evidence (Prefect's runs, the A/B history, the registry, the ledger, the emulator's books, the alerts
that reached the receiver) and writes a timeline.

Compressed on purpose and said here: one candle (an hour) passes every `seconds_per_candle`, the search
is small (no Optuna trials, 60 trees), and the A/B's alpha is 0.5 so a challenger that earns more than the
champion on the shadow candles is promoted within a short run (its other gates — trades, drawdown, periods
— stay on); the A/B test itself is tested at the default alpha in tests/models.
"""

from __future__ import annotations

import bisect
import contextlib
import os
import sqlite3
import subprocess
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import psutil
import yaml
from stack_support import (
    FAST_SCHEDULER,
    KRAKENFLOW,
    ROOT,
    clean_env,
    deployments,
    flow_runs,
    free_port,
    group_alive,
    healthy,
    start,
    stop,
    tails,
    wait_for,
)
from tests_support import EMULATOR_KEY, EMULATOR_SECRET, AlertReceiver

from market.emulator.faults import Fault
from market.emulator.kraken_api import RateTier
from market.emulator.server import EmulatorHandle, make_emulator
from market.frame import to_candles
from market.history import import_file
from market.instruments import bundled

HOUR_MS = 3_600_000
ACTIVE = ("RUNNING", "PENDING", "CANCELLING")


@dataclass(frozen=True)
class Plan:
    """How long and how fast; the faults land at these fractions of the run."""

    days: int = 30
    seconds_per_candle: float = 0.25
    seed_candles: int = 3000  # the store starts with these (≈ 4 months); the emulator replays what follows
    faults: tuple[tuple[str, float], ...] = (("5xx burst", 0.12), ("dropped AddOrder answer", 0.25),
                                              ("trader SIGKILL", 0.4), ("flow run killed", 0.45),
                                              ("price shock", 0.55))
    """(fault, fraction of the run from which it is injected, as soon as it can be: the price shock needs a
    position, the flow-run kill a retrain or drift run in progress)."""

    @classmethod
    def from_env(cls) -> Plan:
        return cls(days=int(os.environ.get("KRAKENFLOW_AUTOPILOT_DAYS", "30")),
                   seconds_per_candle=float(os.environ.get("KRAKENFLOW_AUTOPILOT_SECONDS_PER_CANDLE", "0.25")))

    @property
    def candles(self) -> int:
        return self.days * 24

    INGEST_EVERY_S = 40

    @property
    def ingest_every_candles(self) -> int:
        return round(self.INGEST_EVERY_S / self.seconds_per_candle)

    def schedules(self) -> dict[str, str | None]:
        """Wall-clock intervals the one-run-at-a-time worker keeps up with (a flow run costs ~7 s of process
        start on top of its work): an ingest every 40 s (160–270 candles, well inside Kraken's 720-candle
        window), a drift check every 120 s (on drift: retrain → A/B), the "weekly" retrain (→ A/B) every 100 s."""
        return {"ingest-5m": None, "ingest-1h": f"{self.INGEST_EVERY_S}s", "validate-hourly": None,
                "drift-hourly": "120s", "retrain-weekly": "100s", "ab-promote-daily": None, "pipeline-manual": None}


@dataclass
class Event:
    wall: float
    source: str
    what: str


@dataclass
class Evidence:
    """What the run left behind, gathered before and after the stack stopped."""

    runs: list[dict[str, Any]] = field(default_factory=list)
    flows: dict[str, str] = field(default_factory=dict)  # flow id → name (subflow runs have no deployment)
    deployments: dict[str, dict[str, Any]] = field(default_factory=dict)
    ab: list[dict[str, Any]] = field(default_factory=list)
    aliases: dict[str, int | None] = field(default_factory=dict)
    decisions: list[tuple[int, str, int | None, str]] = field(default_factory=list)  # ts, pair, version, action
    audit: list[tuple[str, str, str]] = field(default_factory=list)  # at, kind, detail
    intents: dict[str, str] = field(default_factory=dict)
    ledger_fills: dict[str, float] = field(default_factory=dict)
    adjustments: int = 0
    exchange_client_ids: list[str | None] = field(default_factory=list)
    exchange_trades: dict[str, float] = field(default_factory=dict)
    exchange_balances: dict[str, float] = field(default_factory=dict)
    store: dict[str, pd.DataFrame] = field(default_factory=dict)
    alerts: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    left_running: list[str] = field(default_factory=list)
    shock_flat: dict[str, float] = field(default_factory=dict)  # base balances right after the kill switch
    trader_stopped: pd.Timestamp | None = None  # exchange time of the last candle the trader decided on
    seed_last: pd.Timestamp | None = None
    last_candle: pd.Timestamp | None = None

    def completed(self, deployment: str) -> list[dict[str, Any]]:
        ids = {d["id"] for name, d in self.deployments.items() if name == deployment}
        return [r for r in self.runs if r.get("deployment_id") in ids and r["state_type"] == "COMPLETED"]

    def run_label(self, run: dict[str, Any]) -> str:
        """The deployment's name, or for a subflow (retrain/A/B inside a drift run) its flow's."""
        by_id = {d["id"]: name for name, d in self.deployments.items()}
        if run.get("deployment_id") in by_id:
            return by_id[run["deployment_id"]]
        return f"{self.flows.get(run.get('flow_id', ''), '?')} (subflow)"

    def alert_titles(self) -> list[str]:
        return [str(body.get("title", "")) for _, body in self.alerts]


class Autopilot:
    """One unattended run in `tmp`; `run()` returns the Evidence, `timeline()` the markdown."""

    def __init__(self, tmp: Path, plan: Plan, receiver: AlertReceiver) -> None:
        self.tmp, self.plan, self.receiver = tmp, plan, receiver
        self.state, self.data = tmp / "state", tmp / "data"
        self.ledger = self.state / "ledger.db"
        self.logs = {name: tmp / f"{name}.log" for name in ("server", "worker", "trader", "setup")}
        self.events: list[Event] = []
        self.samples: list[tuple[float, int]] = []  # (wall, exchange ms) as the clock ticks
        self.evidence = Evidence()
        self.started_wall = time.time()
        self.params_file = self._write_project()
        self.emulator = self._emulator()
        self.api = ""
        self._clock_stop = threading.Event()
        self._trader: subprocess.Popen[bytes] | None = None
        self.killed_run: dict[str, Any] | None = None
        self._procs: list[subprocess.Popen[bytes]] = []

    # --- the project -----------------------------------------------------------------------------
    def _write_project(self) -> Path:
        params = yaml.safe_load((ROOT / "params.yaml").read_text())
        seeds = self.tmp / "seed"
        seeds.mkdir(parents=True)
        for pair, src in params["data"]["sample"].items():
            frame = pd.read_parquet(ROOT / src)
            frame.iloc[: self.plan.seed_candles].to_parquet(seeds / Path(src).name, index=False)
            params["data"]["sample"][pair] = str(seeds / Path(src).name)
            self.evidence.seed_last = pd.Timestamp(frame["date"].iloc[self.plan.seed_candles - 1])
        params["train"].update(n_estimators=60)
        # this small model's probabilities stay below 0.5 (a 4-candle win after 0.8 % of fees is rare):
        # thresholds it reaches, so it trades
        params["trade"].update(enter_threshold=0.35, exit_threshold=0.3)
        params["optuna"].update(n_trials=0)
        params["promotion"].update(alpha=0.5, min_periods=200, n_boot=200)
        params["drift"].update(recent_candles=240, min_rows=100)
        params["live"].update(reconcile_every_s=3.0, model_check_every_s=1.0, dead_man_s=0, lookup_window_s=2.0,
                              min_lookups=2, watchdog_s=120.0)
        params["schedules"] = self.plan.schedules()
        path = self.tmp / "params.yaml"
        path.write_text(yaml.safe_dump(params, sort_keys=False))
        return path

    def _emulator(self) -> EmulatorHandle:
        """The bundled real candles from 720 before the store's end (the first OHLC window) to the run's end;
        the replay starts right after the last stored candle."""
        params = yaml.safe_load((ROOT / "params.yaml").read_text())
        first, last = self.plan.seed_candles - 720, self.plan.seed_candles + self.plan.candles + 2
        candles = {pair: to_candles(import_file(ROOT / src).frame)[first:last]
                   for pair, src in params["data"]["sample"].items()}
        handle = make_emulator(candles=candles, tier=RateTier(max_counter=1e9))
        handle.add_key(EMULATOR_KEY, EMULATOR_SECRET)
        return handle

    def _env(self, **extra: str) -> dict[str, str]:
        return clean_env(KRAKENFLOW_STATE_DIR=str(self.state), KRAKENFLOW_DATA_DIR=str(self.data),
                         KRAKENFLOW_KRAKEN_URL=self.emulator.url, KRAKENFLOW_ALERT_URLS=self.receiver.url,
                         KRAKENFLOW_KRAKEN_THROTTLE="false", **extra)

    def _trader_env(self) -> dict[str, str]:
        return self._env(KRAKENFLOW_KRAKEN_KEY=EMULATOR_KEY, KRAKENFLOW_KRAKEN_SECRET=EMULATOR_SECRET)

    def note(self, source: str, what: str) -> None:
        self.events.append(Event(time.time(), source, what))

    # --- the run ------------------------------------------------------------------------------------
    def run(self) -> Evidence:
        self.emulator.start()
        try:
            self._start_server()
            self._first_champion()
            worker = start([*KRAKENFLOW, "serve", "--params", str(self.params_file)],
                           self._env(PREFECT_API_URL=self.api, PREFECT_RUNNER_POLL_FREQUENCY="2"), self.logs["worker"])
            self._procs.append(worker)
            self.note("harness", "worker started (`krakenflow serve`)")
            wait_for("the worker registered the deployments", lambda: len(deployments(self.api)) == 7, 120,
                     *self.logs.values())
            self._start_trader("trader started (`krakenflow trade --mode live`)")
            self._tick()
            self._wait_trader_trading()
            self._script()
            self._finish()
        finally:
            self._clock_stop.set()
            for process in reversed(self._procs):
                stop(process)
            self.evidence.left_running = [" ".join(map(str, p.args[-4:])) for p in self._procs if group_alive(p)]
            self.emulator.stop()
        self._collect_after()
        return self.evidence

    def _start_server(self) -> None:
        port = free_port()
        self.api = f"http://127.0.0.1:{port}/api"
        server = start([*KRAKENFLOW, "server", "--port", str(port)], self._env(**FAST_SCHEDULER), self.logs["server"])
        self._procs.append(server)
        wait_for("the Prefect server answered /health", lambda: healthy(self.api), 90, self.logs["server"])
        self.note("harness", f"Prefect server up ({self.api})")

    def _first_champion(self) -> None:
        """The init step of any deployment: the first model, trained and promoted (no champion yet)."""
        done = subprocess.run([*KRAKENFLOW, "flow", "run", "--params", str(self.params_file)], cwd=ROOT,
                              env=self._env(PREFECT_API_URL=self.api), capture_output=True, text=True, timeout=600,
                              check=False)
        self.logs["setup"].write_text(done.stdout + done.stderr)
        assert done.returncode == 0, f"the first training failed:\n{(done.stdout + done.stderr)[-4000:]}"
        self.note("harness", "first champion trained (`krakenflow flow run`)")

    def _start_trader(self, why: str) -> None:
        self._trader = start([*KRAKENFLOW, "trade", "--mode", "live", "--params", str(self.params_file),
                              "--poll-seconds", "0.05", "--log-json", "--log-file", str(self.tmp / "trader.jsonl")],
                             self._trader_env(), self.logs["trader"])
        self._procs.append(self._trader)
        self.note("harness", why)

    def _wait_trader_trading(self) -> None:
        wait_for("the trader recorded its first decisions", lambda: self._sql("select count(*) from decisions"),
                 120, self.logs["trader"])

    def _tick(self) -> None:
        """The exchange clock: one candle every seconds_per_candle, until the run's last candle."""
        venue, target = self.emulator.venue, self.emulator.venue.cursor + self.plan.candles

        def tick() -> None:
            while venue.cursor < target and not self._clock_stop.wait(self.plan.seconds_per_candle):
                venue.advance(1)
                self.samples.append((time.time(), int(venue.now() * 1000)))

        self.samples.append((time.time(), int(venue.now() * 1000)))
        self._target = target
        threading.Thread(target=tick, name="autopilot-clock", daemon=True).start()

    def progress(self) -> float:
        start_cursor = self._target - self.plan.candles
        return (self.emulator.venue.cursor - start_cursor) / self.plan.candles

    # --- faults and the operator --------------------------------------------------------------------
    def _script(self) -> None:
        pending = list(self.plan.faults)
        deadline = time.monotonic() + self.plan.candles * self.plan.seconds_per_candle * 3 + 300
        while self.emulator.venue.cursor < self._target:
            assert time.monotonic() < deadline, "the run did not reach its last candle in time"
            for fault in [f for f in pending if self.progress() >= f[1]]:
                if self._inject(fault[0]):
                    pending.remove(fault)
            self._operator()
            self._check_alive()
            time.sleep(0.1)
        assert not pending, f"faults never injected: {pending} (no position to shock?)"

    def _inject(self, name: str) -> bool:
        if name == "5xx burst":
            self.emulator.add_fault(Fault("*", "http_status", status=503, times=60))
            self.note("fault", "burst of 60 × HTTP 503 on every endpoint")
        elif name == "dropped AddOrder answer":
            self.emulator.add_fault(Fault("AddOrder", "drop_response"))
            self.note("fault", "the next AddOrder is placed but its answer dropped")
        elif name == "trader SIGKILL":
            assert self._trader is not None
            self._trader.kill()
            self._trader.wait(timeout=10)
            self.note("fault", "trader killed with SIGKILL")
            self._start_trader("trader restarted by its supervisor")
        elif name == "price shock":
            return self._price_shock()
        elif name == "flow run killed":
            return self._kill_flow_run()
        return True

    def _kill_flow_run(self) -> bool:
        """SIGKILL the process of a retrain or drift run in progress (what an OOM kill does): Prefect must
        mark it crashed and alert, and the deployment's next run must start clean. Not yet (False) while none
        runs."""
        running = flow_runs(self.api, ["retrain-weekly", "drift-hourly"], state={"type": {"any_": ["RUNNING"]}})
        if not running:
            return False
        worker = psutil.Process(self._procs[1].pid)
        for child in worker.children(recursive=False):
            with contextlib.suppress(psutil.Error):
                run_id = child.environ().get("PREFECT__FLOW_RUN_ID")
                run = next((r for r in running if r["id"] == run_id), None)
                if run is not None:
                    child.kill()
                    self.killed_run = run
                    self.note("fault", f"flow run {run['name']} killed with SIGKILL (its process, pid {child.pid})")
                    return True
        return False
    def _price_shock(self) -> bool:
        """Once the trader holds a position worth enough, gap that pair down 45 %: the drawdown passes the
        15 % kill switch. Not yet (False) while it is flat."""
        held = self.holdings()
        equity = self.exchange_equity()
        if not held or equity <= 0:
            return False
        pair, value = max(held.items(), key=lambda kv: kv[1])
        if value < 0.35 * equity:
            return False
        self.emulator.venue.price_shock(pair, -0.45)
        self.note("fault", f"price shock: {pair} −45 % from the next candle (held {value:,.0f} of {equity:,.0f} USD)")
        return True

    def _operator(self) -> None:
        """A person's part: after a kill switch, once the trader has sold everything, stop it, resume, start."""
        halted = self._sql("select halted from risk_state where id = 1") or ""
        if not str(halted).startswith("kill switch") or self.holdings(min_usd=1.0):
            return
        if self._sql("select count(*) from intents where status in ('new', 'sent', 'unknown')"):
            return  # a flatten order is still open
        self.evidence.shock_flat = self.base_balances()
        self.note("operator", f"trader halted and flat ({halted}): stop, `krakenflow resume`, start")
        assert self._trader is not None
        stop(self._trader)
        done = subprocess.run([*KRAKENFLOW, "resume", "--reason", "autopilot: kill switch checked", "--who",
                               "autopilot"], cwd=ROOT, env=self._trader_env(), capture_output=True, text=True,
                              timeout=120, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
        self._start_trader("trader started again after the resume")

    def _check_alive(self) -> None:
        """The server, the worker and the current trader never exit by themselves."""
        for process in [*self._procs[:2], self._trader]:
            if process is not None and process.poll() is not None:
                raise AssertionError(f"{' '.join(map(str, process.args[-6:]))} exited ({process.returncode})\n"
                                     f"{tails(*self.logs.values())}")

    # --- the end -----------------------------------------------------------------------------------
    def _finish(self) -> None:
        """The last candle is in: let the trader decide on it and reconcile, stop it cleanly, pause the
        schedules, let the running flow run end, then stop the worker and the server."""
        self.last_ts = self.emulator.venue.candles[next(iter(self.emulator.venue.candles))][self._target - 1].ts
        wait_for("the trader decided on the last finished candle",
                 lambda: (self._sql("select max(ts) from decisions") or 0) >= self.last_ts, 120, self.logs["trader"])
        seen = self._sql("select count(*) from audit where kind = 'reconcile_ok'")
        wait_for("a reconciliation after the last candle",
                 lambda: self._sql("select count(*) from audit where kind = 'reconcile_ok'") > seen, 60,
                 self.logs["trader"])
        assert self._trader is not None
        stop(self._trader)
        self.note("harness", "last candle traded and reconciled; trader stopped (SIGTERM)")
        if self.killed_run is not None:  # the next run of the deployment whose run was killed starts clean
            killed = self.killed_run
            wait_for(f"a run of {killed['name']}'s deployment completed after the kill", lambda: [
                r for r in flow_runs(self.api, state={"type": {"any_": ["COMPLETED"]}})
                if r.get("deployment_id") == killed["deployment_id"] and r["start_time"] > killed["start_time"]],
                300, self.logs["worker"], every=2)
        for deployment in deployments(self.api).values():
            _retry_busy(lambda d=deployment: httpx.patch(f"{self.api}/deployments/{d['id']}", json={"paused": True},
                                                         timeout=10))
        for run in flow_runs(self.api, state={"type": {"any_": ["SCHEDULED"]}}):
            _retry_busy(lambda r=run: httpx.delete(f"{self.api}/flow_runs/{r['id']}", timeout=10))
        wait_for("the worker's last flow run ended",
                 lambda: not flow_runs(self.api, state={"type": {"any_": list(ACTIVE)}}), 600,
                 self.logs["worker"], every=2)
        self.evidence.runs = flow_runs(self.api)
        self.evidence.deployments = deployments(self.api)
        response = httpx.post(f"{self.api}/flows/filter", json={}, timeout=10)
        response.raise_for_status()
        self.evidence.flows = {f["id"]: f["name"] for f in response.json()}
        self.evidence.trader_stopped = pd.Timestamp(self.last_ts, unit="ms", tz="UTC")
        self.note("harness", "schedules paused; no flow run active")
        self._collect_books()

    def _collect_books(self) -> None:
        venue = self.emulator.venue
        self.evidence.exchange_client_ids = [o.cl_ord_id for o in venue.orders.values() if o.key == EMULATOR_KEY]
        self.evidence.exchange_trades = {t.trade_id: t.volume for t in venue.trades.values()
                                         if t.order.key == EMULATOR_KEY}
        self.evidence.exchange_balances = dict(venue.account(EMULATOR_KEY))
        self.evidence.last_candle = pd.Timestamp(self.last_ts, unit="ms", tz="UTC")

    def _collect_after(self) -> None:
        from core.params import load_params
        from core.settings import Settings
        from models import registry
        from pipeline.candles import read_frame
        from pipeline.paths import DataPaths
        from pipeline.promote import ab_history

        ev = self.evidence
        ev.alerts = list(zip(self.receiver.times, self.receiver.bodies, strict=True))
        params = load_params(self.params_file)
        settings = Settings(state_dir=self.state, data_dir=self.data)
        ev.ab = sorted(ab_history(params, settings), key=lambda r: r["start_time"])
        registry.configure(settings.tracking_uri, settings.mlflow_registry_uri)
        ev.aliases = {a: registry.alias_version(params.registry.model_name, a)
                      for a in ("champion", "challenger", "previous")}
        paths = DataPaths(self.data, self.tmp)
        ev.store = {pair: read_frame(params, paths, pair) for pair in params.pairs}
        with contextlib.closing(sqlite3.connect(f"file:{self.ledger}?mode=ro", uri=True)) as conn:
            ev.decisions = [tuple(r) for r in conn.execute(  # type: ignore[misc]
                "select ts, pair, model_version, action from decisions order by id")]
            ev.audit = [tuple(r) for r in conn.execute("select at, kind, detail from audit order by id")]  # type: ignore[misc]
            ev.intents = dict(conn.execute("select client_id, status from intents").fetchall())
            ev.ledger_fills = dict(conn.execute("select trade_id, quantity from fills").fetchall())
            ev.adjustments = int(conn.execute("select count(*) from adjustments").fetchone()[0])

    # --- reading the books -------------------------------------------------------------------------
    def _sql(self, query: str) -> Any:
        if not self.ledger.exists():
            return None
        try:
            with contextlib.closing(sqlite3.connect(f"file:{self.ledger}?mode=ro", uri=True, timeout=5)) as conn:
                row = conn.execute(query).fetchone()
        except sqlite3.OperationalError:  # not migrated yet, or busy
            return None
        return row[0] if row else None

    def base_balances(self) -> dict[str, float]:
        account = self.emulator.venue.account(EMULATOR_KEY)
        table = bundled().instruments
        return {pair: float(account.get(table[pair].base, 0.0)) for pair in self.emulator.venue.candles}

    def holdings(self, min_usd: float = 0.0) -> dict[str, float]:
        """USD value of each pair the exchange account holds (above `min_usd`)."""
        venue = self.emulator.venue
        values = {pair: qty * venue.current(pair).close for pair, qty in self.base_balances().items()}
        return {pair: v for pair, v in values.items() if v > min_usd}

    def exchange_equity(self) -> float:
        return float(self.emulator.venue.account(EMULATOR_KEY).get("ZUSD", 0.0)) + sum(self.holdings().values())

    # --- the timeline ------------------------------------------------------------------------------
    def exchange_time(self, wall: float) -> str:
        """The exchange's clock at a wall time (from the clock's samples)."""
        if not self.samples:
            return ""
        walls = [w for w, _ in self.samples]
        i = max(0, bisect.bisect_right(walls, wall) - 1)
        if wall < walls[0]:
            return "before the replay"
        return datetime.fromtimestamp(self.samples[i][1] / 1000, UTC).strftime("%Y-%m-%d %H:%M")

    def timeline(self) -> str:
        ev = self.evidence
        rows = [(e.wall, e.source, e.what) for e in self.events]
        for run in ev.runs:
            if run.get("start_time"):
                name = ev.run_label(run)
                took = f", {run['total_run_time']:.0f} s" if run.get("total_run_time") else ""
                rows.append((_unix(run["start_time"]), "prefect", f"{name}: {run['state_name']}"
                             f"{' (scheduled)' if run.get('auto_scheduled') else ''}{took}"))
        for ab in ev.ab:
            p_value = float(ab.get("p_value", float("nan")))
            rows.append((ab["start_time"] / 1000, "A/B", f"v{ab.get('champion_version')} vs v"
                         f"{ab.get('challenger_version')}: {ab.get('decision')} (p={p_value:.3g}, "
                         f"{int(ab.get('n_periods', 0))} candles) — {ab.get('reason', '')}"))
        for at, kind, detail in ev.audit:
            if kind in LEDGER_EVENTS:
                rows.append((_unix(at), "ledger", f"{kind}: {_short(detail)}"))
        for wall, body in ev.alerts:
            rows.append((wall, "alert", f"[{body.get('type')}] {body.get('title')}"))
        rows.sort(key=lambda r: r[0])
        states = Counter((ev.run_label(r), r["state_name"]) for r in ev.runs)
        summary = "\n".join(f"| {name} | {state} | {n} |" for (name, state), n in sorted(states.items()))
        decisions = Counter(str(ab.get("decision")) for ab in ev.ab)
        lines = [
            f"# krakenflow autopilot — {self.plan.days} simulated days unattended",
            "",
            f"{self.plan.candles} hourly candles of real XRP/USD and DOGE/USD (the bundled Binance files, see "
            f"data/sample/PROVENANCE.md) replayed by the Kraken emulator, one every {self.plan.seconds_per_candle} s; "
            f"wall time {time.time() - self.started_wall:.0f} s. Written by `make autopilot` "
            f"(tests/e2e/test_autopilot.py, tests/autopilot_support.py).",
            "",
            f"- A/B decisions: {dict(decisions)}; @champion v{ev.aliases.get('champion')}, "
            f"@previous v{ev.aliases.get('previous')}",
            f"- orders on the exchange {len(ev.exchange_client_ids)}, fills {len(ev.ledger_fills)}, "
            f"alerts received {len(ev.alerts)} ({dict(Counter(t.split(':')[0] for t in ev.alert_titles()))})",
            "",
            "| deployment (or subflow) | final state | runs |",
            "|---|---|---:|",
            summary,
            "",
            "## Timeline",
            "",
            "| wall (s) | exchange time (UTC) | source | what |",
            "|---:|---|---|---|",
        ]
        lines += [f"| {wall - self.started_wall:.1f} | {self.exchange_time(wall)} | {source} | {_cell(what)} |"
                  for wall, source, what in rows]
        return "\n".join(lines) + "\n"


LEDGER_EVENTS = ("session_start", "session_end", "kill_switch", "daily_loss_halt", "risk_halt_lifted",
                 "trading_resumed", "reconcile_halt", "model_reloaded", "model_reload_refused", "lookup_found",
                 "lookup_not_found", "ambiguous_send")


def _retry_busy(call: Any, attempts: int = 10) -> None:
    """A Prefect server on SQLite answers 503 while its database is busy (the scheduler writing): retry."""
    for attempt in range(attempts):
        response = call()
        if response.status_code != 503 or attempt == attempts - 1:
            if response.status_code != 404:  # a scheduled run that started meanwhile is gone from the list
                response.raise_for_status()
            return
        time.sleep(1 + attempt)


def _unix(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def _short(detail: str, limit: int = 160) -> str:
    return detail if len(detail) <= limit else detail[: limit - 1] + "…"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
