"""The idempotent slice writer on a temporary SqlCatalog: create, evolve, replace dates, lineage."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pyarrow as pa
import pytest
from pyiceberg.exceptions import NoSuchTableError
from pyiceberg.schema import Schema
from pyiceberg.transforms import IdentityTransform
from pyiceberg.types import DateType, NestedField, StringType

from elt_platform.iceberg.tables import load_spec
from elt_platform.iceberg.writer import CommitInfo, ensure_table, replace_dates, replace_slice, restore_slice

D1, D2, D3 = date(2025, 3, 3), date(2025, 3, 4), date(2025, 3, 5)
IIN_A, IIN_B = "910505350319", "850101450127"
THINGS_V1 = """
table: bronze.test_things
description: things for the writer tests
columns:
  - {name: day, type: date, required: true}
  - {name: name, type: string}
partition_by: [day]
"""
# v2 gains a column in the middle: the table appends it, the Arrow batches keep declaration order.
THINGS_V2 = """
table: bronze.test_things
columns:
  - {name: day, type: date, required: true}
  - {name: weight, type: double}
  - {name: name, type: string}
partition_by: [day]
"""


def _spec(root: Path, text: str):
    path = root / "bronze" / "test" / "things.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return load_spec("bronze/test/things.yaml", root=root)


def _rows(table) -> list[tuple]:
    frame = table.scan().to_arrow()
    return sorted(zip(*(frame.column(n).to_pylist() for n in ("visit_date", "iin", "event")), strict=True))


def _write(table, data, dates, run_id="run-1", start="", end=""):
    return replace_dates(
        table,
        data,
        column="visit_date",
        dates=dates,
        commit=CommitInfo(run_id=run_id, source="alaqan", interval_start=start, interval_end=end),
    )


def test_ensure_table_creates_namespace_table_and_partition_spec(catalog, tmp_path):
    table = ensure_table(catalog, _spec(tmp_path, THINGS_V1))

    assert ("bronze",) in catalog.list_namespaces()
    assert [(f.name, str(f.field_type), f.required) for f in table.schema().fields] == [
        ("day", "date", True),
        ("name", "string", False),
        ("_run_id", "string", False),
        ("_loaded_at", "timestamptz", False),
        ("_batch_id", "string", False),
        ("_source_uri", "string", False),
    ]
    (field,) = table.spec().fields
    assert isinstance(field.transform, IdentityTransform)
    assert table.schema().find_column_name(field.source_id) == "day"
    assert table.format_version == 2
    assert table.properties["comment"] == "things for the writer tests"


def test_ensure_table_on_an_unchanged_spec_changes_nothing(catalog, tmp_path):
    spec = _spec(tmp_path, THINGS_V1)
    first = ensure_table(catalog, spec)
    again = ensure_table(catalog, spec)
    assert again.metadata.current_schema_id == first.metadata.current_schema_id
    assert len(again.metadata.schemas) == 1
    assert again.metadata_location == first.metadata_location


def test_losing_a_create_race_loads_the_winners_table(catalog, tmp_path, monkeypatch):
    """Two first loads (parallel backfill runs) both see no table; the second create must not fail."""
    spec = _spec(tmp_path, THINGS_V1)
    winner = ensure_table(catalog, spec)
    real_load = catalog.load_table
    calls = []

    def load_table(identifier):
        calls.append(identifier)
        if len(calls) == 1:  # what the loser saw before the winner's create committed
            raise NoSuchTableError(identifier)
        return real_load(identifier)

    monkeypatch.setattr(catalog, "load_table", load_table)

    loser = ensure_table(catalog, spec)

    assert loser.metadata_location == winner.metadata_location
    assert len(calls) == 2


def test_a_column_added_to_the_spec_evolves_the_table_and_keeps_its_rows(catalog, tmp_path):
    v1 = _spec(tmp_path, THINGS_V1)
    table = ensure_table(catalog, v1)
    old = pa.Table.from_pylist([{"day": D1, "name": "before"}], schema=v1.arrow_schema(lineage=False))
    replace_dates(table, old, column="day", dates=[D1], commit=CommitInfo("run-1", "test"))

    v2 = _spec(tmp_path, THINGS_V2)
    table = ensure_table(catalog, v2)
    assert str(table.schema().find_field("weight").field_type) == "double"
    assert len(table.metadata.schemas) == 2
    new = pa.Table.from_pylist(
        [{"day": D2, "weight": 1.5, "name": "after"}], schema=v2.arrow_schema(lineage=False)
    )
    replace_dates(table, new, column="day", dates=[D2], commit=CommitInfo("run-2", "test"))

    got = sorted(
        table.scan(selected_fields=("day", "name", "weight", "_run_id")).to_arrow().to_pylist(),
        key=lambda r: r["day"],
    )
    assert got == [
        {"day": D1, "name": "before", "weight": None, "_run_id": "run-1"},
        {"day": D2, "name": "after", "weight": 1.5, "_run_id": "run-2"},
    ]


def test_replacing_the_same_dates_twice_leaves_the_table_unchanged(visits_table, make_visits):
    data = make_visits(
        [(D1, IIN_A, "entry", "09:00:00"), (D1, IIN_A, "exit", "18:00:00"), (D2, IIN_B, "entry", "08:30:00")]
    )
    assert _write(visits_table, data, [D1, D2]) == 3
    once = _rows(visits_table)
    assert _write(visits_table, data, [D1, D2], run_id="run-2") == 3
    assert _rows(visits_table) == once
    assert len(once) == 3


def test_only_the_named_dates_are_replaced(visits_table, make_visits):
    _write(
        visits_table,
        make_visits([(D1, IIN_A, "entry", "09:00:00"), (D2, IIN_B, "entry", "08:00:00")]),
        [D1, D2],
    )
    _write(
        visits_table,
        make_visits([(D1, IIN_B, "exit", "17:00:00"), (D3, IIN_A, "exit", "19:00:00")]),
        [D1, D3],
        run_id="run-2",
    )
    assert _rows(visits_table) == [(D1, IIN_B, "exit"), (D2, IIN_B, "entry"), (D3, IIN_A, "exit")]


def test_a_named_date_without_rows_is_emptied(visits_table, make_visits):
    _write(
        visits_table,
        make_visits([(D1, IIN_A, "entry", "09:00:00"), (D2, IIN_B, "entry", "08:00:00")]),
        [D1, D2],
    )
    _write(visits_table, make_visits([(D2, IIN_A, "exit", "18:00:00")]), [D1, D2], run_id="run-2")
    assert _rows(visits_table) == [(D2, IIN_A, "exit")]


def test_rows_outside_the_slice_raise_and_commit_nothing(visits_table, make_visits):
    _write(visits_table, make_visits([(D1, IIN_A, "entry", "09:00:00")]), [D1])
    before = visits_table.current_snapshot().snapshot_id
    stray = make_visits([(D2, IIN_A, "entry", "09:00:00"), (D3, IIN_B, "exit", "18:00:00")])

    with pytest.raises(ValueError, match="outside the slice") as caught:
        _write(visits_table, stray, [D2], run_id="run-2")

    assert "2025-03-05" in str(caught.value)
    visits_table.refresh()
    assert visits_table.current_snapshot().snapshot_id == before


def test_empty_slice_writes_nothing(visits_table, make_visits):
    assert _write(visits_table, make_visits([]), []) == 0
    assert visits_table.current_snapshot() is None


def test_snapshot_summary_carries_run_and_interval(visits_table, make_visits):
    _write(
        visits_table,
        make_visits([(D1, IIN_A, "entry", "09:00:00")]),
        [D1],
        run_id="scheduled__2025-03-04T02:00:00+00:00",
        start="2025-03-03",
        end="2025-03-04",
    )
    summary = visits_table.current_snapshot().summary
    assert summary["elt.run_id"] == "scheduled__2025-03-04T02:00:00+00:00"
    assert summary["elt.source"] == "alaqan"
    assert summary["elt.data_interval_start"] == "2025-03-03"
    assert summary["elt.data_interval_end"] == "2025-03-04"
    assert summary["added-records"] == "1"


LOADED_AT = datetime(2025, 3, 10, 6, 30, tzinfo=UTC)


def _lineage(table) -> list[tuple]:
    frame = table.scan().to_arrow()
    names = ("visit_date", "_run_id", "_loaded_at", "_batch_id", "_source_uri")
    return sorted(zip(*(frame.column(n).to_pylist() for n in names), strict=True))


def test_lineage_columns_are_stamped_from_the_commit_over_whatever_the_rows_held(visits_table, make_visits):
    rows = make_visits([(D1, IIN_A, "entry", "09:00:00"), (D2, IIN_B, "exit", "18:00:00")], run_id="stale")
    commit = CommitInfo(
        "run-7",
        "alaqan",
        "2025-03-03",
        "2025-03-05",
        source_uri={D1: "file:///l/d1.gz", D2: "file:///l/d2.gz"},
        loaded_at=LOADED_AT,
    )

    replace_slice(visits_table, rows, column="visit_date", values=[D1, D2], commit=commit)

    assert _lineage(visits_table) == [
        (D1, "run-7", LOADED_AT, "2025-03-03/2025-03-05", "file:///l/d1.gz"),
        (D2, "run-7", LOADED_AT, "2025-03-03/2025-03-05", "file:///l/d2.gz"),
    ]
    assert visits_table.current_snapshot().summary["elt.batch_id"] == "2025-03-03/2025-03-05"


def test_an_explicit_batch_id_and_one_source_uri_apply_to_every_row(visits_table, make_visits):
    rows = make_visits([(D1, IIN_A, "entry", "09:00:00"), (D1, IIN_B, "exit", "18:00:00")])
    commit = CommitInfo("run-8", "test", batch_id="pkg-1", source_uri="s3://x/pkg-1.zip", loaded_at=LOADED_AT)

    replace_slice(visits_table, rows, column="visit_date", values=[D1], commit=commit)

    assert _lineage(visits_table) == [(D1, "run-8", LOADED_AT, "pkg-1", "s3://x/pkg-1.zip")] * 2


def test_loaded_at_defaults_to_the_moment_of_the_write(visits_table, make_visits):
    before = datetime.now(UTC)
    _write(visits_table, make_visits([(D1, IIN_A, "entry", "09:00:00")]), [D1])
    ((_, _, loaded_at, batch, uri),) = _lineage(visits_table)
    assert before <= loaded_at <= datetime.now(UTC)
    assert (batch, uri) == (None, None)  # no interval, no batch id, no source given


def test_a_new_slice_is_appended_and_an_empty_one_commits_nothing(visits_table, make_visits):
    commit = CommitInfo("run-1", "test", batch_id="b")
    assert (
        replace_slice(
            visits_table, make_visits([]), column="visit_date", values=[D1], commit=commit, new_slice=True
        )
        == 0
    )
    assert visits_table.current_snapshot() is None

    replace_slice(
        visits_table,
        make_visits([(D1, IIN_A, "entry", "09:00:00")]),
        column="visit_date",
        values=[D1],
        commit=commit,
        new_slice=True,
    )
    assert visits_table.current_snapshot().summary.operation.value == "append"
    assert _rows(visits_table) == [(D1, IIN_A, "entry")]


def test_restore_slice_puts_rows_back_with_their_own_lineage(visits_table, make_visits):
    first = CommitInfo("run-1", "alaqan", batch_id="b1", source_uri="file:///one", loaded_at=LOADED_AT)
    replace_slice(
        visits_table,
        make_visits([(D1, IIN_A, "entry", "09:00:00")]),
        column="visit_date",
        values=[D1],
        commit=first,
    )
    kept = visits_table.scan().to_arrow()
    _write(visits_table, make_visits([(D1, IIN_B, "exit", "18:00:00")]), [D1], run_id="run-2")

    restore_slice(visits_table, kept, column="visit_date", values=[D1], commit=CommitInfo("undo", "alaqan"))

    assert _lineage(visits_table) == [(D1, "run-1", LOADED_AT, "b1", "file:///one")]
    assert _rows(visits_table) == [(D1, IIN_A, "entry")]


def test_a_table_made_before_the_lineage_rename_keeps_its_landing_uris_as_source_uri(catalog, tmp_path):
    catalog.create_namespace("bronze")
    catalog.create_table(
        "bronze.test_things",
        schema=Schema(
            NestedField(1, "day", DateType(), required=True),
            NestedField(2, "_landing_uri", StringType()),
        ),
    )
    old_schema = pa.schema(
        [pa.field("day", pa.date32(), nullable=False), pa.field("_landing_uri", pa.large_string())]
    )
    catalog.load_table("bronze.test_things").append(
        pa.Table.from_pylist([{"day": D1, "_landing_uri": "file:///old.gz"}], schema=old_schema)
    )

    table = ensure_table(catalog, _spec(tmp_path, THINGS_V1))

    assert table.schema().column_names == ["day", "_source_uri", "name", "_run_id", "_loaded_at", "_batch_id"]
    assert table.scan(selected_fields=("day", "_source_uri")).to_arrow().to_pylist() == [
        {"day": D1, "_source_uri": "file:///old.gz"}
    ]
