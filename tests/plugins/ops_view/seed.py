"""Known data for the platform page's tests: a few rows in the lakehouse and the state store.

The rows are literal constants so each test can compute what the page must show by itself, without
the code under test. Sources are seeded at known ages so every freshness colour appears (alaqan 1 h:
green; amocrm 40 h: amber; onec 3 h: red; ident: never), one reverse-ETL run of Bitrix24 has every
kind of outcome, and errors and reasons carry personal data the page must not show.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pyarrow as pa

DAY = date(2025, 3, 3)
#: The charts' range of the tests: DAY .. DAY + 2 (local days); March 2025 for the funnel cohorts.
RANGE = (DAY, DAY + timedelta(days=2))

# gold.alaqan_daily_attendance: (visit_date, iin, hours_on_site); the last row is outside RANGE.
ATTENDANCE = [
    (DAY, "h1", Decimal("8.00")),
    (DAY, "h2", Decimal("7.50")),
    (DAY, "h3", Decimal("0.25")),
    (DAY + timedelta(days=1), "h1", Decimal("9.10")),
    (DAY + timedelta(days=2), "h2", Decimal("4.00")),
    (DAY + timedelta(days=2), "h3", Decimal("3.30")),
    (DAY + timedelta(days=9), "h1", Decimal("6.00")),
]
# gold.amocrm_sales_funnel: (year, month, pipeline, status_id, status, sort, leads); Feb 2025 is outside.
SALES = [
    (2025, 3, "Sales", 11, "First contact", 10, 40),
    (2025, 3, "Sales", 12, "Negotiation", 20, 25),
    (2025, 3, "Sales", 142, "Won", 10000, 9),
    (2025, 3, "Repeat", 21, "Offer", 10, 7),
    (2025, 2, "Sales", 11, "First contact", 10, 100),
]
# gold.ident_reception_funnel: (source_db, branch, name, day, scheduled, arrived, completed, cancelled,
# primary); the last row is outside RANGE.
RECEPTIONS = [
    ("ident_1", 1, "Almaty Center", DAY, 3, 1, 10, 2, 6),
    ("ident_1", 1, "Almaty Center", DAY + timedelta(days=1), 1, 0, 4, 1, 2),
    ("ident_2", 2, "Astana", DAY + timedelta(days=2), 2, 2, 5, 0, 4),
    ("ident_2", 2, "Astana", DAY + timedelta(days=20), 50, 0, 0, 0, 0),
]
PIPELINE_IDS = {"Sales": 1, "Repeat": 2}
# bronze.alaqan_visits_quarantine reasons (the details hold an IIN the page must not show).
ALAQAN_REASONS = ["unknown_event: 'enter'", "unknown_event: 'exit2'", "bad_iin: '870101300123'"]
AMOCRM_REASONS = ["missing_id: record has no integer id", "missing_id: record has no integer id"]
VISITS = 5
#: Hours since each source's last gated load (None: never loaded).
AGES = {"alaqan": 1, "amocrm": 40, "onec": 3, "ident": None}

DESTINATION = "bitrix24"
RUN_ID = "manual__seed"
#: external id → (action, outcome: ok / retry / dead / review / skipped, error)
PLAN = {
    "F1_1": ("create-contact-and-deal", "ok", None),
    "F1_2": ("create-contact-and-deal", "ok", None),
    "F1_3": ("create-deal-for-contact", "ok", None),
    "F1_4": ("create-contact-and-deal", "retry", "HTTP 500 while creating contact +7 701 123 45 67"),
    "F1_5": ("update-deal", "ok", None),
    "F1_6": ("update-deal", "dead", "contact owner ivan.petrov@example.com rejected the update"),
    "F1_7": ("skip-protected", "skipped", None),
    "F1_8": ("review", "review", "two contacts share phone 87011234567"),
}
#: What execute_run would have counted for PLAN (the report's counts).
COUNTS = {"created": 3, "updated": 1, "unchanged": 0, "protected": 1, "review": 1, "invalid": 0,
          "failed": 1, "dead": 1}  # fmt: skip
BREAKER_ACCOUNT = "bitrix24:clinic.bitrix24.kz"
BREAKER_REASON = "grant revoked by admin@example.com"
BUDGET_ACCOUNT = "amocrm:example.amocrm.ru"
BUDGET_RATE, BUDGET_BURST = 7.0, 7


def _create(catalog: Any, identifier: str, data: pa.Table) -> None:
    from pyiceberg.exceptions import NamespaceAlreadyExistsError

    try:
        catalog.create_namespace(identifier.split(".")[0])
    except NamespaceAlreadyExistsError:
        pass
    catalog.create_table(identifier, schema=data.schema).append(data)


def _spec_rows(catalog: Any, spec_path: str, rows: list[dict[str, Any]]) -> None:
    from elt_platform.iceberg.tables import load_spec
    from elt_platform.iceberg.writer import ensure_table

    spec = load_spec(spec_path)
    schema = spec.arrow_schema()
    table = ensure_table(catalog, spec)
    full = [{name: row.get(name) for name in schema.names} for row in rows]
    table.append(pa.Table.from_pylist(full, schema=schema))


def seed_lake(catalog: Any) -> None:
    """Gold tables of the charts, bronze visits and both quarantine tables."""
    _create(
        catalog,
        "gold.alaqan_daily_attendance",
        pa.Table.from_pylist(
            [{"visit_date": d, "iin": i, "hours_on_site": h, "year": d.year} for d, i, h in ATTENDANCE],
            schema=pa.schema([("visit_date", pa.date32()), ("iin", pa.string()),
                              ("hours_on_site", pa.decimal128(5, 2)), ("year", pa.int32())]),
        ),
    )  # fmt: skip
    _create(
        catalog,
        "gold.amocrm_sales_funnel",
        pa.Table.from_pylist(
            [
                {"year": y, "month": m, "pipeline_id": PIPELINE_IDS[p], "pipeline_name": p, "status_id": sid,
                 "status_name": s, "status_sort": sort, "leads_count": n}
                for y, m, p, sid, s, sort, n in SALES
            ],
            schema=pa.schema([("year", pa.int32()), ("month", pa.int32()), ("pipeline_id", pa.int64()),
                              ("pipeline_name", pa.string()), ("status_id", pa.int64()),
                              ("status_name", pa.string()), ("status_sort", pa.int32()),
                              ("leads_count", pa.int32())]),
        ),
    )  # fmt: skip
    _create(
        catalog,
        "gold.ident_reception_funnel",
        pa.Table.from_pylist(
            [
                {"source_db": db, "branch_number": b, "branch_name": name, "reception_date": d,
                 "receptions": s + a + c + x, "scheduled": s, "arrived": a, "completed": c, "cancelled": x,
                 "primary_receptions": p, "repeat_receptions": s + a + c + x - p}
                for db, b, name, d, s, a, c, x, p in RECEPTIONS
            ],
            schema=pa.schema([("source_db", pa.string()), ("branch_number", pa.int32()),
                              ("branch_name", pa.string()), ("reception_date", pa.date32()),
                              *((c, pa.int64()) for c in ("receptions", "scheduled", "arrived", "completed",
                                                          "cancelled", "primary_receptions",
                                                          "repeat_receptions"))]),
        ),
    )  # fmt: skip
    loaded = datetime(2025, 3, 4, 2, 0, tzinfo=UTC)
    _spec_rows(
        catalog,
        "bronze/alaqan/visits.yaml",
        [{"load_date": DAY, "visit_date": DAY, "iin": f"87010130012{n}", "event": "entry",
          "event_time": "09:00:00", "raw_json": "{}", "loaded_at": loaded, "_run_id": "seed"}
         for n in range(VISITS)],
    )  # fmt: skip
    _spec_rows(
        catalog,
        "bronze/alaqan/visits_quarantine.yaml",
        [{"load_date": DAY, "visit_date": DAY, "iin": "870101300123", "reason": r,
          "raw_json": '{"iin": "870101300123", "phone": "+77011234567"}', "loaded_at": loaded}
         for r in ALAQAN_REASONS],
    )  # fmt: skip
    _spec_rows(
        catalog,
        "bronze/amocrm/quarantine.yaml",
        [{"slice_date": DAY, "entity": "contacts", "reason": r, "raw_json": "{}", "loaded_at": loaded}
         for r in AMOCRM_REASONS],
    )  # fmt: skip


def seed_state(store: Any, catalog: Any, now: datetime) -> None:
    """Ledger slices at the ages of :data:`AGES`, one Bitrix24 run (reported and exported), a breaker
    and a budget."""
    from sqlalchemy import and_, update

    from elt_platform.registry import registry
    from elt_platform.reverse_etl.plan import Candidate, Decision, Outcome
    from elt_platform.reverse_etl.runs import report_run
    from elt_platform.state import CircuitBreaker, RequestBudget, TransformLedger, outbox
    from elt_platform.state.schema import transform_ledger

    for source, hours in AGES.items():
        if hours is None:
            continue
        key = f"slice-{source}"
        for domain in registry().sources[source].domains:
            ledger = TransformLedger(store, domain)
            ledger.record(source, key, run_id=f"extract-{source}")
            ledger.mark_ready(source, [key], f"extract-{source}")
        with store.transaction() as conn:
            conn.execute(
                update(transform_ledger)
                .where(and_(transform_ledger.c.source == source, transform_ledger.c.slice_key == key))
                .values(updated_at=now - timedelta(hours=hours))
            )

    decisions = {
        external_id: Decision(Candidate(external_id, "new", {"row_hash": external_id}, None), action, "none",
                              note=error if outcome == "review" else None)
        for external_id, (action, outcome, error) in PLAN.items()
    }  # fmt: skip
    outbox.start_run(store, DESTINATION, RUN_ID, dry_run=False)
    outbox.save_plan(store, DESTINATION, RUN_ID, decisions.values())
    writes = [e for e, (_, outcome, _) in PLAN.items() if outcome in ("ok", "retry", "dead")]
    outbox.mark_intent(store, DESTINATION, RUN_ID, writes)
    outcomes = [
        Outcome(e, PLAN[e][1] == "ok", crm_ids={"deal": n}, error=PLAN[e][2], retryable=PLAN[e][1] == "retry")
        for n, e in enumerate(writes)
    ]
    outbox.record_outcomes(store, DESTINATION, RUN_ID, decisions, outcomes, max_attempts=5)
    by_outcome = {
        o: [decisions[e] for e, (_, oc, _) in PLAN.items() if oc == o] for o in ("review", "skipped")
    }
    outbox.record_without_write(store, DESTINATION, RUN_ID, by_outcome["review"], "review")
    outbox.record_without_write(store, DESTINATION, RUN_ID, by_outcome["skipped"], "skipped")
    report_run(DESTINATION, RUN_ID, COUNTS, store=store, catalog=catalog)

    CircuitBreaker(store, BREAKER_ACCOUNT).open(BREAKER_REASON)
    RequestBudget(store, BUDGET_ACCOUNT, BUDGET_RATE, BUDGET_BURST).acquire(1)
