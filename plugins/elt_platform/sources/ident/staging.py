"""A run's rows on disk until the commit, and the commit in pieces of bounded size.

The extract reads each table in ``fetchmany`` chunks into a :class:`Stage` (one Parquet file per table),
so reading holds one chunk. The commit reads each stage back in pieces of about :data:`COMMIT_BYTES` of
Arrow and hands them to :func:`~elt_platform.iceberg.writer.replace_slice_batches` — one Iceberg
transaction per table that deletes the slice once and appends the pieces — so committing holds one piece,
whatever the table's size. :class:`PiecewiseSliceTransaction` keeps
:class:`~elt_platform.bronze.transaction.SliceTransaction`'s all-or-none rollback across the tables.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from pyiceberg.table import Table

from elt_platform.bronze.transaction import SliceTransaction, snapshot_id
from elt_platform.iceberg.tables import TableSpec
from elt_platform.iceberg.writer import replace_slice_batches

#: Arrow bytes per committed piece: one row group of a data file. The commit's peak above the process's
#: floor is several pieces (the piece, its stamped and partition-split copies, the Parquet encoder's
#: buffers: ~5x with glibc's malloc, ~9x with Arrow's default mimalloc, bench/README.md), and row groups
#: of a few thousand rows compress as well as larger ones here.
COMMIT_BYTES = 2 * 2**20
#: Arrow bytes per data file (~30 MB of Parquet for Receptions), where pyiceberg's default is 512 MB: bounds
#: the open file's footer (every row group's metadata) and what readers that decode a file whole (pyiceberg's
#: ``to_arrow``, as the bronze gate uses) hold.
FILE_BYTES = 128 * 2**20


class Stage:
    """One table's rows for the run, in the table's Arrow schema (no lineage), spilled chunk by chunk.

    Args:
        spec: The bronze declaration.
        path: The Parquet file to write.
    """

    def __init__(self, spec: TableSpec, path: Path) -> None:
        self.spec = spec
        self.schema = spec.arrow_schema(lineage=False)
        self.path = path
        self.rows = 0
        self.nbytes = 0
        self._writer: pq.ParquetWriter | None = None

    def add(self, batch: pa.Table) -> None:
        """Append rows (any column order; cast to the declared schema) as one row group."""
        if not len(batch):
            return
        if self._writer is None:
            # No statistics: nothing reads them, and the writer would keep them for every row group.
            self._writer = pq.ParquetWriter(
                self.path, self.schema, compression="zstd", write_statistics=False
            )
        batch = batch.select(self.schema.names).cast(self.schema)
        self._writer.write_table(batch)
        self.rows += len(batch)
        self.nbytes += batch.nbytes

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def piece_rows(self, max_bytes: int) -> int:
        """Rows per piece so that a piece holds about ``max_bytes`` of Arrow (at least one row)."""
        if not self.rows:
            return 1
        return max(1, max_bytes * self.rows // max(self.nbytes, 1))

    def pieces(self, max_bytes: int = COMMIT_BYTES) -> Iterator[pa.Table]:
        """The staged rows again, in pieces of about ``max_bytes`` of Arrow each, in staging order."""
        self.close()
        if not self.rows:
            return
        rows = self.piece_rows(max_bytes)
        with pq.ParquetFile(self.path) as staged:
            # One row group at a time: asked for the whole file, Arrow's reader runs ahead of the consumer
            # (+75 MB reading a million staged receptions). One thread: reader threads keep their arenas.
            batches = (
                batch
                for group in range(staged.num_row_groups)
                for batch in staged.iter_batches(batch_size=rows, row_groups=[group], use_threads=False)
            )
            for piece in coalesce(batches, rows):
                yield piece if piece.schema == self.schema else piece.cast(self.schema)


def coalesce(batches: Iterable[pa.RecordBatch], rows: int) -> Iterator[pa.Table]:
    """``batches`` regrouped into tables of at least ``rows`` rows (the last one may be smaller)."""
    pending: list[pa.RecordBatch] = []
    size = 0
    for batch in batches:
        if not len(batch):
            continue
        pending.append(batch)
        size += len(batch)
        if size >= rows:
            yield pa.Table.from_batches(pending)
            pending, size = [], 0
    if pending:
        yield pa.Table.from_batches(pending)


class PiecewiseSliceTransaction(SliceTransaction):
    """:class:`~elt_platform.bronze.transaction.SliceTransaction` whose tables may be written in pieces.

    :meth:`replace_batches` is :meth:`~elt_platform.bronze.transaction.SliceTransaction.replace` with the
    rows as an iterable: the table's commit is still one snapshot change, remembered for the rollback.
    """

    def __enter__(self) -> PiecewiseSliceTransaction:
        return self

    def replace_batches(self, table: Table, batches: Iterable[pa.Table | pa.RecordBatch]) -> int:
        """Replace the slice of ``table`` by ``batches`` now (one Iceberg transaction), undoably.

        Returns:
            Rows written.
        """
        name = ".".join(table.name())
        self._tables[name] = table
        self.before[name] = snapshot_id(table)
        written = replace_slice_batches(
            table,
            batches,
            column=self.column,
            values=self.values,
            commit=self.commit,
            new_slice=self.new_slice,
            file_bytes=FILE_BYTES,
        )
        after = snapshot_id(table)
        if after is not None and after != self.before[name]:
            self.committed[name] = after
        return written


__all__ = [
    "COMMIT_BYTES",
    "FILE_BYTES",
    "PiecewiseSliceTransaction",
    "Stage",
    "coalesce",
]
