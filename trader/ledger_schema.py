"""Ledger tables (SQLAlchemy 2 Core). Alembic migrations in trader/migrations create and evolve them."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

metadata = MetaData()

intents = Table(
    "intents", metadata,
    Column("client_id", String(64), primary_key=True),
    Column("pair", String(32), nullable=False),
    Column("side", String(4), nullable=False),
    Column("quantity", Float, nullable=False),
    Column("reason", Text, nullable=False, default=""),
    Column("model_version", Integer),
    Column("status", String(16), nullable=False),
    Column("txid", String(64)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

fills = Table(
    "fills", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("trade_id", String(64), nullable=False),
    Column("client_id", String(64), ForeignKey("intents.client_id"), nullable=False),
    Column("pair", String(32), nullable=False),
    Column("side", String(4), nullable=False),
    Column("quantity", Float, nullable=False),
    Column("price", Float, nullable=False),
    Column("fee", Float, nullable=False),
    Column("ts", BigInteger, nullable=False),
    UniqueConstraint("trade_id", name="uq_fills_trade_id"),
)

balances = Table(
    "balances", metadata,
    Column("asset", String(16), primary_key=True),
    Column("amount", Float, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

audit = Table(
    "audit", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("detail", Text, nullable=False),
    Index("ix_audit_kind_id", "kind", "id"),
)

counters = Table(
    "counters", metadata,
    Column("name", String(64), primary_key=True),
    Column("value", BigInteger, nullable=False),
)

decisions = Table(
    "decisions", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ts", BigInteger, nullable=False),
    Column("pair", String(32), nullable=False),
    Column("prob", Float),
    Column("action", String(16), nullable=False),
    Column("reason", Text, nullable=False),
    Column("model_version", Integer),
    Column("at", DateTime(timezone=True), nullable=False),
    Index("ix_decisions_action_id", "action", "id"),
    Index("ix_decisions_pair_id", "pair", "id"),
)

adjustments = Table(
    "adjustments", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("pair", String(32), nullable=False),
    Column("quantity", Float, nullable=False),
    Column("reason", Text, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
)

risk_state = Table(
    "risk_state", metadata,
    Column("id", Integer, primary_key=True),  # always 1: one trader per ledger, one state
    Column("peak_equity", Float, nullable=False),
    Column("day", BigInteger, nullable=False),
    Column("day_start_equity", Float, nullable=False),
    Column("halted", Text, nullable=False, server_default=text("''")),
    Column("halted_at_ms", BigInteger),
    Column("halted_until_ms", BigInteger),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
"""What the risk limits remember across restarts (trader.risk.RiskState): the equity peak (USD), the UTC
day number and its start equity (USD), and a loss-limit halt: its reason ('' = none), when it was set and
when it lifts by itself (epoch ms; NULL = only `resume_trading` lifts it)."""

equity = Table(
    "equity", metadata,
    Column("ts", BigInteger, primary_key=True),  # the newest candle's open time the mark was taken at
    Column("equity", Float, nullable=False),
    Column("cash", Float, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
)
"""Cash plus positions at the last close, once per candle the trader saw (live and paper): the console's curve."""

commands = Table(
    "commands", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(32), nullable=False),
    Column("args", Text, nullable=False),
    Column("who", String(128), nullable=False),
    Column("status", String(16), nullable=False),  # pending → done | refused
    Column("result", Text, nullable=False, server_default=text("''")),
    Column("requested_at", DateTime(timezone=True), nullable=False),
    Column("done_at", DateTime(timezone=True)),
)
"""Operator commands from the control API: the running trader applies them between polls, in order."""

operator_state = Table(
    "operator_state", metadata,
    Column("id", Integer, primary_key=True),  # always 1
    Column("halt", Text, nullable=False, server_default=text("''")),
    Column("no_buys", Text, nullable=False, server_default=text("''")),
    Column("pinned_version", Integer),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
"""What the operator's commands left in force (a restart keeps them): a halt ('' = none), buying stopped
('' = allowed) with its reason, a model version pinned instead of following the alias (NULL = follow)."""
