"""End to end: the real iDent DAGs (``dag.test()``) → Iceberg bronze → dbt silver/gold, against the sandbox.

Four PostgreSQL databases (five branches) reached through psqlODBC, as the launcher sets them up. The
module runs ``extract_ident`` for ``[D-1, D)`` (the initial load), a clinic tick on database 1 (with a hard
delete), the ``extract_ident_receptions`` micro-batch and ``transform_clinic``; then the daily extract is
rerun (its reconciliation turns the hard delete into a tombstone) and the transform again. Then the deal
feed goes to a Bitrix24 sandbox portal through ``reverse_etl_bitrix24`` (dry run, run, rerun), one
reception is edited in iDent, and micro-batch → transform → reverse ETL must update exactly its deal.

Expected values are computed here from the sandbox databases read with plain SQL (psycopg), the rules
(branch, status ladder, earlier completed receptions, amounts, funnel, doctor load) written out in Python
from the models' YAML docs, and the branch map read from the manifest YAML directly — not from the dbt SQL.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

pytestmark = [pytest.mark.integration, pytest.mark.spark]

pyodbc = pytest.importorskip("pyodbc")
cluster_module = pytest.importorskip("elt_platform.sandbox.ident.cluster")

SEED, SCALE = 5, 0.1
DAY = date(2025, 3, 10)  # the data ends at D 00:00 local; the daily interval is [D-1, D)
NOW = datetime.combine(DAY, datetime.min.time())
TICK_AT = NOW + timedelta(minutes=30)  # night: due no-shows arrive and complete, bookings, a delete
TICKED = "1"  # the database the tick runs on (two branches share it)
MANIFEST_YAML = Path(__file__).resolve().parents[2] / "schemas" / "sources" / "ident.yaml"
CONF = {"start_date": (DAY - timedelta(days=1)).isoformat(), "end_date": DAY.isoformat()}
TABLES = (
    "Receptions", "Patients", "Persons", "Staffs", "Items", "ProfessionNames", "OwnCompanies", "Armchairs",
    "ReceptionCancelReasons", "TreatmentPlans", "TreatmentPlanElementRelations", "TreatmentPlanStages",
    "TreatmentPlanElements", "Orders", "OrderServiceRelation", "ServiceItems", "ServiceItemPrices",
    "PaymentsIn",
)  # fmt: skip
SILVER = (
    "silver.ident_receptions",
    "silver.ident_patients",
    "silver.ident_staff",
    "silver.ident_treatment_plans",
)
GOLD = (
    "gold.ident_receptions",
    "gold.ident_reception_funnel",
    "gold.ident_treatment_plans",
    "gold.ident_doctor_load",
)


def _bronze(table: str) -> str:
    import re

    return "bronze.ident_" + re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", table).lower()


def _scan(table: str):
    from elt_platform.iceberg.catalog import load_catalog

    return load_catalog().load_table(table).scan().to_arrow()


def _rows(table: str) -> list[dict]:
    return _scan(table).to_pylist()


def _counts(tables) -> dict[str, int]:
    return {table: _scan(table).num_rows for table in tables}


def _source_counts(cluster) -> dict[tuple[str, str], int]:
    """Rows per (table, database) at the source, tables a database leaves empty omitted."""
    import psycopg

    counts = {}
    for key, db in zip(("1", "2", "3", "4"), cluster.databases, strict=True):
        with psycopg.connect(db.libpq) as conn:
            for table in TABLES:
                if n := conn.execute(f'SELECT COUNT(*) FROM dbo."{table}"').fetchone()[0]:
                    counts[table, key] = n
    return counts


def _external_ids(conn, database: str) -> dict[int, str | None]:
    """Reception ID → F<branch>_<ID> of one database, now (branch: chair → OwnCompanies → manifest)."""
    manifest = yaml.safe_load(MANIFEST_YAML.read_text())
    branch_of = {
        int(company): int(number)
        for number, b in manifest["branches"].items()
        if str(b["database"]) == database
        for company in b["own_companies"]
    }
    rows = _select(
        conn,
        'SELECT r."ID", a."ID_OwnCompanies" FROM dbo."Receptions" r'
        ' LEFT JOIN dbo."Armchairs" a ON a."ID" = r."ID_Armchairs"',
    )
    return {
        r["ID"]: f"F{branch_of[r['ID_OwnCompanies']]}_{r['ID']}"
        if r["ID_OwnCompanies"] in branch_of
        else None
        for r in rows
    }


def _bronze_counts() -> dict[tuple[str, str], int]:
    counts: Counter = Counter()
    for table in TABLES:
        for db in _scan(_bronze(table)).column("source_db").to_pylist():
            counts[table, db] += 1
    return dict(counts)


def _select(conn, sql: str) -> list[dict]:
    cur = conn.execute(sql)
    names = [d.name for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def _status(r: dict) -> str:
    """The ladder of silver.ident_receptions: cancelled → completed → arrived → scheduled."""
    if r["ReceptionCanceled"] is not None or r["ID_ReceptionCancelReasons"] is not None:
        return "cancelled"
    if r["ReceptionEnded"] is not None or r["CheckIssued"] is not None:
        return "completed"
    if r["ReceptionStarted"] is not None or r["PatientAppeared"] is not None:
        return "arrived"
    return "scheduled"


def _expected(cluster) -> dict:
    """Every reception of every database as gold should show it, computed from the source rows."""
    import psycopg

    manifest = yaml.safe_load(MANIFEST_YAML.read_text())
    branch_of = {
        (str(b["database"]), int(company)): int(number)
        for number, b in manifest["branches"].items()
        for company in b["own_companies"]
    }
    receptions: dict[tuple[str, int], dict] = {}
    for key, db in zip(("1", "2", "3", "4"), cluster.databases, strict=True):
        with psycopg.connect(db.libpq) as conn:
            chairs = {r["ID"]: r["ID_OwnCompanies"] for r in _select(conn, 'SELECT * FROM dbo."Armchairs"')}
            price = {r["ID"]: r["Price"] for r in _select(conn, 'SELECT * FROM dbo."ServiceItemPrices"')}
            order_reception = {
                r["ID"]: r["ID_Receptions"] for r in _select(conn, 'SELECT * FROM dbo."Orders"')
            }
            amounts: dict[int, Decimal] = {}
            for line in _select(conn, 'SELECT * FROM dbo."OrderServiceRelation"'):
                reception = order_reception.get(line["ID_Orders"])
                if reception is None:
                    continue
                value = line["CountService"] * price[line["ID_ServicePrices"]] - (line["DiscountSum"] or 0)
                amounts[reception] = amounts.get(reception, Decimal(0)) + value
            rows = _select(conn, 'SELECT * FROM dbo."Receptions"')
        completed_starts = defaultdict(list)
        for r in rows:
            r["status"] = _status(r)
            if r["status"] == "completed":
                completed_starts[r["ID_Patients"]].append(r["PlanStart"])
        for r in rows:
            company = chairs.get(r["ID_Armchairs"])
            branch = branch_of.get((key, company)) if company is not None else None
            receptions[key, r["ID"]] = {
                "source_db": key,
                "reception_id": r["ID"],
                "branch_number": branch,
                "external_id": None if branch is None else f"F{branch}_{r['ID']}",
                "status": r["status"],
                "patient_id": r["ID_Patients"],
                "doctor_id": r["ID_Staffs"],
                "plan_start": r["PlanStart"],
                "plan_end": r["PlanEnd"],
                "amount": None if r["ID"] not in amounts else amounts[r["ID"]].quantize(Decimal("0.01")),
                "completed_receptions_before": sum(
                    start < r["PlanStart"] for start in completed_starts[r["ID_Patients"]]
                ),
            }
    funnel: dict[tuple, Counter] = defaultdict(Counter)
    load: dict[tuple, dict] = defaultdict(
        lambda: {"booked": 0, "minutes": 0, "completed": 0, "revenue": Decimal(0)}
    )
    for r in receptions.values():
        day = r["plan_start"].date()
        counts = funnel[r["source_db"], r["branch_number"], day]
        counts["receptions"] += 1
        counts[r["status"]] += 1
        counts["primary_receptions"] += r["completed_receptions_before"] == 0
        if r["doctor_id"] is None:
            continue
        doctor = load[r["source_db"], r["doctor_id"], day]
        if r["status"] != "cancelled":
            doctor["booked"] += 1
            minutes = int((r["plan_end"] - r["plan_start"]).total_seconds() // 60) if r["plan_end"] else 0
            doctor["minutes"] += max(minutes, 0)
        if r["status"] == "completed":
            doctor["completed"] += 1
            doctor["revenue"] += r["amount"] or 0
    return {"receptions": receptions, "funnel": funnel, "load": load}


@pytest.fixture(scope="module")
def pipeline():
    from elt_platform.local_run import run_dag
    from elt_platform.sandbox.ident import catalog
    from elt_platform.sandbox.ident.activity import tick
    from elt_platform.sandbox.ident.driver import DRIVER, driver_installed
    from elt_platform.sandbox.ident.generator import load
    from elt_platform.sources.ident.extract import get, watermark_key
    from elt_platform.state.store import open_state_store

    if cluster_module.postgres_bindir() is None or not driver_installed(DRIVER):
        pytest.skip("needs PostgreSQL binaries and psqlODBC")
    with (
        pytest.MonkeyPatch.context() as mp,
        cluster_module.PostgresCluster(databases=catalog.DATABASES) as cluster,
    ):
        load(cluster.odbc, seed=SEED, scale=SCALE, now=NOW)
        # As the launcher (elt_platform.sandbox.launch:ident) sets them.
        for number, database in enumerate(cluster.databases, start=1):
            mp.setenv(f"AIRFLOW_CONN_IDENT_{number}", json.dumps(database.airflow_connection()))
        mp.setenv("AIRFLOW__PROVIDERS_ODBC__ALLOW_DRIVER_IN_EXTRA", "True")
        mp.setenv("ELT_IDENT_SANDBOX", "1")

        source_before = _source_counts(cluster)
        run_dag("extract_ident", CONF)
        bronze_initial = _bronze_counts()
        key = watermark_key(TICKED, "Receptions")
        store = open_state_store()
        watermark_before = int(get(store, key))
        import psycopg

        with psycopg.connect(cluster.databases[int(TICKED) - 1].libpq) as pg:
            external_before_tick = _external_ids(pg, TICKED)
        conn = pyodbc.connect(cluster.databases[int(TICKED) - 1].odbc)
        try:
            ticked = tick(conn, TICK_AT, seed=1, delete_probability=1.0)
            max_version = (
                conn.cursor().execute('SELECT MAX("RowVersion") FROM dbo."Receptions"').fetchone()[0]
            )
        finally:
            conn.close()
        micro = run_dag("extract_ident_receptions", CONF)
        watermark_after = int(get(store, key))
        micro_rows = [
            r for r in _rows("bronze.ident_receptions") if r["_batch_id"] == f"receptions/{micro.run_id}"
        ]
        run_dag("transform_clinic", CONF)
        first = _counts(SILVER + GOLD)
        first_gold = {r["external_id"] for r in _rows("gold.ident_receptions")}
        run_dag("extract_ident", CONF)
        run_dag("transform_clinic", CONF)
        second = _counts(SILVER + GOLD)
        expected = _expected(cluster)
        crm = _reverse_etl(mp, cluster, run_dag)
        yield {
            "cluster": cluster,
            "expected": expected,
            "crm": crm,
            "source_before": source_before,
            "source_after": _source_counts(cluster),
            "bronze_initial": bronze_initial,
            "tick": ticked,
            "max_version": int(max_version),
            "watermarks": (watermark_before, watermark_after),
            "micro_rows": micro_rows,
            "first": first,
            "first_gold": first_gold,
            "second": second,
            "external_before_tick": external_before_tick,
        }


def test_initial_daily_load_matches_the_source_row_for_row(pipeline):
    assert pipeline["bronze_initial"] == pipeline["source_before"]


def test_micro_batch_reads_exactly_the_ticked_receptions(pipeline):
    result = pipeline["tick"]
    assert result.deleted and (result.inserted or result.updated)
    by_db = defaultdict(set)
    for row in pipeline["micro_rows"]:
        by_db[row["source_db"]].add(row["id"])
        assert row["is_deleted"] is False
    assert by_db[TICKED] == (result.inserted | result.updated) - set(result.deleted)
    assert set(by_db) <= {TICKED}
    before, after = pipeline["watermarks"]
    assert before < after == pipeline["max_version"]


def test_hard_deleted_reception_is_flagged_in_silver_and_leaves_gold(pipeline):
    deleted = set(pipeline["tick"].deleted)
    silver = {
        r["reception_id"]: r["is_deleted"]
        for r in _rows("silver.ident_receptions")
        if r["source_db"] == TICKED
    }
    assert all(silver[ident] is True for ident in deleted)
    gold = {(r["source_db"], r["reception_id"]) for r in _rows("gold.ident_receptions")}
    assert not {(TICKED, ident) for ident in deleted} & gold
    assert sum(silver.values()) == len(deleted)


def test_bronze_after_the_rerun_holds_the_source_state(pipeline):
    """Latest bronze row per key (live) = the source's keys, for every table and database."""
    from elt_platform.sources.ident.manifest import load_manifest, snake

    manifest = load_manifest()
    daily = f"{CONF['start_date']}/{CONF['end_date']}"
    for table in TABLES:
        rows = _scan(_bronze(table)).to_pylist()
        if table == "Receptions":
            latest: dict = {}
            for row in sorted(rows, key=lambda r: r["_loaded_at"]):
                latest[row["source_db"], row["id"]] = row["is_deleted"]
            live = Counter(db for (db, _), dead in latest.items() if not dead)
        else:
            keys = [snake(k) for k in manifest.tables[table].key]
            slice_rows = [r for r in rows if r["_batch_id"] == daily and not r["is_deleted"]]
            assert len({(r["source_db"], *(r[k] for k in keys)) for r in slice_rows}) == len(slice_rows), (
                table
            )
            live = Counter(r["source_db"] for r in slice_rows)
        source = {db: pipeline["source_after"].get((table, db), 0) for db in ("1", "2", "3", "4")}
        assert dict(live) == {db: n for db, n in source.items() if n}, table


