"""Idempotent bronze writes: replace exactly a slice of a table in one Iceberg commit.

Every load overwrites the partitions it covers (never a blind append), so reruns and backfills of
the same interval converge to the same table. Each write carries a :class:`CommitInfo`: the writer
stamps it on every row (:data:`~elt_platform.iceberg.tables.LINEAGE_COLUMNS`: ``_run_id``,
``_loaded_at``, ``_batch_id``, ``_source_uri``) and into the snapshot summary (``elt.run_id``,
``elt.data_interval_start``/``end``, ``elt.source``, ``elt.batch_id``), so a bad run can be found with
``python -m elt_platform.cli snapshots TABLE`` and undone with ``… rollback``.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, TypeAlias

import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import NamespaceAlreadyExistsError, NoSuchTableError, TableAlreadyExistsError
from pyiceberg.expressions import In
from pyiceberg.table import Table

from elt_platform.iceberg.tables import LINEAGE_NAMES, TableSpec

SliceValue: TypeAlias = date | str | int
"""One value of a slice column: a day, a string key (a package id) or an int."""

log = logging.getLogger(__name__)

TABLE_PROPERTIES = {
    "format-version": "2",
    "write.parquet.compression-codec": "zstd",
    "commit.retry.num-retries": "8",
}
#: Lineage columns renamed since tables were first created: old name → new name (kept data, no rewrite).
RENAMED_COLUMNS = {"_landing_uri": "_source_uri"}
_STRING = pa.large_string()
_UTC_MICROS = pa.timestamp("us", tz="UTC")


@dataclass(frozen=True)
class CommitInfo:
    """The lineage of a write: stamped on its rows and into its snapshot summary.

    Attributes:
        run_id: Airflow run id or CLI batch id (``_run_id``).
        source: Source name (``elt.source``).
        interval_start: First day of the data interval (ISO), interval sources only.
        interval_end: Day after the last one (ISO).
        batch_id: The slice written (``_batch_id``); default ``<interval_start>/<interval_end>`` when
            both are set (e.g. ``2025-03-03/2025-03-04``), else none.
        source_uri: Where the rows came from (``_source_uri``): one URI for the whole write, or a
            mapping slice value → URI when each slice has its own raw response (a landed day).
        loaded_at: ``_loaded_at``; default: the moment of the write.
    """

    run_id: str
    source: str
    interval_start: str = ""
    interval_end: str = ""
    batch_id: str | None = None
    source_uri: str | Mapping[Any, str] | None = None
    loaded_at: datetime | None = None

    @property
    def batch(self) -> str | None:
        """The ``_batch_id`` value."""
        if self.batch_id is not None:
            return self.batch_id
        if self.interval_start and self.interval_end:
            return f"{self.interval_start}/{self.interval_end}"
        return None

    def snapshot_properties(self) -> dict[str, str]:
        return {
            "elt.run_id": self.run_id,
            "elt.source": self.source,
            "elt.data_interval_start": self.interval_start,
            "elt.data_interval_end": self.interval_end,
            "elt.batch_id": self.batch or "",
        }


def ensure_table(catalog: Catalog, spec: TableSpec) -> Table:
    """Create the table (and namespace) if missing; add columns the declaration gained since.

    A table created before a lineage column was renamed (:data:`RENAMED_COLUMNS`) gets the column
    renamed, keeping its values.

    Args:
        catalog: the lakehouse catalog.
        spec: the declaration from ``schemas/``.

    Returns:
        The loaded table.
    """
    try:
        catalog.create_namespace(spec.namespace)
    except NamespaceAlreadyExistsError:
        pass
    try:
        table = catalog.load_table(spec.identifier)
    except NoSuchTableError:
        log.info("creating %s", spec.identifier)
        try:
            return catalog.create_table(
                spec.identifier,
                schema=spec.iceberg_schema(),
                partition_spec=spec.partition_spec(),
                properties={**TABLE_PROPERTIES, "comment": spec.description},
            )
        except TableAlreadyExistsError:
            # Two first loads (a backfill's parallel runs) raced to create it: use the winner's.
            log.info("%s was created concurrently; loading it", spec.identifier)
            table = catalog.load_table(spec.identifier)
    existing = table.schema().column_names
    renames = {old: new for old, new in RENAMED_COLUMNS.items() if old in existing and new not in existing}
    if renames:
        log.info("evolving %s: renaming %s", spec.identifier, renames)
        with table.update_schema() as update:
            for old, new in renames.items():
                update.rename_column(old, new)
        table = catalog.load_table(spec.identifier)
    missing = [c.name for c in spec.columns if c.name not in table.schema().column_names]
    if missing:
        log.info("evolving %s: adding %s", spec.identifier, missing)
        with table.update_schema() as update:
            update.union_by_name(spec.iceberg_schema())
        table = catalog.load_table(spec.identifier)
    return table


def _source_uris(data: pa.Table, uris: Mapping[Any, str], column: str) -> pa.Array:
    """Each row's URI, looked up by its ``column`` value (null where the mapping has none)."""
    values = data.column(column)
    keys = pa.array(list(uris), type=values.type)
    positions = pc.index_in(values, value_set=keys)
    return pa.array(list(uris.values()), type=_STRING).take(positions)


