"""Reading bronze for the reconciliation: the streaming scan against pyiceberg's, gone keys by hand."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pyarrow as pa
import pytest
from pyiceberg.expressions import AlwaysTrue, And, EqualTo, NotEqualTo

from elt_platform.iceberg.tables import load_spec
from elt_platform.iceberg.writer import CommitInfo, ensure_table, replace_slice_batches
from elt_platform.sources.ident.reconcile import KeySet, gone_keys, scan_batches

DAY = date(2025, 3, 10)
KEYS = """
table: bronze.test_keys
columns:
  - {name: source_db, type: string, required: true}
  - {name: extract_date, type: date, required: true}
  - {name: is_deleted, type: boolean, required: true}
  - {name: id, type: long}
  - {name: note, type: string}
partition_by: [extract_date]
"""


@pytest.fixture
def spec(tmp_path: Path):
    path = tmp_path / "bronze" / "test" / "keys.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(KEYS, encoding="utf-8")
    return load_spec("bronze/test/keys.yaml", root=tmp_path)


@pytest.fixture
def table(catalog, spec):
    return ensure_table(catalog, spec)


def _load(table, spec, batch: str, rows: list[tuple[str, int, bool]], *, hour: int, piece: int = 2) -> None:
    """Write ``(source_db, id, is_deleted)`` rows as ``batch``, ``piece`` rows per row group."""
    data = pa.Table.from_pylist(
        [
            {"source_db": db, "extract_date": DAY, "is_deleted": dead, "id": key, "note": f"{db}-{key}"}
            for db, key, dead in rows
        ],
        schema=spec.arrow_schema(lineage=False),
    )
    pieces = [data.slice(i, piece) for i in range(0, len(data), piece)]
    commit = CommitInfo(batch, "ident", batch_id=batch, loaded_at=datetime(2025, 3, 10, hour, tzinfo=UTC))
    replace_slice_batches(table, pieces, column="_batch_id", values=[batch], commit=commit)


def _sorted(rows: pa.Table) -> list[dict]:
    return sorted(rows.to_pylist(), key=lambda r: tuple(str(v) for v in r.values()))


@pytest.mark.parametrize(
    ("row_filter", "fields"),
    [
        (AlwaysTrue(), ("*",)),
        (And(EqualTo("source_db", "1"), NotEqualTo("_batch_id", "b2")), ("id", "_loaded_at")),
        (EqualTo("is_deleted", True), ("id", "note", "source_db")),
    ],
    ids=["everything", "one-database-outside-a-batch", "tombstones"],
)
def test_the_streaming_scan_reads_what_pyiceberg_reads(table, spec, row_filter, fields):
    _load(table, spec, "b1", [("1", 1, False), ("1", 2, False), ("2", 1, False), ("1", 3, False)], hour=1)
    _load(table, spec, "b2", [("1", 2, True), ("2", 5, False), ("1", 4, False)], hour=2)
    table.refresh()

    mine = pa.Table.from_batches(list(scan_batches(table, row_filter, fields)))
    theirs = table.scan(row_filter=row_filter, selected_fields=fields).to_arrow()

    assert mine.schema.names == theirs.schema.names
    assert _sorted(mine) == _sorted(theirs)


def test_a_renamed_column_is_read_by_its_field_id(table, spec):
    _load(table, spec, "b1", [("1", 1, False), ("1", 2, False), ("1", 3, False)], hour=1)
    with table.update_schema() as update:
        update.rename_column("note", "remark")
    table.refresh()

    rows = pa.Table.from_batches(list(scan_batches(table, AlwaysTrue(), ("id", "remark"))))

    assert sorted(rows.to_pylist(), key=lambda r: r["id"]) == [
        {"id": k, "remark": f"1-{k}"} for k in (1, 2, 3)
    ]


def test_gone_keys_are_live_in_bronze_and_missing_at_the_source(table, spec):
    # Database 1: key 2 tombstoned later (stays dead); key 4 tombstoned then loaded again (live again);
    # keys 1, 3, 4, 5 live. The source now holds 1 and 5 only: gone are 3 and 4, not 2.
    _load(table, spec, "b1", [("1", 1, False), ("1", 2, False), ("1", 3, False), ("1", 4, False)], hour=1)
    _load(table, spec, "b2", [("1", 2, True), ("1", 4, True), ("2", 3, False)], hour=2)
    _load(table, spec, "b3", [("1", 4, False), ("1", 5, False)], hour=3)
    _load(table, spec, "now", [("1", 6, False)], hour=4)  # the batch being written: does not count
    table.refresh()
    source = KeySet(pa.table({"id": pa.array([1, 5], pa.int64())}))

    gone = gone_keys(table, source, database="1", exclude_batch="now")

    assert sorted(gone.column("id").to_pylist()) == [3, 4]


def test_kept_rows_count_as_live(table, spec):
    _load(table, spec, "b1", [("1", 1, False)], hour=1)
    table.refresh()
    source = KeySet(pa.table({"id": pa.array([1], pa.int64())}))
    kept = pa.table({"id": pa.array([7, 1], pa.int64()), "note": ["kept", "kept"]})

    gone = gone_keys(table, source, database="1", exclude_batch="b9", kept=[kept])

    assert gone.column("id").to_pylist() == [7]


@pytest.mark.parametrize(
    "keys",
    [
        pa.table({"id": pa.array([5, 1, 3, 3, None], pa.int64())}),
        pa.table({"a": pa.array([5, 1, 3], pa.int64()), "b": pa.array([0, 0, 1], pa.int64())}),
    ],
    ids=["sorted-integers", "composite-join"],
)
def test_a_key_set_finds_the_rows_whose_key_it_lacks(keys):
    names = keys.column_names
    have = {tuple(r[n] for n in names) for r in keys.to_pylist()}
    probe = pa.table({n: pa.array([0, 1, 2, 3, 5, 9, None], pa.int64()) for n in names})
    probe = probe.append_column("row", pa.array(range(len(probe))))
    if len(names) == 2:  # composite keys: (k, 0) except (3, 1)
        probe = probe.set_column(1, "b", pa.array([0, 0, 0, 1, 0, 0, None], pa.int64()))

    missing = KeySet(keys).missing(probe)

    keyed = [(r["row"], tuple(r[n] for n in names)) for r in probe.to_pylist()]
    expected = [row for row, key in keyed if None in key or key not in have]
    assert sorted(missing.column("row").to_pylist()) == expected