def test_gold_receptions_external_ids_status_history_and_amounts(pipeline):
    expected = pipeline["expected"]["receptions"]
    gold = {(r["source_db"], r["reception_id"]): r for r in _rows("gold.ident_receptions")}
    assert len(gold) == len(expected)
    assert set(gold) == set(expected)
    assert {r["branch_number"] for r in gold.values() if r["source_db"] == TICKED} == {1, 2}
    for key, want in expected.items():
        row = gold[key]
        assert row["external_id"] == want["external_id"], key
        assert row["branch_number"] == want["branch_number"], key
        assert row["status"] == want["status"], key
        assert row["completed_receptions_before"] == want["completed_receptions_before"], key
        assert row["amount"] == want["amount"], key
    # At a midnight cut no visit is in progress (the tick's night arrivals are due, so they complete).
    statuses = Counter(want["status"] for want in expected.values())
    assert all(statuses[s] > 0 for s in ("scheduled", "completed", "cancelled")), statuses
    assert any(want["amount"] is None for want in expected.values())
    assert any(want["completed_receptions_before"] > 1 for want in expected.values())


def test_funnel_counts_per_branch_day_and_status(pipeline):
    expected = pipeline["expected"]["funnel"]
    actual = {
        (r["source_db"], r["branch_number"], r["reception_date"]): r
        for r in _rows("gold.ident_reception_funnel")
    }
    assert set(actual) == set(expected)
    for key, counts in expected.items():
        row = actual[key]
        for column in ("receptions", "scheduled", "arrived", "completed", "cancelled", "primary_receptions"):
            assert row[column] == counts[column], (key, column)


