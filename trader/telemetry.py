"""The trader's Prometheus metrics, after Prometheus' conventions: counters only rise (`_total`), units are
suffixes (`_seconds`, `_usd`, `_ratio`), versions are an `_info` series valued 1.

Two sources, one registry per trader process (`TraderTelemetry`; tests run several traders in one process):
- events, counted where they happen — exchange errors by Kraken's code and rate-limit pauses (market.kraken
  tells us), alerts by kind, severity and outcome (core.alerts), reconciliations and their differences, poll
  and decision latency — plus P&L, drawdown and the model in use, set after each poll;
- the ledger and the live view, read once per scrape (`SnapshotCollector`): orders, fills and fees are
  counted from the ledger's durable rows (so they never fall, not even across a restart), positions, equity,
  halt and health are what /status shows. A dashboard over a ledger alone (`make_app`) exports only these.

deploy/prometheus.yml scrapes it; deploy/prometheus-alerts.yml and deploy/grafana/ read it.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, ProcessCollector, make_asgi_app
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector

if TYPE_CHECKING:
    from core.alerts import Alert
    from trader.engine import Decision
    from trader.reconcile import Reconciliation
    from trader.service import LiveSession

log = logging.getLogger(__name__)
Snapshot = Callable[[], dict[str, Any]]
ASGIApp = Callable[..., Any]

POLL_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
"""Seconds one poll takes: sub-second on the emulator, a few seconds on Kraken with ccxt's pacing."""
DECISION_BUCKETS = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 900.0, 1800.0, 3600.0)
"""Seconds from a candle's close to its decision (exchange clock): up to one poll interval plus the poll."""
TERMINAL = {"filled": "krakenflow_orders_filled", "rejected": "krakenflow_orders_refused"}
"""Intent statuses an order never leaves: counting them from the ledger gives counters that only rise."""


