"""Load iDent into ``bronze.ident_*``: every database of the manifest, every table, one transaction.

Two entry points (registry: ``extract_ident`` daily, ``extract_ident_receptions`` every minute):

* :func:`extract_interval` — all tables for the data interval ``[start, end)``:
  Receptions by ``RowVersion`` from the watermark, audit-column tables by the interval's local window
  (widened by the manifest's overlap; the whole history while the table has no watermark), reference
  tables as a full snapshot, then **key-set reconciliation** of the incremental tables: keys live in
  bronze but gone from the source get a tombstone row (``is_deleted = true``).
* :func:`extract_receptions` — only the rowversion tables (Receptions), no reconciliation.

The slice a run replaces is its ``_batch_id``: ``<start>/<end>`` for the daily run, ``receptions/<run id>``
for a micro-batch (the factory hands every micro-batch the same day interval; the run id is what is
unique and survives retries). ``extract_date`` is the interval's last day (the day itself for a one-day
interval; the snapshot day for full tables) or, for a micro-batch, the UTC day it ran.

Rows stream from ``fetchmany`` chunks into a Parquet file per table, so memory holds one chunk while
reading, and one table's slice while committing. All tables are committed through one
:class:`~elt_platform.bronze.transaction.SliceTransaction`; the **watermarks advance last, inside it**,
in one state-store transaction that checks nobody moved them meanwhile: a failed commit leaves them
where they were, and a failed watermark write rolls the tables back.

Rowversion reruns: the watermark's companion key ``ident:<db>:<table>:last_batch`` remembers the last
batch and its range, so rerunning that batch re-reads the same lower bound (nothing lost, nothing twice);
rerunning an older batch keeps the rows bronze already holds for it (those versions cannot be re-read);
a daily rerun reconciles those kept keys too, so a row deleted at the source since becomes a tombstone.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyiceberg.catalog import Catalog
from pyiceberg.expressions import And, EqualTo, NotEqualTo
from pyiceberg.table import Table as IcebergTable
from sqlalchemy import select

from elt_platform.bronze.arrow import records_to_arrow
from elt_platform.bronze.transaction import SliceTransaction
from elt_platform.iceberg.tables import BATCH_COLUMN, LINEAGE_NAMES, TableSpec, load_spec
from elt_platform.iceberg.writer import CommitInfo, ensure_table
from elt_platform.sources.ident import queries
from elt_platform.sources.ident.client import IdentClient, OdbcSettings
from elt_platform.sources.ident.declarations import spec_path
from elt_platform.sources.ident.manifest import Manifest, load_manifest, snake
from elt_platform.state.schema import watermarks
from elt_platform.state.store import StateStore, utcnow

log = logging.getLogger(__name__)

SOURCE = "ident"
SLICE_COLUMN = BATCH_COLUMN  # no slice column declared: a run replaces its own batch
#: Lower bound of an audit table's initial load (no watermark yet): SQL Server datetime's range starts 1753.
AUDIT_EPOCH = datetime(1753, 1, 1)
Mode = Literal["daily", "receptions"]
Opener = Callable[[str], IdentClient]


class WatermarkConflictError(RuntimeError):
    """Another run moved a watermark while this one loaded: its commit is rolled back (retry)."""


def watermark_key(database: str, table: str) -> str:
    """``ident:<db>:<table>`` — the state-store key of a table's watermark in one database."""
    return f"{SOURCE}:{database}:{table}"


@dataclass
class Summary:
    """What a run did: rows per table and database, deletes found, watermarks before/after."""

    mode: str
    batch_id: str
    rows: dict[str, dict[str, int]] = field(default_factory=dict)
    deleted: dict[str, dict[str, int]] = field(default_factory=dict)
    kept: dict[str, dict[str, int]] = field(default_factory=dict)
    watermarks: dict[str, dict[str, str | None]] = field(default_factory=dict)
    written: dict[str, int] = field(default_factory=dict)

    def count(self, bucket: dict[str, dict[str, int]], table: str, database: str, n: int) -> None:
        bucket.setdefault(table, {}).setdefault(database, 0)
        bucket[table][database] += n

    def as_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "batch_id": self.batch_id,
            "rows": self.rows,
            "deleted": self.deleted,
            "kept_from_bronze": self.kept,
            "watermarks": self.watermarks,
            "written": self.written,
        }