def test_doctor_load_minutes_and_revenue_for_every_doctor_and_day(pipeline):
    expected = pipeline["expected"]["load"]
    actual = {(r["source_db"], r["doctor_id"], r["work_date"]): r for r in _rows("gold.ident_doctor_load")}
    assert set(actual) == set(expected)
    for key, want in expected.items():
        row = actual[key]
        assert (row["booked_receptions"], row["booked_minutes"]) == (want["booked"], want["minutes"]), key
        assert row["completed_receptions"] == want["completed"], key
        assert row["revenue"] == want["revenue"].quantize(Decimal("0.01")), key


def test_rerun_changes_no_count_but_the_reconciled_delete(pipeline):
    first, second = pipeline["first"], pipeline["second"]
    deleted = len(pipeline["tick"].deleted)
    same = [t for t in SILVER if t != "silver.ident_patients"]  # the tick's new patients come daily
    assert {t: second[t] for t in same} == {t: first[t] for t in same}
    assert second["silver.ident_patients"] == sum(
        n for (table, _), n in pipeline["source_after"].items() if table == "Patients"
    )
    assert second["gold.ident_receptions"] == first["gold.ident_receptions"] - deleted
    assert second["gold.ident_treatment_plans"] == first["gold.ident_treatment_plans"]
    gold = {r["external_id"] for r in _rows("gold.ident_receptions")}
    assert pipeline["first_gold"] - gold == {
        pipeline["external_before_tick"][i] for i in pipeline["tick"].deleted
    }


