"""Load one data interval of amoCRM into ``bronze.amocrm_*``, every table or none.

:func:`load_interval` walks the entities in dependency order (spec §2.4):

1. full snapshots — pipelines with statuses, users, custom-field definitions of leads, contacts and
   companies — sliced by ``snapshot_date`` = the interval's first day;
2. companies, contacts, leads (``with=contacts,companies``) and tasks changed in the interval
   (``filter[updated_at][from|to]``, ``order[updated_at]=asc``), then events created in it
   (``filter[created_at]``), one UTC day at a time, sliced by that day.

Each page is landed raw first (``<landing>/amocrm/<entity>/<slice>=<day>/page=NNNNN/``), then parsed
into rows and quarantined records, converted to Arrow and spilled to a Parquet file per table, so the
process holds one page of dicts at a time whatever the interval's size (a 1M-lead backfill included).
Then every table's slices are replaced in **one multi-table transaction**: a failure in any table rolls
back the ones already committed, so a failed run leaves bronze as it was and a rerun replaces exactly
its slices. A table is committed in groups of days of at most ``COMMIT_BYTES`` staged Arrow bytes
(:func:`commit_groups`; a daily run is one group), so a long backfill holds one group in memory, not a
whole table. Days without records are emptied too: a rerun corrects a day the source has since emptied.

Before the commit, this run's custom-field definitions are compared with the previous snapshot in bronze:
new, renamed and removed fields per entity are logged and returned (silver maps fields by id).
"""

from __future__ import annotations

import logging
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa
import pyarrow.parquet as pq
from pyiceberg.catalog import Catalog
from pyiceberg.table import Table

from elt_platform.bronze.arrow import records_to_arrow
from elt_platform.bronze.slices import days
from elt_platform.bronze.transaction import SliceTransaction, StagedRows
from elt_platform.iceberg.tables import TableSpec, load_spec
from elt_platform.iceberg.writer import CommitInfo, ensure_table, release_freed_memory
from elt_platform.landing import land
from elt_platform.sources.amocrm.parsing import SHAPES, custom_field_changes, page_records, parse_records
from elt_platform.sources.amocrm.settings import (
    COMMIT_BYTES,
    CURSOR_FIELDS,
    CUSTOM_FIELD_ENTITIES,
    ENDPOINTS,
    ENTITIES,
    EVENTS_PAGE_SIZE,
    ORDERED,
    PAGE_SIZE,
    SNAPSHOT_ENTITIES,
    SOURCE,
    WITH,
    custom_fields_path,
)

log = logging.getLogger(__name__)

QUARANTINE = "quarantine"
TABLES = (*ENTITIES, QUARANTINE)


def spec_path(table: str) -> str:
    """The declaration of ``bronze.amocrm_<table>`` under ``schemas/``."""
    return f"bronze/amocrm/{table}.yaml"


class PagedClient(Protocol):
    """What :func:`load_interval` needs from a client (:class:`~.client.AmoCrmClient`, or a test fake)."""

    def iter_pages(self, path: str, params: Mapping[str, Any] | None = None, *, limit: int = ...) -> Any: ...

    @property
    def stats(self) -> Any: ...


