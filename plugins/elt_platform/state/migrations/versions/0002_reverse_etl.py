"""The reverse-ETL outbox: per-record state, per-run plans (also the operation log) and run reports.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# Frozen copies of the lengths in schema.py: a migration must keep creating what it created.
DESTINATION = 100
EXTERNAL_ID = 200
RUN_ID = 250


def _stamp() -> sa.Column:
    return sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False)


def upgrade() -> None:
    op.create_table(
        "reverse_etl_records",
        sa.Column("destination", sa.String(DESTINATION), primary_key=True),
        sa.Column("external_id", sa.String(EXTERNAL_ID), primary_key=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("row_hash", sa.String(64)),
        sa.Column("sent_fields", sa.Text),
        sa.Column("crm_ids", sa.Text),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True)),
        sa.Column("last_error", sa.Text),
        sa.Column("last_run_id", sa.String(RUN_ID)),
        _stamp(),
    )
    op.create_index(
        "ix_reverse_etl_records_destination_status", "reverse_etl_records", ["destination", "status"]
    )
    op.create_table(
        "reverse_etl_plan",
        sa.Column("run_id", sa.String(RUN_ID), primary_key=True),
        sa.Column("destination", sa.String(DESTINATION), primary_key=True),
        sa.Column("external_id", sa.String(EXTERNAL_ID), primary_key=True),
        sa.Column("reason", sa.String(20), nullable=False),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("rule", sa.String(60), nullable=False),
        sa.Column("row_hash", sa.String(64)),
        sa.Column("row_json", sa.Text, nullable=False),
        sa.Column("fields_json", sa.Text),
        sa.Column("diff_json", sa.Text),
        sa.Column("crm_ids", sa.Text),
        sa.Column("outcome", sa.String(20)),
        sa.Column("error", sa.Text),
        _stamp(),
    )
    op.create_index(
        "ix_reverse_etl_plan_destination_updated", "reverse_etl_plan", ["destination", "updated_at"]
    )
    op.create_table(
        "reverse_etl_runs",
        sa.Column("run_id", sa.String(RUN_ID), primary_key=True),
        sa.Column("destination", sa.String(DESTINATION), primary_key=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("dry_run", sa.Boolean, nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column("summary", sa.Text),
        _stamp(),
    )


def downgrade() -> None:
    op.drop_table("reverse_etl_runs")
    op.drop_index("ix_reverse_etl_plan_destination_updated", "reverse_etl_plan")
    op.drop_table("reverse_etl_plan")
    op.drop_index("ix_reverse_etl_records_destination_status", "reverse_etl_records")
    op.drop_table("reverse_etl_records")
