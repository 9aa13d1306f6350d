"""One slice replaced in several tables, all or none: commit, roll back, concurrent writers."""

from __future__ import annotations

import pyarrow as pa
import pytest
from pyiceberg.exceptions import NoSuchTableError

from elt_platform.bronze.transaction import SliceTransaction, replace_all, snapshot_id
from elt_platform.iceberg.writer import CommitInfo, ensure_table, replace_slice

PACKAGE = """columns:
  - {name: package_id, type: string, required: true}
  - {name: value, type: long}
partition_by: [package_id]
slice_column: package_id
"""
NAMES = ("t1", "t2", "t3", "t4")
EARLIER = CommitInfo("run-0", "test", batch_id="earlier")
NEW = CommitInfo("run-1", "test", batch_id="p1")


def _rows(package_id: str, *values: int) -> pa.Table:
    schema = pa.schema(
        [pa.field("package_id", pa.large_string(), nullable=False), pa.field("value", pa.int64())]
    )
    return pa.Table.from_pylist([{"package_id": package_id, "value": v} for v in values], schema=schema)


def _contents(table) -> list[tuple]:
    table.refresh()
    if table.current_snapshot() is None:
        return []
    frame = table.scan(selected_fields=("package_id", "value", "_run_id")).to_arrow()
    return sorted(zip(*(frame.column(n).to_pylist() for n in frame.column_names), strict=True))


@pytest.fixture
def tables(catalog, make_spec):
    return {name: ensure_table(catalog, make_spec(name, PACKAGE)) for name in NAMES}


@pytest.fixture
def loaded(tables):
    """Every table holds package p0 (values 1, 2) and an earlier load of p1 (value 10)."""
    for table in tables.values():
        replace_slice(table, _rows("p0", 1, 2), column="package_id", values=["p0"], commit=EARLIER)
        replace_slice(table, _rows("p1", 10), column="package_id", values=["p1"], commit=EARLIER)
    return tables


def _staged(tables, bad: str | None = None) -> list[tuple]:
    # A row of another package in the bad table's data: the writer refuses it, a real commit failure.
    return [(t, _rows("p1", 20, 21) if name != bad else _rows("p2", 99)) for name, t in tables.items()]


def test_every_table_is_committed_and_its_snapshot_reported(loaded):
    committed = replace_all(_staged(loaded), column="package_id", values=["p1"], commit=NEW)

    assert committed == {f"bronze.test_{n}": snapshot_id(t) for n, t in loaded.items()}
    for table in loaded.values():
        assert _contents(table) == [
            ("p0", 1, "run-0"),
            ("p0", 2, "run-0"),
            ("p1", 20, "run-1"),
            ("p1", 21, "run-1"),
        ]


def test_a_failure_in_table_3_of_4_rolls_tables_1_and_2_back_to_their_exact_snapshots(loaded):
    before = {name: snapshot_id(t) for name, t in loaded.items()}

    with pytest.raises(ValueError, match=r"bronze.test_t3: rows for \['p2'\] fall outside the slice"):
        replace_all(_staged(loaded, bad="t3"), column="package_id", values=["p1"], commit=NEW)

    for name, table in loaded.items():
        table.refresh()
        assert snapshot_id(table) == before[name], name
        assert _contents(table) == [("p0", 1, "run-0"), ("p0", 2, "run-0"), ("p1", 10, "run-0")], name


def test_tables_written_for_the_first_time_lose_the_slice_on_rollback(tables):
    with pytest.raises(ValueError, match="outside the slice"):
        replace_all(_staged(tables, bad="t3"), column="package_id", values=["p1"], commit=NEW)

    assert [_contents(tables[n]) for n in NAMES] == [[], [], [], []]
    assert snapshot_id(tables["t4"]) is None  # never reached


def test_a_failure_after_the_commits_inside_the_block_rolls_back_too(loaded):
    before = snapshot_id(loaded["t1"])
    with pytest.raises(RuntimeError, match="journal down"):
        with SliceTransaction(column="package_id", values=["p1"], commit=NEW) as tx:
            tx.replace(loaded["t1"], _rows("p1", 20))
            raise RuntimeError("journal down")
    loaded["t1"].refresh()
    assert snapshot_id(loaded["t1"]) == before
    assert tx.committed == {} and tx.unrestored == []


def test_with_a_concurrent_writer_only_the_slice_is_restored(catalog, loaded):
    ours = loaded["t1"]
    with pytest.raises(RuntimeError, match="late failure"):
        with SliceTransaction(column="package_id", values=["p1"], commit=NEW) as tx:
            tx.replace(ours, _rows("p1", 20, 21))
            theirs = catalog.load_table("bronze.test_t1")  # another writer, another slice
            replace_slice(
                theirs, _rows("p9", 7), column="package_id", values=["p9"], commit=CommitInfo("run-x", "x")
            )
            their_snapshot = snapshot_id(theirs)
            raise RuntimeError("late failure")

    ours.refresh()
    assert snapshot_id(ours) != their_snapshot  # their commit is history we built on, not undone
    assert [s.snapshot_id for s in ours.snapshots()].count(their_snapshot) == 1
    assert _contents(ours) == [
        ("p0", 1, "run-0"),
        ("p0", 2, "run-0"),
        ("p1", 10, "run-0"),
        ("p9", 7, "run-x"),
    ]


def test_a_rollback_that_fails_names_the_tables_left_behind(catalog, loaded):
    with pytest.raises(RuntimeError, match="late failure") as caught:
        with SliceTransaction(column="package_id", values=["p1"], commit=NEW) as tx:
            tx.replace(loaded["t1"], _rows("p1", 20))
            tx.replace(loaded["t2"], _rows("p1", 20))
            catalog.drop_table("bronze.test_t1")  # the rollback of t1 cannot reach it any more
            raise RuntimeError("late failure")

    assert tx.unrestored == ["bronze.test_t1"]
    assert caught.value.__notes__ == ["rollback failed, tables ['bronze.test_t1'] need attention"]
    assert _contents(loaded["t2"]) == [("p0", 1, "run-0"), ("p0", 2, "run-0"), ("p1", 10, "run-0")]
    with pytest.raises(NoSuchTableError):
        catalog.load_table("bronze.test_t1")


def test_a_new_slice_appends_and_a_table_with_nothing_to_write_is_not_committed(tables):
    with SliceTransaction(column="package_id", values=["p1"], commit=NEW, new_slice=True) as tx:
        tx.replace(tables["t1"], _rows("p1", 5))
        tx.replace(tables["t2"], lambda: _rows("p1"))  # staged rows are read lazily; none here

    assert tx.committed == {"bronze.test_t1": snapshot_id(tables["t1"])}
    assert tables["t1"].current_snapshot().summary.operation.value == "append"
    assert snapshot_id(tables["t2"]) is None
