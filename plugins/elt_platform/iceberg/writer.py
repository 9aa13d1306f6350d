"""Idempotent bronze writes: replace exactly a slice of a table in one Iceberg commit.

Every load overwrites the partitions it covers (never a blind append), so reruns and backfills of
the same interval converge to the same table. Each write carries a :class:`CommitInfo`: the writer
stamps it on every row (:data:`~elt_platform.iceberg.tables.LINEAGE_COLUMNS`: ``_run_id``,
``_loaded_at``, ``_batch_id``, ``_source_uri``) and into the snapshot summary (``elt.run_id``,
``elt.data_interval_start``/``end``, ``elt.source``, ``elt.batch_id``), so a bad run can be found with
``python -m elt_platform.cli snapshots TABLE`` and undone with ``… rollback``.

:func:`replace_slice` takes the slice as one Arrow table; :func:`replace_slice_batches` takes it as an
iterable of pieces and holds one piece at a time, for slices larger than the memory a task may use.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import functools
import itertools
import logging
import warnings
from collections.abc import Iterable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any, TypeAlias

import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import NamespaceAlreadyExistsError, NoSuchTableError, TableAlreadyExistsError
from pyiceberg.expressions import In
from pyiceberg.table import DOWNCAST_NS_TIMESTAMP_TO_US_ON_WRITE, Table, Transaction
from pyiceberg.utils.config import Config

from elt_platform.iceberg.tables import LINEAGE_NAMES, TableSpec

if TYPE_CHECKING:
    from pyiceberg.io import FileIO
    from pyiceberg.partitioning import PartitionKey
    from pyiceberg.table.update.snapshot import _FastAppendFiles

SliceValue: TypeAlias = date | str | int
"""One value of a slice column: a day, a string key (a package id) or an int."""

log = logging.getLogger(__name__)

#: Exact (untruncated) bounds for ``_batch_id``: with the default ``truncate(16)``, the bounds of
#: ``receptions/<run id>`` or ``2025-03-09/2025-03-10`` cover other batches too, so deleting one slice reads
#: and rewrites every file of its look-alikes (each micro-batch would re-read the day's earlier ones). Exact
#: bounds let the delete drop whole files from metadata alone.
METRICS_PROPERTIES = {"write.metadata.metrics.column._batch_id": "full"}
TABLE_PROPERTIES = {
    "format-version": "2",
    "write.parquet.compression-codec": "zstd",
    "commit.retry.num-retries": "8",
    **METRICS_PROPERTIES,
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
    unset = {k: v for k, v in METRICS_PROPERTIES.items() if table.properties.get(k) != v}
    if unset:
        # Tables created before the property: files written from now on get exact bounds.
        log.info("setting %s on %s", unset, spec.identifier)
        with table.transaction() as transaction:
            transaction.set_properties(unset)
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


def _refuse_outside(table: Table, data: pa.Table, column: str, keys: list[str | int]) -> None:
    distinct = pc.unique(data.column(column)).to_pylist()
    written = {v.isoformat() if isinstance(v, date) else v for v in distinct}
    outside = written - set(keys)
    if outside:
        name = ".".join(table.name())
        raise ValueError(f"{name}: rows for {sorted(outside)[:3]} fall outside the slice being replaced")


def _slice_filter(column: str, keys: list[str | int]) -> Any:
    # pyiceberg's pydantic predicates: mypy sees the model fields, not the positional __init__.
    return In(column, keys)  # type: ignore[call-arg, misc, arg-type]


def _write(
    table: Table, data: pa.Table, *, column: str, keys: list[str | int], commit: CommitInfo, new: bool
) -> None:
    _refuse_outside(table, data, column, keys)
    properties = commit.snapshot_properties()
    if new:
        if len(data):
            table.append(data, snapshot_properties=properties)
        return
    with warnings.catch_warnings():
        # The first load of a slice deletes nothing: normal, not worth a warning in every task log.
        warnings.filterwarnings("ignore", message="Delete operation did not match any records")
        table.overwrite(data, overwrite_filter=_slice_filter(column, keys), snapshot_properties=properties)


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


class _RollingDataFiles:
    """The data files of one append, written piece by piece.

    pyiceberg writes an append's data files from one Arrow table held whole (its streaming append takes
    unpartitioned tables only: apache/iceberg-python#2152). This keeps one open file per partition and
    adds each piece to it as a row group, closing a file once it holds ``target`` bytes of Arrow: memory is
    one piece (and the open files' footers), files are as large as asked. The steps are those of pyiceberg's
    ``write_file`` (file schema with field ids, location provider, statistics), one file at a time.

    Args:
        transaction: The transaction the append belongs to.
        append: The append (a fast append of ``transaction``) each closed file is added to.
        io: The table's file IO.
        target: Arrow bytes per file (default: the table's ``write.target-file-size-bytes``, as pyiceberg).

    Attributes:
        files: Data files added to the append so far.
    """

    def __init__(
        self, transaction: Transaction, append: _FastAppendFiles, io: FileIO, target: int | None = None
    ) -> None:
        from pyiceberg.io.fileformat import FileFormatFactory
        from pyiceberg.manifest import FileFormat
        from pyiceberg.schema import sanitize_column_names
        from pyiceberg.table import TableProperties
        from pyiceberg.table.locations import load_location_provider
        from pyiceberg.utils.properties import property_as_int

        self.metadata = transaction.table_metadata
        self.io = io
        properties = self.metadata.properties
        self.file_format = FileFormat(
            properties.get(TableProperties.WRITE_FILE_FORMAT, TableProperties.WRITE_FILE_FORMAT_DEFAULT)
        )
        self.model = FileFormatFactory.get(self.file_format)
        self.locations = load_location_provider(self.metadata.location, properties)
        self.schema = self.metadata.schema()
        self.file_schema = sanitize_column_names(self.schema)
        self.target = target or (
            property_as_int(
                properties,
                TableProperties.WRITE_TARGET_FILE_SIZE_BYTES,
                TableProperties.WRITE_TARGET_FILE_SIZE_BYTES_DEFAULT,
            )
            or TableProperties.WRITE_TARGET_FILE_SIZE_BYTES_DEFAULT
        )
        self.append = append
        self.files = 0
        self._counter = itertools.count(0)
        #: partition path → (output file, its writer, partition key, Arrow bytes written)
        self._open: dict[str, tuple[Any, Any, Any, int]] = {}

    def write(self, data: pa.Table) -> None:
        """Add ``data`` (table schema, lineage stamped) to the open files, closing those that are full."""
        from pyiceberg.io.pyarrow import _determine_partitions, _to_requested_schema, pyarrow_to_schema

        downcast = Config().get_bool(DOWNCAST_NS_TIMESTAMP_TO_US_ON_WRITE) or False
        task_schema = pyarrow_to_schema(
            data.schema,
            name_mapping=self.schema.name_mapping,
            downcast_ns_timestamp_to_us=downcast,
            format_version=self.metadata.format_version,
        )
        spec = self.metadata.spec()
        parts: list[tuple[PartitionKey | None, pa.Table]] = (
            [(None, data)]
            if spec.is_unpartitioned()
            else [
                (p.partition_key, p.arrow_table_partition)
                for p in _determine_partitions(spec, self.schema, data)
            ]
        )
        for key, part in parts:
            path = key.to_path() if key is not None else ""
            if path not in self._open:
                self._open[path] = self._create(key)
            output, writer, _, size = self._open[path]
            batches = [
                _to_requested_schema(
                    requested_schema=self.file_schema,
                    file_schema=task_schema,
                    batch=batch,
                    downcast_ns_timestamp_to_us=downcast,
                    include_field_ids=True,
                    format_model=self.model,
                )
                for batch in part.to_batches()
            ]
            writer.write(pa.Table.from_batches(batches))
            self._open[path] = (output, writer, key, size + part.nbytes)
            if size + part.nbytes >= self.target:
                self._close(path)

    def close(self) -> None:
        """Close every open file (adding it to the append)."""
        for path in list(self._open):
            self._close(path)

    def abort(self) -> None:
        """Close the files still open without adding them (a failed write: orphans for maintenance)."""
        while self._open:
            _, writer, _, _ = self._open.popitem()[1]
            with contextlib.suppress(Exception):
                writer.close()

    def _create(self, key: PartitionKey | None) -> tuple[Any, Any, Any, int]:
        name = f"00000-{next(self._counter)}-{self.append.commit_uuid}.{self.model.file_extension()}"
        output = self.io.new_output(self.locations.new_data_location(data_file_name=name, partition_key=key))
        return output, self.model.create_writer(output, self.file_schema, self.metadata.properties), key, 0

    def _close(self, path: str) -> None:
        from pyiceberg.manifest import DataFile, DataFileContent
        from pyiceberg.typedef import Record

        output, writer, key, _ = self._open.pop(path)
        statistics = writer.close()
        data_file = DataFile.from_args(
            content=DataFileContent.DATA,
            file_path=output.location,
            file_format=self.file_format,
            partition=key.partition if key is not None else Record(),
            file_size_in_bytes=len(output),
            sort_order_id=None,
            spec_id=self.metadata.default_spec_id,
            equality_ids=None,
            key_metadata=None,
            **statistics.to_serialized_dict(),
        )
        self.append.append_data_file(data_file)
        self.files += 1


def release_freed_memory() -> None:
    """Give memory freed by a commit back to the OS before the next group is read.

    Arrow's pool (mimalloc) keeps freed buffers, and glibc keeps the heap the Parquet/Avro writers' threads
    freed in their arenas: without this, an amoCRM backfill's RSS settled ~170 MB above what it used
    (``bench/amocrm_extract.py``). ``malloc_trim`` exists on glibc only; elsewhere only the pool is released.
    """
    pa.default_memory_pool().release_unused()
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)


@functools.cache
def _glibc() -> Any:
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc (macOS, musl)
        return None
    return libc if hasattr(libc, "malloc_trim") else None


def replace_slice_batches(
    table: Table,
    batches: Iterable[pa.Table | pa.RecordBatch],
    *,
    column: str,
    values: Iterable[SliceValue],
    commit: CommitInfo,
    new_slice: bool = False,
    file_bytes: int | None = None,
) -> int:
    """:func:`replace_slice` for a slice too large for memory: its rows come as pieces, held one at a time.

    One Iceberg transaction, as :func:`replace_slice`'s overwrite: the slice is deleted once, then every
    piece is stamped, checked and added to the data files of one append (a row group per piece, files
    rolled at ``write.target-file-size-bytes``); readers see the old slice until the transaction commits,
    then the whole new one. Memory follows the caller's piece size, not the slice's.

    Args:
        table: target table.
        batches: the slice's rows in pieces (Arrow tables or record batches of the table's schema, with
            or without the lineage columns); consumed once, lazily.
        column: the column the slice is defined on.
        values: the slice.
        commit: lineage for the rows and the snapshot summary (every piece gets the same ``_loaded_at``).
        new_slice: no row of the slice exists yet: append only; no rows at all then commit nothing.
        file_bytes: Arrow bytes per data file (default: the table's ``write.target-file-size-bytes``).
            An open file's footer grows with its row groups, and a reader may hold a file's worth.

    Returns:
        Number of rows written.

    Raises:
        ValueError: a piece holds rows outside the slice (nothing is committed; files already written stay
            unreferenced until orphan-file maintenance removes them).
    """
    from pyiceberg.io.pyarrow import _check_pyarrow_schema_compatible

    keys = _slice_keys(values)
    if not keys:
        return 0
    commit = dataclasses.replace(commit, loaded_at=commit.loaded_at or datetime.now(UTC))
    properties = commit.snapshot_properties()
    downcast = Config().get_bool(DOWNCAST_NS_TIMESTAMP_TO_US_ON_WRITE) or False
    written, checked = 0, None
    with table.transaction() as transaction, ExitStack() as pending:
        if not new_slice:
            with warnings.catch_warnings():
                # The first load of a slice deletes nothing: normal, not worth a warning in every task log.
                warnings.filterwarnings("ignore", message="Delete operation did not match any records")
                transaction.delete(_slice_filter(column, keys), snapshot_properties=properties)
        rolling = None
        for piece in batches:
            if not len(piece):
                continue
            data = stamp_lineage(
                pa.Table.from_batches([piece]) if isinstance(piece, pa.RecordBatch) else piece,
                commit,
                column=column,
            )
            _refuse_outside(table, data, column, keys)
            if data.schema != checked:
                metadata = transaction.table_metadata
                _check_pyarrow_schema_compatible(
                    metadata.schema(),
                    provided_schema=data.schema,
                    downcast_ns_timestamp_to_us=downcast,
                    format_version=metadata.format_version,
                )
                checked = data.schema
            if rolling is None:  # the append opens at the first row: an empty new slice commits nothing
                append = pending.enter_context(
                    transaction.update_snapshot(snapshot_properties=properties).fast_append()
                )
                rolling = _RollingDataFiles(transaction, append, table.io, file_bytes)
                pending.callback(rolling.abort)  # runs before the append's exit; a no-op after close()
            rolling.write(data)
            written += len(data)
            del data, piece
            release_freed_memory()
        if rolling is not None:
            rolling.close()  # before the append's own exit commits it into the transaction
    log.info(
        "%s: replaced %d %s value(s) %s..%s with %d rows in %d file(s) (run %s)",
        ".".join(table.name()),
        len(keys),
        column,
        keys[0],
        keys[-1],
        written,
        rolling.files if rolling is not None else 0,
        commit.run_id,
    )
    return written


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