@dataclass
class Summary:
    """What a load wrote and what it cost, for logs, the task's XCom and the asset event's extra.

    Attributes:
        rows: Table (entity) → rows written, quarantine included.
        quarantined: Quarantined records.
        quarantine_reasons: Reason code → records.
        quarantined_by_entity: Entity → quarantined records.
        duplicates: Entity → records seen twice in one day's walk (pages shifting under the walk): kept once.
        pages: Entity → pages fetched (204s included).
        requests: HTTP requests sent (retries and token refreshes included).
        no_content: HTTP 204 answers (empty results).
        custom_field_changes: Entity → ``new``/``renamed``/``removed`` custom fields since the previous
            snapshot (empty lists when there is none).
        previous_custom_fields_snapshot: ``snapshot_date`` compared with (ISO), None for the first one.
        batch_id: ``_batch_id`` of the rows (``<start>/<end>``).
    """

    rows: dict[str, int] = field(default_factory=dict)
    quarantined: int = 0
    quarantine_reasons: Counter[str] = field(default_factory=Counter)
    quarantined_by_entity: Counter[str] = field(default_factory=Counter)
    duplicates: Counter[str] = field(default_factory=Counter)
    pages: Counter[str] = field(default_factory=Counter)
    requests: int = 0
    no_content: int = 0
    custom_field_changes: dict[str, dict[str, list[dict[str, Any]]]] = field(default_factory=dict)
    previous_custom_fields_snapshot: str | None = None
    batch_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-serialisable copy (XCom)."""
        return {
            "rows": dict(self.rows),
            "quarantined": self.quarantined,
            "quarantine_reasons": dict(self.quarantine_reasons),
            "quarantined_by_entity": dict(self.quarantined_by_entity),
            "duplicates": dict(self.duplicates),
            "pages": dict(self.pages),
            "requests": self.requests,
            "no_content": self.no_content,
            "custom_field_changes": self.custom_field_changes,
            "previous_custom_fields_snapshot": self.previous_custom_fields_snapshot,
            "batch_id": self.batch_id,
        }


class _Stage:
    """One table's rows for the interval as Arrow, spilled to Parquet page by page."""

    def __init__(self, spec: TableSpec, directory: Path, loaded_at: datetime) -> None:
        self.spec = spec
        self.path = directory / f"{spec.identifier}.parquet"
        self.schema = spec.arrow_schema(lineage=False)
        self.rows = 0
        #: Arrow bytes staged per slice day: how :func:`commit_groups` splits a long interval.
        self.day_bytes: Counter[date] = Counter()
        #: Parquet row groups per slice day (each page is written as one row group).
        self._row_groups: dict[date, list[int]] = {}
        self._written_groups = 0
        self.source_uris: dict[date, str] = {}
        self._constants = {"loaded_at": loaded_at}
        self._writer: pq.ParquetWriter | None = None

    def add(self, rows: list[dict[str, Any]], day: date) -> None:
        """Stage the rows of one page, all of slice ``day``."""
        if not rows:
            return
        batch = records_to_arrow(rows, self.spec, self._constants)
        if self._writer is None:
            self._writer = pq.ParquetWriter(self.path, self.schema, compression="zstd")
        # One row group per page (pages hold at most 250 rows): a group of days is read back by row group.
        self._writer.write_table(batch, row_group_size=len(batch))
        self._row_groups.setdefault(day, []).append(self._written_groups)
        self._written_groups += 1
        self.rows += len(batch)
        self.day_bytes[day] += batch.nbytes

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def reader(self, days: list[date]) -> Callable[[], pa.Table]:
        """Read the staged rows of ``days`` when their commit's turn comes (one group in memory at a time)."""

        def read() -> pa.Table:
            self.close()
            groups = sorted(g for day in days for g in self._row_groups.get(day, ()))
            if not groups:
                return self.schema.empty_table()
            # One thread: Arrow's reader threads each keep allocator arenas, RSS the commit never gives back.
            with pq.ParquetFile(self.path) as staged:
                return staged.read_row_groups(groups, use_threads=False).cast(self.schema)

        return read


def _epoch(day: date) -> int:
    return int(datetime.combine(day, time.min, tzinfo=UTC).timestamp())


def day_filter(entity: str, day: date) -> dict[str, Any]:
    """Query parameters selecting ``entity`` records of one UTC day (``[from, to]`` are inclusive)."""
    cursor = CURSOR_FIELDS[entity]
    params: dict[str, Any] = {
        f"filter[{cursor}][from]": _epoch(day),
        f"filter[{cursor}][to]": _epoch(day + timedelta(days=1)) - 1,
    }
    if entity in ORDERED:
        # A stable order for page-number pagination over a closed day. A record changed while the day is
        # walked leaves the window (its new version belongs to a later interval) and shifts the records
        # behind it one place back: one may land on a page already read (README, "Quirks").
        params[f"order[{cursor}]"] = "asc"
    if entity in WITH:
        params["with"] = WITH[entity]
    return params


