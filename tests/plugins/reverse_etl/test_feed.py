"""Reading an outbound table: keys of every row, whole rows only for the ones a plan picks."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pyarrow as pa

from elt_platform.reverse_etl.feed import read_outbound


def test_keys_in_external_id_order_and_whole_rows_for_the_picked_ids_only(catalog):
    schema = pa.schema(
        [
            ("external_id", pa.string()),
            ("row_hash", pa.string()),
            ("amount", pa.decimal128(18, 2)),
            ("reception_date", pa.date32()),
        ]
    )
    rows = [
        {
            "external_id": "F2_1",
            "row_hash": "b",
            "amount": Decimal("10.50"),
            "reception_date": date(2026, 1, 2),
        },
        {"external_id": "F1_9", "row_hash": "a", "amount": None, "reception_date": None},
        {"external_id": "F1_10", "row_hash": "c1", "amount": Decimal(1), "reception_date": date(2026, 1, 3)},
        {"external_id": "F1_10", "row_hash": "c2", "amount": Decimal(2), "reception_date": date(2026, 1, 4)},
    ]
    catalog.create_namespace("outbound")
    catalog.create_table("outbound.test_deals", schema=schema).append(
        pa.Table.from_pylist(rows, schema=schema)
    )

    outbound = read_outbound("outbound.test_deals", catalog=catalog)

    assert len(outbound) == 4
    # by external id as text (F1_10 < F1_9); rows sharing an id keep the table's order
    assert outbound.keys() == [
        {"external_id": "F1_10", "row_hash": "c1"},
        {"external_id": "F1_10", "row_hash": "c2"},
        {"external_id": "F1_9", "row_hash": "a"},
        {"external_id": "F2_1", "row_hash": "b"},
    ]
    assert outbound.rows(["F2_1", "F1_10", "F9_9"]) == {
        "F1_10": {"external_id": "F1_10", "row_hash": "c1", "amount": 1.0, "reception_date": "2026-01-03"},
        "F2_1": {"external_id": "F2_1", "row_hash": "b", "amount": 10.5, "reception_date": "2026-01-02"},
    }
    assert outbound.rows([]) == {}


def test_no_table_yet_is_no_rows(catalog):
    outbound = read_outbound("outbound.nothing_here", catalog=catalog)
    assert (len(outbound), outbound.keys(), outbound.rows(["F1_1"])) == (0, [], {})
