"""Equity marks (the console's equity and drawdown), operator commands (the control API's queue, applied by
the running trader between polls) and the operator state they leave (a halt, buying stopped, a pinned model).

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "equity",
        sa.Column("ts", sa.BigInteger, primary_key=True),
        sa.Column("equity", sa.Float, nullable=False),
        sa.Column("cash", sa.Float, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "commands",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("args", sa.Text, nullable=False),
        sa.Column("who", sa.String(128), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("result", sa.Text, nullable=False, server_default=sa.text("''")),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True)),
    )
    op.create_table(
        "operator_state",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("halt", sa.Text, nullable=False, server_default=sa.text("''")),
        sa.Column("no_buys", sa.Text, nullable=False, server_default=sa.text("''")),
        sa.Column("pinned_version", sa.Integer),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("operator_state")
    op.drop_table("commands")
    op.drop_table("equity")