# --- reverse ETL to Bitrix24 -------------------------------------------------------------------------------

#: schemas/destinations/bitrix24.yaml: stage_code → STAGE_ID, written out again here.
B24_STAGE = {
    ("primary", "scheduled"): "C2:NEW",
    ("primary", "arrived"): "C2:NEW",
    ("primary", "completed"): "C2:PREPARATION",
    ("repeat", "scheduled"): "C2:FINAL_INVOICE",
    ("repeat", "arrived"): "C2:FINAL_INVOICE",
    ("repeat", "completed"): "C2:WON",
}


def _b24_stage(r: dict) -> str:
    if r["status"] == "cancelled":
        return "C2:LOSE"
    return B24_STAGE["primary" if r["completed_receptions_before"] == 0 else "repeat", r["status"]]


def _e164(value: str | None) -> str | None:
    import re

    digits = re.sub(r"[^0-9]", "", value or "")
    if value and value.strip().startswith("+"):
        return f"+{digits}" if len(digits) == 11 and digits.startswith("7") else None
    if len(digits) == 11 and digits[0] in "78":
        return "+7" + digits[1:]
    return "+7" + digits if len(digits) == 10 and digits.startswith("7") else None


def _patient_phones(cluster) -> dict[tuple[str, int], str]:
    """(database, patient id) → E.164 phone, from Persons.MobilePhone."""
    import psycopg

    phones = {}
    for key, db in zip(("1", "2", "3", "4"), cluster.databases, strict=True):
        with psycopg.connect(db.libpq) as conn:
            for r in _select(conn, 'SELECT "ID", "MobilePhone" FROM dbo."Persons"'):
                if (phone := _e164(r["MobilePhone"])) is not None:
                    phones[key, r["ID"]] = phone
    return phones


