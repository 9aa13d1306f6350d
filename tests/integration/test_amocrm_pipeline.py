"""End to end for amoCRM: sandbox → ``extract_amocrm`` (``dag.test()``) → bronze → ``transform_sales`` → gold.

The story: an account whose history starts at D0 is extracted for ``[D0, D1)`` (everything so far, clock
at D1); the sandbox's clock moves one day on, to D2 (leads change, one is deleted, new ones arrive);
``[D1, D2)`` is extracted and ``transform_sales`` builds silver and gold; then ``[D1, D2)`` is extracted
again — with an OAuth connection this time (code exchanged by ``elt amocrm-auth``) — and transformed again.

Every expected value is computed here from the dataset's ground truth as of D2 (``leads_as_of``,
``records``, ``events``) with the gold rules of ``dbt/models/marts/sales/_sales__models.yml`` written out
in Python: cohorts by local (Asia/Almaty) creation month, "reached", won/lost, half-up rounding, deleted
leads left out. Nothing is read back from the SQL under test to build an expectation.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.spark]

D0 = datetime(2025, 1, 1, tzinfo=UTC)
D1 = datetime(2025, 3, 1, tzinfo=UTC)
D2 = D1 + timedelta(days=1)
LEADS, SEED = 300, 13  # seed 13: one lead live at D1 is deleted in [D1, D2); a dozen leads change
HASH_KEY = "amocrm-e2e-key"
TOKEN = "amocrm-e2e-long-lived-token"
CLIENT_SECRET = "amocrm-e2e-client-secret"
REDIRECT_URI = "https://e2e.example.kz/amocrm/callback"
RATE = 7
# Written out here, not imported: the sales rules' zone and amoCRM's system statuses.
ZONE = ZoneInfo("Asia/Almaty")
WON, LOST = 142, 143
SNAPSHOT_TABLES = ("pipelines", "users", "custom_fields")
LIST_TABLES = ("companies", "contacts", "leads", "tasks")
BRONZE_TABLES = (*SNAPSHOT_TABLES, *LIST_TABLES, "events", "quarantine")
GOLD = ("sales_funnel", "manager_activity", "client_analytics")


def _unix(moment: datetime) -> int:
    return int(moment.timestamp())


def _local_date(seconds: int) -> date:
    return datetime.fromtimestamp(seconds, ZONE).date()


def _half_up(value: Decimal, places: str = "1") -> Decimal:
    return value.quantize(Decimal(places), ROUND_HALF_UP)


def _average(total: int, count: int) -> int | None:
    return int(_half_up(Decimal(total) / count)) if count else None


# -- expected values, from the dataset's ground truth -------------------------------------------------


def served(dataset, since: datetime, until: datetime) -> dict[str, int]:
    """Rows one extract of ``[since, until)`` writes per bronze table, the clock standing at ``until``.

    Lists: the records visible at ``until`` whose ``updated_at`` lies in the window; events: those created
    in it; snapshots: the account's whole configuration, once.
    """
    at, low = _unix(until), _unix(since)
    counts = {
        entity: sum(low <= r["updated_at"] < at for r in dataset.records(entity, at))
        for entity in LIST_TABLES
    }
    counts["events"] = len(dataset.events(low, at - 1))
    counts["pipelines"] = len(dataset.pipelines)
    counts["users"] = len(dataset.users)
    counts["custom_fields"] = 6  # БИН + Источник (leads), PHONE + EMAIL (contacts), БИН + Сфера (companies)
    counts["quarantine"] = 0
    return counts


@dataclass(frozen=True)
class Truth:
    """The account at D2, as the marts should see it."""

    leads: list  # LeadState, deleted ones included
    companies: list[dict[str, Any]]  # visible at D2
    tasks: list[dict[str, Any]]
    users: dict[int, str]
    pipelines: tuple

    @property
    def live_leads(self) -> list:
        return [lead for lead in self.leads if not lead.is_deleted]


def truth_at(dataset, moment: datetime) -> Truth:
    at = _unix(moment)
    return Truth(
        leads=dataset.leads_as_of(at),
        companies=dataset.records("companies", at),
        tasks=dataset.records("tasks", at),
        users={user.id: user.name for user in dataset.users},
        pipelines=dataset.pipelines,
    )


def expected_funnel(truth: Truth) -> set[tuple]:
    """gold.amocrm_sales_funnel: every status of every pipeline × each month with a cohort in it."""
    cohorts: dict[tuple[int, int, int], list] = defaultdict(list)
    for lead in truth.live_leads:
        created = _local_date(lead.created_at)
        cohorts[(lead.pipeline_id, created.year, created.month)].append(lead)
    rows = set()
    for pipeline in truth.pipelines:
        sort_of = {status.id: status.sort for status in pipeline.statuses}
        for (pipeline_id, year, month), cohort in cohorts.items():
            if pipeline_id != pipeline.id:
                continue
            for status in pipeline.statuses:
                reached = [lead for lead in cohort if _reached(lead, status.id, sort_of, pipeline.id)]
                total = sum(lead.price for lead in reached)
                rows.add(
                    (
                        year,
                        month,
                        pipeline.id,
                        pipeline.name,
                        status.id,
                        status.name,
                        status.sort,
                        len(reached),
                        total,
                        _average(total, len(reached)),
                        sum(lead.status_id == WON for lead in reached),
                        sum(lead.status_id == LOST for lead in reached),
                        _half_up(Decimal(len(reached) * 100) / len(cohort), "0.01"),
                        len(cohort),
                    )
                )
    return rows


def _reached(lead, status_id: int, sort_of: dict[int, int], pipeline_id: int) -> bool:
    """Won/lost rows: the lead is in that status now. Open statuses: it is won now, or the status is at or
    before (by sort) the furthest open status of this pipeline it was ever in."""
    if status_id in (WON, LOST):
        return lead.status_id == status_id
    if lead.status_id == WON:
        return True
    ever = [
        sort_of[change.status_id]
        for change in lead.status_history
        if change.pipeline_id == pipeline_id and change.status_id not in (WON, LOST)
    ]
    return bool(ever) and sort_of[status_id] <= max(ever)


def expected_manager_activity(truth: Truth) -> set[tuple]:
    """gold.amocrm_manager_activity: per local month and current responsible user with any activity."""
    created: Counter[tuple] = Counter()
    closed: dict[tuple, list] = defaultdict(list)
    for lead in truth.live_leads:
        day = _local_date(lead.created_at)
        created[(day.year, day.month, lead.responsible_user_id)] += 1
        if lead.closed_at is not None and lead.status_id in (WON, LOST):
            day = _local_date(lead.closed_at)
            closed[(day.year, day.month, lead.responsible_user_id)].append(lead)
    tasks: Counter[tuple] = Counter()
    for task in truth.tasks:
        if task["is_completed"]:
            day = _local_date(task["updated_at"])
            tasks[(day.year, day.month, task["responsible_user_id"])] += 1
    rows = set()
    for key in set(created) | set(closed) | set(tasks):
        year, month, user_id = key
        done = closed.get(key, [])
        cycle = sum(lead.closed_at - lead.created_at for lead in done)
        rows.add(
            (
                year,
                month,
                user_id,
                truth.users.get(user_id),
                created[key],
                sum(lead.status_id == WON for lead in done),
                sum(lead.status_id == LOST for lead in done),
                sum(lead.price for lead in done if lead.status_id == WON),
                tasks[key],
                int(_half_up(Decimal(cycle) / (len(done) * 86_400))) if done else None,
            )
        )
    return rows


def _field_value(record: dict[str, Any], field_id: int) -> str | None:
    """The first non-blank value of a custom field, trimmed of spaces (the documented field rule)."""
    for field in record.get("custom_fields_values") or []:
        if field["field_id"] == field_id:
            for value in field.get("values") or []:
                text = (value.get("value") or "").strip(" ")
                if text:
                    return text
    return None


def expected_client_analytics(truth: Truth) -> set[tuple]:
    """gold.amocrm_client_analytics: every live company, with the live leads that list it."""
    leads_of: dict[int, list] = defaultdict(list)
    for lead in truth.live_leads:
        for company_id in set(lead.company_ids):
            leads_of[company_id].append(lead)
    rows = set()
    for company in truth.companies:
        leads = leads_of.get(company["id"], [])
        created = [_local_date(lead.created_at) for lead in leads]
        tags = sorted({tag for lead in leads for tag in lead.tags})
        rows.add(
            (
                company["id"],
                company["name"],
                _field_value(company, 701),
                len(leads),
                sum(lead.status_id == WON for lead in leads),
                sum(lead.status_id == LOST for lead in leads),
                sum(lead.price for lead in leads if lead.status_id == WON),
                min(created, default=None),
                max(created, default=None),
                _average(sum(lead.price for lead in leads), len(leads)),
                ", ".join(tags) or None,
            )
        )
    return rows


# -- the run ------------------------------------------------------------------------------------------


def _scan(table: str):
    from elt_platform.iceberg.catalog import load_catalog

    return load_catalog().load_table(table).scan().to_arrow()


def _bronze_counts() -> dict[str, int]:
    return {name: _scan(f"bronze.amocrm_{name}").num_rows for name in BRONZE_TABLES}


def _layer_counts() -> dict[str, int]:
    from elt_platform.sources.amocrm.pipeline import DOMAINS

    domain = DOMAINS[0]
    tables = [f"bronze.amocrm_{name}" for name in BRONZE_TABLES]
    return {table: _scan(table).num_rows for table in (*tables, *domain.silver_tables, *domain.gold_tables)}


def _gold() -> dict[str, list[dict[str, Any]]]:
    return {name: _scan(f"gold.amocrm_{name}").to_pylist() for name in GOLD}


def _extract(report) -> tuple[dict, float]:
    task = next(t for t in report.tasks if t.task_id == "extract_to_bronze")
    return task.result, task.seconds


def _conn(server, *, oauth: bool) -> str:
    extra: dict[str, Any] = {"requests_per_second": RATE}
    connection = {"conn_type": "http", "host": server.base_url, "password": TOKEN}
    if oauth:
        extra["redirect_uri"] = REDIRECT_URI
        connection.update(login=server.client_id, password=CLIENT_SECRET)
    return json.dumps({**connection, "extra": extra})


def _interval(start: datetime, end: datetime) -> dict[str, str]:
    return {"start_date": start.date().isoformat(), "end_date": end.date().isoformat()}


@pytest.fixture(scope="module")
def pipeline():
    from elt_platform.local_run import run_dag
    from elt_platform.sandbox.amocrm.generator import AmoCrmDataset
    from elt_platform.sandbox.amocrm.server import AmoCrmSandboxServer
    from elt_platform.sources.amocrm.commands import cmd_amocrm_auth
    from elt_platform.state import TransformLedger, open_state_store

    dataset = AmoCrmDataset(seed=SEED, leads=LEADS, start=D0, now=D1)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ELT_PII_HASH_KEY", HASH_KEY)
        server = AmoCrmSandboxServer(
            dataset,
            long_lived_token=TOKEN,
            client_secret=CLIENT_SECRET,
            redirect_uri=REDIRECT_URI,
            requests_per_second=RATE,
        )
        with server:
            # As sandbox/launch.py sets it: a private integration, the long-lived token as the password.
            mp.setenv("AIRFLOW_CONN_AMOCRM_DEFAULT", _conn(server, oauth=False))
            first, first_seconds = _extract(run_dag("extract_amocrm", _interval(D0, D1)))
            after_first = _bronze_counts()
            before = {lead.id: lead for lead in dataset.leads_as_of(_unix(D1))}
            server.advance(D2)
            second, second_seconds = _extract(run_dag("extract_amocrm", _interval(D1, D2)))
            run_dag("transform_sales")
            counts = _layer_counts()
            stats_long_lived = server.stats()
            silver_leads = {row["lead_id"]: row for row in _scan("silver.amocrm_leads").to_pylist()}
            bronze_leads = Counter(_scan("bronze.amocrm_leads").column("id").to_pylist())
            gold = _gold()
            # The rerun of [D1, D2), through OAuth: `elt amocrm-auth` stores the first pair.
            mp.setenv("AIRFLOW_CONN_AMOCRM_DEFAULT", _conn(server, oauth=True))
            code = server.issue_authorization_code(REDIRECT_URI)
            auth_exit = cmd_amocrm_auth(argparse.Namespace(code=code, conn_id="amocrm_default"))
            server.reset_stats()
            rerun, rerun_seconds = _extract(run_dag("extract_amocrm", _interval(D1, D2)))
            run_dag("transform_sales")
            stats_oauth = server.stats()
            rerun_gold = _gold()
            pending = TransformLedger(open_state_store(), "sales").pending()
            yield {
                "dataset": dataset,
                "before": before,
                "runs": [(first, first_seconds), (second, second_seconds), (rerun, rerun_seconds)],
                "after_first": after_first,
                "counts": counts,
                "rerun_counts": _layer_counts(),
                "stats": [stats_long_lived, stats_oauth],
                "silver_leads": silver_leads,
                "bronze_leads": bronze_leads,
                "gold": gold,
                "rerun_gold": rerun_gold,
                "auth_exit": auth_exit,
                "pending": pending,
            }


@pytest.fixture(scope="module")
def truth(pipeline) -> Truth:
    dataset = pipeline["dataset"]
    # A change exactly at D2 00:00:00 would be visible at D2 yet belong to the next interval.
    at = _unix(D2)
    assert all(lead.updated_at != at for lead in dataset.leads_as_of(at))
    assert all(task["updated_at"] != at for task in dataset.records("tasks", at))
    return truth_at(dataset, D2)


# -- bronze -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("run", "since", "until"), [(0, D0, D1), (1, D1, D2), (2, D1, D2)])
def test_each_extract_wrote_what_the_sandbox_served(pipeline, run, since, until):
    summary, _ = pipeline["runs"][run]
    assert summary["rows"] == served(pipeline["dataset"], since, until)
    assert summary["duplicates"] == {}
    assert summary["quarantined"] == 0


def test_bronze_holds_both_intervals(pipeline):
    dataset = pipeline["dataset"]
    first, second = served(dataset, D0, D1), served(dataset, D1, D2)
    assert pipeline["after_first"] == first
    bronze = {name: pipeline["counts"][f"bronze.amocrm_{name}"] for name in BRONZE_TABLES}
    assert bronze == {name: first[name] + second[name] for name in BRONZE_TABLES}


def test_a_lead_changed_after_the_first_interval_shows_its_new_version(pipeline, truth):
    before, silver = pipeline["before"], pipeline["silver_leads"]
    changed = [
        lead
        for lead in truth.live_leads
        if lead.id in before
        and not before[lead.id].is_deleted
        and (lead.status_id, lead.price) != (before[lead.id].status_id, before[lead.id].price)
    ]
    assert changed, "seed 13 changes a dozen leads in [D1, D2)"
    for lead in changed:
        assert pipeline["bronze_leads"][lead.id] == 2  # the D1 version and the D2 one
        row = silver[lead.id]
        assert (row["status_id"], row["price"], row["is_deleted"]) == (lead.status_id, lead.price, False)
        assert row["updated_at"] == datetime.fromtimestamp(lead.updated_at, UTC)


def test_a_lead_deleted_after_the_first_interval_is_flagged_and_left_out_of_gold(pipeline, truth):
    before, silver = pipeline["before"], pipeline["silver_leads"]
    deleted = [
        lead
        for lead in truth.leads
        if lead.is_deleted and lead.id in before and not before[lead.id].is_deleted
    ]
    assert len(deleted) == 1, "seed 13 deletes one lead in [D1, D2)"
    lead = deleted[0]
    row = silver[lead.id]
    assert row["is_deleted"] is True
    assert row["deleted_at"] == datetime.fromtimestamp(lead.deleted_at, UTC)
    # Silver has exactly the leads bronze saw: live ones as they are, deleted ones flagged.
    flagged = {lead_id for lead_id, row in silver.items() if row["is_deleted"]}
    in_trash = {lead.id for lead in truth.leads if lead.is_deleted}
    assert flagged <= in_trash and lead.id in flagged
    assert {lead.id for lead in truth.live_leads} == set(silver) - flagged
    # Gold counts it nowhere: its cohort, its manager's month and its company count live leads only.
    created = _local_date(lead.created_at)
    live = [
        other
        for other in truth.live_leads
        if _local_date(other.created_at).replace(day=1) == created.replace(day=1)
    ]
    cohort = {
        r["cohort_leads"]
        for r in pipeline["gold"]["sales_funnel"]
        if (r["year"], r["month"], r["pipeline_id"]) == (created.year, created.month, lead.pipeline_id)
    }
    assert cohort == {sum(other.pipeline_id == lead.pipeline_id for other in live)}
    activity = {
        r["leads_created"]
        for r in pipeline["gold"]["manager_activity"]
        if (r["year"], r["month"], r["responsible_user_id"])
        == (created.year, created.month, lead.responsible_user_id)
    }
    assert activity == {sum(other.responsible_user_id == lead.responsible_user_id for other in live)}
    for company in pipeline["gold"]["client_analytics"]:
        if company["company_id"] in lead.company_ids:
            assert company["total_leads"] == sum(
                company["company_id"] in other.company_ids for other in truth.live_leads
            )


# -- gold ---------------------------------------------------------------------------------------------


FUNNEL = (
    "year",
    "month",
    "pipeline_id",
    "pipeline_name",
    "status_id",
    "status_name",
    "status_sort",
    "leads_count",
    "total_price",
    "avg_price",
    "won_count",
    "lost_count",
    "conversion_rate",
    "cohort_leads",
)
ACTIVITY = (
    "year",
    "month",
    "responsible_user_id",
    "responsible_user_name",
    "leads_created",
    "leads_closed_won",
    "leads_closed_lost",
    "total_revenue",
    "tasks_completed",
    "avg_deal_cycle_days",
)
CLIENTS = (
    "company_id",
    "company_name",
    "bin",
    "total_leads",
    "won_leads",
    "lost_leads",
    "total_revenue",
    "first_deal_date",
    "last_deal_date",
    "avg_deal_price",
    "tags",
)


def _rows(rows: list[dict[str, Any]], columns: tuple[str, ...]) -> list[tuple]:
    return [tuple(row[c] for c in columns) for row in rows]


@pytest.mark.parametrize(
    ("table", "columns", "expect"),
    [
        ("sales_funnel", FUNNEL, expected_funnel),
        ("manager_activity", ACTIVITY, expected_manager_activity),
        ("client_analytics", CLIENTS, expected_client_analytics),
    ],
)
def test_gold_equals_the_independent_rules(pipeline, truth, table, columns, expect):
    actual = _rows(pipeline["gold"][table], columns)
    assert len(actual) == len(set(actual))
    expected = expect(truth)
    assert set(actual) - expected == set() and expected - set(actual) == set()


def test_a_rerun_of_the_second_interval_changes_no_count_and_no_gold_row(pipeline):
    assert pipeline["rerun_counts"] == pipeline["counts"]
    for table in GOLD:
        assert sorted(map(repr, pipeline["rerun_gold"][table])) == sorted(map(repr, pipeline["gold"][table]))


# -- politeness, auth and the ledger ------------------------------------------------------------------


@pytest.mark.parametrize("phase", [0, 1])
def test_the_account_was_never_asked_more_than_its_limit(pipeline, phase):
    stats = pipeline["stats"][phase]
    assert stats["by_status"].get("429", 0) == 0, stats
    assert stats["faults"].get("rate_limited", 0) == 0, stats
    assert stats["requests"] > 0


@pytest.mark.parametrize("run", [0, 1, 2])
def test_each_extract_stayed_under_seven_requests_a_second(pipeline, run):
    summary, seconds = pipeline["runs"][run]
    # A full bucket of 7, then 7 a second: the most any window of `seconds` can hold.
    assert summary["requests"] <= RATE * seconds + RATE, (summary["requests"], seconds)


def test_the_rerun_went_through_oauth(pipeline):
    # The OAuth connection carries no long-lived token (its password is the client secret): the rerun
    # could only authenticate with the access token `elt amocrm-auth` stored, still fresh (no refresh).
    assert pipeline["auth_exit"] == 0
    stats = pipeline["stats"][1]
    assert stats["by_route"].get("oauth", 0) == 0
    assert stats["by_status"].get("401", 0) == 0
    assert pipeline["runs"][2][0]["rows"] == pipeline["runs"][1][0]["rows"]


def test_the_ledger_has_nothing_pending_for_sales(pipeline):
    assert pipeline["pending"] == []
