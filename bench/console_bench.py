"""Console pages on a big ledger (issue L: ≤ 200 ms p99 on 1 M decisions).

The ledger is bulk-filled with 1,000,000 decision rows over two pairs (hourly candles, the actions in the
proportions a real run has: ~97 % holds and stand-asides), 20,000 fills in buy/sell pairs, 20,000 equity
marks and 10,000 audit rows. The rows are synthetic: what the console's cost depends on is how many rows
there are and how they are spread, not the prices in them. Each page is requested 30 times in-process
(FastAPI's TestClient, no network) after one warm-up; p50 and p99 in ms.
"""

from __future__ import annotations

import json
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import insert

from console.app import make_console
from console.sources import Sources
from core.params import load_params
from core.settings import Settings
from trader.ledger import Ledger
from trader.ledger_schema import audit, decisions, equity, fills, intents

DECISIONS = 1_000_000
FILLS = 20_000
PAGES = ("/", "/trades", "/api/v1/status", "/api/v1/decisions", "/trades?pair=XRP/USD&holds=true&page=200",
         "/chart?pair=XRP/USD", "/reconcile", "/api/v1/trades")
HOUR = 3_600_000
T0 = 1_700_000_000_000


def _fill_ledger(ledger: Ledger, pairs: tuple[str, ...]) -> None:
    rng, now = random.Random(7), datetime.now(UTC)
    actions = ["hold"] * 90 + ["stand_aside"] * 7 + ["buy", "sell", "blocked"]
    with ledger.engine.begin() as conn:
        batch = []
        for i in range(DECISIONS):
            batch.append({"ts": T0 + (i // len(pairs)) * HOUR, "pair": pairs[i % len(pairs)], "prob": rng.random(),
                          "action": rng.choice(actions), "reason": "", "model_version": 1 + i // 250_000, "at": now})
            if len(batch) == 50_000:
                conn.execute(insert(decisions), batch)
                batch = []
        for i in range(FILLS):
            client_id, pair, side = f"kf-{i}", pairs[(i // 2) % len(pairs)], "buy" if i % 2 == 0 else "sell"
            conn.execute(insert(intents).values(client_id=client_id, pair=pair, side=side, quantity=100.0, reason="",
                                                status="filled", created_at=now, updated_at=now))
            batch.append({"trade_id": f"T{i}", "client_id": client_id, "pair": pair, "side": side, "quantity": 100.0,
                          "price": 0.5 + 0.01 * rng.random(), "fee": 0.2, "ts": T0 + i * 50 * HOUR})
        conn.execute(insert(fills), batch)
        conn.execute(insert(equity), [{"ts": T0 + i * HOUR, "equity": 10_000 + rng.gauss(0, 50), "cash": 5_000.0,
                                       "at": now} for i in range(20_000)])
        conn.execute(insert(audit), [{"at": now, "kind": "reconcile_ok" if i % 2 else "poll_failed",
                                      "detail": json.dumps({"reason": "ok", "open_orders": 0})} for i in range(10_000)])


def run() -> list[dict]:
    params = load_params()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(state_dir=Path(tmp), ledger_url=f"sqlite:///{tmp}/ledger.db", data_dir=Path(tmp) / "data",
                            mlflow_tracking_uri=f"sqlite:///{tmp}/mlflow.db")
        ledger = Ledger(settings.ledger_uri)
        t0 = time.perf_counter()
        _fill_ledger(ledger, params.pairs)
        filled_s = time.perf_counter() - t0
        ledger.close()
        client = TestClient(make_console(Sources(params, settings, settings.data_dir, ""), None))
        rows = []
        for path in PAGES:
            assert client.get(path).status_code == 200, path
            took = []
            for _ in range(30):
                start = time.perf_counter()
                client.get(path)
                took.append((time.perf_counter() - start) * 1000)
            p99 = sorted(took)[-1]  # of 30 requests: the slowest
            rows.append({"name": f"console {path} on 1 M decisions", "value": f"{statistics.median(took):.0f} / "
                         f"{p99:.0f}", "unit": "ms p50 / p99", "target": "≤ 200 ms p99", "ok": p99 <= 200,
                         "note": f"ledger filled in {filled_s:.0f} s; 20k fills, 20k equity marks"})
        return rows
