"""Where the console reads from: the ledger, the MLflow registry, the Prefect API, the candle store and the
reports folder. Each read is guarded: a source that is down becomes `Down(source, why)`, the page says which,
and the rest still renders."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx

from core.params import Params
from core.settings import Settings
from market.store import CandleStore
from trader.ledger import Ledger, safe_url
from trader.status import ledger_mode, snapshot

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class Down:
    """A source that did not answer: which, and why (shown on the page instead of its section)."""

    source: str
    why: str


def guarded(source: str, read: Callable[[], T]) -> T | Down:
    try:
        return read()
    except Exception as err:  # any failure of a source must leave the rest of the page standing
        log.warning("console: %s unavailable: %s", source, err)
        return Down(source, f"{type(err).__name__}: {err}"[:400])


Snapshot = Callable[[], dict[str, Any]]


@dataclass
class Sources:
    params: Params
    settings: Settings
    data_root: Path
    prefect_api: str = ""
    live: Snapshot | None = None
    """The running trader's own snapshot when the console is served by it (`trade --status-port`)."""
    live_view: Snapshot | None = None
    """Only the running trader's in-memory view (mode, model, equity, halt, poll health): cheap, per request."""
    _ledger: Ledger | None = field(default=None, repr=False)

    # --- the ledger ---------------------------------------------------------------------------------------
    @property
    def ledger_url(self) -> str:
        return safe_url(self.settings.ledger_uri)

    def ledger(self) -> Ledger:
        """Opened once, shared (not exclusive: the trader holds the lock; the console only reads and queues)."""
        if self._ledger is None:
            self._ledger = Ledger(self.settings.ledger_uri)
        return self._ledger

    def status(self) -> dict[str, Any]:
        """The full snapshot (/status, /metrics): the trader's own when it serves the console."""
        if self.live is not None:
            return self.live()
        return snapshot(self.ledger(), list(self.params.pairs))

    def light_status(self, rows: int = 50) -> dict[str, Any]:
        """What the console shows on every page and stream tick: no count over the whole ledger."""
        ledger = self.ledger()
        live = self.live_view() if self.live_view is not None else None
        return {"generated_unix": time.time(), "live": live,
                "mode": live["mode"] if live else ledger_mode(ledger),
                "positions": {pair: ledger.position(pair) for pair in self.params.pairs},
                "decisions": ledger.recent_decisions(rows)}

    # --- the registry ------------------------------------------------------------------------------------
    def _registry(self) -> Any:
        from models import registry

        registry.configure(self.settings.tracking_uri, self.settings.mlflow_registry_uri, probe_timeout_s=2.0)
        return registry

    def model_versions(self) -> list[dict[str, Any]]:
        return list(self._registry().versions(self.params.registry.model_name))

    def ab_history(self) -> list[dict[str, Any]]:
        from pipeline.promote import ab_history

        return [dict(run) for run in ab_history(self.params, self.settings)]

    @property
    def mlflow_ui(self) -> str:
        uri = self.settings.tracking_uri
        return uri if uri.startswith("http") else ""

    # --- Prefect ------------------------------------------------------------------------------------------
    def _prefect(self, path: str, body: dict[str, Any]) -> list[dict[str, Any]]:
        if not self.prefect_api:
            raise LookupError("no Prefect server configured (PREFECT_API_URL or KRAKENFLOW_PREFECT_API_URL)")
        response = httpx.post(f"{self.prefect_api.rstrip('/')}/{path}", json=body, timeout=5)
        response.raise_for_status()
        return list(response.json())

    def flow_runs(self, limit: int = 50) -> list[dict[str, Any]]:
        return self._prefect("flow_runs/filter", {"sort": "EXPECTED_START_TIME_DESC", "limit": limit})

    def scheduled_runs(self, limit: int = 20) -> list[dict[str, Any]]:
        return self._prefect("flow_runs/filter", {"sort": "EXPECTED_START_TIME_ASC", "limit": limit,
                                                  "flow_runs": {"state": {"type": {"any_": ["SCHEDULED"]}}}})

    def deployments(self) -> dict[str, str]:
        return {d["id"]: d["name"] for d in self._prefect("deployments/filter", {})}

    @property
    def prefect_ui(self) -> str:
        return self.prefect_api.rstrip("/").removesuffix("/api") if self.prefect_api else ""

    # --- data and reports ---------------------------------------------------------------------------------
    def store(self) -> CandleStore:
        return CandleStore(self.data_root / "store", self.params.store.exchange)

    def coverage(self) -> list[dict[str, Any]]:
        """Per pair and timeframe: first and last candle, count, open gaps (the Data page)."""
        store, rows = self.store(), []
        for pair in self.params.pairs:
            for timeframe in self.params.ingest.timeframes:
                frame = store.read(pair, timeframe)
                gaps = store.gap_report(pair, timeframe)
                rows.append({"pair": pair, "timeframe": timeframe, "candles": len(frame),
                             "first": str(frame["date"].iloc[0]) if len(frame) else "",
                             "last": str(frame["date"].iloc[-1]) if len(frame) else "",
                             "gaps": [{"after": str(g.after), "before": str(g.before), "missing": g.missing}
                                      for g in gaps]})
        return rows

    def quarantined(self) -> list[dict[str, Any]]:
        folder = self.data_root / "quarantine"
        if not folder.is_dir():
            return []
        return [{"name": p.name, "path": str(p), "modified": p.stat().st_mtime}
                for p in sorted(folder.iterdir(), key=lambda p: p.stat().st_mtime, reverse=True)]

    def drift_history(self) -> list[dict[str, Any]]:
        """Every drift check (data/reports/drift/history.jsonl, written by the drift job), oldest first."""
        path = self.data_root / "reports" / "drift" / "history.jsonl"
        if not path.is_file():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def candles(self, pair: str, limit: int) -> Any:
        return self.store().read(pair, self.params.data.timeframe).tail(limit)
