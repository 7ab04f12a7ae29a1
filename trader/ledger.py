"""The trader's durable memory: every order intent is committed here BEFORE it is sent, so a crash at
any point leaves a record to look up on the exchange instead of a blind resend.

SQLite (WAL, synchronous=FULL) by default; PostgreSQL by URL. Schema via Alembic migrations.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from alembic import command
from alembic.config import Config
from filelock import FileLock, Timeout
from sqlalchemy import Engine, case, create_engine, delete, event, func, insert, make_url, select, text, update
from sqlalchemy.exc import ArgumentError, IntegrityError, NoSuchModuleError, OperationalError

from core.types import Fill, OrderIntent, Side
from trader.controls import Command, OperatorState
from trader.ledger_schema import (
    adjustments,
    audit,
    balances,
    commands,
    counters,
    decisions,
    equity,
    fills,
    intents,
    operator_state,
    risk_state,
)
from trader.risk import RiskState

if TYPE_CHECKING:
    from trader.engine import Decision

IntentStatus = Literal["new", "sent", "unknown", "open", "filled", "cancelled", "rejected", "not_found"]
"""`rejected`: the exchange refused the order. `not_found`: its outcome was ambiguous and repeated lookups
over the lookup window never found it (still watched for a late fill)."""
OPEN_STATUSES: tuple[IntentStatus, ...] = ("new", "sent", "unknown", "open")
MIGRATIONS = Path(__file__).resolve().parent / "migrations"


@dataclass(frozen=True)
class IntentRecord:
    intent: OrderIntent
    status: IntentStatus
    txid: str | None
    model_version: int | None
    created_unix: float = 0.0


ACTIONS = ("buy", "sell", "blocked", "hold", "stand_aside")
"""Every action a decision row can carry (trader.engine)."""


def _now() -> datetime:
    return datetime.now(UTC)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


class LedgerError(ValueError):
    """The ledger URL cannot be used; the message names the setting and the fix."""


class LedgerLocked(RuntimeError):
    """Another trader process holds this ledger: two on one ledger and key would break nonces and orders."""


def normalize_url(url: str) -> str:
    """`postgresql://…` (the documented form) → an explicit driver that is installed here."""
    url = url.strip()
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return f"postgresql+{_postgres_driver()}://{url.removeprefix(prefix)}"
    return url


def _postgres_driver() -> str:
    import importlib.util

    for module, driver in (("psycopg", "psycopg"), ("psycopg2", "psycopg2")):
        if importlib.util.find_spec(module) is not None:
            return driver
    raise LedgerError("a postgresql:// ledger needs a PostgreSQL driver: pip install psycopg2-binary")


def safe_url(url: str) -> str:
    """The URL without its password, for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparseable URL>"


def make_engine(url: str) -> Engine:
    url = normalize_url(url)
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise LedgerError(f"KRAKENFLOW_LEDGER_URL {url!r} is not a database URL; use "
                          f"sqlite:////absolute/path/ledger.db or postgresql://user@host:5432/db") from None
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    try:
        engine = create_engine(url, future=True, pool_pre_ping=True)
    except (ArgumentError, NoSuchModuleError, ImportError) as err:
        raise LedgerError(f"KRAKENFLOW_LEDGER_URL {safe_url(url)}: {err}; use sqlite:////absolute/path/ledger.db "
                          f"or postgresql://user@host:5432/db") from None
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest Alembic revision (idempotent)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


