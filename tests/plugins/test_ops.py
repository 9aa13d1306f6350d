"""The state store's operational rows reach the ``ops`` namespace for analysts, replaced on each export."""

from __future__ import annotations

from datetime import date

from elt_platform.ops import export_state


def test_export_copies_ledger_breakers_budgets_and_watermarks(catalog, tmp_path):
    from elt_platform.state import (
        CircuitBreaker,
        RequestBudget,
        TransformLedger,
        open_state_store,
        set_watermark,
    )

    store = open_state_store(f"sqlite:///{tmp_path / 'state.db'}")
    ledger = TransformLedger(store, "attendance")
    ledger.record(
        "alaqan", "2025-03-03/2025-03-04", start=date(2025, 3, 3), end=date(2025, 3, 4), run_id="r1"
    )
    ledger.mark_ready("alaqan", ["2025-03-03/2025-03-04"], "r1")
    CircuitBreaker(store, "amocrm:acme").open("HTML 403 ban page")
    RequestBudget(store, "alaqan:api", 5.0, 1).acquire()
    set_watermark(store, "ident:1:Receptions", "0x00000000000007D1")

    written = export_state(catalog=catalog, store=store)

    assert written == {
        "ops.transform_ledger": 1,
        "ops.circuit_breakers": 1,
        "ops.request_budgets": 1,
        "ops.watermarks": 1,
        "ops.reverse_etl_state": 0,
        "ops.reverse_etl_runs": 0,
        "ops.reverse_etl_review": 0,
    }
    ledger_rows = catalog.load_table("ops.transform_ledger").scan().to_arrow().to_pylist()
    assert [(r["domain"], r["slice_key"], r["status"], r["start"]) for r in ledger_rows] == [
        ("attendance", "2025-03-03/2025-03-04", "pending", date(2025, 3, 3))
    ]
    breaker = catalog.load_table("ops.circuit_breakers").scan().to_arrow().to_pylist()[0]
    assert (breaker["account"], breaker["state"], breaker["reason"]) == (
        "amocrm:acme",
        "open",
        "HTML 403 ban page",
    )
    mark = catalog.load_table("ops.watermarks").scan().to_arrow().to_pylist()[0]
    assert (mark["key"], mark["value"]) == ("ident:1:Receptions", "0x00000000000007D1")

    # A second export replaces, never appends: the ledger row is done now, and still one row.
    ledger.claim("t1")
    ledger.complete("t1")
    export_state(catalog=catalog, store=store)
    again = catalog.load_table("ops.transform_ledger").scan().to_arrow().to_pylist()
    assert [(r["slice_key"], r["status"]) for r in again] == [("2025-03-03/2025-03-04", "done")]
