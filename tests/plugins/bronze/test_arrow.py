"""Records → Arrow in a declaration's schema: types, nulls, constants, JSON cells, renamed keys."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal

import pyarrow as pa
import pytest

from elt_platform.bronze.arrow import records_to_arrow

EVERY_TYPE = """columns:
  - {name: day, type: date, required: true}
  - {name: label, type: string}
  - {name: at, type: timestamp}
  - {name: at_utc, type: timestamptz}
  - {name: n, type: int}
  - {name: big, type: long}
  - {name: x, type: double}
  - {name: ok, type: boolean}
  - {name: price, type: "decimal(12,2)"}
partition_by: [day]
slice_column: day
"""
DAY = date(2025, 3, 3)
AT = datetime(2025, 3, 3, 9, 0, 15)
AT_UTC = datetime(2025, 3, 3, 4, 0, 15, tzinfo=UTC)


def test_every_declared_type_and_missing_values_become_typed_nulls(make_spec):
    spec = make_spec("things", EVERY_TYPE)
    full = {
        "day": DAY,
        "label": "a",
        "at": AT,
        "at_utc": AT_UTC,
        "n": 7,
        "big": 2**40,
        "x": 1.5,
        "ok": True,
        "price": Decimal("4293.00"),
    }

    table = records_to_arrow([full, {"day": DAY}], spec)

    assert table.schema == pa.schema(
        [
            pa.field("day", pa.date32(), nullable=False),
            pa.field("label", pa.large_string()),
            pa.field("at", pa.timestamp("us")),
            pa.field("at_utc", pa.timestamp("us", tz="UTC")),
            pa.field("n", pa.int32()),
            pa.field("big", pa.int64()),
            pa.field("x", pa.float64()),
            pa.field("ok", pa.bool_()),
            pa.field("price", pa.decimal128(12, 2)),
        ]
    )
    first, second = table.to_pylist()
    assert first == full
    assert second == {"day": DAY} | {name: None for name in full if name != "day"}


def test_lineage_columns_are_left_to_the_writer(make_spec):
    spec = make_spec("things", EVERY_TYPE)
    table = records_to_arrow([{"day": DAY, "_run_id": "ignored"}], spec)
    assert "_run_id" not in table.column_names
    assert table.column_names == [c.name for c in spec.columns][:9]


def test_constants_fill_whole_columns_over_record_values(make_spec):
    spec = make_spec("things", EVERY_TYPE)
    records = [{"day": date(2000, 1, 1), "label": "kept"}, {"label": None}]

    table = records_to_arrow(records, spec, {"day": DAY, "at_utc": AT_UTC})

    assert table.column("day").to_pylist() == [DAY, DAY]
    assert table.column("at_utc").to_pylist() == [AT_UTC, AT_UTC]
    assert table.column("label").to_pylist() == ["kept", None]


def test_no_records_give_an_empty_table_in_the_schema(make_spec):
    spec = make_spec("things", EVERY_TYPE)
    table = records_to_arrow([], spec, {"day": DAY})
    assert table.num_rows == 0
    assert table.schema == spec.arrow_schema(lineage=False)


def test_lists_and_dicts_in_string_columns_become_json_text(make_spec):
    spec = make_spec(
        "things", "columns:\n  - {name: payload, type: string}\n  - {name: name, type: string}\n"
    )
    records = [
        {"payload": {"Ид": "1", "tags": ["a", "б"]}, "name": "plain"},
        {"payload": [1, 2], "name": "x"},
        {"payload": "already text", "name": None},
    ]

    table = records_to_arrow(records, spec)

    payload = table.column("payload").to_pylist()
    assert payload[0] == '{"Ид": "1", "tags": ["a", "б"]}'  # readable UTF-8, not \\u escapes
    assert [json.loads(v) for v in payload[:2]] == [records[0]["payload"], [1, 2]]
    assert payload[2] == "already text"
    assert table.column("name").to_pylist() == ["plain", "x", None]


def test_keys_map_a_column_to_a_differently_named_record_field(make_spec):
    spec = make_spec("things", "columns:\n  - {name: source_line, type: int}\n")
    table = records_to_arrow([{"sourceline": 12}], spec, keys={"source_line": "sourceline"})
    assert table.column("source_line").to_pylist() == [12]


@pytest.mark.parametrize("column", ["nope", "_run_id"])
def test_a_constant_for_a_column_the_batch_does_not_have_raises(make_spec, column):
    spec = make_spec("things", EVERY_TYPE)
    with pytest.raises(
        ValueError, match=rf"bronze.test_things: constants for undeclared or lineage columns \['{column}'\]"
    ):
        records_to_arrow([{"day": DAY}], spec, {column: "x"})


def test_a_value_of_the_wrong_type_raises(make_spec):
    spec = make_spec("things", EVERY_TYPE)
    with pytest.raises((pa.ArrowInvalid, pa.ArrowTypeError)):
        records_to_arrow([{"day": DAY, "n": "seven"}], spec)