class _Loader:
    """The state of one :func:`load_interval`: stages, landing prefixes, counters."""

    def __init__(self, client: PagedClient, start: date, end: date, stages: dict[str, _Stage]) -> None:
        self.client = client
        self.start = start
        self.end = end
        self.stages = stages
        self.summary = Summary()
        self.custom_fields: list[tuple[str, int, str | None]] = []

    def walk(
        self,
        entity: str,
        path: str,
        params: Mapping[str, Any],
        *,
        landing_key: str,
        slice_day: date,
        first: date,
        end: date,
        limit: int = PAGE_SIZE,
        extra: Mapping[str, Any] | None = None,
        uri_key: str | None = None,
    ) -> None:
        """Fetch, land, parse and stage every page of one list request."""
        stage, quarantine = self.stages[entity], self.stages[QUARANTINE]
        seen: set[tuple[Any, Any]] = set()
        for page in self.client.iter_pages(path, params, limit=limit):
            self.summary.pages[entity] += 1
            if page.content:
                uri = land(page.content, source=SOURCE, key=f"{landing_key}/page={page.number:05d}")
                # _source_uri names the slice's landing folder: one URI per slice, many pages in it.
                base = uri[: uri.index(f"/{SOURCE}/{landing_key}/")]
                stage.source_uris.setdefault(slice_day, f"{base}/{SOURCE}/{uri_key or landing_key}")
            parsed = parse_records(
                entity,
                page_records(page.json(), SHAPES[entity].key, page.what),
                first=first,
                end=end,
                extra=extra,
            )
            rows = []
            for row in parsed.rows:
                key = (row["id"], row.get("updated_at", row.get("created_at")))
                if key in seen:
                    self.summary.duplicates[entity] += 1
                    continue
                seen.add(key)
                rows.append(row)
            stage.add(rows, slice_day)
            quarantine.add(parsed.quarantined, first)
            if entity == "custom_fields":
                self.custom_fields.extend((row["entity_type"], row["id"], row["name"]) for row in rows)
            if parsed.quarantined:
                self.summary.quarantined_by_entity[entity] += len(parsed.quarantined)
                self.summary.quarantine_reasons.update(
                    r["reason"].split(":", 1)[0] for r in parsed.quarantined
                )

    def fetch(self, entity: str) -> None:
        """Every page of ``entity`` for the interval."""
        snapshot = f"snapshot_date={self.start.isoformat()}"
        one_day = timedelta(days=1)
        if entity == "custom_fields":
            for owner in CUSTOM_FIELD_ENTITIES:
                self.walk(
                    entity,
                    custom_fields_path(owner),
                    {},
                    landing_key=f"{entity}/{snapshot}/entity={owner}",
                    uri_key=f"{entity}/{snapshot}",
                    slice_day=self.start,
                    first=self.start,
                    end=self.end,
                    extra={"entity_type": owner},
                )
        elif entity in SNAPSHOT_ENTITIES:
            self.walk(
                entity,
                ENDPOINTS[entity],
                {},
                landing_key=f"{entity}/{snapshot}",
                slice_day=self.start,
                first=self.start,
                end=self.end,
            )
        else:
            column = SHAPES[entity].slice_column
            limit = EVENTS_PAGE_SIZE if entity == "events" else PAGE_SIZE
            for day in days(self.start, self.end):
                self.walk(
                    entity,
                    ENDPOINTS[entity],
                    day_filter(entity, day),
                    limit=limit,
                    landing_key=f"{entity}/{column}={day.isoformat()}",
                    slice_day=day,
                    first=day,
                    end=day + one_day,
                )
        log.info(
            "amocrm %s: %d rows staged from %d page(s)",
            entity,
            self.stages[entity].rows,
            self.summary.pages[entity],
        )


