"""What bronze already holds, read one data file at a time: hard deletes and kept versions.

Every function here streams bronze (:func:`scan_batches`) and keeps only what the answer needs, so their
memory does not grow with a table's history:

* :func:`gone_keys` — keys live in bronze that the source no longer has. It holds the source's key set
  (:class:`KeySet`: a sorted array, 8 bytes per integer key) and, from bronze, only the rows whose key
  is missing from it — deleted keys, a handful a day.
* :func:`superseded` — which of a batch's rows a later batch holds a newer version of (the rerun of an
  older batch only); it holds that batch's keys and versions, hash-joined.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyiceberg.expressions import And, BooleanExpression, EqualTo, NotEqualTo
from pyiceberg.table import Table

from elt_platform.iceberg.tables import BATCH_COLUMN
from elt_platform.sources.ident.staging import coalesce

#: Bronze rows checked against a key set at once (a few MB of keys and stamps).
JOIN_ROWS = 2**18
#: Rows per batch read from a bronze data file.
SCAN_ROWS = 2**16
FIELD_ID = b"PARQUET:field_id"


def _eq(column: str, value: Any) -> BooleanExpression:
    # pyiceberg's pydantic predicates: mypy sees the model fields, not the positional __init__.
    return EqualTo(column, value)  # type: ignore[call-arg, misc, arg-type]


def _ne(column: str, value: Any) -> BooleanExpression:
    return NotEqualTo(column, value)  # type: ignore[call-arg, misc, arg-type]


def in_batch(database: str, batch: str) -> BooleanExpression:
    """Rows of ``database`` written by ``batch``."""
    return And(_eq(BATCH_COLUMN, batch), _eq("source_db", database))


def outside_batch(database: str, batch: str) -> BooleanExpression:
    """Rows of ``database`` written by any batch but ``batch``."""
    return And(_eq("source_db", database), _ne(BATCH_COLUMN, batch))


def scan_batches(
    table: Table, row_filter: BooleanExpression, selected_fields: Sequence[str] = ("*",)
) -> Iterator[pa.RecordBatch]:
    """The rows of ``table`` matching ``row_filter``: ``selected_fields``, :data:`SCAN_ROWS` at a time.

    pyiceberg plans the scan (partition and column-bounds pruning); the files are read here, batch by
    batch. Its own reader hands every file to a thread pool that decodes it whole into a list, with
    Arrow's read-ahead on top: a file's selected columns (all of them once compaction has made it large)
    would be in memory at once. Columns are matched by Iceberg field id, so renamed columns still read;
    a file it cannot map (no field ids, merge-on-read deletes, not Parquet) takes pyiceberg's path.
    """
    from pyiceberg.expressions.visitors import bind, extract_field_ids
    from pyiceberg.io.pyarrow import ArrowScan, expression_to_pyarrow, schema_to_pyarrow
    from pyiceberg.manifest import FileFormat

    scan = table.scan(row_filter=row_filter, selected_fields=tuple(selected_fields))
    schema, projection = scan.table_metadata.schema(), scan.projection()
    bound = bind(schema, scan.row_filter, case_sensitive=scan.case_sensitive)
    wanted = schema_to_pyarrow(projection, include_field_ids=False)
    needed = {f.field_id for f in projection.fields} | extract_field_ids(bound)
    arrow_filter = expression_to_pyarrow(bound, schema)
    for task in scan.plan_files():
        if not task.delete_files and task.file.file_format == FileFormat.PARQUET:
            with scan.io.new_input(task.file.file_path).open() as stream:
                # A buffered stream: a column chunk is read as it is decoded, not whole.
                parquet = pq.ParquetFile(stream, buffer_size=2**20)
                names = _field_names(parquet.schema_arrow)
                if needed <= set(names):
                    columns = [names[i] for i in sorted(needed)]
                    renamed = [schema.find_column_name(i) for i in sorted(needed)]
                    for batch in _row_group_batches(parquet, columns):
                        rows = pa.Table.from_batches([batch]).rename_columns(renamed).filter(arrow_filter)
                        if len(rows):
                            yield from rows.select(wanted.names).cast(wanted).to_batches()
                    continue
        reader = ArrowScan(scan.table_metadata, scan.io, projection, scan.row_filter, scan.case_sensitive)
        yield from reader.to_record_batches([task])


def _row_group_batches(parquet: pq.ParquetFile, columns: list[str]) -> Iterator[pa.RecordBatch]:
    """``columns`` of a Parquet file, :data:`SCAN_ROWS` at a time, one row group after the other.

    Asked for the whole file at once, Arrow's reader runs ahead of the consumer by many row groups.
    """
    for group in range(parquet.num_row_groups):
        yield from parquet.iter_batches(
            batch_size=SCAN_ROWS, row_groups=[group], columns=columns, use_threads=False
        )


def _field_names(schema: pa.Schema) -> dict[int, str]:
    """Iceberg field id → column name, for the top-level columns of a data file that carry one."""
    return {int(f.metadata[FIELD_ID]): f.name for f in schema if f.metadata and FIELD_ID in f.metadata}


def any_row(table: Table, row_filter: BooleanExpression) -> bool:
    """Whether any row matches (stops at the first file that has one)."""
    return any(len(batch) for batch in scan_batches(table, row_filter, ("source_db",)))


class KeySet:
    """A table's keys, for telling which bronze rows have a key outside the set.

    A single integer key column (every reconciled iDent table) is kept as a sorted ``int64`` array and
    searched: 8 bytes a key. An Arrow hash join against a million keys, per chunk of bronze, peaked
    ~100 MB above that (more under mimalloc); other keys still take the join.

    Args:
        keys: The keys, one column per key column.
    """

    def __init__(self, keys: pa.Table) -> None:
        self.schema = keys.schema
        self.columns = keys.column_names
        self._sorted: np.ndarray | None = None
        self._table: pa.Table | None = keys
        if len(self.columns) == 1 and pa.types.is_integer(keys.schema.field(0).type):
            values = pc.drop_null(keys.column(0)).to_numpy()
            self._sorted = np.unique(values.astype(np.int64, copy=False))  # sorted, each key once
            self._table = None

    def __len__(self) -> int:
        if self._sorted is not None:
            return len(self._sorted)
        return len(self._table) if self._table is not None else 0

    def missing(self, rows: pa.Table) -> pa.Table:
        """The rows of ``rows`` whose key is not in the set (a null key is not in it)."""
        if not len(rows) or not len(self):
            return rows
        if self._sorted is None:
            return rows.join(self._table, self.columns, join_type="left anti")
        column = rows.column(self.columns[0])
        values = pc.fill_null(column, 0).to_numpy().astype(np.int64, copy=False)
        at = np.minimum(np.searchsorted(self._sorted, values), len(self._sorted) - 1)
        present = (self._sorted[at] == values) & pc.is_valid(column).to_numpy(zero_copy_only=False)
        return rows.filter(pa.array(~present))


def source_keys(chunks: Iterable[tuple[list[str], Sequence[Sequence[Any]]]], schema: pa.Schema) -> KeySet:
    """The keys a ``client.stream`` of a keys query returns, in ``schema``'s types.

    Built column by column per chunk: no Python object outlives its chunk.
    """
    arrays: list[list[pa.Array]] = [[] for _ in schema]
    for _, rows in chunks:
        for i, values in enumerate(zip(*rows, strict=True)):
            arrays[i].append(pa.array(values, type=schema.field(i).type))
    columns = [pa.chunked_array(chunks_, type=f.type) for chunks_, f in zip(arrays, schema, strict=True)]
    return KeySet(pa.Table.from_arrays(columns, schema=schema))


def _collect(tables: Iterable[pa.Table]) -> list[pa.Table]:
    """The non-empty ones (a scan yields a table per file, most of them empty after the filter)."""
    return [t for t in tables if len(t)]


def _concat(tables: list[pa.Table], schema: pa.Schema) -> pa.Table:
    return pa.concat_tables([t.cast(schema) for t in tables]) if tables else schema.empty_table()


def gone_keys(
    table: Table,
    source: KeySet,
    *,
    database: str,
    exclude_batch: str,
    kept: Iterable[pa.Table] = (),
) -> pa.Table:
    """Keys of ``database`` live in bronze (outside ``exclude_batch``) that the source no longer has.

    Live: the key's latest bronze row is not a tombstone.

    Args:
        table: The bronze table.
        source: Every key the source holds now (:func:`source_keys`).
        database: Manifest database key (``source_db``).
        exclude_batch: The batch being written (its rows are replaced, so they do not count).
        kept: Rows this batch keeps from its earlier commit (read then, so their keys may be gone since):
            their keys count as live.

    Returns:
        The gone keys, one row each, in ``source``'s schema.
    """
    key_columns = source.columns
    stamped = [*key_columns, "_loaded_at"]
    outside = outside_batch(database, exclude_batch)
    # A key is live when its latest live row is later than its latest tombstone. Only keys missing at
    # the source can be gone, so only their rows are kept from the scans.
    live = _collect(
        source.missing(rows)
        for rows in coalesce(scan_batches(table, And(outside, _eq("is_deleted", False)), stamped), JOIN_ROWS)
    )
    gone: list[pa.Table] = []
    if live:
        latest = _latest(pa.concat_tables(live), key_columns, "live_at")
        dead = _collect(
            rows.join(latest.select(key_columns), key_columns, join_type="left semi")
            for rows in coalesce(
                scan_batches(table, And(outside, _eq("is_deleted", True)), stamped), JOIN_ROWS
            )
        )
        if dead:
            died = _latest(pa.concat_tables(dead), key_columns, "dead_at")
            latest = latest.join(died, key_columns, join_type="left outer")
            alive = pc.or_kleene(
                pc.is_null(latest.column("dead_at")),
                pc.greater(latest.column("live_at"), latest.column("dead_at")),
            )
            latest = latest.filter(pc.fill_null(alive, False))
        gone.append(latest.select(key_columns))
    for rows in kept:
        gone.append(source.missing(rows.select(key_columns)))
    found = _concat(gone, source.schema)
    return found.group_by(key_columns).aggregate([]).select(key_columns) if len(found) else found


def _latest(rows: pa.Table, key_columns: list[str], name: str) -> pa.Table:
    """Per key, the latest ``_loaded_at`` (as microseconds) named ``name``."""
    stamp = pc.cast(rows.column("_loaded_at"), pa.int64())
    grouped = rows.select(key_columns).append_column(name, stamp).group_by(key_columns)
    return grouped.aggregate([(name, "max")]).rename_columns([*key_columns, name])


def superseded(table: Table, mine: pa.Table, version: str, *, database: str, batch: str) -> pa.Table:
    """The rows of ``mine`` that another batch holds a newer version of.

    Args:
        table: The bronze table.
        mine: Key columns and ``version`` of the rows ``batch`` holds for ``database``.
        version: The rowversion column.
        database: Manifest database key.
        batch: The batch whose rows are checked.

    Returns:
        The superseded ``(keys…, version)`` rows of ``mine``, one each.
    """
    key_columns = [c for c in mine.column_names if c != version]
    newer = []
    if not len(mine):
        return mine
    for other in coalesce(
        scan_batches(table, outside_batch(database, batch), [*key_columns, version]), JOIN_ROWS
    ):
        pairs = other.join(mine, key_columns, join_type="inner", left_suffix="_other", right_suffix="_mine")
        later = pairs.filter(pc.greater(pairs.column(f"{version}_other"), pairs.column(f"{version}_mine")))
        if len(later):
            newer.append(
                later.select([*key_columns, f"{version}_mine"]).rename_columns([*key_columns, version])
            )
    found = _concat(newer, mine.schema)
    return found.group_by([*key_columns, version]).aggregate([]) if len(found) else found


__all__ = [
    "KeySet",
    "any_row",
    "gone_keys",
    "in_batch",
    "outside_batch",
    "scan_batches",
    "source_keys",
    "superseded",
]