class TraderTelemetry:
    """One trader's metrics: event counters and histograms, P&L gauges, the model's `_info`, process metrics.
    `attach` wires it to a session; the hooks below are one-line calls from trader.service."""

    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        self.exchange_errors = Counter("krakenflow_exchange_errors", "Failed exchange requests by Kraken's error "
                                       "code (or the error's class for network and HTTP failures)", ["code"],
                                       registry=r)
        self.rate_limit_waits = Counter("krakenflow_rate_limit_waits", "Pauses ccxt made to stay inside Kraken's "
                                        "rate limit", registry=r)
        self.rate_limit_wait_seconds = Counter("krakenflow_rate_limit_wait_seconds", "Time spent in those pauses",
                                               registry=r)
        self.alerts = Counter("krakenflow_alerts", "Alerts raised by kind and severity, with what became of them "
                              "(delivered, undelivered, duplicate, rate_limited, log_only)",
                              ["kind", "severity", "outcome"], registry=r)
        self.reconciliations = Counter("krakenflow_reconciliations", "Reconciliations of the ledger with the "
                                       "exchange by outcome (ok, adjusted, halted)", ["outcome"], registry=r)
        self.reconcile_differences = Counter("krakenflow_reconcile_differences", "Pairs whose ledger position "
                                             "differed from the exchange's, per reconciliation", ["pair"], registry=r)
        self.poll_seconds = Histogram("krakenflow_poll_duration_seconds", "Wall-clock time of one poll, by "
                                      "outcome (ok, failed)", ["outcome"], buckets=POLL_BUCKETS, registry=r)
        self.decision_latency = Histogram("krakenflow_decision_latency_seconds", "Exchange-clock time from a "
                                          "candle's close to the trader's decision on it", buckets=DECISION_BUCKETS,
                                          registry=r)
        self.pnl = Gauge("krakenflow_pnl_usd", "Equity minus its value at the start of the UTC day (the daily loss "
                         "limit's base) or of this session", ["since"], registry=r)
        self.drawdown = Gauge("krakenflow_drawdown_ratio", "1 - equity / peak equity: what the kill switch "
                              "compares with krakenflow_max_drawdown_ratio", registry=r)
        self.peak_equity = Gauge("krakenflow_peak_equity_usd", "Peak equity the risk limits remember", registry=r)
        self.position_usd = Gauge("krakenflow_position_usd", "Position per pair marked at its last close",
                                  ["pair"], registry=r)
        self.max_drawdown = Gauge("krakenflow_max_drawdown_ratio", "The kill switch: drawdown that halts "
                                  "trading (params risk.max_drawdown)", registry=r)
        self.daily_loss_limit = Gauge("krakenflow_daily_loss_limit_ratio", "Loss of the day's start equity "
                                      "that halts trading for the day (params risk.daily_loss_limit)", registry=r)
        self.candle_age = Gauge("krakenflow_candle_age_seconds", "Exchange-clock age of the newest finished "
                                "candle per pair (from its close)", ["pair"], registry=r)
        self.stale_after = Gauge("krakenflow_stale_after_seconds", "Candle age past which no order is placed "
                                 "(params risk.stale_after_candles)", registry=r)
        self.model = Info("krakenflow_model", "The model trading now (registry name, version, feature spec "
                          "hash)", registry=r)
        self.session = Info("krakenflow_session", "This trader session (mode live or paper, id in the audit "
                            "trail)", registry=r)
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        GCCollector(registry=r)
        self._session_start_equity = math.nan
        self._snapshots: SnapshotCollector | None = None

    # --- wiring -----------------------------------------------------------------------------------------
    def attach(self, session: LiveSession) -> None:
        """Hear the session's exchange client and alerter; publish its limits, mode and model."""
        session.loop.client.observe(self)
        if session.alerter is not None:
            session.alerter.on_outcome = self.alert_outcome
        risk = session.engine.risk
        if risk is not None:
            self.max_drawdown.set(risk.max_drawdown)
            self.daily_loss_limit.set(risk.daily_loss_limit)
            self.stale_after.set(risk.stale_after_candles * session.engine.candle_ms / 1000)
        self.session.info({"mode": session.mode, "session": session.session_id})
        self._model(session)

    def serve_metrics(self, app: ASGIApp, snap: Snapshot) -> ASGIApp:
        """`app` with /metrics answered from this registry, the snapshot's metrics added (everything else
        passes through: pages, /status, /healthz, lifespan)."""
        if self._snapshots is not None:
            self.registry.unregister(self._snapshots)  # type: ignore[arg-type]
        self._snapshots = SnapshotCollector(snap)
        self.registry.register(self._snapshots)  # type: ignore[arg-type]
        metrics = make_asgi_app(self.registry)

        async def dispatch(scope: dict[str, Any], receive: Any, send: Any) -> None:
            target = metrics if scope["type"] == "http" and scope["path"] == "/metrics" else app
            await target(scope, receive, send)

        return dispatch

    # --- events -----------------------------------------------------------------------------------------
    def exchange_error(self, code: str) -> None:
        self.exchange_errors.labels(code).inc()

    def rate_limit_wait(self, seconds: float) -> None:
        self.rate_limit_waits.inc()
        self.rate_limit_wait_seconds.inc(seconds)

    def alert_outcome(self, alert: Alert, outcome: str) -> None:
        self.alerts.labels(alert.kind, alert.severity, outcome).inc()

    def polled(self, started_unix: float, ok: bool) -> None:
        """One poll (or start-up attempt) ended; `started_unix` = when it began (0: unknown, not observed)."""
        if started_unix > 0:
            self.poll_seconds.labels("ok" if ok else "failed").observe(max(0.0, time.time() - started_unix))

    def decided(self, decisions: Iterable[Decision], now_ms: int, candle_ms: int) -> None:
        """Decision latency of each candle decided on (a backlog candle replayed as warm-up is no decision)."""
        from trader.live import BACKLOG  # here: the ledger-only dashboard imports this module without ccxt

        for decision in decisions:
            if decision.reason != BACKLOG:
                self.decision_latency.observe(max(0.0, (now_ms - decision.ts - candle_ms) / 1000))

    def reconciled(self, result: Reconciliation) -> None:
        self.reconciliations.labels("halted" if result.halt else "adjusted" if result.drifts else "ok").inc()
        for drift in result.drifts:
            self.reconcile_differences.labels(drift.pair).inc()

    def noted(self, session: LiveSession) -> None:
        """After each poll: P&L, drawdown and positions in USD from the figures the poll left, and the model.
        Never raises: a metric must not stop the trading loop."""
        try:
            self._noted(session)
        except Exception:
            log.exception("could not update the P&L metrics (trading goes on)")

    def _noted(self, session: LiveSession) -> None:
        equity, risk = session.last_equity, session.engine.risk_snapshot()
        if not math.isnan(equity):
            if math.isnan(self._session_start_equity):
                self._session_start_equity = equity
            self.pnl.labels("session_start").set(equity - self._session_start_equity)
            if risk.day_start_equity > 0:
                self.pnl.labels("day_start").set(equity - risk.day_start_equity)
            if risk.peak_equity > 0:
                self.drawdown.set(max(0.0, 1 - equity / risk.peak_equity))
        self.peak_equity.set(risk.peak_equity)
        for pair in session.loop.pairs:
            close = session.engine.last_close(pair)
            if close is not None:
                self.position_usd.labels(pair).set(session.broker.position(pair) * close)
        if session.loop.last_ts:  # the exchange clock has been read
            now_ms, candle_ms = session.loop.clock.now_ms(), session.engine.candle_ms
            for pair, ts in session.loop.last_ts.items():
                self.candle_age.labels(pair).set(max(0.0, (now_ms - ts - candle_ms) / 1000))
        self._model(session)

    def _model(self, session: LiveSession) -> None:
        self.model.info({"name": session.model_name, "version": str(session.model_version or ""),
                         "spec_hash": session.engine.spec.hash})