def _reverse_etl(mp, cluster, run_dag) -> dict:
    from datetime import UTC

    from elt_platform.sandbox.amocrm.account import CLINIC
    from elt_platform.sandbox.amocrm.generator import AmoCrmDataset
    from elt_platform.sandbox.amocrm.server import AmoCrmSandboxServer
    from elt_platform.sandbox.bitrix24.server import Bitrix24SandboxServer

    live = {r["external_id"]: r for r in _expected(cluster)["receptions"].values() if r["external_id"]}
    phones = _patient_phones(cluster)
    by_phone: dict[str, set[str]] = defaultdict(set)
    for external_id, r in live.items():
        if (phone := phones.get((r["source_db"], r["patient_id"]))) is not None:
            by_phone[phone].add(external_id)
    lead_phone, contact_phone = sorted(by_phone)[:2]
    amo_now = datetime.combine(DAY, datetime.min.time(), tzinfo=UTC)
    amo_dataset = AmoCrmDataset(
        seed=SEED, leads=20, start=amo_now - timedelta(days=30), now=amo_now, clinic=CLINIC
    )
    with (
        Bitrix24SandboxServer(burst=1000, drain_per_second=1000) as portal,
        AmoCrmSandboxServer(amo_dataset, long_lived_token="amo-e2e-token") as amo,
    ):
        amo.sandbox.rate_limiter = None
        fast = {"max_retries": 2, "requests_per_second": 100, "burst": 500}
        mp.setenv(
            "AIRFLOW_CONN_CRM_BITRIX24",
            json.dumps({"conn_type": "http", "host": portal.webhook_url, "extra": fast}),
        )
        mp.setenv(
            "AIRFLOW_CONN_AMOCRM_DEFAULT",
            json.dumps(
                {"conn_type": "http", "host": amo.base_url, "password": "amo-e2e-token", "extra": fast}
            ),
        )
        mp.setenv("ELT_REVERSE_ETL_AUTO_APPROVE", "bitrix24,amocrm")
        lead = portal.seed_lead(TITLE="Заявка с сайта", STATUS_ID="NEW", PHONE=[{"VALUE": lead_phone}])
        contact = portal.seed_contact(NAME="Клиент", PHONE=[{"VALUE": contact_phone, "VALUE_TYPE": "WORK"}])
        run_dag("reverse_etl_bitrix24", {"dry_run": True})
        after_dry_run = portal.snapshot()
        run_dag("reverse_etl_bitrix24", {})
        run_dag("reverse_etl_amocrm", {})
        first = portal.snapshot()
        amo_first = amo.writes()
        portal.reset_stats()
        run_dag("reverse_etl_bitrix24", {})
        run_dag("reverse_etl_amocrm", {})
        rerun_writes = [c.method for c in portal.commands() if c.method.endswith((".add", ".update"))]
        amo_rerun = amo.writes()
        # A receptionist edits one reception's comment in iDent: the next cycle updates exactly its deal
        # in Bitrix24; amoCRM does not receive comments, so nothing is sent there.
        edited = sorted(r for r in live if r.startswith("F1_"))[0]
        database = cluster.databases[0]
        conn = pyodbc.connect(database.odbc, autocommit=True)
        try:
            conn.cursor().execute(
                'UPDATE dbo."Receptions" SET "Comment" = ? WHERE "ID" = ?',
                "перезвонить",
                live[edited]["reception_id"],
            )
        finally:
            conn.close()
        portal.reset_stats()
        run_dag("extract_ident_receptions", CONF)
        run_dag("transform_clinic", CONF)
        run_dag("reverse_etl_bitrix24", {})
        run_dag("reverse_etl_amocrm", {})
        change_writes = [c for c in portal.commands() if c.method.endswith((".add", ".update"))]
        records = _outbox("amocrm")
        amo_leads = {
            external_id: amo.dataset.record("leads", r.crm_ids["deal"], with_=("contacts",))
            for external_id, r in records.items()
            if r.crm_ids.get("deal")
        }
        return {
            "live": live,
            "phones": phones,
            "by_phone": by_phone,
            "lead": (lead, lead_phone),
            "contact": (contact, contact_phone),
            "after_dry_run": after_dry_run,
            "first": first,
            "rerun_writes": rerun_writes,
            "edited": edited,
            "change_writes": change_writes,
            "final": portal.snapshot(),
            "amo_writes": (amo_first, amo_rerun, amo.writes()),
            "amo_records": records,
            "amo_leads": amo_leads,
        }