def commit_groups(
    days: list[date], day_bytes: Mapping[date, int], limit: int | None = None
) -> list[list[date]]:
    """Split a table's slice days into consecutive groups of at most ``limit`` staged bytes each.

    Each group is one commit (inside the one transaction), so a long backfill never holds a whole table
    in memory; a day larger than ``limit`` is a group of its own (a slice is never split). Days without
    rows ride along with their neighbours: they are emptied by the commit of their group.

    Args:
        days: The table's slice values, in order.
        day_bytes: Arrow bytes staged per day (days missing: none).
        limit: Most bytes per group (default :data:`~.settings.COMMIT_BYTES`).

    Returns:
        The groups, in order; every day is in exactly one.
    """
    limit = COMMIT_BYTES if limit is None else limit
    groups: list[list[date]] = []
    current: list[date] = []
    size = 0
    for day in days:
        grown = size + day_bytes.get(day, 0)
        if current and grown > limit:
            groups.append(current)
            current, grown = [], day_bytes.get(day, 0)
        current.append(day)
        size = grown
    if current:
        groups.append(current)
    return groups


def previous_custom_fields(
    table: Table, before: date
) -> tuple[date | None, list[tuple[str, int, str | None]]]:
    """The latest custom-field snapshot in bronze taken before ``before``: its date and definitions."""
    dates = table.scan(
        row_filter=f"snapshot_date < '{before.isoformat()}'", selected_fields=("snapshot_date",)
    )
    column = dates.to_arrow().column("snapshot_date")
    if len(column) == 0:
        return None, []
    latest = max(column.to_pylist())
    rows = table.scan(
        row_filter=f"snapshot_date = '{latest.isoformat()}'", selected_fields=("entity_type", "id", "name")
    ).to_arrow()
    return latest, list(
        zip(*(rows.column(c).to_pylist() for c in ("entity_type", "id", "name")), strict=True)
    )


def _log_changes(changes: Mapping[str, Mapping[str, list[dict[str, Any]]]], previous: date | None) -> None:
    for entity, kinds in changes.items():
        for kind, fields in kinds.items():
            if fields:
                log.warning(
                    "amocrm custom fields of %s %s since the snapshot of %s: %s",
                    entity,
                    kind,
                    previous,
                    fields,
                )


def commit_all(staged: Iterable[tuple[Table, str, list[Any], StagedRows, CommitInfo]]) -> dict[str, int]:
    """Replace a slice in each table, all or none (each table may slice on its own column).

    :class:`~elt_platform.bronze.transaction.SliceTransaction` rolls back one slice column's tables; one
    per commit, nested, makes the whole set atomic: a failure unwinds every transaction entered so far,
    newest first (a table committed in several groups of days goes back one group at a time).

    Args:
        staged: ``(table, slice column, slice values, rows, lineage)`` in commit order; a table may
            appear several times, with disjoint slice values.

    Returns:
        Table identifier → rows written.
    """
    written: Counter[str] = Counter()
    with ExitStack() as stack:
        for table, column, values, rows, commit in staged:
            transaction = stack.enter_context(SliceTransaction(column=column, values=values, commit=commit))
            written[".".join(table.name())] += transaction.replace(table, rows)
            release_freed_memory()
    return dict(written)


