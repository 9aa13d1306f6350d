"""Initial state tables: OAuth tokens, request budgets, circuit breakers, watermarks, transform ledger.

Revision ID: 0001
Revises:
Create Date: 2025-12-01

The reverse-ETL outbox is left to revision 0002.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# Frozen copies of the lengths in schema.py: a migration must keep creating what it created.
ACCOUNT = 200
RUN_ID = 250
LEDGER_STATUSES = ("loaded", "pending", "claimed", "done")


def _stamp() -> sa.Column:
    return sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False)


def upgrade() -> None:
    op.create_table(
        "oauth_tokens",
        sa.Column("account", sa.String(ACCOUNT), primary_key=True),
        sa.Column("access_token", sa.Text, nullable=False),
        sa.Column("refresh_token", sa.Text),
        sa.Column("expires_at", sa.DateTime(timezone=True)),
        sa.Column("token_type", sa.String(40), nullable=False),
        _stamp(),
    )
    op.create_table(
        "request_budgets",
        sa.Column("account", sa.String(ACCOUNT), primary_key=True),
        sa.Column("rate", sa.Double, nullable=False),
        sa.Column("burst", sa.Integer, nullable=False),
        sa.Column("tokens", sa.Double, nullable=False),
        sa.Column("refilled_at", sa.Double, nullable=False),
        _stamp(),
    )
    op.create_table(
        "circuit_breakers",
        sa.Column("account", sa.String(ACCOUNT), primary_key=True),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("opened_at", sa.DateTime(timezone=True)),
        sa.Column("reset_at", sa.DateTime(timezone=True)),
        _stamp(),
        sa.CheckConstraint("state IN ('open', 'closed')", name="ck_circuit_breakers_state"),
    )
    op.create_table(
        "watermarks",
        sa.Column("key", sa.String(500), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
        _stamp(),
    )
    statuses = ", ".join(f"'{status}'" for status in LEDGER_STATUSES)
    op.create_table(
        "transform_ledger",
        sa.Column("domain", sa.String(ACCOUNT), primary_key=True),
        sa.Column("source", sa.String(ACCOUNT), primary_key=True),
        sa.Column("slice_key", sa.String(500), primary_key=True),
        sa.Column("slice_start", sa.Date),
        sa.Column("slice_end", sa.Date),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("run_id", sa.String(RUN_ID), nullable=False),
        sa.Column("claimed_by", sa.String(RUN_ID)),
        sa.Column("claimed_at", sa.DateTime(timezone=True)),
        sa.Column("done_at", sa.DateTime(timezone=True)),
        _stamp(),
        sa.CheckConstraint(f"status IN ({statuses})", name="ck_transform_ledger_status"),
    )
    op.create_index("ix_transform_ledger_domain_status", "transform_ledger", ["domain", "status"])


def downgrade() -> None:
    op.drop_index("ix_transform_ledger_domain_status", table_name="transform_ledger")
    for table in ("transform_ledger", "watermarks", "circuit_breakers", "request_budgets", "oauth_tokens"):
        op.drop_table(table)