def _outbox(destination: str) -> dict:
    from elt_platform.state import open_state_store, outbox

    return outbox.load_records(open_state_store(), destination)


def test_dry_run_sends_nothing(pipeline):
    crm = pipeline["crm"]
    assert crm["after_dry_run"]["deals"] == [] and len(crm["after_dry_run"]["contacts"]) == 1


def test_bitrix24_holds_one_deal_per_live_reception_with_its_stage_and_amount(pipeline):
    crm = pipeline["crm"]
    deals = defaultdict(list)
    for deal in crm["first"]["deals"]:
        deals[deal["UF_CRM_IDENT_ID"]].append(deal)
    assert set(deals) == set(crm["live"])
    assert all(len(found) == 1 for found in deals.values())
    for external_id, r in crm["live"].items():
        deal = deals[external_id][0]
        assert deal["STAGE_ID"] == _b24_stage(r), external_id
        assert Decimal(str(deal["OPPORTUNITY"] or 0)) == (r["amount"] or Decimal(0)), external_id


def test_bitrix24_contacts_one_per_phone_the_seeded_contact_reused_and_the_lead_converted(pipeline):
    crm = pipeline["crm"]
    contacts = {int(c["ID"]): c for c in crm["first"]["contacts"]}
    deals = {d["UF_CRM_IDENT_ID"]: d for d in crm["first"]["deals"]}
    contact_of_phone: dict[str, set[int]] = defaultdict(set)
    for phone, external_ids in crm["by_phone"].items():
        for external_id in external_ids:
            contact_of_phone[phone].add(int(deals[external_id]["CONTACT_ID"]))
    assert all(len(ids) == 1 for ids in contact_of_phone.values())  # never a second contact per phone
    seeded_contact, contact_phone = crm["contact"]
    assert contact_of_phone[contact_phone] == {seeded_contact}
    lead_id, lead_phone = crm["lead"]
    lead = next(lead for lead in crm["first"]["leads"] if int(lead["ID"]) == lead_id)
    assert lead["STATUS_ID"] == "CONVERTED"
    converted = [d for d in deals.values() if d.get("LEAD_ID") and int(d["LEAD_ID"]) == lead_id]
    assert converted and {d["UF_CRM_IDENT_ID"] for d in converted} <= crm["by_phone"][lead_phone]
    with_phone = {e for ids in crm["by_phone"].values() for e in ids}
    without_phone = {e for e in crm["live"] if e not in with_phone}
    patients_without_phone = {
        (crm["live"][e]["source_db"], crm["live"][e]["patient_id"]) for e in without_phone
    }
    # 1 seeded contact + one per phone except the seeded one + one per patient without a phone
    assert len(contacts) == 1 + (len(crm["by_phone"]) - 1) + len(patients_without_phone)


