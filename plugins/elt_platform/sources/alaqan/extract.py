"""Load Alaqan days into bronze: fetch ``byDate`` per day, land the raw body, flatten, replace slices.

The unit of idempotency is the day: every day of the interval is requested, its raw response landed
once (compressed, content-addressed) and its rows replace that day's partition in
``bronze.alaqan_visits`` (and its rejected records in ``bronze.alaqan_visits_quarantine``). Days are
committed in chunks — an Iceberg commit costs 70–190 ms and grows with snapshot count, so a year of
history must not commit per day — and fetched by a small thread pool that the client's rate limiter
keeps polite.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import pyarrow as pa
from pyiceberg.catalog import Catalog

from elt_platform.iceberg.catalog import load_catalog
from elt_platform.iceberg.tables import TableSpec, load_spec
from elt_platform.iceberg.writer import CommitInfo, ensure_table, replace_dates
from elt_platform.landing import land
from elt_platform.sources.alaqan.parsing import ParsedDay, parse_by_date

log = logging.getLogger(__name__)

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

    def as_dict(self) -> dict:
        return {
            "days": self.days,
            "events": self.events,
            "quarantined": self.quarantined,
            "commits": self.commits,
            "quarantine_reasons": dict(self.quarantine_reasons),
        }


def days_in_interval(start: date, end: date) -> list[date]:
    """Days of the half-open interval ``[start, end)``.

    Raises:
        ValueError: ``end`` is before ``start``.
    """
    if end < start:
        raise ValueError(f"interval end {end} is before its start {start}")
    return [start + timedelta(days=n) for n in range((end - start).days)]


def _chunks(items: list[date], size: int) -> Iterator[list[date]]:
    for offset in range(0, len(items), size):
        yield items[offset : offset + size]


def _to_arrow(records: list[dict], spec: TableSpec, constants: dict) -> pa.Table:
    schema = spec.arrow_schema()
    columns = {}
    for name in schema.names:
        if name in constants:
            columns[name] = pa.repeat(pa.scalar(constants[name], schema.field(name).type), len(records))
        else:
            columns[name] = pa.array([r.get(name) for r in records], type=schema.field(name).type)
    return pa.table(columns, schema=schema)


def fetch_days(
    fetch: Callable[[date], object], days: Iterable[date], *, workers: int = 4
) -> Iterator[tuple[date, object]]:
    """Fetch days concurrently, yielding them in order (a failure surfaces at its day)."""
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="alaqan-fetch") as pool:
        yield from zip(days, pool.map(fetch, days), strict=True)


def _fetch_and_land(fetch: Callable[[date], bytes]) -> Callable[[date], tuple[bytes, str]]:
    """Fetch a day and land its raw body in the worker thread (gzip releases the GIL), before parsing."""

    def fetch_and_land(day: date) -> tuple[bytes, str]:
        body = fetch(day)
        return body, land(body, source=SOURCE, key=f"byDate/visit_date={day.isoformat()}")

    return fetch_and_land


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
        AlaqanPayloadError: a day's body is unusable (its raw body is landed first, for inspection).
        AlaqanAuthError, AlaqanUnavailableError: from the client.
    """
    catalog = catalog or load_catalog()
    visits_spec, quarantine_spec = load_spec(VISITS_SPEC), load_spec(QUARANTINE_SPEC)
    visits = ensure_table(catalog, visits_spec)
    quarantine = ensure_table(catalog, quarantine_spec)
    days = days_in_interval(start, end)
    commit = CommitInfo(run_id, SOURCE, start.isoformat(), end.isoformat())
    summary = LoadSummary()
    log.info("alaqan: loading %d day(s) [%s, %s) as run %s", len(days), start, end, run_id)

    for chunk in _chunks(days, days_per_commit):
        # Each day becomes Arrow at once: a chunk of Python dicts would cost memory and GC time.
        loaded_at = datetime.now(UTC)
        base = {"load_date": loaded_at.date(), "loaded_at": loaded_at, "_run_id": run_id}
        visit_parts: list[pa.Table] = []
        rejected_parts: list[pa.Table] = []
        for day, (body, uri) in fetch_days(_fetch_and_land(fetch), chunk, workers=workers):
            parsed: ParsedDay = parse_by_date(day, body)
            constants = {**base, "_landing_uri": uri}
            visit_parts.append(_to_arrow(parsed.rows, visits_spec, constants))
            rejected_parts.append(_to_arrow(parsed.quarantined, quarantine_spec, constants))
            for record in parsed.quarantined:
                code = record["reason"].split(":", 1)[0]
                summary.quarantine_reasons[code] = summary.quarantine_reasons.get(code, 0) + 1
            summary.days += 1
            log.info(
                "alaqan %s: %d events, %d quarantined (%d/%d days)",
                day,
                len(parsed.rows),
                len(parsed.quarantined),
                summary.days,
                len(days),
            )
        summary.events += replace_dates(
            visits, pa.concat_tables(visit_parts), column="visit_date", dates=chunk, commit=commit
        )
        summary.quarantined += replace_dates(
            quarantine, pa.concat_tables(rejected_parts), column="visit_date", dates=chunk, commit=commit
        )
        summary.commits += 2
    log.info(
        "alaqan: loaded %d events over %d day(s), %d quarantined %s",
        summary.events,
        summary.days,
        summary.quarantined,
        summary.quarantine_reasons or "",
    )
    return summary


def extract_interval(start: date, end: date, *, run_id: str) -> dict:
    """Airflow entry point: load ``[start, end)`` with the ``alaqan_default`` connection.

    Returns:
        :meth:`LoadSummary.as_dict` (becomes the task's XCom and the asset event's extra).
    """
    from airflow.sdk import BaseHook

    from elt_platform.sources.alaqan.client import AlaqanClient
    from elt_platform.sources.alaqan.settings import CONN_ID

    with AlaqanClient.from_connection(BaseHook.get_connection(CONN_ID)) as client:
        return load_days(client.by_date, start, end, run_id=run_id).as_dict()
