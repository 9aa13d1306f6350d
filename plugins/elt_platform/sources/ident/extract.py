"""Load iDent into ``bronze.ident_*``: every database of the manifest, every table, one transaction.

Two entry points (registry: ``extract_ident`` daily, ``extract_ident_receptions`` every 30 seconds):

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

Memory does not grow with a table's size: rows stream from ``fetchmany`` chunks into a Parquet file per
table (:class:`~elt_platform.sources.ident.staging.Stage`: one chunk in memory while reading); each table
commits in pieces of bounded size inside one Iceberg transaction (the slice deleted once, the pieces
appended); the reconciliation and the reruns read bronze one data file at a time
(:mod:`~elt_platform.sources.ident.reconcile`), holding the source's key set at most. All tables are
committed through one :class:`~elt_platform.sources.ident.staging.PiecewiseSliceTransaction`; the
**watermarks advance last, inside it**, in one state-store transaction that checks nobody moved them
meanwhile: a failed commit leaves them where they were, and a failed watermark write rolls the tables back.

Rowversion reruns: the watermark's companion key ``ident:<db>:<table>:last_batch`` remembers the last
batch and its range, so rerunning that batch re-reads the same lower bound (nothing lost, nothing twice);
rerunning an older batch keeps the rows bronze already holds for it (those versions cannot be re-read);
a daily rerun reconciles those kept keys too, so a row deleted at the source since becomes a tombstone.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import select

from elt_platform.bronze.arrow import records_to_arrow
from elt_platform.iceberg.tables import BATCH_COLUMN, LINEAGE_NAMES, load_spec
from elt_platform.iceberg.writer import CommitInfo, ensure_table, release_freed_memory
from elt_platform.sources.ident import queries
from elt_platform.sources.ident.client import IdentClient, OdbcSettings
from elt_platform.sources.ident.declarations import spec_path
from elt_platform.sources.ident.manifest import Manifest, load_manifest, snake
from elt_platform.sources.ident.reconcile import (
    any_row,
    gone_keys,
    in_batch,
    scan_batches,
    source_keys,
    superseded,
)
from elt_platform.sources.ident.staging import COMMIT_BYTES, PiecewiseSliceTransaction, Stage
from elt_platform.state.schema import watermarks
from elt_platform.state.store import StateStore, utcnow

if TYPE_CHECKING:
    from pyiceberg.catalog import Catalog
    from pyiceberg.table import Table as IcebergTable

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


def _local(day: date, zone: str) -> datetime:
    """Midnight UTC of ``day`` as the clinic's wall clock (naive, like iDent's datetimes)."""
    return datetime.combine(day, time.min, tzinfo=UTC).astimezone(ZoneInfo(zone)).replace(tzinfo=None)


def _chunk_to_arrow(
    names: list[str], rows: Sequence[Sequence[Any]], schema: pa.Schema, constants: Mapping[str, Any]
) -> pa.Table:
    """One ``fetchmany`` chunk in the stage's schema, built column by column.

    Not :func:`~elt_platform.bronze.arrow.records_to_arrow`: a dict per row would double the chunk's
    Python objects, and ODBC values are scalars (no nested value to turn into JSON).
    """
    position = {snake(n): i for i, n in enumerate(names)}
    columns = list(zip(*rows, strict=True))
    arrays = []
    for f in schema:
        if f.name in constants:
            arrays.append(pa.repeat(pa.scalar(constants[f.name], f.type), len(rows)))
        elif f.name in position and columns:
            arrays.append(pa.array(columns[position[f.name]], type=f.type))
        else:
            arrays.append(pa.nulls(len(rows), f.type))
    return pa.Table.from_arrays(arrays, schema=schema)


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
        commit_bytes: int = COMMIT_BYTES,
    ) -> None:
        self.manifest = manifest
        self.mode = mode
        self.start, self.end = start, end
        self.run_id = run_id
        self.store = store
        self.catalog = catalog
        self.directory = directory
        self.commit_bytes = commit_bytes
        self.batch = f"{start.isoformat()}/{end.isoformat()}" if mode == "daily" else f"receptions/{run_id}"
        self.extract_date = today if mode == "receptions" else end - timedelta(days=1)
        names = [n for n, t in manifest.tables.items() if mode == "daily" or t.rowversion]
        self.specs = {n: load_spec(spec_path(n)) for n in names}
        self.tables: dict[str, IcebergTable] = {n: ensure_table(catalog, s) for n, s in self.specs.items()}
        self.stages = {n: Stage(s, directory / f"{s.identifier}.parquet") for n, s in self.specs.items()}
        self.summary = Summary(mode=mode, batch_id=self.batch)
        #: key → (value read before the load, value to store after the commit)
        self.updates: dict[str, tuple[str | None, str]] = {}
        #: (table, database) → live rows kept from this batch's earlier commit, staged by reconcile()
        self.kept_rows: dict[tuple[str, str], Stage] = {}

    def constants(self, database: str) -> dict[str, Any]:
        return {"source_db": database, "extract_date": self.extract_date, "is_deleted": False}

    def _read(
        self, client: IdentClient, name: str, database: str, query: queries.Query, params: list
    ) -> list[Any]:
        """Stream a query into the table's stage; returns the max of each tracking column seen."""
        table, stage = self.manifest.tables[name], self.stages[name]
        tracked = [snake(c) for c in table.tracking_columns]
        highest: list[Any] = [None] * len(tracked)
        for names, rows in client.stream(query, params):
            batch = _chunk_to_arrow(names, rows, stage.schema, self.constants(database))
            del rows
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
        key_schema = pa.schema([self.specs[name].arrow_schema().field(c) for c in key_columns])
        source = source_keys(client.stream(queries.keys(self.manifest, name)), key_schema)
        kept = self.kept_rows.pop((name, database), None)
        gone = gone_keys(
            self.tables[name],
            source,
            database=database,
            exclude_batch=self.batch,
            # Rows kept from this batch's earlier commit were read then, not now: their keys may be gone.
            kept=kept.pieces(self.commit_bytes) if kept is not None else (),
        )
        del source
        if kept is not None:
            for piece in kept.pieces(self.commit_bytes):
                self.stages[name].add(
                    piece.join(gone, key_columns, join_type="left anti") if len(gone) else piece
                )
        if len(gone):
            constants = {**self.constants(database), "is_deleted": True}
            self.stages[name].add(records_to_arrow(gone.to_pylist(), self.specs[name], constants))
        self.summary.count(self.summary.deleted, name, database, len(gone))

    def _committed_before(self, name: str, database: str) -> bool:
        return any_row(self.tables[name], in_batch(database, self.batch))

    def _keep_committed(self, name: str, database: str) -> int:
        """Stage the rows this batch committed before, less versions a later batch superseded.

        The writer stamps kept rows with this commit's ``_loaded_at``; a superseded version kept would
        then pass for the latest one (silver and reconciliation take the last load).
        """
        table, spec = self.tables[name], self.specs[name]
        key_columns = [snake(k) for k in self.manifest.tables[name].key]
        version = snake(self.manifest.tables[name].rowversion or "")
        mine = [
            pa.Table.from_batches([b])
            for b in scan_batches(table, in_batch(database, self.batch), [*key_columns, version])
        ]
        if not any(len(t) for t in mine):
            return 0
        stale = superseded(table, pa.concat_tables(mine), version, database=database, batch=self.batch)
        del mine
        reconciled = self.mode == "daily" and self.manifest.tables[name].reconciled
        # reconcile() stages them less the keys deleted since, and writes every tombstone anew.
        target = (
            Stage(spec, self.directory / f"{spec.identifier}.kept-{database}.parquet") if reconciled else None
        )
        kept = 0
        for batch in scan_batches(table, in_batch(database, self.batch)):
            rows = pa.Table.from_batches([batch])
            rows = rows.drop_columns([c for c in rows.column_names if c in LINEAGE_NAMES])
            if len(stale):
                rows = rows.join(stale, [*key_columns, version], join_type="left anti")
            kept += len(rows)
            if target is not None:
                target.add(rows.filter(pc.invert(pc.fill_null(rows.column("is_deleted"), False))))
            else:
                self.stages[name].add(rows)
        if target is not None:
            self.kept_rows[(name, database)] = target
        return kept

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
        with PiecewiseSliceTransaction(column=SLICE_COLUMN, values=[self.batch], commit=commit) as tx:
            for name, table in self.tables.items():
                pieces = self.stages[name].pieces(self.commit_bytes)
                self.summary.written[self.specs[name].identifier] = tx.replace_batches(table, pieces)
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
    commit_bytes: int = COMMIT_BYTES,
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
        commit_bytes: Arrow bytes per committed piece of a table (bounds the commit's memory).

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
            directory=Path(directory), today=today or datetime.now(UTC).date(), commit_bytes=commit_bytes,
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
                    # What a table's read and scans freed would otherwise stay with the allocator.
                    release_freed_memory()
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
    "load",
    "watermark_key",
]