class _Stage:
    """One table's rows for the run as Arrow, spilled to Parquet chunk by chunk."""

    def __init__(self, spec: TableSpec, directory: Path) -> None:
        self.spec = spec
        self.schema = spec.arrow_schema(lineage=False)
        self.path = directory / f"{spec.identifier}.parquet"
        self.rows = 0
        self._writer: pq.ParquetWriter | None = None

    def add(self, batch: pa.Table) -> None:
        if not len(batch):
            return
        if self._writer is None:
            self._writer = pq.ParquetWriter(self.path, self.schema, compression="zstd")
        self._writer.write_table(batch.select(self.schema.names).cast(self.schema))
        self.rows += len(batch)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def read(self) -> pa.Table:
        self.close()
        return pq.read_table(self.path, schema=self.schema) if self.rows else self.schema.empty_table()


def _local(day: date, zone: str) -> datetime:
    """Midnight UTC of ``day`` as the clinic's wall clock (naive, like iDent's datetimes)."""
    return datetime.combine(day, time.min, tzinfo=UTC).astimezone(ZoneInfo(zone)).replace(tzinfo=None)


def _chunk_to_arrow(
    names: list[str], rows: list[tuple], spec: TableSpec, constants: Mapping[str, Any]
) -> pa.Table:
    columns = [snake(n) for n in names]
    records = [dict(zip(columns, row, strict=True)) for row in rows]
    return records_to_arrow(records, spec, constants)


