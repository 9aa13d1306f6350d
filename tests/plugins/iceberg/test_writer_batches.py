"""The writer's piecewise slice replace: one transaction, a row group per piece, reruns converge."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from elt_platform.iceberg.tables import load_spec
from elt_platform.iceberg.writer import (
    METRICS_PROPERTIES,
    CommitInfo,
    ensure_table,
    replace_slice,
    replace_slice_batches,
)

D1, D2 = date(2025, 3, 3), date(2025, 3, 4)
THINGS = """
table: bronze.test_things
columns:
  - {name: day, type: date, required: true}
  - {name: name, type: string}
partition_by: [day]
"""


@pytest.fixture
def spec(tmp_path: Path):
    path = tmp_path / "bronze" / "test" / "things.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(THINGS, encoding="utf-8")
    return load_spec("bronze/test/things.yaml", root=tmp_path)


@pytest.fixture
def table(catalog, spec):
    return ensure_table(catalog, spec)


def _things(spec, day: date, names: list[str]) -> pa.Table:
    return pa.Table.from_pylist(
        [{"day": day, "name": n} for n in names], schema=spec.arrow_schema(lineage=False)
    )


def _split(data: pa.Table, sizes: list[int]) -> list[pa.Table | pa.RecordBatch]:
    """``data`` cut into pieces of ``sizes`` rows, every other one as a record batch."""
    pieces, offset = [], 0
    for i, size in enumerate(sizes):
        piece = data.slice(offset, size)
        pieces.append(piece.combine_chunks().to_batches()[0] if i % 2 else piece)
        offset += size
    assert offset == len(data)
    return pieces


def _rows(table) -> list[tuple]:
    frame = table.scan(selected_fields=("day", "name")).to_arrow()
    return sorted(zip(frame.column("day").to_pylist(), frame.column("name").to_pylist(), strict=True))


def _files(table, day: date) -> list[list[int]]:
    """Each data file of ``day``: the rows of its row groups, in file order (files sorted)."""
    found = []
    for file in table.inspect.files().to_pylist():
        if file["partition"]["day"] == day:
            meta = pq.read_metadata(file["file_path"].removeprefix("file://"))
            found.append([meta.row_group(i).num_rows for i in range(meta.num_row_groups)])
    return sorted(found)


def _commits(table) -> int:
    """Catalog commits so far: each adds the previous metadata file to the log."""
    table.refresh()
    return len(table.metadata.metadata_log)


def test_pieces_are_row_groups_of_one_commit_and_a_rerun_converges(table, spec):
    replace_slice(
        table,
        pa.concat_tables([_things(spec, D1, ["old-1", "old-2"]), _things(spec, D2, ["other"])]),
        column="day",
        values=[D1, D2],
        commit=CommitInfo("run-0", "test"),
    )
    names = [f"n{i}" for i in range(10)]
    expected = sorted([(D1, n) for n in names] + [(D2, "other")])
    commits = _commits(table)

    written = replace_slice_batches(
        table,
        _split(_things(spec, D1, names), [3, 3, 3, 1]),
        column="day",
        values=[D1],
        commit=CommitInfo("run-1", "test"),
    )

    assert written == 10
    assert _commits(table) == commits + 1
    assert _files(table, D1) == [[3, 3, 3, 1]]  # never more than a piece at once
    assert _rows(table) == expected
    stamps = table.scan(row_filter=f"day = '{D1.isoformat()}'").to_arrow()
    assert len(set(stamps.column("_loaded_at").to_pylist())) == 1
    assert set(stamps.column("_run_id").to_pylist()) == {"run-1"}

    replace_slice_batches(
        table,
        iter(_split(_things(spec, D1, names), [5, 5])),
        column="day",
        values=[D1],
        commit=CommitInfo("run-2", "test"),
    )

    assert _commits(table) == commits + 2
    assert _files(table, D1) == [[5, 5]]
    assert _rows(table) == expected


def test_files_roll_at_the_target_size_within_the_same_commit(table, spec):
    with table.transaction() as transaction:
        transaction.set_properties({"write.target-file-size-bytes": "1"})  # every piece fills a file
    commits = _commits(table)
    names = [f"n{i}" for i in range(7)]

    replace_slice_batches(
        table,
        _split(_things(spec, D1, names), [3, 3, 1]),
        column="day",
        values=[D1],
        commit=CommitInfo("run-1", "test"),
    )

    assert _commits(table) == commits + 1
    assert _files(table, D1) == [[1], [3], [3]]
    assert _rows(table) == [(D1, n) for n in names]


def test_pieces_spanning_partitions_go_to_one_file_per_partition(table, spec):
    rows = pa.concat_tables(
        [_things(spec, D1, ["a", "b"]), _things(spec, D2, ["c"]), _things(spec, D1, ["d"])]
    )

    replace_slice_batches(
        table, _split(rows, [2, 2]), column="day", values=[D1, D2], commit=CommitInfo("run-1", "test")
    )

    assert _files(table, D1) == [[2, 1]]
    assert _files(table, D2) == [[1]]
    assert _rows(table) == [(D1, "a"), (D1, "b"), (D1, "d"), (D2, "c")]
    assert table.scan(row_filter=f"day = '{D2.isoformat()}'").to_arrow().column("name").to_pylist() == ["c"]


def test_a_piece_outside_the_slice_commits_nothing(table, spec):
    replace_slice(table, _things(spec, D1, ["kept"]), column="day", values=[D1], commit=CommitInfo("r", "t"))
    before = table.current_snapshot().snapshot_id

    with pytest.raises(ValueError, match="outside the slice"):
        replace_slice_batches(
            table,
            [_things(spec, D1, ["new"]), _things(spec, D2, ["stray"])],
            column="day",
            values=[D1],
            commit=CommitInfo("r2", "t"),
        )

    table.refresh()
    assert table.current_snapshot().snapshot_id == before
    assert _rows(table) == [(D1, "kept")]


def test_an_empty_new_slice_commits_nothing_and_an_empty_slice_is_emptied(table, spec):
    commit = CommitInfo("r", "t")
    assert replace_slice_batches(table, [], column="day", values=[D1], commit=commit, new_slice=True) == 0
    assert table.current_snapshot() is None

    replace_slice(table, _things(spec, D1, ["a", "b"]), column="day", values=[D1], commit=commit)
    assert (
        replace_slice_batches(table, [_things(spec, D1, [])], column="day", values=[D1], commit=commit) == 0
    )
    assert _rows(table) == []


def test_replacing_one_batch_reads_no_file_of_another(table, spec, monkeypatch):
    """Batch ids share long prefixes (``receptions/scheduled__…``): with truncated column bounds every
    earlier micro-batch's file would be read and filtered by each delete; exact bounds prune them."""
    import pyiceberg.io.pyarrow

    reads = []
    real = pyiceberg.io.pyarrow.ArrowScan.to_table

    def counting(self, tasks):
        tasks = list(tasks)
        reads.extend(tasks)
        return real(self, tasks)

    monkeypatch.setattr(pyiceberg.io.pyarrow.ArrowScan, "to_table", counting)
    for minute in range(4):
        batch = f"receptions/scheduled__2025-03-10T12:{minute:02d}:00+00:00"
        replace_slice_batches(
            table,
            [_things(spec, D1, [f"m{minute}"])],
            column="_batch_id",
            values=[batch],
            commit=CommitInfo(f"run-{minute}", "ident", batch_id=batch),
        )

    assert reads == []
    assert _rows(table) == [(D1, f"m{m}") for m in range(4)]


def test_ensure_table_gives_an_older_table_exact_batch_bounds(catalog, spec):
    catalog.create_namespace("bronze")
    catalog.create_table("bronze.test_things", schema=spec.iceberg_schema())

    table = ensure_table(catalog, spec)

    assert {k: table.properties.get(k) for k in METRICS_PROPERTIES} == METRICS_PROPERTIES
