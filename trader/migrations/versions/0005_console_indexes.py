"""Indexes the console's queries need on a ledger of millions of decisions: decisions by action and by pair
(paging with holds hidden, per-pair charts), audit rows by kind (alerts, reconciliation runs).

Revision ID: 0005
Revises: 0004
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_decisions_action_id", "decisions", ["action", "id"])
    op.create_index("ix_decisions_pair_id", "decisions", ["pair", "id"])
    op.create_index("ix_audit_kind_id", "audit", ["kind", "id"])


def downgrade() -> None:
    op.drop_index("ix_audit_kind_id", "audit")
    op.drop_index("ix_decisions_pair_id", "decisions")
    op.drop_index("ix_decisions_action_id", "decisions")