class _Run:
    """One load: the manifest, the open stages, the watermark updates waiting for the commit."""

    def __init__(
        self,
        manifest: Manifest,
        *,
        mode: Mode,
        start: date,
        end: date,
        run_id: str,
        store: StateStore,
        catalog: Catalog,
        directory: Path,
        today: date,
    ) -> None:
        self.manifest = manifest
        self.mode = mode
        self.start, self.end = start, end
        self.run_id = run_id
        self.store = store
        self.catalog = catalog
        self.batch = f"{start.isoformat()}/{end.isoformat()}" if mode == "daily" else f"receptions/{run_id}"
        self.extract_date = today if mode == "receptions" else end - timedelta(days=1)
        names = [n for n, t in manifest.tables.items() if mode == "daily" or t.rowversion]
        self.specs = {n: load_spec(spec_path(n)) for n in names}
        self.tables: dict[str, IcebergTable] = {n: ensure_table(catalog, s) for n, s in self.specs.items()}
        self.stages = {n: _Stage(s, directory) for n, s in self.specs.items()}
        self.summary = Summary(mode=mode, batch_id=self.batch)
        #: key → (value read before the load, value to store after the commit)
        self.updates: dict[str, tuple[str | None, str]] = {}
        #: (table, database) → live rows kept from this batch's earlier commit, staged by reconcile()
        self.kept_rows: dict[tuple[str, str], pa.Table] = {}

    def constants(self, database: str) -> dict[str, Any]:
        return {"source_db": database, "extract_date": self.extract_date, "is_deleted": False}

    def _read(
        self, client: IdentClient, name: str, database: str, query: queries.Query, params: list
    ) -> list[Any]:
        """Stream a query into the table's stage; returns the max of each tracking column seen."""
        table, spec, stage = self.manifest.tables[name], self.specs[name], self.stages[name]
        tracked = [snake(c) for c in table.tracking_columns]
        highest: list[Any] = [None] * len(tracked)
        for names, rows in client.stream(query, params):
            batch = _chunk_to_arrow(names, rows, spec, self.constants(database))
            for i, column in enumerate(tracked):
                value = pc.max(batch.column(column)).as_py()
                if value is not None and (highest[i] is None or value > highest[i]):
                    highest[i] = value
            stage.add(batch)
            self.summary.count(self.summary.rows, name, database, len(batch))
        self.summary.count(self.summary.rows, name, database, 0)
        return highest

    def load_rowversion(self, client: IdentClient, name: str, database: str) -> None:
        key = watermark_key(database, name)
        before = get(self.store, key)
        last = get(self.store, f"{key}:last_batch")
        low = int(before or 0)
        if last and last.rsplit("|", 2)[0] == self.batch:
            low = int(last.rsplit("|", 2)[1])  # rerun of the last batch: the same lower bound
        elif self._committed_before(name, database):
            kept = self._keep_committed(name, database)
            self.summary.count(self.summary.kept, name, database, kept)
            self.summary.count(self.summary.rows, name, database, 0)
            log.info(
                "ident %s db %s: batch %s committed before; kept its %d rows",
                name,
                database,
                self.batch,
                kept,
            )
            return
        high = int(client.scalar(queries.high_water(self.manifest, name, client.dialect)) or 0)
        high = max(high, low)
        self._read(client, name, database, queries.by_rowversion(self.manifest, name), [low, high])
        self.updates[key] = (before, str(max(high, int(before or 0))))
        self.updates[f"{key}:last_batch"] = (last, f"{self.batch}|{low}|{high}")

    def load_audit(self, client: IdentClient, name: str, database: str) -> None:
        table = self.manifest.tables[name]
        zone = self.manifest.databases[database].timezone
        overlap = timedelta(minutes=self.manifest.audit_overlap_minutes)
        key = watermark_key(database, name)
        before = get(self.store, key)
        last = get(self.store, f"{key}:last_batch")
        low, high = _local(self.start, zone), _local(self.end, zone)
        if last and last.rsplit("|", 1)[0] == self.batch:
            low = datetime.fromisoformat(last.rsplit("|", 1)[1])  # rerun of the last batch: the same range
        elif before is None:
            low = AUDIT_EPOCH  # never loaded: the initial load reads the whole history
        else:
            if datetime.fromisoformat(before) < low:
                low = datetime.fromisoformat(before)  # runs were missed: catch up from the last value seen
            low -= overlap
        params = [v for _ in table.audit for v in (low, high)]
        seen = [
            v for v in self._read(client, name, database, queries.by_audit(self.manifest, name), params) if v
        ]
        latest = max([*seen, *([datetime.fromisoformat(before)] if before else [])], default=None)
        if latest is not None:
            self.updates[key] = (before, latest.isoformat())
        self.updates[f"{key}:last_batch"] = (last, f"{self.batch}|{low.isoformat()}")

    def load_full(self, client: IdentClient, name: str, database: str) -> None:
        self._read(client, name, database, queries.full(self.manifest, name), [])

    def reconcile(self, client: IdentClient, name: str, database: str) -> None:
        """Tombstones for keys live in bronze (outside this batch) that the source no longer has."""
        key_columns = [snake(k) for k in self.manifest.tables[name].key]
        chunks = [
            pa.table(
                [list(column) for column in zip(*rows, strict=True)] if rows else [[] for _ in key_columns],
                names=key_columns,
            )
            for _, rows in client.stream(queries.keys(self.manifest, name))
        ]
        key_schema = pa.schema([self.specs[name].arrow_schema().field(c) for c in key_columns])
        source = (
            pa.concat_tables([c.cast(key_schema) for c in chunks]) if chunks else key_schema.empty_table()
        )
        live = live_keys(self.tables[name], key_columns, database=database, exclude_batch=self.batch)
        kept = self.kept_rows.pop((name, database), None)
        if kept is not None and len(kept):
            # Rows kept from this batch's earlier commit were read then, not now: their keys may be gone.
            both = pa.concat_tables([live, kept.select(key_columns).cast(live.schema)])
            live = both.group_by(key_columns).aggregate([])
        gone = live.join(source, key_columns, join_type="left anti") if len(live) else live
        if kept is not None:
            self.stages[name].add(kept.join(gone, key_columns, join_type="left anti") if len(gone) else kept)
        if len(gone):
            constants = {**self.constants(database), "is_deleted": True}
            self.stages[name].add(records_to_arrow(gone.to_pylist(), self.specs[name], constants))
        self.summary.count(self.summary.deleted, name, database, len(gone))

    def _committed_before(self, name: str, database: str) -> bool:
        row_filter = And(
            EqualTo(SLICE_COLUMN, self.batch),  # type: ignore[call-arg, misc, arg-type]  # pyiceberg's positional predicate constructor
            EqualTo("source_db", database),  # type: ignore[call-arg, misc, arg-type]
        )
        return (
            len(
                self.tables[name]
                .scan(row_filter=row_filter, selected_fields=("source_db",), limit=1)
                .to_arrow()
            )
            > 0
        )

    def _keep_committed(self, name: str, database: str) -> int:
        row_filter = And(
            EqualTo(SLICE_COLUMN, self.batch),  # type: ignore[call-arg, misc, arg-type]  # pyiceberg's positional predicate constructor
            EqualTo("source_db", database),  # type: ignore[call-arg, misc, arg-type]
        )
        kept = self.tables[name].scan(row_filter=row_filter).to_arrow()
        kept = kept.drop_columns([c for c in kept.column_names if c in LINEAGE_NAMES])
        kept = self._latest_versions_only(name, database, kept)
        if self.mode == "daily" and self.manifest.tables[name].reconciled:
            # reconcile() stages them less the keys deleted since, and writes every tombstone anew.
            tombstone = pc.fill_null(kept.column("is_deleted"), False)
            self.kept_rows[(name, database)] = kept.filter(pc.invert(tombstone))
        else:
            self.stages[name].add(kept)
        return len(kept)

    def _latest_versions_only(self, name: str, database: str, kept: pa.Table) -> pa.Table:
        """Kept rows less those a later batch holds a newer version of (by the rowversion column).

        The writer stamps kept rows with this commit's ``_loaded_at``; a superseded version kept would
        then pass for the latest one (silver and reconciliation take the last load).
        """
        key_columns = [snake(k) for k in self.manifest.tables[name].key]
        version = snake(self.manifest.tables[name].rowversion or "")
        if not len(kept) or version not in kept.column_names:
            return kept
        row_filter = And(
            EqualTo("source_db", database),  # type: ignore[call-arg, misc, arg-type]
            NotEqualTo(SLICE_COLUMN, self.batch),  # type: ignore[call-arg, misc, arg-type]
        )
        others = (
            self.tables[name].scan(row_filter=row_filter, selected_fields=(*key_columns, version)).to_arrow()
        )
        if not len(others):
            return kept
        newest = others.group_by(key_columns).aggregate([(version, "max")])
        joined = kept.join(newest, key_columns, join_type="left outer")
        current = pc.fill_null(
            pc.greater_equal(joined.column(version), joined.column(f"{version}_max")), True
        )
        return joined.filter(current).drop_columns([f"{version}_max"]).select(kept.column_names)

    def commit(self) -> None:
        commit = CommitInfo(
            self.run_id,
            SOURCE,
            self.start.isoformat(),
            self.end.isoformat(),
            batch_id=self.batch,
            source_uri=f"odbc://{SOURCE}/{','.join(self.manifest.databases)}",
        )
        for stage in self.stages.values():
            stage.close()
        with SliceTransaction(column=SLICE_COLUMN, values=[self.batch], commit=commit) as tx:
            for name, table in self.tables.items():
                self.summary.written[self.specs[name].identifier] = tx.replace(table, self.stages[name].read)
            advance_watermarks(self.store, self.updates)
        for key, (before, after) in self.updates.items():
            if not key.endswith(":last_batch"):
                self.summary.watermarks[key] = {"before": before, "after": after}