def stamp_lineage(data: pa.Table, commit: CommitInfo, *, column: str | None = None) -> pa.Table:
    """``data`` with the lineage columns set from ``commit`` (any it already had are replaced).

    Args:
        data: rows to write (with or without lineage columns).
        commit: the write's lineage.
        column: the slice column, needed when ``commit.source_uri`` maps slice values to URIs.

    Returns:
        The business columns of ``data`` followed by ``_run_id``, ``_loaded_at``, ``_batch_id``,
        ``_source_uri``.
    """
    rows = len(data)
    base = data.drop_columns([n for n in data.column_names if n in LINEAGE_NAMES])
    if isinstance(commit.source_uri, Mapping):
        if column is None:
            raise ValueError("per-slice source URIs need the slice column")
        source_uri = _source_uris(data, commit.source_uri, column)
    else:
        source_uri = pa.repeat(pa.scalar(commit.source_uri, _STRING), rows)
    stamps = {
        "_run_id": pa.repeat(pa.scalar(commit.run_id, _STRING), rows),
        "_loaded_at": pa.repeat(pa.scalar(commit.loaded_at or datetime.now(UTC), _UTC_MICROS), rows),
        "_batch_id": pa.repeat(pa.scalar(commit.batch, _STRING), rows),
        "_source_uri": source_uri,
    }
    for name, values in stamps.items():
        base = base.append_column(pa.field(name, values.type), values)
    return base


def _slice_keys(values: Iterable[SliceValue]) -> list[str | int]:
    return sorted({v.isoformat() if isinstance(v, date) else v for v in values})


def _write(
    table: Table, data: pa.Table, *, column: str, keys: list[str | int], commit: CommitInfo, new: bool
) -> None:
    name = ".".join(table.name())
    distinct = pc.unique(data.column(column)).to_pylist()
    written = {v.isoformat() if isinstance(v, date) else v for v in distinct}
    outside = written - set(keys)
    if outside:
        raise ValueError(f"{name}: rows for {sorted(outside)[:3]} fall outside the slice being replaced")
    properties = commit.snapshot_properties()
    if new:
        if len(data):
            table.append(data, snapshot_properties=properties)
        return
    with warnings.catch_warnings():
        # The first load of a slice deletes nothing: normal, not worth a warning in every task log.
        warnings.filterwarnings("ignore", message="Delete operation did not match any records")
        # pyiceberg's pydantic predicates: mypy sees the model fields, not the positional __init__.
        row_filter = In(column, keys)  # type: ignore[call-arg, misc, arg-type]
        table.overwrite(data, overwrite_filter=row_filter, snapshot_properties=properties)


def replace_slice(
    table: Table,
    data: pa.Table,
    *,
    column: str,
    values: Iterable[SliceValue],
    commit: CommitInfo,
    new_slice: bool = False,
) -> int:
    """Replace every row whose ``column`` is in ``values`` by ``data``, in one commit, lineage stamped.

    A value with no rows in ``data`` ends up empty: that is how a rerun corrects a slice the source
    has since emptied. ``column`` should be a partition column so the delete is metadata-only.

    Args:
        table: target table.
        data: rows to write, in the table's Arrow schema with or without the lineage columns (those
            are set from ``commit`` either way).
        column: the column the slice is defined on (e.g. ``visit_date``, ``package_id``).
        values: the slice (dates, strings, ints).
        commit: lineage for the rows and the snapshot summary.
        new_slice: the caller knows no row of the slice exists yet (a package never loaded): append,
            without the delete pass an overwrite costs; an empty ``data`` then commits nothing.

    Returns:
        Number of rows written.

    Raises:
        ValueError: ``data`` holds rows outside the slice (they would survive the next rerun twice).
    """
    keys = _slice_keys(values)
    if not keys:
        return 0
    stamped = stamp_lineage(data, commit, column=column)
    _write(table, stamped, column=column, keys=keys, commit=commit, new=new_slice)
    log.info(
        "%s: replaced %d %s value(s) %s..%s with %d rows (run %s)",
        ".".join(table.name()),
        len(keys),
        column,
        keys[0],
        keys[-1],
        len(data),
        commit.run_id,
    )
    return len(data)


def restore_slice(
    table: Table, rows: pa.Table, *, column: str, values: Iterable[SliceValue], commit: CommitInfo
) -> int:
    """Put rows read back from an earlier snapshot back as the slice, keeping their own lineage.

    The undo of :func:`replace_slice` when other writers committed since (so the snapshot cannot simply
    be made current again); ``commit`` only labels the snapshot.

    Returns:
        Number of rows written.
    """
    keys = _slice_keys(values)
    if not keys:
        return 0
    _write(table, rows, column=column, keys=keys, commit=commit, new=False)
    return len(rows)


def replace_dates(
    table: Table, data: pa.Table, *, column: str, dates: Iterable[date], commit: CommitInfo
) -> int:
    """:func:`replace_slice` for a date-partitioned table (one partition per day)."""
    return replace_slice(table, data, column=column, values=dates, commit=commit)
