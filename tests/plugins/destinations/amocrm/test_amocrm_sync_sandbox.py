"""The amoCRM reception sync on the engine: outbound rows in Iceberg → the destination client → the sandbox.

Expected leads are written by hand from the rows and what each test seeds in the sandbox account
(its clinic pipelines and fields are the sandbox's, read from its own constants and API answers).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from tests.plugins.reverse_etl.outbound_tables import publish_outbound

from elt_platform.destinations.amocrm.client import AmoCrmDestination
from elt_platform.destinations.amocrm.mapping import load_config
from elt_platform.destinations.amocrm.sync import AmoCrmSync
from elt_platform.reverse_etl import runs
from elt_platform.sandbox.amocrm.account import (
    BRANCH_FIELD,
    CLINIC,
    CLINIC_PRIMARY_PIPELINE,
    CLINIC_REPEAT_PIPELINE,
    LOST,
    PATIENT_NUMBER_FIELD,
    RECEPTION_ID_FIELD,
    WON,
)
from elt_platform.sandbox.amocrm.generator import AmoCrmDataset
from elt_platform.sandbox.amocrm.server import AmoCrmSandboxServer
from elt_platform.state import open_state_store, outbox

TOKEN = "amocrm-sync-test-token-5e1f"
NOW = datetime(2026, 11, 1, tzinfo=UTC)
BRANCH = "Дентал Люкс Есиль"
SENT = (
    "external_id deal_title funnel stage_code status patient_full_name phone patient_number reception_id "
    "reception_date plan_start_iso doctor_name services amount"
).split()


def row(n: int, *, phone: str | None, funnel: str = "primary", **extra: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "external_id": f"F1_{n}",
        "deal_title": f"Пациент {n} — 2026-11-30",
        "funnel": funnel,
        "stage_code": "consultation_scheduled" if funnel == "primary" else "treatment",
        "status": "scheduled",
        "patient_full_name": f"Сейткали{n} Айгерим",
        "phone": phone,
        "patient_number": f"77{n:03d}",
        "reception_id": 9000 + n,
        "reception_date": "2026-11-30",
        "plan_start_iso": "2026-11-30T10:00:00+05:00",
        "doctor_name": "Доктор А",
        "services": "Консультация",
        "amount": 5000.0,
        "source_db": "1",
        "branch_number": 1,
        "branch_name": BRANCH,
        "patient_id": 500 + n,
        "completed_receptions_before": 0 if funnel == "primary" else 2,
        "changed_at": "2026-11-29T12:00:00",
    }
    values.update(extra)
    sent = {k: values[k] for k in SENT}
    values["row_hash"] = hashlib.sha256(json.dumps(sent, sort_keys=True, default=str).encode()).hexdigest()
    return values


@pytest.fixture
def account(monkeypatch: pytest.MonkeyPatch) -> Iterator[AmoCrmSandboxServer]:
    dataset = AmoCrmDataset(seed=3, leads=10, start=NOW - timedelta(days=30), now=NOW, clinic=CLINIC)
    with AmoCrmSandboxServer(dataset, long_lived_token=TOKEN) as server:
        server.sandbox.rate_limiter = None
        connection = {
            "conn_type": "http",
            "host": server.base_url,
            "password": TOKEN,
            "extra": {"requests_per_second": 100, "max_retries": 1},
        }
        monkeypatch.setenv("AIRFLOW_CONN_AMOCRM_DEFAULT", json.dumps(connection))
        yield server


@pytest.fixture
def publish(catalog):
    return lambda rows: publish_outbound(catalog, "outbound.amocrm_deals", rows)


def plan(run_id: str, catalog, lookup: str | None = None) -> dict:
    """Plan a run as the DAG does; ``lookup`` pins the way the plan looks rows up (default: by cost)."""
    if lookup is None:
        return runs.plan_run("amocrm", run_id, catalog=catalog)
    adapter = AmoCrmSync(AmoCrmDestination.from_airflow(), load_config(), lookup=lookup)
    try:
        return runs.plan_run("amocrm", run_id, catalog=catalog, adapter=adapter)
    finally:
        adapter.close()


def sync(run_id: str, catalog, lookup: str | None = None) -> tuple[dict, dict]:
    summary = plan(run_id, catalog, lookup)
    counts = runs.execute_run("amocrm", run_id)
    runs.report_run("amocrm", run_id, counts, catalog=catalog)
    return summary, counts


def statuses(server: AmoCrmSandboxServer, pipeline: int) -> dict[str, int]:
    """Status name → id of a clinic pipeline, as the sandbox account defines it."""
    found = next(p for p in CLINIC.pipelines if p.id == pipeline)
    return {s.name: s.id for s in found.statuses}


def field(lead: dict, field_id: int) -> Any:
    for item in lead.get("custom_fields_values") or []:
        if item["field_id"] == field_id:
            value = item["values"][0]
            return value.get("enum_id") or value.get("value")
    return None


def lead_of(server: AmoCrmSandboxServer, lead_id: int) -> dict:
    return server.dataset.record("leads", lead_id, with_=("contacts",))


def seed_matches(account: AmoCrmSandboxServer) -> dict[str, int]:
    """What rows 1–7 find in the account: a contact with row 2's phone, two contacts sharing row 5's, an
    open lead of reception 9003 (row 3), a manager's lead for patient 77004 (row 4), a won lead of
    reception 9006 (row 6). Returns the ids the tests check."""
    branch_id = {
        v["value"]: v["id"] for f in CLINIC.lead_fields if f["id"] == BRANCH_FIELD for v in f["enums"]
    }
    branch_id = branch_id[BRANCH]
    primary = statuses(account, CLINIC_PRIMARY_PIPELINE)
    phone_field = {"field_code": "PHONE", "values": [{"value": "+7 701 000 0002", "enum_code": "WORK"}]}
    (known_contact,) = account.dataset.create(
        "contacts", [{"name": "Айгерим", "custom_fields_values": [phone_field]}]
    )
    family = {"field_code": "PHONE", "values": [{"value": "87010000005", "enum_code": "MOB"}]}
    account.dataset.create(
        "contacts", [{"name": n, "custom_fields_values": [family]} for n in ("Мать", "Сын")]
    )
    open_status = primary["Подтвердил запись"]
    by_reception, by_number, won = account.dataset.create(
        "leads",
        [
            {  # an open lead of reception F1_3 (same reception id and branch)
                "name": "Запись 3",
                "pipeline_id": CLINIC_PRIMARY_PIPELINE,
                "status_id": open_status,
                "custom_fields_values": [
                    {"field_id": RECEPTION_ID_FIELD, "values": [{"value": 9003}]},
                    {"field_id": BRANCH_FIELD, "values": [{"enum_id": branch_id}]},
                ],
            },
            {  # a manager's lead for patient 77004, no reception yet
                "name": "Звонок пациента",
                "pipeline_id": CLINIC_PRIMARY_PIPELINE,
                "status_id": primary["Записан на приём"],
                "custom_fields_values": [{"field_id": PATIENT_NUMBER_FIELD, "values": [{"value": "77004"}]}],
            },
            {  # a won lead of reception F1_6: closed leads are never matched
                "name": "Закрыто",
                "pipeline_id": CLINIC_PRIMARY_PIPELINE,
                "status_id": WON,
                "custom_fields_values": [{"field_id": RECEPTION_ID_FIELD, "values": [{"value": 9006}]}],
            },
        ],
    )
    return {
        "known_contact": known_contact,
        "by_reception": by_reception,
        "by_number": by_number,
        "won": won,
        "open_status": open_status,
    }


def seeded_rows() -> list[dict[str, Any]]:
    """Rows 1–7 against :func:`seed_matches`: row 7 in the repeat funnel."""
    return [
        *(row(n, phone=f"+7701000000{n}") for n in range(1, 7)),
        row(7, phone="+77010000007", funnel="repeat"),
    ]


@pytest.mark.parametrize("lookup", ["search", "list"])
def test_search_hierarchy_creates_updates_and_reviews_then_a_rerun_writes_nothing(
    account, publish, catalog, lookup
):
    seeded = seed_matches(account)
    by_reception, by_number, won = seeded["by_reception"], seeded["by_number"], seeded["won"]
    known_contact, open_status = seeded["known_contact"], seeded["open_status"]
    primary = statuses(account, CLINIC_PRIMARY_PIPELINE)
    publish(seeded_rows())

    summary, counts = sync("r1", catalog, lookup)

    assert summary["actions"] == {
        "create-contact-and-deal": 3,  # F1_1, F1_6 (its lead is won), F1_7
        "create-deal-for-contact": 1,  # F1_2 → the known contact
        "update-deal": 2,  # F1_3 by reception id, F1_4 by patient number
        "review": 1,  # F1_5: two contacts share the phone
    }
    records = outbox.load_records(open_state_store(), "amocrm")
    ids = {external_id: r.crm_ids.get("deal") for external_id, r in records.items()}
    assert ids["F1_3"] == by_reception and ids["F1_4"] == by_number and ids["F1_6"] != won
    assert lead_of(account, ids["F1_2"])["_embedded"]["contacts"][0]["id"] == known_contact
    assert str(field(lead_of(account, by_number), RECEPTION_ID_FIELD)) == "9004"  # the reception attached
    assert lead_of(account, by_reception)["status_id"] == open_status  # a manual stage: not moved
    repeat = lead_of(account, ids["F1_7"])
    assert repeat["pipeline_id"] == CLINIC_REPEAT_PIPELINE
    assert repeat["status_id"] == statuses(account, CLINIC_REPEAT_PIPELINE)["Записан на приём"]
    new = lead_of(account, ids["F1_1"])
    assert (new["pipeline_id"], new["status_id"], new["price"]) == (
        CLINIC_PRIMARY_PIPELINE,
        primary["Записан на приём"],
        5000,
    )
    assert records["F1_5"].status == "review" and ids["F1_5"] is None
    assert counts["created"] == 4 and counts["updated"] == 2

    before = dict(account.writes())
    summary, _ = sync("r2", catalog)
    assert summary["candidates"] == 0 and account.writes() == before


def test_a_managers_stage_and_lead_name_survive_the_next_sync(account, publish, catalog):
    primary = statuses(account, CLINIC_PRIMARY_PIPELINE)
    publish([row(1, phone="+77010000001")])
    sync("r1", catalog)
    lead_id = outbox.load_records(open_state_store(), "amocrm")["F1_1"].crm_ids["deal"]
    account.dataset.edit_lead(lead_id, status_id=primary["Подтвердил запись"], name="VIP пациент")

    publish([row(1, phone="+77010000001", stage_code="consultation_done", status="completed", amount=7500.0)])
    summary, counts = sync("r2", catalog)

    lead = lead_of(account, lead_id)
    assert lead["status_id"] == primary["Подтвердил запись"] and lead["name"] == "VIP пациент"
    assert lead["price"] == 7500 and counts["updated"] == 1
    plan = outbox.plan_rows(open_state_store(), "amocrm", "r2")
    assert sorted(plan[0]["diff"]["protected"]) == ["name", "status_id"]


def test_a_patients_receptions_share_their_patient_number_and_phone_searches(account, publish, catalog):
    # Three new receptions of one patient (same card number, same phone): three reception-id searches,
    # one patient-number search, one phone search — and one contact for the three leads.
    publish([row(n, phone="+77010000009", patient_number="77999", patient_id=900) for n in (1, 2, 3)])
    account.reset_stats()

    summary, counts = sync("r1", catalog, lookup="search")

    by_route = account.stats()["by_route"]
    assert summary["actions"] == {"create-contact-and-deal": 1, "create-deal-for-contact": 2}
    records = outbox.load_records(open_state_store(), "amocrm")
    contacts = {records[f"F1_{n}"].crm_ids.get("contact") for n in (1, 2, 3)}
    assert len(contacts) == 1 and None not in contacts
    assert counts["created"] == 3
    # The list routes serve the searches (writes count under other routes): 3 + 1 lead searches, 1 phone.
    assert (by_route.get("leads"), by_route.get("contacts")) == (4, 1)


def test_a_large_plan_reads_the_lists_once_and_plans_as_the_searches_do(account, publish, catalog):
    # 30 new receptions: rows 1–7 against the seeded account (row 5's phone is two contacts' → review),
    # 20 new patients, and three receptions of one more patient (one contact for the three).
    seed_matches(account)
    patient = {"phone": "+77010000099", "patient_number": "77099", "patient_id": 999}
    rows = [
        *seeded_rows(),
        *(row(n, phone=f"+770100{n:05d}") for n in range(8, 28)),
        *(row(n, **patient) for n in (28, 29, 30)),
    ]
    publish(rows)
    # What the lists hold, from the account itself (before anything is written): the leads of the open
    # stages of the two clinic pipelines, and every contact.
    open_leads = sum(
        1
        for lead in account.dataset.records("leads")
        if lead["pipeline_id"] in (CLINIC_PRIMARY_PIPELINE, CLINIC_REPEAT_PIPELINE)
        and lead["status_id"] not in (WON, LOST)
    )
    contacts = len(account.dataset.records("contacts"))
    account.reset_stats()
    plan("searched", catalog, lookup="search")
    searched = account.stats()["requests"]
    account.reset_stats()

    summary = plan("listed", catalog)  # the DAG's choice: by cost
    store = open_state_store()
    plans = {run: outbox.plan_rows(store, "amocrm", run) for run in ("searched", "listed")}
    counts = runs.execute_run("amocrm", "listed")

    served = account.stats()
    expected = {"create-contact-and-deal": 24, "create-deal-for-contact": 3, "update-deal": 2, "review": 1}
    assert summary["actions"] == expected and counts["created"] == 27 and counts["updated"] == 2
    keys = ("external_id", "action", "rule", "fields", "diff", "crm_ids")
    assert [{k: r[k] for k in keys} for r in plans["listed"]] == [
        {k: r[k] for k in keys} for r in plans["searched"]
    ]
    review = [(r["external_id"], r["rule"]) for r in plans["listed"] if r["action"] == "review"]
    assert review == [("F1_5", "phone:contact")]
    # Each list: one request for page max_pages + 1 (its length: 204), then its pages of 250.
    lists = {
        "leads": 1 + max(1, math.ceil(open_leads / 250)),
        "contacts": 1 + max(1, math.ceil(contacts / 250)),
    }
    writes = sum(math.ceil(expected[action] / 50) for action in expected if action != "review")
    configuration = 2 + 2  # pipelines and lead fields, read by the plan and again by the execute task
    assert (served["by_route"]["leads"], served["by_route"]["contacts"]) == (
        lists["leads"],
        lists["contacts"],
    )
    assert served["requests"] == configuration + sum(lists.values()) + writes < searched


#: The account's write routes (the sandbox's route names): the storm hits writes, not the reads a run
#: starts with.
WRITE_ROUTES = (
    "leads_add",
    "leads_update",
    "contacts_add",
    "contacts_update",
    "leads_complex",
    "lead_update",
)


def test_a_5xx_storm_fails_rows_that_a_later_run_delivers(account, publish, catalog):
    """Every write answered 500: the rows fail with their reason (nothing half-written), wait for their
    retry, and the run after the storm creates each lead once."""
    from sqlalchemy import update

    from elt_platform.sandbox.faults import FaultConfig
    from elt_platform.state.schema import reverse_etl_records

    publish([row(n, phone=f"+7701000000{n}") for n in range(1, 4)])
    before = dict(account.writes())
    plan("r1", catalog)
    account.set_faults(FaultConfig(rate_500=1.0, routes=list(WRITE_ROUTES)))
    counts = runs.execute_run("amocrm", "r1")
    assert counts["failed"] == 3 and account.writes() == before
    records = outbox.load_records(open_state_store(), "amocrm")
    assert {r.status for r in records.values()} == {"failed"}
    assert all("500" in (r.last_error or "") for r in records.values())

    account.set_faults(FaultConfig())
    summary, _ = sync("r2", catalog)  # the backoff has not passed: nothing is due yet
    assert summary["left_alone"] == {"waiting-retry": 3} and summary["candidates"] == 0
    store = open_state_store()
    with store.transaction() as conn:  # the backoff has passed
        conn.execute(update(reverse_etl_records).values(next_attempt_at=None))
    summary, counts = sync("r3", catalog)
    assert counts["created"] == 3
    leads = {
        str(field(lead_of(account, r.crm_ids["deal"]), RECEPTION_ID_FIELD))
        for r in outbox.load_records(store, "amocrm").values()
    }
    assert leads == {"9001", "9002", "9003"}