class Ledger:
    """Intents, fills, balances, counters and an audit trail; each method is one transaction."""

    def __init__(self, url: str, exclusive: bool = False) -> None:
        """`exclusive`: this process is THE trader on this ledger (a second one is refused, LedgerLocked)."""
        self.engine = make_engine(url)
        self.exclusive = exclusive
        self._lock: Any = None
        if exclusive:
            self._lock = _take_lock(self.engine)
        try:
            migrate(self.engine)
        except OperationalError as err:
            self.close()
            raise LedgerError(f"cannot open the ledger at {safe_url(url)}: {str(err.orig).strip()}") from None

    def record_intent(self, intent: OrderIntent, model_version: int | None, decision: Decision | None = None) -> None:
        """The intent, and the decision that made it, in one transaction: no order without its decision."""
        now = _now()
        with self.engine.begin() as conn:
            conn.execute(insert(intents).values(
                client_id=intent.client_id, pair=intent.pair, side=intent.side.value, quantity=intent.quantity,
                reason=intent.reason, model_version=model_version, status="new", txid=None,
                created_at=now, updated_at=now))
            if decision is not None:
                conn.execute(insert(decisions), [_decision_row(decision, model_version, now)])

    def mark(self, client_id: str, status: IntentStatus, txid: str | None = None) -> None:
        values: dict[str, Any] = {"status": status, "updated_at": _now()}
        if txid is not None:
            values["txid"] = txid
        with self.engine.begin() as conn:
            done = conn.execute(update(intents).where(intents.c.client_id == client_id).values(**values))
            if done.rowcount != 1:
                raise KeyError(f"no intent {client_id!r} in the ledger")

    def intent(self, client_id: str) -> IntentRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(intents).where(intents.c.client_id == client_id)).mappings().first()
        return _to_record(row) if row else None

    def unresolved_intents(self) -> list[IntentRecord]:
        """Intents whose outcome the exchange has not yet told us: look these up before anything else."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(intents).where(intents.c.status.in_(OPEN_STATUSES))
                                .order_by(intents.c.created_at)).mappings().all()
        return [_to_record(r) for r in rows]

    def intents_with_status(self, status: IntentStatus, since_unix: float = 0.0) -> list[IntentRecord]:
        """Intents in one status committed after `since_unix` (e.g. `not_found` ones still watched)."""
        since = datetime.fromtimestamp(since_unix, UTC)
        with self.engine.connect() as conn:
            rows = conn.execute(select(intents).where(intents.c.status == status, intents.c.created_at >= since)
                                .order_by(intents.c.created_at)).mappings().all()
        return [_to_record(r) for r in rows]

    def client_ids(self) -> set[str]:
        """Every client order id this ledger ever recorded."""
        with self.engine.connect() as conn:
            return set(conn.execute(select(intents.c.client_id)).scalars())

    def record_fill(self, fill: Fill, trade_id: str) -> bool:
        """Store a fill once: the exchange's trade id is unique. Returns False if already known."""
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(fills).values(
                    trade_id=trade_id, client_id=fill.client_id, pair=fill.pair, side=fill.side.value,
                    quantity=fill.quantity, price=fill.price, fee=fill.fee, ts=fill.ts))
        except IntegrityError:
            return False
        return True

    def filled_quantity(self, client_id: str) -> float:
        """Base quantity of all fills recorded for one intent."""
        with self.engine.connect() as conn:
            total = conn.execute(select(func.sum(fills.c.quantity)).where(fills.c.client_id == client_id)).scalar()
        return float(total or 0.0)

    def fills(self, pair: str | None = None) -> list[Fill]:
        query = select(fills).order_by(fills.c.ts, fills.c.id)
        if pair is not None:
            query = query.where(fills.c.pair == pair)
        with self.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        return [Fill(r["client_id"], r["pair"], Side(r["side"]), r["quantity"], r["price"], r["fee"], r["ts"])
                for r in rows]

    def fill_rows(self, pair: str | None = None, newest: int | None = None,
                  since_ts: int = 0) -> list[dict[str, Any]]:
        """Fills as plain rows (ts, pair, side, quantity, price, fee, client_id), oldest first; the newest
        `newest` only when given. Cheaper than `fills()` on a long ledger (the console, the status page)."""
        query = select(fills.c.id, fills.c.ts, fills.c.pair, fills.c.side, fills.c.quantity, fills.c.price,
                       fills.c.fee, fills.c.client_id)
        if pair is not None:
            query = query.where(fills.c.pair == pair)
        if since_ts:
            query = query.where(fills.c.ts >= since_ts)
        if newest is not None:
            query = query.order_by(fills.c.ts.desc(), fills.c.id.desc()).limit(newest)
        else:
            query = query.order_by(fills.c.ts, fills.c.id)
        with self.engine.connect() as conn:
            rows = [dict(r) for r in conn.execute(query).mappings()]
        return list(reversed(rows)) if newest is not None else rows

    def intent_count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(intents)).scalar() or 0)

    def fill_totals(self) -> tuple[int, float]:
        """How many fills, and the fees paid on them (quote)."""
        with self.engine.connect() as conn:
            n, fees = conn.execute(select(func.count(), func.coalesce(func.sum(fills.c.fee), 0.0))).one()
        return int(n), float(fees)

    def latest_equity(self) -> tuple[int, float, float] | None:
        marks = self.equity_curve(limit=1)
        return marks[-1] if marks else None

    def position(self, pair: str) -> float:
        """Net base quantity held: the fills plus reconciliation adjustments (exchange truth)."""
        signed = func.sum(case((fills.c.side == "buy", fills.c.quantity), else_=-fills.c.quantity))
        with self.engine.connect() as conn:
            traded = conn.execute(select(signed).where(fills.c.pair == pair)).scalar()
            adjusted = conn.execute(select(func.sum(adjustments.c.quantity))
                                    .where(adjustments.c.pair == pair)).scalar()
        return float(traded or 0.0) + float(adjusted or 0.0)

    def record_adjustment(self, pair: str, quantity: float, reason: str) -> None:
        """Correct a position to the exchange's truth (base coin, signed); audited in the same transaction."""
        now = _now()
        with self.engine.begin() as conn:
            conn.execute(insert(adjustments).values(pair=pair, quantity=quantity, reason=reason, at=now))
            conn.execute(insert(audit).values(at=now, kind="reconcile_adjust", detail=json.dumps(
                {"pair": pair, "quantity": quantity, "reason": reason})))

    def adjustments(self) -> list[tuple[str, float, str]]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(adjustments.c.pair, adjustments.c.quantity, adjustments.c.reason)
                                .order_by(adjustments.c.id)).all()
        return [(r.pair, r.quantity, r.reason) for r in rows]

    def record_decisions(self, made: Iterable[Decision], model_version: int | None) -> None:
        """Which model version decided what on every traded candle (the audit of a hot reload)."""
        now = _now()
        rows = [_decision_row(d, model_version, now) for d in made]
        if rows:
            with self.engine.begin() as conn:
                conn.execute(insert(decisions), rows)

    def decisions(self) -> list[tuple[int, str, str, int | None]]:
        """(candle ts, pair, action, model version) in the order they were taken."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(decisions.c.ts, decisions.c.pair, decisions.c.action,
                                       decisions.c.model_version).order_by(decisions.c.id)).all()
        return [(r.ts, r.pair, r.action, r.model_version) for r in rows]

    def recent_decisions(self, limit: int) -> list[dict[str, Any]]:
        """The newest `limit` decisions, newest first, with probability and reason (for the dashboard)."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(decisions).order_by(decisions.c.id.desc()).limit(limit)).mappings().all()
        return [{k: r[k] for k in ("ts", "pair", "prob", "action", "reason", "model_version")} for r in rows]

    def decisions_page(self, offset: int, limit: int, pair: str | None = None, action: str | None = None,
                       exclude_actions: tuple[str, ...] = (), count: bool = True) -> tuple[list[dict[str, Any]], int]:
        """Newest first, filtered (console paging): the page's rows and how many rows match in all (-1 when
        not asked to count)."""
        where = []
        if pair:
            where.append(decisions.c.pair == pair)
        if action:
            where.append(decisions.c.action == action)
        if exclude_actions:  # as the complement among the known actions: an IN the action index can answer
            where.append(decisions.c.action.in_([a for a in ACTIONS if a not in exclude_actions]))
        with self.engine.connect() as conn:
            total = (int(conn.execute(select(func.count()).select_from(decisions).where(*where)).scalar() or 0)
                     if count else -1)
            rows = conn.execute(select(decisions).where(*where).order_by(decisions.c.id.desc())
                                .offset(offset).limit(limit)).mappings().all()
        return [{k: r[k] for k in ("id", "ts", "pair", "prob", "action", "reason", "model_version")}
                for r in rows], total

    def rows_after(self, table: str, after_id: int, limit: int = 200) -> list[dict[str, Any]]:
        """Rows of decisions, fills or audit with an id above `after_id`, oldest first (the console's
        stream)."""
        source = {"decisions": decisions, "fills": fills, "audit": audit}[table]
        with self.engine.connect() as conn:
            rows = conn.execute(select(source).where(source.c.id > after_id).order_by(source.c.id)
                                .limit(limit)).mappings().all()
        out = [dict(r) for r in rows]
        for row in out:
            if "at" in row and row["at"] is not None:
                row["at"] = row["at"].isoformat()
            if table == "audit":
                row["detail"] = json.loads(row["detail"])
        return out

    def last_id(self, table: str) -> int:
        source = {"decisions": decisions, "fills": fills, "audit": audit}[table]
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.max(source.c.id))).scalar() or 0)

    def audit_rows(self, kinds: tuple[str, ...], limit: int = 200) -> list[dict[str, Any]]:
        """The newest `limit` audit rows of these kinds, newest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(audit).where(audit.c.kind.in_(kinds)).order_by(audit.c.id.desc())
                                .limit(limit)).all()
        return [{"id": r.id, "at": r.at.isoformat(), "kind": r.kind, "detail": json.loads(r.detail)} for r in rows]

    def counts(self) -> dict[str, dict[str, int]]:
        """Decisions by action, intents by status, audit rows by kind: what /metrics exports as counters."""
        with self.engine.connect() as conn:
            return {name: {str(k): int(n) for k, n in conn.execute(select(col, func.count()).group_by(col))}
                    for name, col in (("decisions", decisions.c.action), ("intents", intents.c.status),
                                      ("audit", audit.c.kind))}

    def recent_audit(self, limit: int) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(audit).order_by(audit.c.id.desc()).limit(limit)).all()
        return [{"at": r.at.isoformat(), "kind": r.kind, "detail": json.loads(r.detail)} for r in rows]

    def set_balances(self, amounts: dict[str, float]) -> None:
        now = _now()
        with self.engine.begin() as conn:
            conn.execute(balances.delete())
            if amounts:
                conn.execute(insert(balances), [{"asset": a, "amount": v, "updated_at": now}
                                                for a, v in amounts.items()])

    def balances(self) -> dict[str, float]:
        with self.engine.connect() as conn:
            return {r.asset: r.amount for r in conn.execute(select(balances.c.asset, balances.c.amount))}

    def audit(self, kind: str, detail: dict[str, Any]) -> None:
        with self.engine.begin() as conn:
            conn.execute(insert(audit).values(at=_now(), kind=kind, detail=json.dumps(detail, default=str)))

    def audit_trail(self, kind: str | None = None) -> list[tuple[str, dict[str, Any]]]:
        query = select(audit.c.kind, audit.c.detail).order_by(audit.c.id)
        if kind is not None:
            query = query.where(audit.c.kind == kind)
        with self.engine.connect() as conn:
            return [(r.kind, json.loads(r.detail)) for r in conn.execute(query)]

    def risk_state(self) -> RiskState:
        """What the risk limits remembered (a ledger that never traded: nothing seen, not halted)."""
        with self.engine.connect() as conn:
            row = conn.execute(select(risk_state).where(risk_state.c.id == 1)).mappings().first()
        if row is None:
            return RiskState()
        return RiskState(row["peak_equity"], row["day"], row["day_start_equity"], row["halted"], row["halted_at_ms"],
                         row["halted_until_ms"])

    def save_risk_state(self, state: RiskState, audit_row: tuple[str, dict[str, Any]] | None = None) -> None:
        """The engine's risk state when the equity peak or the day moves, or a loss-limit halt is set (audit
        `kill_switch` / `daily_loss_halt` with equity, peak and reason — committed before any flatten order
        is sent) or lifted (`risk_halt_lifted`): state and audit row in one transaction."""
        with self.engine.begin() as conn:
            _put_risk_state(conn, state)
            if audit_row is not None:
                kind, detail = audit_row
                conn.execute(insert(audit).values(at=_now(), kind=kind, detail=json.dumps(detail, default=str)))

    def record_equity(self, ts: int, value: float, cash: float) -> None:
        """The equity mark at candle `ts` (a later mark of the same candle replaces it)."""
        with self.engine.begin() as conn:
            conn.execute(delete(equity).where(equity.c.ts == ts))
            conn.execute(insert(equity).values(ts=ts, equity=value, cash=cash, at=_now()))

    def equity_curve(self, since_ts: int = 0, limit: int = 100_000) -> list[tuple[int, float, float]]:
        """(candle ts, equity, cash), oldest first: the newest `limit` marks from `since_ts`."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(equity.c.ts, equity.c.equity, equity.c.cash).where(equity.c.ts >= since_ts)
                                .order_by(equity.c.ts.desc()).limit(limit)).all()
        return [(r.ts, r.equity, r.cash) for r in reversed(rows)]

    def equity_overview(self, max_points: int) -> tuple[list[tuple[int, float]], dict[str, float]]:
        """The whole equity curve thinned to about `max_points` marks (always the last one), and over every
        mark: first and last equity and the deepest drawdown from the running peak (%), computed in the
        database (window functions) so a long ledger costs no Python loop."""
        with self.engine.connect() as conn:
            n = int(conn.execute(select(func.count()).select_from(equity)).scalar() or 0)
            if n == 0:
                return [], {"return_pct": 0.0, "max_drawdown_pct": 0.0}
            step = max(1, -(-n // max_points))
            numbered = select(equity.c.ts, equity.c.equity,
                              func.row_number().over(order_by=equity.c.ts).label("rn"),
                              func.max(equity.c.equity).over(order_by=equity.c.ts).label("peak")).subquery()
            rows = conn.execute(select(numbered.c.ts, numbered.c.equity)
                                .where((numbered.c.rn % step == 0) | (numbered.c.rn == 1) | (numbered.c.rn == n))
                                .order_by(numbered.c.ts)).all()
            deepest = conn.execute(select(func.min(numbered.c.equity / numbered.c.peak - 1.0))
                                   .where(numbered.c.peak > 0)).scalar()
        first, last = rows[0][1], rows[-1][1]
        return ([(r.ts, r.equity) for r in rows],
                {"return_pct": (last / first - 1) * 100 if first > 0 else 0.0,
                 "max_drawdown_pct": -float(deepest or 0.0) * 100})

    def enqueue_command(self, kind: str, args: dict[str, Any], who: str) -> int:
        """An operator command for the running trader (the control API): its id; applied in order."""
        with self.engine.begin() as conn:
            result = conn.execute(insert(commands).values(kind=kind, args=json.dumps(args), who=who, status="pending",
                                                          result="", requested_at=_now()))
            key = result.inserted_primary_key
            assert key is not None
            return int(key[0])

    def pending_commands(self) -> list[Command]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(commands).where(commands.c.status == "pending")
                                .order_by(commands.c.id)).mappings().all()
        return [Command(r["id"], r["kind"], json.loads(r["args"]), r["who"]) for r in rows]

    def recent_commands(self, limit: int = 100) -> list[dict[str, Any]]:
        """The newest `limit` commands, newest first, with what became of them."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(commands).order_by(commands.c.id.desc()).limit(limit)).mappings().all()
        return [{**dict(r), "args": json.loads(r["args"]), "requested_at": r["requested_at"].isoformat(),
                 "done_at": r["done_at"].isoformat() if r["done_at"] else None} for r in rows]

    def finish_command(self, command: Command, status: str, result: str, state: OperatorState | None) -> None:
        """A command applied (`done`) or refused, its audit row and the operator state it left: one
        transaction, so a crash never applies a command twice or loses its audit."""
        with self.engine.begin() as conn:
            if state is not None:
                _put_operator_state(conn, state)
            conn.execute(update(commands).where(commands.c.id == command.id)
                         .values(status=status, result=result, done_at=_now()))
            conn.execute(insert(audit).values(at=_now(), kind=f"operator_{command.kind}", detail=json.dumps(
                {"command": command.id, "who": command.who, "args": command.args, "status": status,
                 "result": result})))

    def operator_state(self) -> OperatorState:
        with self.engine.connect() as conn:
            row = conn.execute(select(operator_state).where(operator_state.c.id == 1)).mappings().first()
        return OperatorState() if row is None else OperatorState(row["halt"], row["no_buys"], row["pinned_version"])

    def next_counter(self, name: str, at_least: int) -> int:
        """A strictly increasing number that survives restarts (e.g. the API nonce): max(stored+1, at_least)."""
        with self.engine.begin() as conn:
            current = conn.execute(select(counters.c.value).where(counters.c.name == name)
                                   .with_for_update()).scalar()
            value = max((current or 0) + 1, at_least)
            if current is None:
                conn.execute(insert(counters).values(name=name, value=value))
            else:
                conn.execute(update(counters).where(counters.c.name == name).values(value=value))
        return value

    def close(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None
        self.engine.dispose()


def resume_trading(ledger: Ledger, who: str, reason: str) -> str:
    """Clear a loss-limit halt (kill switch or daily loss) after a human looked; the only way trading
    resumes: a restart reloads the halt. Returns the halt cleared ('' if trading was not halted: nothing
    is changed then).

    The equity peak and the day's start equity are reset too (stored as "not seen yet"), so the trader's
    first equity mark after it starts becomes both: kept, the old peak would trip the kill switch again
    at once, the day the trip happened is already past the daily loss limit. An audit row
    `trading_resumed` names who, why, the halt cleared and the peak dropped, in the same transaction.

    `ledger` must be opened with `exclusive=True` (refused with LedgerLocked while a trader runs on it):
    a running trader keeps its halt in memory and would never see the resume."""
    if not ledger.exclusive:
        raise ValueError("resume_trading needs the ledger opened with exclusive=True (stop the trader first: "
                         "a running trader would keep its halt)")
    if not who.strip() or not reason.strip():
        raise ValueError("resume_trading needs who resumes and why (both non-empty), for the audit trail")
    before = ledger.risk_state()
    if not before.halted:
        return ""
    with ledger.engine.begin() as conn:
        _put_risk_state(conn, RiskState())
        conn.execute(insert(audit).values(at=_now(), kind="trading_resumed", detail=json.dumps({
            "who": who, "reason": reason, "halt_cleared": before.halted, "halted_at_ms": before.halted_at_ms,
            "peak_equity_dropped": before.peak_equity})))
    return before.halted


def _put_operator_state(conn: Any, state: OperatorState) -> None:
    values = {"halt": state.halt, "no_buys": state.no_buys, "pinned_version": state.pinned_version,
              "updated_at": _now()}
    if conn.execute(update(operator_state).where(operator_state.c.id == 1).values(**values)).rowcount == 0:
        conn.execute(insert(operator_state).values(id=1, **values))


def _put_risk_state(conn: Any, state: RiskState) -> None:
    values = {"peak_equity": state.peak_equity, "day": state.day, "day_start_equity": state.day_start_equity,
              "halted": state.halted, "halted_at_ms": state.halted_at_ms, "halted_until_ms": state.halted_until_ms,
              "updated_at": _now()}
    if conn.execute(update(risk_state).where(risk_state.c.id == 1).values(**values)).rowcount == 0:
        conn.execute(insert(risk_state).values(id=1, **values))


class _PostgresLease:
    """A session-level advisory lock held on one connection for the trader's lifetime."""

    def __init__(self, engine: Engine, key: int) -> None:
        self.conn = engine.connect()
        got = self.conn.execute(text("select pg_try_advisory_lock(:k)"), {"k": key}).scalar()
        self.conn.commit()
        if not got:
            self.conn.close()
            raise LedgerLocked(f"another krakenflow trader holds the ledger {safe_url(str(engine.url))} "
                               f"(PostgreSQL advisory lock {key}); stop it first — one trader per ledger and key")

    def release(self) -> None:
        self.conn.close()  # the lock ends with its session


def _take_lock(engine: Engine) -> Any:
    """SQLite file: an OS lock beside it (released by the kernel when the process dies, even on kill -9).
    PostgreSQL: an advisory lock. In-memory databases are private to one process already."""
    if engine.dialect.name == "postgresql":
        key = int(hashlib.sha256(f"krakenflow-ledger:{safe_url(str(engine.url))}".encode()).hexdigest()[:15], 16)
        try:
            return _PostgresLease(engine, key)
        except OperationalError as err:
            raise LedgerError(f"cannot open the ledger at {safe_url(str(engine.url))}: "
                              f"{str(err.orig).strip()}") from None
    database = engine.url.database
    if engine.dialect.name != "sqlite" or database in (None, "", ":memory:"):
        return None
    lock = FileLock(f"{database}.lock", blocking=False)
    try:
        lock.acquire()
    except Timeout:
        raise LedgerLocked(f"another krakenflow trader is using the ledger {database} (lock {database}.lock "
                           f"is held); stop it first — one trader per ledger and key") from None
    return lock


def _to_record(row: Any) -> IntentRecord:
    intent = OrderIntent(row["client_id"], row["pair"], Side(row["side"]), row["quantity"], row["reason"])
    created = row["created_at"]
    if created.tzinfo is None:  # SQLite hands back naive datetimes; they were written in UTC
        created = created.replace(tzinfo=UTC)
    return IntentRecord(intent, row["status"], row["txid"], row["model_version"], created.timestamp())


def _decision_row(d: Decision, model_version: int | None, at: datetime) -> dict[str, Any]:
    return {"ts": d.ts, "pair": d.pair, "prob": None if math.isnan(d.prob) else d.prob, "action": d.action,
            "reason": d.reason, "model_version": model_version, "at": at}
