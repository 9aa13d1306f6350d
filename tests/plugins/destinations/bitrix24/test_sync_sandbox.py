"""The Bitrix24 sync on the engine: outbound rows in Iceberg → the real client → the sandbox portal.

Each expected CRM state is written from the rows and the seeded portal, by hand: which patient gets a
new contact, which existing contact or lead is used, what a manager's edit keeps.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from tests.plugins.reverse_etl.outbound_tables import publish_outbound

from elt_platform.reverse_etl import runs
from elt_platform.state import open_state_store, outbox

sandbox_server = pytest.importorskip("elt_platform.sandbox.bitrix24.server")

SENT_COLUMNS = (
    "external_id deal_title funnel stage_code status patient_full_name phone patient_number "
    "plan_start_iso plan_end_iso branch_name armchair_name doctor_name doctor_speciality services amount "
    "cancel_reason comment"
).split()


def outbound_row(
    n: int, *, phone: str | None, stage_code: str = "consultation_scheduled", **extra: Any
) -> dict:
    row: dict[str, Any] = {
        "external_id": f"F1_{n}",
        "deal_title": f"Пациент {n} — 2026-11-30 Филиал 1",
        "funnel": "primary",
        "stage_code": stage_code,
        "status": "scheduled",
        "patient_full_name": f"Иванов{n} Иван Петрович",
        "phone": phone,
        "patient_number": f"{1000 + n}",
        "plan_start_iso": "2026-11-30T10:00:00+05:00",
        "plan_end_iso": "2026-11-30T10:30:00+05:00",
        "branch_name": "Филиал 1",
        "armchair_name": "Кресло 1",
        "doctor_name": "Доктор А",
        "doctor_speciality": "Терапевт",
        "services": "Консультация",
        "amount": 5000.0,
        "cancel_reason": None,
        "comment": f"запись {n}",
        "source_db": "1",
        "branch_number": 1,
        "reception_id": n,
        "patient_id": 500 + n,
        "reception_date": "2026-11-30",
        "completed_receptions_before": 0,
        "changed_at": "2026-11-29T12:00:00",
    }
    row.update(extra)
    sent = {k: row[k] for k in SENT_COLUMNS}
    row["row_hash"] = hashlib.sha256(json.dumps(sent, sort_keys=True, default=str).encode()).hexdigest()
    return row


@pytest.fixture
def portal(monkeypatch: pytest.MonkeyPatch):
    with sandbox_server.Bitrix24SandboxServer(drain_per_second=1000, burst=1000) as server:
        monkeypatch.setenv(
            "AIRFLOW_CONN_CRM_BITRIX24",
            json.dumps({"conn_type": "http", "host": server.webhook_url, "extra": {"max_retries": 1}}),
        )
        yield server


@pytest.fixture
def publish(catalog):
    return lambda rows: publish_outbound(catalog, "outbound.bitrix24_deals", rows)


def sync(run_id: str, catalog) -> tuple[dict, dict]:
    summary = runs.plan_run("bitrix24", run_id, catalog=catalog)
    counts = runs.execute_run("bitrix24", run_id)
    runs.report_run("bitrix24", run_id, counts, catalog=catalog)
    return summary, counts


def deals_by_external_id(server) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {}
    for deal in server.snapshot()["deals"]:
        found.setdefault(deal.get("UF_CRM_IDENT_ID") or "", []).append(deal)
    return found


def test_matching_creates_converts_and_reviews_then_a_rerun_sends_nothing(portal, publish, catalog):
    known = portal.seed_contact(
        NAME="Айгерим", PHONE=[{"VALUE": "8 (701) 000-00-02", "VALUE_TYPE": "MOBILE"}]
    )
    lead = portal.seed_lead(TITLE="Заявка с сайта", STATUS_ID="NEW", PHONE=[{"VALUE": "+7 701 000 0003"}])
    for name in ("Мать", "Сын"):  # one family phone on two contacts: ambiguous
        portal.seed_contact(NAME=name, PHONE=[{"VALUE": "+77010000004", "VALUE_TYPE": "WORK"}])
    publish(
        [
            outbound_row(1, phone="+77010000001"),
            outbound_row(2, phone="+77010000002"),
            outbound_row(3, phone="+77010000003"),
            outbound_row(4, phone="+77010000004"),
            outbound_row(5, phone=None),
        ]
    )
    before = portal.snapshot()

    summary, counts = sync("r1", catalog)

    assert summary["actions"] == {
        "create-contact-and-deal": 2,
        "create-deal-for-contact": 1,
        "convert-lead": 1,
        "review": 1,
    }
    assert summary["needs_approval"]  # the first run against a portal
    deals = deals_by_external_id(portal)
    assert sorted(deals) == ["F1_1", "F1_2", "F1_3", "F1_5"] and all(len(d) == 1 for d in deals.values())
    assert int(deals["F1_2"][0]["CONTACT_ID"]) == known
    converted = portal.portal.record("lead", lead)
    assert converted["STATUS_ID"] == "CONVERTED" and int(deals["F1_3"][0]["LEAD_ID"]) == lead
    contacts = portal.snapshot()["contacts"]
    assert len(contacts) == len(before["contacts"]) + 3  # F1_1, F1_3 (from the lead), F1_5
    assert {d["STAGE_ID"] for ds in deals.values() for d in ds} == {"C2:NEW"}
    assert deals["F1_1"][0]["CATEGORY_ID"] in ("2", 2)
    records = outbox.load_records(open_state_store(), "bitrix24")
    assert records["F1_4"].status == "review" and "2 contacts" in (records["F1_4"].last_error or "")
    assert counts["created"] == 4 and counts["review"] == 1

    portal.reset_stats()
    summary, counts = sync("r2", catalog)
    assert summary["candidates"] == 0 and summary["left_alone"] == {"review": 1, "unchanged": 4}
    writes = [c for c in portal.commands() if c.method.endswith((".add", ".update"))]
    assert writes == []


def test_a_managers_stage_and_field_survive_the_next_sync(portal, publish, catalog):
    publish([outbound_row(1, phone="+77010000001")])
    sync("r1", catalog)
    deal = deals_by_external_id(portal)["F1_1"][0]
    portal.edit_deal_as_person(int(deal["ID"]), STAGE_ID="C2:EXECUTING", TITLE="VIP: согласован план")

    publish(
        [
            outbound_row(
                1, phone="+77010000001", stage_code="consultation_done", status="completed", amount=7500.0
            )
        ]
    )
    summary, counts = sync("r2", catalog)

    after = deals_by_external_id(portal)["F1_1"][0]
    assert after["STAGE_ID"] == "C2:EXECUTING"  # manual stage kept
    assert after["TITLE"] == "VIP: согласован план"  # protected field a person changed
    assert float(after["OPPORTUNITY"]) == 7500.0  # the rest is synced
    assert summary["actions"] == {"update-deal": 1} and counts["updated"] == 1
    plan = outbox.plan_rows(open_state_store(), "bitrix24", "r2")
    assert sorted(plan[0]["diff"]["protected"]) == ["STAGE_ID", "TITLE"]


def test_a_5xx_storm_fails_rows_that_a_later_run_delivers(portal, publish, catalog, monkeypatch):
    from sqlalchemy import update

    from elt_platform.sandbox.faults import FaultConfig
    from elt_platform.state.schema import reverse_etl_records

    publish([outbound_row(n, phone=f"+7701000000{n}") for n in range(1, 4)])
    runs.plan_run("bitrix24", "r1", catalog=catalog)
    portal.set_faults(FaultConfig(rate_500=1.0))
    counts = runs.execute_run("bitrix24", "r1")
    assert counts["failed"] == 3 and deals_by_external_id(portal) == {}
    portal.set_faults(FaultConfig())
    store = open_state_store()
    with store.transaction() as conn:  # the backoff has passed
        conn.execute(update(reverse_etl_records).values(next_attempt_at=None))
    summary, counts = sync("r2", catalog)
    assert summary["left_alone"] == {} and counts["created"] == 3
    assert sorted(deals_by_external_id(portal)) == ["F1_1", "F1_2", "F1_3"]


def test_a_patients_receptions_share_one_new_contact_across_batches(portal, publish, catalog):
    family = "+77019999999"
    # Ordered by external id F1_1, F1_10 … F1_19, F1_2, … F1_9 (last): F1_1 creates the contact, F1_10
    # links to it in the same chunk ($result, kept in one batch call), F1_9 in the next chunk (50 rows each).
    rows = [outbound_row(n, phone=family if n in (1, 9, 10) else f"+770100000{n:02d}") for n in range(1, 61)]
    publish(rows)
    contacts_before = len(portal.snapshot()["contacts"])

    summary, counts = sync("r1", catalog)

    assert counts["created"] == 60 and summary["actions"]["create-deal-for-contact"] == 2
    contacts = portal.snapshot()["contacts"]
    assert len(contacts) == contacts_before + 58  # 60 receptions, 58 distinct phones
    deals = deals_by_external_id(portal)
    family_contacts = {deals[f"F1_{n}"][0]["CONTACT_ID"] for n in (1, 9, 10)}
    assert len(family_contacts) == 1 and None not in family_contacts
