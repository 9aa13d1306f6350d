"""The platform page's data: every number equals the one computed from the seeded rows by hand."""

from __future__ import annotations

import json

import pytest
from tests.plugins.ops_view import expected, seed

from elt_platform.ops_view.data import DateRange, RangeError, gather, reason_code, rejected_rows
from elt_platform.registry import registry
from elt_platform.state.store import open_state_store, utcnow

PERSONAL = ("870101300123", "701 123 45 67", "87011234567", "ivan.petrov", "admin@", "+77011234567")


@pytest.fixture
def view(catalog, tmp_path):
    store = open_state_store(f"sqlite:///{tmp_path / 'state.db'}")
    seed.seed_lake(catalog)
    seed.seed_state(store, catalog, utcnow())
    try:
        yield gather(DateRange(*seed.RANGE), store=store, catalog=catalog, approvals=lambda ids: {})
    finally:
        store.close()


def test_charts_equal_the_seeded_rows(view):
    charts = view.charts
    assert {day: (people, hours) for day, people, hours in charts.attendance} == expected.attendance()
    assert charts.sales_funnel == expected.sales_funnel()
    assert dict(charts.reception_funnel) == expected.reception_funnel()
    assert charts.operations == []  # the run happened today, outside the range


def test_operations_chart_counts_todays_plan_outcomes(view, catalog):
    from elt_platform.ops_view.data import operations

    today = utcnow().date()
    assert operations(catalog, DateRange(today, today)) == [(today, seed.DESTINATION, expected.operations())]


def test_sources_show_freshness_rows_and_reasons(view):
    sources = {s.name: s for s in view.sources}
    assert {name: s.freshness.status for name, s in sources.items()} == expected.FRESHNESS
    alaqan = sources["alaqan"]
    assert alaqan.freshness.last is not None and alaqan.freshness.last.slice_key == "slice-alaqan"
    # Quarantine tables are listed with their reasons, not counted as a layer's rows.
    assert alaqan.layer_rows() == {"bronze": seed.VISITS, "silver": None, "gold": len(seed.ATTENDANCE)}
    assert {r.table: r.reasons for r in alaqan.rejected} == {
        "bronze.alaqan_visits_quarantine": expected.reasons(seed.ALAQAN_REASONS),
        "silver.alaqan_visits_quarantine": None,
        "silver.alaqan_rejected": None,
    }
    assert [(r.table, r.total) for r in sources["amocrm"].rejected] == [
        ("bronze.amocrm_quarantine", len(seed.AMOCRM_REASONS))
    ]


def test_destinations_show_the_run_rates_queues_and_masked_errors(view):
    dest = {d.name: d for d in view.destinations}[seed.DESTINATION]
    assert dest.last_run is not None and dest.last_run["run_id"] == seed.RUN_ID
    assert {k: dest.last_run["counts"][k] for k in seed.COUNTS} == seed.COUNTS
    failed, executed = expected.executed()
    assert (
        (dest.hour.failed, dest.hour.executed) == (dest.day.failed, dest.day.executed) == (failed, executed)
    )
    ops = expected.operations()
    assert dest.queues == {"retry": ops["failed"], "dead": ops["dead"], "review": ops["review"]}
    assert {e.external_id for e in dest.last_errors} == {"F1_4", "F1_6", "F1_8"}
    assert dest.pending_approvals == 0


def test_accounts_show_breakers_budgets_and_the_reset_command(view):
    accounts = {a.account: a for a in view.accounts}
    broken = accounts[seed.BREAKER_ACCOUNT]
    assert (broken.breaker, broken.reset_command) == ("open", f"elt breaker reset {seed.BREAKER_ACCOUNT}")
    budget = accounts[seed.BUDGET_ACCOUNT]
    assert (budget.breaker, budget.rate, budget.burst) == ("-", seed.BUDGET_RATE, seed.BUDGET_BURST)


def test_no_personal_data_unless_the_setting_is_clear(view, catalog, monkeypatch):
    from dataclasses import asdict

    text = json.dumps(asdict(view), default=str)
    assert [p for p in PERSONAL if p in text] == []
    columns, rows = rejected_rows("bronze.alaqan_visits_quarantine", catalog=catalog)
    assert "raw_json" not in columns and len(rows) == len(seed.ALAQAN_REASONS)
    assert [p for p in PERSONAL if p in json.dumps(rows)] == []

    monkeypatch.setenv("ELT_PII_MASKING", "clear")
    columns, rows = rejected_rows("bronze.alaqan_visits_quarantine", catalog=catalog)
    assert "raw_json" in columns and "870101300123" in {cell for row in rows for cell in row}


def test_only_rejected_tables_can_be_listed(catalog):
    with pytest.raises(KeyError):
        rejected_rows("gold.alaqan_daily_attendance", catalog=catalog)


@pytest.mark.parametrize(
    ("reason", "code"),
    [("unknown_event: 'enter'", "unknown_event"), ("bad_iin", "bad_iin"), (None, "(none)"), ("", "(none)")],
)
def test_reason_code_keeps_only_the_code(reason, code):
    assert reason_code(reason) == code


@pytest.mark.parametrize(
    ("start", "end"), [("2025-03-05", "2025-03-01"), ("2025-13-01", None), ("2000-01-01", None)]
)
def test_bad_ranges_are_refused(start, end):
    with pytest.raises(RangeError):
        DateRange.parse(start, end)


def test_the_charts_read_declared_gold_tables():
    from elt_platform.ops_view import data

    gold = {t for d in registry().domains.values() for t in d.gold_tables}
    assert {data.ATTENDANCE_TABLE, data.SALES_FUNNEL_TABLE, data.RECEPTION_FUNNEL_TABLE} <= gold
