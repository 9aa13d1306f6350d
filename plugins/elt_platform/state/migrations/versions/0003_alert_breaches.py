"""Open alert breaches: one row per rule and subject while the rule is breached (alert at most once).

Revision ID: 0003
Revises: 0002
Create Date: 2027-01-15
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# Frozen copies of the lengths in schema.py: a migration must keep creating what it created.
RULE = 60
SUBJECT = 200


def upgrade() -> None:
    op.create_table(
        "alert_breaches",
        sa.Column("rule", sa.String(RULE), primary_key=True),
        sa.Column("subject", sa.String(SUBJECT), primary_key=True),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("detail", sa.Text),
        sa.Column("alerted_at", sa.DateTime(timezone=True)),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("alert_breaches")
