"""Replace one slice in several bronze tables, all of them or none.

Iceberg commits one table at a time, so a load writing several tables (a 1C package: fourteen
entities; an iDent interval: one table per SQL view) makes them atomic itself:

1. **stage** every table's data first (Arrow in memory, or Parquet on disk read back lazily), so a
   parse or rule failure happens before any table is touched;
2. **commit** table by table, remembering each table's snapshot before its commit;
3. on any failure — a commit, or whatever else the caller does inside the ``with`` block (the 1C
   journal write) — **roll back** every committed table, newest first: when nobody committed after
   us, make the snapshot before current again (exactly the state before); when another writer did,
   keep their commit and put our slice back as it was in the snapshot before.

Usage::

    with SliceTransaction(column="package_id", values=[package_id], commit=commit) as tx:
        for table, rows in staged.items():
            tx.replace(table, rows)
        write_journal(...)  # a failure here rolls the tables back too

:func:`replace_all` is that loop for callers with nothing else to do inside the transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Literal, TypeAlias

import pyarrow as pa
from pyiceberg.expressions import In
from pyiceberg.table import Table

from elt_platform.iceberg.writer import CommitInfo, SliceValue, replace_slice, restore_slice

log = logging.getLogger(__name__)

StagedRows: TypeAlias = pa.Table | Callable[[], pa.Table]
"""A table's rows for the slice, or a callable reading them (staged Parquet: one table in memory at once)."""


class RollbackError(RuntimeError):
    """A rollback failed: the named tables may still hold the failed load's slice.

    Attributes:
        tables: Identifiers of the tables not restored.
    """

    def __init__(self, message: str, *, tables: list[str]) -> None:
        super().__init__(message)
        self.tables = tables


def snapshot_id(table: Table) -> int | None:
    """The table's current snapshot id (None for a table never written)."""
    snapshot = table.current_snapshot()
    return snapshot.snapshot_id if snapshot else None


def _name(table: Table) -> str:
    return ".".join(table.name())


class SliceTransaction:
    """Commits of one slice to several tables, undone together on failure.

    Args:
        column: The slice column, the same in every table (``package_id``, ``visit_date``).
        values: The slice.
        commit: Lineage stamped on the rows and snapshots (also labels rollback snapshots).
        new_slice: No table holds a row of the slice yet (a package never loaded): append instead of
            overwrite (see :func:`~elt_platform.iceberg.writer.replace_slice`).

    Attributes:
        before: Table identifier → its snapshot id before this transaction's commit.
        committed: Table identifier → the snapshot id this transaction made current (tables whose
            write committed nothing, e.g. an empty new slice, are not listed).
        unrestored: After a failed rollback inside ``with``: the tables it could not restore.
    """

    def __init__(
        self, *, column: str, values: Iterable[SliceValue], commit: CommitInfo, new_slice: bool = False
    ) -> None:
        self.column = column
        self.values = list(values)
        self.commit = commit
        self.new_slice = new_slice
        self.before: dict[str, int | None] = {}
        self.committed: dict[str, int] = {}
        self.unrestored: list[str] = []
        self._tables: dict[str, Table] = {}

    def replace(self, table: Table, rows: StagedRows) -> int:
        """Replace the slice of ``table`` by ``rows`` now (one commit), remembering how to undo it.

        Returns:
            Rows written.
        """
        name = _name(table)
        data = rows() if callable(rows) else rows
        self._tables[name] = table
        self.before[name] = snapshot_id(table)
        written = replace_slice(
            table, data, column=self.column, values=self.values, commit=self.commit, new_slice=self.new_slice
        )
        after = snapshot_id(table)
        if after is not None and after != self.before[name]:
            self.committed[name] = after
        return written

    def rollback(self) -> None:
        """Undo every commit of this transaction, newest first.

        Raises:
            RollbackError: At least one table could not be restored (the others were).
        """
        failed = []
        for name in reversed(list(self.committed)):
            try:
                self._undo(name)
            except Exception:  # noqa: BLE001 - go on with the other tables, report them all
                log.exception("%s: ROLLBACK FAILED", name)
                failed.append(name)
        if failed:
            raise RollbackError(
                f"rollback failed, tables {sorted(failed)} need attention", tables=sorted(failed)
            )
        self.committed.clear()

    def _undo(self, name: str) -> None:
        table = self._tables[name]
        table.refresh()
        previous = self.before[name]
        if snapshot_id(table) == self.committed[name]:
            if previous is not None:
                table.manage_snapshots().set_current_snapshot(snapshot_id=previous).commit()
            else:  # a table's first snapshot cannot be "un-made"; empty the slice instead
                # pyiceberg's pydantic predicates: mypy sees the model fields, not the positional __init__.
                table.delete(
                    In(self.column, self.values),  # type: ignore[call-arg, misc, arg-type]
                    snapshot_properties=self.commit.snapshot_properties(),
                )
            log.warning("%s: rolled back to snapshot %s", name, previous)
            return
        # Someone committed after us: keep their commit, put our slice back as it was.
        if previous is None:
            restored = table.schema().as_arrow().empty_table()
        else:
            # pyiceberg's pydantic predicates: mypy sees the model fields, not the positional __init__.
            row_filter = In(self.column, self.values)  # type: ignore[call-arg, misc, arg-type]
            restored = table.scan(row_filter=row_filter, snapshot_id=previous).to_arrow()
        restore_slice(table, restored, column=self.column, values=self.values, commit=self.commit)
        log.warning("%s: restored the slice to snapshot %s (other commits kept)", name, previous)

    def __enter__(self) -> SliceTransaction:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> Literal[False]:
        if exc is not None and self.committed:
            try:
                self.rollback()
            except RollbackError as failure:
                self.unrestored = failure.tables
                exc.add_note(str(failure))
        return False  # the original error goes on


def replace_all(
    staged: Iterable[tuple[Table, StagedRows]],
    *,
    column: str,
    values: Iterable[SliceValue],
    commit: CommitInfo,
    new_slice: bool = False,
) -> dict[str, int]:
    """Replace the slice in every staged table, all or none.

    Args:
        staged: ``(table, rows)`` pairs, committed in this order.
        column: The slice column.
        values: The slice.
        commit: Lineage of the write.
        new_slice: See :class:`SliceTransaction`.

    Returns:
        Table identifier → snapshot id committed.

    Raises:
        Exception: Whatever failed; every table already committed is rolled back first (a note on
            the exception names the tables whose rollback failed too, if any).
    """
    with SliceTransaction(column=column, values=values, commit=commit, new_slice=new_slice) as tx:
        for table, rows in staged:
            tx.replace(table, rows)
    return dict(tx.committed)


__all__ = ["RollbackError", "SliceTransaction", "StagedRows", "replace_all", "snapshot_id"]
