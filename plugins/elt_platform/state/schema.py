"""The state tables as SQLAlchemy Core objects, for the queries of this package.

The database schema itself is created and changed only by the Alembic migrations in
``migrations/versions/``; ``tests/plugins/state/test_store.py`` compares this module with the migrated
schema so the two cannot drift. A new table means a new migration *and* an entry here.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    Double,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)
from sqlalchemy.types import TypeDecorator

ACCOUNT_LENGTH = 200
RUN_ID_LENGTH = 250


class UTCDateTime(TypeDecorator):
    """A ``timestamptz`` that always reads back as a UTC-aware ``datetime``.

    SQLite has no time-zone type: values are stored as UTC wall-clock text and given their zone back
    on read, so both dialects return the same aware values.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("state timestamps must be timezone-aware")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _account_key() -> Column:
    """The key of a per-account table: one external API account (a Column belongs to one table)."""
    return Column("account", String(ACCOUNT_LENGTH), primary_key=True)


def _updated_at() -> Column:
    """When the row last changed; every state table has it."""
    return Column("updated_at", UTCDateTime, nullable=False)


metadata = MetaData()

oauth_tokens = Table(
    "oauth_tokens",
    metadata,
    _account_key(),
    Column("access_token", Text, nullable=False),
    Column("refresh_token", Text),
    Column("expires_at", UTCDateTime),
    Column("token_type", String(40), nullable=False),
    _updated_at(),
)

request_budgets = Table(
    "request_budgets",
    metadata,
    _account_key(),
    Column("rate", Double, nullable=False),
    Column("burst", Integer, nullable=False),
    # Token-bucket balance (negative = requests already promised to sleeping callers) as of
    # refilled_at, in Unix seconds: every process reads the same wall clock.
    Column("tokens", Double, nullable=False),
    Column("refilled_at", Double, nullable=False),
    _updated_at(),
)

circuit_breakers = Table(
    "circuit_breakers",
    metadata,
    _account_key(),
    Column("state", String(10), nullable=False),
    Column("reason", Text),
    Column("opened_at", UTCDateTime),
    Column("reset_at", UTCDateTime),
    _updated_at(),
)

watermarks = Table(
    "watermarks",
    metadata,
    Column("key", String(500), primary_key=True),
    Column("value", Text, nullable=False),
    _updated_at(),
)

transform_ledger = Table(
    "transform_ledger",
    metadata,
    Column("domain", String(ACCOUNT_LENGTH), primary_key=True),
    Column("source", String(ACCOUNT_LENGTH), primary_key=True),
    Column("slice_key", String(500), primary_key=True),
    Column("slice_start", Date),
    Column("slice_end", Date),
    Column("status", String(20), nullable=False),
    Column("run_id", String(RUN_ID_LENGTH), nullable=False),
    Column("claimed_by", String(RUN_ID_LENGTH)),
    Column("claimed_at", UTCDateTime),
    Column("done_at", UTCDateTime),
    _updated_at(),
    Index("ix_transform_ledger_domain_status", "domain", "status"),
)

DESTINATION_LENGTH = 100
EXTERNAL_ID_LENGTH = 200

# The reverse-ETL outbox: one row per destination and external id (F<branch>_<ID>) — what was last
# sent, the CRM ids it maps to, and where the row is in its life (sent / intent / failed / dead / review).
reverse_etl_records = Table(
    "reverse_etl_records",
    metadata,
    Column("destination", String(DESTINATION_LENGTH), primary_key=True),
    Column("external_id", String(EXTERNAL_ID_LENGTH), primary_key=True),
    Column("status", String(20), nullable=False),
    Column("row_hash", String(64)),
    Column("sent_fields", Text),
    Column("crm_ids", Text),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UTCDateTime),
    Column("last_error", Text),
    Column("last_run_id", String(RUN_ID_LENGTH)),
    _updated_at(),
    Index("ix_reverse_etl_records_destination_status", "destination", "status"),
)

# One run's plan: a row per candidate with the action, the matching rule that fired, the field diff,
# and — once executed — its outcome. Also the operation log the error-rate alert counts.
reverse_etl_plan = Table(
    "reverse_etl_plan",
    metadata,
    Column("run_id", String(RUN_ID_LENGTH), primary_key=True),
    Column("destination", String(DESTINATION_LENGTH), primary_key=True),
    Column("external_id", String(EXTERNAL_ID_LENGTH), primary_key=True),
    Column("reason", String(20), nullable=False),
    Column("action", String(40), nullable=False),
    Column("rule", String(60), nullable=False),
    Column("row_hash", String(64)),
    Column("row_json", Text, nullable=False),
    Column("fields_json", Text),
    Column("diff_json", Text),
    Column("crm_ids", Text),
    Column("outcome", String(20)),
    Column("error", Text),
    _updated_at(),
    Index("ix_reverse_etl_plan_destination_updated", "destination", "updated_at"),
)

reverse_etl_runs = Table(
    "reverse_etl_runs",
    metadata,
    Column("run_id", String(RUN_ID_LENGTH), primary_key=True),
    Column("destination", String(DESTINATION_LENGTH), primary_key=True),
    Column("status", String(20), nullable=False),
    Column("dry_run", Boolean, nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime),
    Column("summary", Text),
    _updated_at(),
)

ALERT_RULE_LENGTH = 60

# Breaches of an alert rule that are open now (a stale source, a destination's error rate): the row
# exists from the first failed check until the next passing one, so each breach is alerted once.
alert_breaches = Table(
    "alert_breaches",
    metadata,
    Column("rule", String(ALERT_RULE_LENGTH), primary_key=True),
    Column("subject", String(ACCOUNT_LENGTH), primary_key=True),
    Column("opened_at", UTCDateTime, nullable=False),
    Column("detail", Text),
    Column("alerted_at", UTCDateTime),
    _updated_at(),
)
