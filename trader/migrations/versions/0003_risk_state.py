"""Risk state: the equity peak, the day's start equity and a loss-limit halt survive a restart.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "risk_state",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("peak_equity", sa.Float, nullable=False),
        sa.Column("day", sa.BigInteger, nullable=False),
        sa.Column("day_start_equity", sa.Float, nullable=False),
        sa.Column("halted", sa.Text, nullable=False, server_default=sa.text("''")),
        sa.Column("halted_at_ms", sa.BigInteger),
        sa.Column("halted_until_ms", sa.BigInteger),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("risk_state")
