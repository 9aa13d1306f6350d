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


def _records(store, rows: list[tuple[str, str, str, str | None]], when) -> None:
    """Outbox records (destination, external id, status, last error) as the engine leaves them."""
    from elt_platform.state.schema import reverse_etl_records

    with store.transaction() as conn:
        store.upsert_many(
            conn,
            reverse_etl_records,
            [
                {
                    "destination": dest,
                    "external_id": ext,
                    "status": status,
                    "row_hash": f"h-{ext}",
                    "sent_fields": '{"PHONE": "+77011234567"}',
                    "crm_ids": '{"deal": 1}',
                    "attempts": 0,
                    "next_attempt_at": None,
                    "last_error": error,
                    "last_run_id": "r0",
                    "updated_at": when,
                }
                for dest, ext, status, error in rows
            ],
        )


def _state_table(catalog) -> dict[tuple[str, str], dict]:
    rows = catalog.load_table("ops.reverse_etl_state").scan().to_arrow().to_pylist()
    by_key = {(r["destination"], r["external_id"]): r for r in rows}
    assert len(by_key) == len(rows), "duplicate (destination, external id) rows"
    return by_key


def test_a_runs_export_writes_what_changed_and_keeps_the_mirror_exact(catalog, tmp_path, monkeypatch):
    """After each run ``ops.reverse_etl_state`` equals the state store, masked, while a run that changed
    two of 50 records writes two rows; the other destination's rows are never touched."""
    from datetime import UTC, datetime, timedelta

    from elt_platform import ops
    from elt_platform.ops import export_destination
    from elt_platform.state import open_state_store, outbox

    monkeypatch.setenv("ELT_PII_MASKING", "hash")
    store = open_state_store(f"sqlite:///{tmp_path / 'state.db'}")
    hour_ago = datetime.now(UTC) - timedelta(hours=1)
    _records(store, [("bitrix24", f"F1_{n}", "sent", None) for n in range(50)], hour_ago)
    _records(store, [("amocrm", f"F1_{n}", "sent", None) for n in range(5)], hour_ago)
    export_state(catalog=catalog, store=store)  # after a full transform: every destination
    for run_id in ("r1", "r2"):
        outbox.start_run(store, "bitrix24", run_id, dry_run=False)
        outbox.finish_run(store, "bitrix24", run_id, "done", {"updated": 2})

    first = export_destination("bitrix24", "r1", catalog=catalog, store=store)
    # No earlier export of its own: the destination's rows rewritten whole.
    assert first == {"ops.reverse_etl_runs": 1, "ops.reverse_etl_review": 0, "ops.reverse_etl_state": 50}

    _records(
        store,
        [
            ("bitrix24", "F1_3", "failed", "HTTP 503 for +7 701 123 45 67"),
            ("bitrix24", "F1_4", "review", "2 contacts have the phone 87017654321"),
            ("amocrm", "F1_0", "failed", "HTTP 502"),  # the other destination's: not this run's export
        ],
        datetime.now(UTC),
    )
    second = export_destination("bitrix24", "r2", catalog=catalog, store=store)
    assert second == {"ops.reverse_etl_runs": 1, "ops.reverse_etl_review": 1, "ops.reverse_etl_state": 2}

    state = _state_table(catalog)
    assert len(state) == 55
    assert (state["bitrix24", "F1_3"]["status"], state["bitrix24", "F1_3"]["last_error"]) == (
        "failed",
        "HTTP 503 for ***67",
    )
    assert state["bitrix24", "F1_4"]["status"] == "review"
    assert all(r["sent_fields"] == '{"PHONE": "***67"}' for r in state.values())
    assert {k: r["status"] for k, r in state.items() if r["status"] != "sent"} == {
        ("bitrix24", "F1_3"): "failed",
        ("bitrix24", "F1_4"): "review",
    }  # amocrm's F1_0 waits for its own run's export
    review = catalog.load_table("ops.reverse_etl_review").scan().to_arrow().to_pylist()
    assert [(r["external_id"], r["reason"]) for r in review] == [("F1_4", "2 contacts have the phone ***21")]
    runs = catalog.load_table("ops.reverse_etl_runs").scan().to_arrow().to_pylist()
    assert sorted((r["destination"], r["run_id"]) for r in runs) == [("bitrix24", "r1"), ("bitrix24", "r2")]

    # A rerun of the same run's report replaces its rows: still one row per run and per record.
    export_destination("bitrix24", "r2", catalog=catalog, store=store)
    runs = catalog.load_table("ops.reverse_etl_runs").scan().to_arrow().to_pylist()
    assert len(runs) == 2 and len(_state_table(catalog)) == 55

    # Merges spread the destination's rows over files: past the limit they are rewritten as one.
    monkeypatch.setattr(ops, "STATE_EXPORT_MAX_FILES", 1)
    assert export_destination("bitrix24", "r2", catalog=catalog, store=store)["ops.reverse_etl_state"] == 50
    table = catalog.load_table("ops.reverse_etl_state")
    from pyiceberg.expressions import EqualTo

    files = list(table.scan(row_filter=EqualTo("destination", "bitrix24")).plan_files())
    assert len(files) == 1 and len(_state_table(catalog)) == 55