def get(store: StateStore, key: str) -> str | None:
    """A watermark's value (None if never set)."""
    with store.transaction(write=False) as conn:
        value = conn.execute(select(watermarks.c.value).where(watermarks.c.key == key)).scalar_one_or_none()
    return value or None


def advance_watermarks(store: StateStore, updates: Mapping[str, tuple[str | None, str]]) -> None:
    """Set every watermark at once, if each still holds the value read before the load.

    Raises:
        WatermarkConflictError: one was moved meanwhile (nothing is written).
    """
    if not updates:
        return
    now = utcnow()
    with store.transaction() as conn:
        for key, (before, _) in sorted(updates.items()):
            row = store.lock_row(conn, watermarks, {"key": key}, defaults={"value": "", "updated_at": now})
            if (row.value or None) != before:
                raise WatermarkConflictError(
                    f"watermark {key} moved from {before!r} to {row.value!r} during the load"
                )
        for key, (_, after) in updates.items():
            store.upsert(conn, watermarks, {"key": key, "value": after, "updated_at": now})


def live_keys(table: IcebergTable, key_columns: list[str], *, database: str, exclude_batch: str) -> pa.Table:
    """Keys of ``database`` whose latest bronze row (outside ``exclude_batch``) is not a tombstone."""
    row_filter = And(
        EqualTo("source_db", database),  # type: ignore[call-arg, misc, arg-type]  # pyiceberg's positional predicate constructor
        NotEqualTo(SLICE_COLUMN, exclude_batch),  # type: ignore[call-arg, misc, arg-type]
    )
    rows = table.scan(
        row_filter=row_filter, selected_fields=(*key_columns, "is_deleted", "_loaded_at")
    ).to_arrow()
    if not len(rows):
        return rows.select(key_columns)
    stamp = pc.cast(rows.column("_loaded_at"), pa.int64())
    rows = rows.append_column(
        "live_at", pc.if_else(rows.column("is_deleted"), pa.scalar(None, pa.int64()), stamp)
    )
    rows = rows.append_column(
        "dead_at", pc.if_else(rows.column("is_deleted"), stamp, pa.scalar(None, pa.int64()))
    )
    latest = rows.group_by(key_columns).aggregate([("live_at", "max"), ("dead_at", "max")])
    alive = pc.or_kleene(
        pc.is_null(latest.column("dead_at_max")),
        pc.greater(latest.column("live_at_max"), latest.column("dead_at_max")),
    )
    return latest.filter(pc.fill_null(alive, False)).select(key_columns)