def snapshot_registry(snap: Snapshot) -> CollectorRegistry:
    """A registry of the snapshot's metrics alone: the dashboard over a ledger (no trader attached)."""
    registry = CollectorRegistry()
    registry.register(SnapshotCollector(snap))  # type: ignore[arg-type]
    return registry


class SnapshotCollector:
    """Metrics computed from one snapshot per scrape (trader.status.snapshot; no state kept between scrapes)."""

    def __init__(self, snap: Snapshot) -> None:
        self.snap = snap

    def collect(self) -> Iterator[Metric]:
        s = self.snap()
        yield from ledger_metrics(s)
        if s["live"]:
            yield from live_metrics(s["live"], time.time())


def ledger_metrics(s: dict[str, Any]) -> Iterator[Metric]:
    """What the ledger holds: positions, and counters of its append-only rows (decisions, orders in a final
    status, fills, fees, audit events)."""
    position = GaugeMetricFamily("krakenflow_position", "Base-coin position per pair (ledger)", labels=["pair"])
    for pair, qty in s["positions"].items():
        position.add_metric([pair], qty)
    yield position
    counts = s["counts"]
    yield _labelled(CounterMetricFamily, "krakenflow_decisions", "Decisions by action (ledger)", "action",
                    counts["decisions"])
    yield _labelled(GaugeMetricFamily, "krakenflow_orders", "Orders now in each status (ledger intents; one "
                    "moves from pending or sent to filled, rejected or cancelled)", "status", counts["intents"])
    yield CounterMetricFamily("krakenflow_orders_sent", "Orders the trader committed and sent (every intent is "
                              "sent once)", value=sum(counts["intents"].values()))
    for status, name in TERMINAL.items():
        yield CounterMetricFamily(name, f"Orders {'filled' if status == 'filled' else 'refused by the venue'}",
                                  value=counts["intents"].get(status, 0))
    yield CounterMetricFamily("krakenflow_fills", "Fills recorded in the ledger", value=s["n_fills"])
    yield CounterMetricFamily("krakenflow_fees_usd", "Fees paid on all fills (quote currency)", value=s["fees_paid"])
    yield _labelled(CounterMetricFamily, "krakenflow_audit_events", "Audit trail rows by kind", "kind",
                    counts["audit"])


def live_metrics(live: dict[str, Any], now: float) -> Iterator[Metric]:
    """What only the running trader knows (trader.status.LiveView): equity, halt, poll health."""
    last_good = live["last_ok_poll_unix"] or live["last_poll_unix"]
    for name, doc, value in (
        ("krakenflow_equity_usd", "Cash plus positions at the last close", live["equity"]),
        ("krakenflow_cash_usd", "Cash after every recorded fill", live["cash"]),
        ("krakenflow_halted", "1 while trading is halted (loss limit, operator, reconciliation, clock)",
         float(bool(live["halted"]))),
        ("krakenflow_last_good_poll_age_seconds", "Seconds since the last poll that reached the exchange (failed "
         "ones do not count)", max(0.0, now - last_good) if last_good else math.nan),
        ("krakenflow_failed_polls_in_a_row", "Polls failed since the last good one", float(live["failures_in_a_row"])),
        ("krakenflow_poll_busy_seconds", "How long the current poll has run (0 between polls; the watchdog reads "
         "it)", live["busy_s"]),
        ("krakenflow_healthy", "1 while /healthz answers 200", float(not live["problems"])),
    ):
        yield GaugeMetricFamily(name, doc, value=value)


def _labelled(family: type[CounterMetricFamily] | type[GaugeMetricFamily], name: str, doc: str, label: str,
              values: dict[str, int]) -> Metric:
    metric = family(name, doc, labels=[label])
    for key, n in sorted(values.items()):
        metric.add_metric([key], n)
    return metric
