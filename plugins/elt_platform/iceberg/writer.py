"""Idempotent bronze writes: replace exactly a slice of a table in one Iceberg commit.

Every load overwrites the partitions it covers (never a blind append), so reruns and backfills of
the same interval converge to the same table. Each commit records who wrote it in the snapshot
summary (``elt.run_id``, ``elt.data_interval_start``/``end``, ``elt.source``) so a bad run can be
found with ``python -m elt_platform.cli snapshots TABLE`` and undone with ``… rollback``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import NamespaceAlreadyExistsError, NoSuchTableError
from pyiceberg.expressions import In
from pyiceberg.table import Table

from elt_platform.iceberg.tables import TableSpec

log = logging.getLogger(__name__)

TABLE_PROPERTIES = {
    "format-version": "2",
    "write.parquet.compression-codec": "zstd",
    "commit.retry.num-retries": "8",
}


@dataclass(frozen=True)
class CommitInfo:
    """Lineage stamped into a snapshot summary."""

    run_id: str
    source: str
    interval_start: str = ""
    interval_end: str = ""

    def snapshot_properties(self) -> dict[str, str]:
        return {
            "elt.run_id": self.run_id,
            "elt.source": self.source,
            "elt.data_interval_start": self.interval_start,
            "elt.data_interval_end": self.interval_end,
        }


def ensure_table(catalog: Catalog, spec: TableSpec) -> Table:
    """Create the table (and namespace) if missing; add columns the declaration gained since.

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
        return catalog.create_table(
            spec.identifier,
            schema=spec.iceberg_schema(),
            partition_spec=spec.partition_spec(),
            properties={**TABLE_PROPERTIES, "comment": spec.description},
        )
    missing = [c.name for c in spec.columns if c.name not in table.schema().column_names]
    if missing:
        log.info("evolving %s: adding %s", spec.identifier, missing)
        with table.update_schema() as update:
            update.union_by_name(spec.iceberg_schema())
        table = catalog.load_table(spec.identifier)
    return table


def replace_slice(
    table: Table,
    data: pa.Table,
    *,
    column: str,
    values: Iterable[object],
    commit: CommitInfo,
) -> int:
    """Replace every row whose ``column`` is in ``values`` by ``data``, in one commit.

    A value with no rows in ``data`` ends up empty: that is how a rerun corrects a slice the source
    has since emptied. ``column`` should be a partition column so the delete is metadata-only.

    Args:
        table: target table.
        data: rows to write, already in the table's Arrow schema.
        column: the column the slice is defined on (e.g. ``visit_date``, ``package_id``).
        values: the slice (dates, strings, ints).
        commit: lineage for the snapshot summary.

    Returns:
        Number of rows written.

    Raises:
        ValueError: ``data`` holds rows outside the slice (they would survive the next rerun twice).
    """
    keys = sorted({v.isoformat() if isinstance(v, date) else v for v in values})
    if not keys:
        return 0
    name = ".".join(table.name())
    distinct = pc.unique(data.column(column)).to_pylist()
    written = {v.isoformat() if isinstance(v, date) else v for v in distinct}
    outside = written - set(keys)
    if outside:
        raise ValueError(f"{name}: rows for {sorted(outside)[:3]} fall outside the slice being replaced")
    table.overwrite(data, overwrite_filter=In(column, keys), snapshot_properties=commit.snapshot_properties())
    log.info(
        "%s: replaced %d %s value(s) %s..%s with %d rows (run %s)",
        name,
        len(keys),
        column,
        keys[0],
        keys[-1],
        len(data),
        commit.run_id,
    )
    return len(data)


def replace_dates(
    table: Table, data: pa.Table, *, column: str, dates: Iterable[date], commit: CommitInfo
) -> int:
    """:func:`replace_slice` for a date-partitioned table (one partition per day)."""
    return replace_slice(table, data, column=column, values=dates, commit=commit)