def test_bitrix24_rerun_sends_nothing_and_an_ident_edit_updates_exactly_its_deal(pipeline):
    crm = pipeline["crm"]
    assert crm["rerun_writes"] == []
    assert [(c.method, str(c.params.get("id"))) for c in crm["change_writes"]] == [
        (
            "crm.deal.update",
            next(d["ID"] for d in crm["first"]["deals"] if d["UF_CRM_IDENT_ID"] == crm["edited"]),
        )
    ]
    final = next(d for d in crm["final"]["deals"] if d["UF_CRM_IDENT_ID"] == crm["edited"])
    assert final["COMMENTS"] == "перезвонить"


# --- reverse ETL to amoCRM ---------------------------------------------------------------------------------


def test_amocrm_holds_one_lead_per_live_reception_in_its_funnels_pipeline(pipeline):
    from elt_platform.sandbox.amocrm.account import (
        CLINIC_PRIMARY_PIPELINE,
        CLINIC_REPEAT_PIPELINE,
        RECEPTION_ID_FIELD,
    )

    crm = pipeline["crm"]
    records = crm["amo_records"]
    assert set(records) == set(crm["live"])
    assert {r.status for r in records.values()} == {"sent"}
    leads = crm["amo_leads"]
    assert len({lead["id"] for lead in leads.values()}) == len(crm["live"])  # one lead each, none shared
    for external_id, r in crm["live"].items():
        lead = leads[external_id]
        reception = next(
            item["values"][0]["value"]
            for item in lead["custom_fields_values"]
            if item["field_id"] == RECEPTION_ID_FIELD
        )
        assert str(reception) == str(r["reception_id"]), external_id
        want = CLINIC_PRIMARY_PIPELINE if r["completed_receptions_before"] == 0 else CLINIC_REPEAT_PIPELINE
        assert lead["pipeline_id"] == want, external_id
        if r["status"] == "cancelled":
            assert lead["status_id"] == 143, external_id
        assert lead["price"] == int(round(float(r["amount"] or 0))), external_id


def test_amocrm_rerun_and_a_field_it_does_not_receive_write_nothing(pipeline):
    first, rerun, final = pipeline["crm"]["amo_writes"]
    assert rerun == first and final == first