def load(
    manifest: Manifest,
    start: date,
    end: date,
    *,
    run_id: str,
    mode: Mode,
    open_client: Opener,
    store: StateStore,
    catalog: Catalog,
    today: date | None = None,
) -> Summary:
    """Extract one run from every database of ``manifest`` into bronze, all tables or none.

    Args:
        manifest: The validated manifest.
        start: First day of the data interval (UTC days).
        end: Day after the last one.
        run_id: Airflow run id (micro-batches: also their slice).
        mode: ``daily`` (every table, reconciliation) or ``receptions`` (rowversion tables only).
        open_client: Database key → an unopened :class:`IdentClient`.
        store: State store holding the watermarks.
        catalog: Lakehouse catalog.
        today: A micro-batch's ``extract_date`` (default: today in UTC).

    Returns:
        The run's :class:`Summary`.

    Raises:
        ValueError: The interval is empty.
        WatermarkConflictError: Another run moved a watermark meanwhile (tables rolled back; retry).
        pyodbc.Error: A query failed (nothing committed).
    """
    if end <= start:
        raise ValueError(f"interval [{start}, {end}) is empty")
    with tempfile.TemporaryDirectory(prefix="ident-stage-") as directory:
        run = _Run(
            manifest, mode=mode, start=start, end=end, run_id=run_id, store=store, catalog=catalog,
            directory=Path(directory), today=today or datetime.now(UTC).date(),
        )  # fmt: skip
        for database in manifest.databases:
            with open_client(database) as client:
                for name in run.specs:
                    table = manifest.tables[name]
                    if table.rowversion:
                        run.load_rowversion(client, name, database)
                    elif table.audit:
                        run.load_audit(client, name, database)
                    else:
                        run.load_full(client, name, database)
                    if mode == "daily" and table.reconciled:
                        run.reconcile(client, name, database)
        run.commit()
    log.info("ident %s %s: rows %s deleted %s", mode, run.batch, run.summary.rows, run.summary.deleted)
    return run.summary


def _airflow_opener(manifest: Manifest) -> Opener:
    from airflow.sdk import BaseHook

    def open_client(database: str) -> IdentClient:
        connection = BaseHook.get_connection(manifest.databases[database].connection)
        return IdentClient(OdbcSettings.from_connection(connection), chunk_rows=manifest.chunk_rows)

    return open_client


def _run(start: date, end: date, run_id: str, mode: Mode) -> dict:
    from elt_platform.iceberg.catalog import load_catalog
    from elt_platform.state.store import open_state_store

    manifest = load_manifest()
    summary = load(
        manifest, start, end, run_id=run_id, mode=mode, open_client=_airflow_opener(manifest),
        store=open_state_store(), catalog=load_catalog(),
    )  # fmt: skip
    return summary.as_dict()


def extract_interval(start: date, end: date, *, run_id: str) -> dict:
    """Airflow entry (``extract_ident``): every table of every database for ``[start, end)``.

    Connections ``ident_<n>`` (``conn_type`` odbc) per the manifest's databases.

    Returns:
        :meth:`Summary.as_dict`: rows per table/database, deletes found, watermarks before/after.
    """
    return _run(start, end, run_id, "daily")


def extract_receptions(start: date, end: date, *, run_id: str) -> dict:
    """Airflow entry (``extract_ident_receptions``): Receptions changed since the watermark, all databases."""
    return _run(start, end, run_id, "receptions")


__all__ = [
    "Summary",
    "WatermarkConflictError",
    "advance_watermarks",
    "extract_interval",
    "extract_receptions",
    "live_keys",
    "load",
    "watermark_key",
]