def load_interval(
    client: PagedClient,
    start: date,
    end: date,
    *,
    run_id: str,
    catalog: Catalog | None = None,
) -> Summary:
    """Extract ``[start, end)`` into every ``bronze.amocrm_*`` table in one transaction.

    Args:
        client: An :class:`~.client.AmoCrmClient` (anything with its ``iter_pages`` and ``stats``).
        start: First day of the interval (UTC days; also the snapshot date).
        end: Day after the last one.
        run_id: Airflow run id (or a CLI batch id), stamped on rows and snapshots.
        catalog: Lakehouse catalog (default: from the environment).

    Returns:
        Counts per table, quarantine reasons, pages, requests, 204s and the custom-field change report.

    Raises:
        ValueError: The interval is empty.
        HttpError: The API failed (auth, ban, retries exhausted…); nothing was committed.
        PageShapeError, PayloadError: A page was unusable (landed for inspection); nothing was committed.
        Exception: A commit failed; every table committed before it was rolled back.
    """
    interval = days(start, end)
    if not interval:
        raise ValueError(f"interval [{start}, {end}) is empty")
    from elt_platform.iceberg.catalog import load_catalog

    catalog = catalog or load_catalog()
    specs = {name: load_spec(spec_path(name)) for name in TABLES}
    tables = {name: ensure_table(catalog, spec) for name, spec in specs.items()}
    loaded_at = datetime.now(UTC)
    log.info("amocrm: loading [%s, %s) as run %s", start, end, run_id)
    with tempfile.TemporaryDirectory(prefix="amocrm-stage-") as directory:
        stages = {name: _Stage(spec, Path(directory), loaded_at) for name, spec in specs.items()}
        loader = _Loader(client, start, end, stages)
        try:
            for entity in ENTITIES:
                loader.fetch(entity)
        finally:
            for stage in stages.values():
                stage.close()
        summary = loader.summary
        previous, before = previous_custom_fields(tables["custom_fields"], start)
        summary.previous_custom_fields_snapshot = previous.isoformat() if previous else None
        summary.custom_field_changes = custom_field_changes(
            before if previous else loader.custom_fields, loader.custom_fields, CUSTOM_FIELD_ENTITIES
        )
        _log_changes(summary.custom_field_changes, previous)

        def lineage(name: str) -> CommitInfo:
            uris = stages[name].source_uris
            return CommitInfo(
                run_id,
                SOURCE,
                start.isoformat(),
                end.isoformat(),
                source_uri=uris or None,
                loaded_at=loaded_at,
            )

        staged = []
        for name in TABLES:
            column = specs[name].slice_column or SHAPES[name].slice_column
            values = [start] if name in SNAPSHOT_ENTITIES else interval
            staged += [
                (tables[name], column, group, stages[name].reader(group), lineage(name))
                for group in commit_groups(values, stages[name].day_bytes)
            ]
        written = commit_all(staged)
    summary.rows = {name: written.get(specs[name].identifier, 0) for name in TABLES}
    summary.quarantined = summary.rows[QUARANTINE]
    stats = client.stats
    summary.requests, summary.no_content = stats.requests, stats.no_content
    summary.batch_id = f"{start.isoformat()}/{end.isoformat()}"
    log.info(
        "amocrm: [%s, %s) loaded %s; %d quarantined %s; %d requests, %d pages, %d empty (204)",
        start,
        end,
        {name: count for name, count in summary.rows.items() if name != QUARANTINE},
        summary.quarantined,
        summary.quarantine_reasons or "",
        summary.requests,
        sum(summary.pages.values()),
        summary.no_content,
    )
    return summary


def extract_interval(start: date, end: date, *, run_id: str) -> dict:
    """Airflow entry point: load ``[start, end)`` with the ``amocrm_default`` connection.

    Requests draw from the account's shared budget and breaker in the state store (``amocrm:<host>``,
    the connection's ``requests_per_second``/``burst``, 7/s by default); OAuth token pairs come from the
    same store (seed the first with ``elt amocrm-auth --code CODE``).

    Returns:
        :meth:`Summary.as_dict` (becomes the task's XCom and the asset event's extra).
    """
    from airflow.sdk import BaseHook

    from elt_platform.http.accounts import shared_limits
    from elt_platform.sources.amocrm.client import AmoCrmClient
    from elt_platform.sources.amocrm.connection import ConnectionConfig
    from elt_platform.sources.amocrm.settings import CONN_ID
    from elt_platform.state.store import open_state_store

    connection = BaseHook.get_connection(CONN_ID)
    config = ConnectionConfig.from_connection(connection)
    store = open_state_store()
    budget, breaker = shared_limits(config.account, config.requests_per_second, config.burst, store=store)
    with AmoCrmClient.from_connection(connection, budget=budget, breaker=breaker, store=store) as client:
        return load_interval(client, start, end, run_id=run_id).as_dict()
