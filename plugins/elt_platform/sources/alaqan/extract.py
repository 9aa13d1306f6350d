"""Load Alaqan days into bronze: one ``byDate`` request per day through the bronze slice loop.

The unit of idempotency is the day: :func:`elt_platform.bronze.slices.load_slices` fetches each day
of the interval, lands its raw body, flattens it with :func:`~.parsing.parse_by_date` and replaces that
day's partition of ``bronze.alaqan_visits`` (its rejected records: ``bronze.alaqan_visits_quarantine``),
a month of days per Iceberg commit. This module only says what an Alaqan slice is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from pyiceberg.catalog import Catalog

from elt_platform.bronze.slices import days, load_slices
from elt_platform.iceberg.catalog import load_catalog
from elt_platform.iceberg.tables import load_spec
from elt_platform.iceberg.writer import CommitInfo
from elt_platform.sources.alaqan.parsing import parse_by_date

VISITS_SPEC = "bronze/alaqan/visits.yaml"
QUARANTINE_SPEC = "bronze/alaqan/visits_quarantine.yaml"
SOURCE = "alaqan"


@dataclass
class LoadSummary:
    """What a load wrote, for logs, task return values and asset event extras."""

    days: int = 0
    events: int = 0
    quarantined: int = 0
    commits: int = 0
    quarantine_reasons: dict[str, int] = field(default_factory=dict)
    batch_id: str | None = None

    def as_dict(self) -> dict:
        return {
            "days": self.days,
            "events": self.events,
            "quarantined": self.quarantined,
            "commits": self.commits,
            "quarantine_reasons": dict(self.quarantine_reasons),
            "batch_id": self.batch_id,
        }


def _landing_key(day: date) -> str:
    return f"byDate/visit_date={day.isoformat()}"


def _load_time_columns(loaded_at: datetime) -> dict[str, Any]:
    # The spec's DDL keeps its own load_date/loaded_at columns beside the platform's _loaded_at.
    return {"load_date": loaded_at.date(), "loaded_at": loaded_at}


def load_days(
    fetch: Callable[[date], bytes],
    start: date,
    end: date,
    *,
    run_id: str,
    catalog: Catalog | None = None,
    days_per_commit: int = 31,
    workers: int = 4,
) -> LoadSummary:
    """Extract ``[start, end)`` into bronze, replacing each day's slice.

    Args:
        fetch: returns the raw ``byDate`` body for a day (``AlaqanClient.by_date``).
        start: first day to load.
        end: day after the last one.
        run_id: Airflow run id (or a CLI batch id), stamped on rows and snapshots.
        catalog: lakehouse catalog (default: from the environment).
        days_per_commit: days written per Iceberg commit.
        workers: concurrent requests (the client's rate limit still applies).

    Returns:
        Counts of what was written.

    Raises:
        SliceError: a day failed — its cause is an ``AlaqanPayloadError`` (unusable body, landed
            first for inspection) or the client's ``AlaqanAuthError``/``AlaqanUnavailableError``;
            the days committed before it stay.
        ValueError: ``end`` is before ``start``.
    """
    loaded = load_slices(
        days(start, end),
        fetch=fetch,
        parse=parse_by_date,
        landing_key=_landing_key,
        table=load_spec(VISITS_SPEC),
        quarantine=load_spec(QUARANTINE_SPEC),
        commit=CommitInfo(run_id, SOURCE, start.isoformat(), end.isoformat()),
        catalog=catalog or load_catalog(),
        slices_per_commit=days_per_commit,
        workers=workers,
        constants=_load_time_columns,
    )
    return LoadSummary(
        days=loaded.slices,
        events=loaded.rows,
        quarantined=loaded.quarantined,
        commits=loaded.commits,
        quarantine_reasons=loaded.quarantine_reasons,
        batch_id=loaded.batch_id,
    )


def extract_interval(start: date, end: date, *, run_id: str) -> dict:
    """Airflow entry point: load ``[start, end)`` with the ``alaqan_default`` connection.

    Requests draw from the account's shared budget in the state store (``alaqan:<host>``, the
    connection's ``requests_per_second``/``burst``): backfills and parallel runs together stay polite.

    Returns:
        :meth:`LoadSummary.as_dict` (becomes the task's XCom and the asset event's extra).
    """
    from airflow.sdk import BaseHook

    from elt_platform.http.accounts import limits_from_connection
    from elt_platform.sources.alaqan.client import AlaqanClient, account_for, connection_base_url
    from elt_platform.sources.alaqan.settings import CONN_ID, DEFAULT_BURST, DEFAULT_REQUESTS_PER_SECOND

    connection = BaseHook.get_connection(CONN_ID)
    budget, breaker = limits_from_connection(
        account_for(connection_base_url(connection)),
        getattr(connection, "extra_dejson", None),
        DEFAULT_REQUESTS_PER_SECOND,
        DEFAULT_BURST,
    )
    with AlaqanClient.from_connection(connection, budget=budget, breaker=breaker) as client:
        return load_days(client.by_date, start, end, run_id=run_id).as_dict()
