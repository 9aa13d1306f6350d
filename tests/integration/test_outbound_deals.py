"""The deal feed of reverse ETL (dbt ``models/outbound``) on a small lakehouse, end to end through dbt.

A few iDent rows are written to bronze here (one database, two branches, a chair of no branch), then
``dbt build`` builds the outbound models and everything upstream with the clinic domain's settings and
hashed personal data, as production runs it. The expected deals are written out by hand from the rules
of ``dbt/models/outbound/_outbound__docs.md``; the rows are checked against the JSON Schema contracts in
``schemas/contracts/`` and their ``row_hash`` recomputed from the contract's ``x-sent-fields``.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import date, datetime
from decimal import Decimal

import pytest

from elt_platform.config import REPO_ROOT

pytestmark = [pytest.mark.integration, pytest.mark.spark]

jsonschema = pytest.importorskip("jsonschema")

SELECTOR = "path:models/outbound"
TABLES = {"bitrix24": "outbound.bitrix24_deals", "amocrm": "outbound.amocrm_deals"}
CONTRACTS = REPO_ROOT / "schemas" / "contracts"
DAY = date(2026, 1, 12)
CLEAR_PHONE = "+77011234567"

#: Bronze rows per iDent table (database "1"; branches 1 and 2 are its OwnCompanies 1 and 2).
BRONZE = {
    "own_companies": [{"id": 1, "name": "Центр"}, {"id": 2, "name": "Левый берег"}],
    "armchairs": [
        {"id": 1, "name_armchair": "Кабинет 1", "id_own_companies": 1},
        {"id": 2, "name_armchair": "Кабинет 2", "id_own_companies": 2},
        {"id": 3, "name_armchair": "Кабинет 9", "id_own_companies": 9},  # in no branch
    ],
    "persons": [
        {"id": 100, "surname": "Иванов", "name": "Иван", "mobile_phone": "8 (701) 123-45-67"},
        {"id": 101, "surname": "Петрова", "name": "Анна", "mobile_phone": "12345"},
    ],
    "patients": [{"id_persons": 100, "card_number": "1332"}, {"id_persons": 101, "card_number": "p1"}],
    "receptions": [
        {"id": 10, "id_patients": 100, "id_armchairs": 1, "plan_start": datetime(2026, 1, 5, 10),
         "plan_end": datetime(2026, 1, 5, 10, 30), "reception_ended": datetime(2026, 1, 5, 10, 35)},
        {"id": 11, "id_patients": 100, "id_armchairs": 1, "plan_start": datetime(2026, 1, 12, 10),
         "plan_end": datetime(2026, 1, 12, 11)},
        {"id": 12, "id_patients": 101, "id_armchairs": 2, "plan_start": datetime(2026, 1, 12, 12),
         "reception_canceled": datetime(2026, 1, 11, 9)},
        {"id": 13, "id_patients": 101, "id_armchairs": 3, "plan_start": datetime(2026, 1, 12, 13)},
    ],
    "orders": [{"id": 50, "id_receptions": 10}],
    "order_service_relation": [{"id": 500, "id_orders": 50, "id_service_prices": 1, "count_service": 1,
                                "discount_sum": Decimal(500)}],
    "service_item_prices": [{"id": 1, "id_service_items": 11, "price": Decimal(5000)}],
    "service_items": [{"id": 11, "name": "Консультация"}],
}  # fmt: skip

#: external_id → the fields the rules give (reception 13's chair is in no branch: no deal).
EXPECTED = {
    "F1_10": {
        "funnel": "primary", "status": "completed", "stage_code": "consultation_done", "phone": CLEAR_PHONE,
        "deal_title": "Иванов Иван — 2026-01-05 Центр", "plan_start_iso": "2026-01-05T10:00:00+05:00",
        "services": "Консультация", "amount": Decimal("4500.00"), "patient_number": "1332",
    },
    "F1_11": {
        "funnel": "repeat", "status": "scheduled", "stage_code": "treatment", "phone": CLEAR_PHONE,
        "deal_title": "Иванов Иван — 2026-01-12 Центр", "plan_start_iso": "2026-01-12T10:00:00+05:00",
        "services": None, "amount": None, "patient_number": "1332",
    },
    "F2_12": {
        "funnel": "primary", "status": "cancelled", "stage_code": "lose", "phone": None,
        "deal_title": "Петрова Анна — 2026-01-12 Левый берег", "plan_start_iso": "2026-01-12T12:00:00+05:00",
        "services": None, "amount": None, "patient_number": "p1",
    },
}  # fmt: skip


def _write_bronze() -> None:
    import pyarrow as pa
    from pyiceberg.expressions import AlwaysTrue

    from elt_platform.iceberg.catalog import load_catalog
    from elt_platform.iceberg.tables import load_spec
    from elt_platform.iceberg.writer import CommitInfo, ensure_table, replace_slice

    catalog = load_catalog()
    commit = CommitInfo("test-outbound", "ident", DAY.isoformat(), DAY.isoformat())
    # Every upstream model reads its bronze table: all of them exist, most stay empty. The test session
    # shares one lakehouse (one SparkSession per process): rows another module left (the iDent end to
    # end) are removed first, so the feed holds exactly this module's receptions.
    for path in sorted((REPO_ROOT / "schemas" / "bronze" / "ident").glob("*.yaml")):
        spec = load_spec(f"bronze/ident/{path.name}")
        table = ensure_table(catalog, spec)
        if table.current_snapshot() is not None:
            table.delete(AlwaysTrue())
        rows = [
            {"source_db": "1", "extract_date": DAY, "is_deleted": False, **row}
            for row in BRONZE.get(path.stem, [])
        ]
        if rows:
            data = pa.Table.from_pylist(rows, schema=spec.arrow_schema(lineage=False))
            replace_slice(table, data, column="extract_date", values=[DAY], commit=commit)


def _rows(table: str) -> list[dict]:
    from elt_platform.iceberg.catalog import load_catalog

    return load_catalog().load_table(table).scan().to_arrow().to_pylist()


def _contract(crm: str) -> dict:
    return json.loads((CONTRACTS / crm / "deal.schema.json").read_text(encoding="utf-8"))


def _as_json(value):
    """A column value as the contract sees it: dates and timestamps as ISO strings."""
    return value.isoformat() if isinstance(value, date | datetime) else value


def _as_spark_string(value) -> str | None:
    """``cast(value as string)`` in Spark for the types the feed has."""
    if value is None:
        return None
    return value.isoformat() if isinstance(value, date) else str(value)


@pytest.fixture(scope="module")
def feed():
    from elt_platform.sources.ident.dbt import dbt_settings
    from elt_platform.transform.dbt import run_dbt

    _write_bronze()
    settings = dbt_settings({"ELT_PII_MASKING": "hash", "ELT_PII_HASH_KEY": "test-key"})
    build = run_dbt(
        # --full-refresh: the feeds and silver.ident_receptions are incremental, and another module of
        # the session may have left rows in them.
        ["build", "--select", f"+{SELECTOR}", "--full-refresh", "--exclude-resource-type", "unit_test"],
        dbt_vars=settings.vars,
        spark_conf=settings.spark_conf,
    )
    return {"build": build, **{crm: _rows(table) for crm, table in TABLES.items()}}


@pytest.mark.parametrize("crm", TABLES)
def test_one_deal_per_live_reception_of_a_known_branch(feed, crm):
    rows = {row["external_id"]: row for row in feed[crm]}
    assert set(rows) == set(EXPECTED)
    for external_id, want in EXPECTED.items():
        assert {k: rows[external_id][k] for k in want} == want, external_id


def test_the_phone_is_clear_in_outbound_only(feed):
    silver = {r["reception_id"]: r["patient_phone"] for r in _rows("silver.ident_receptions")}
    assert re.fullmatch("[0-9a-f]{64}", silver[10])  # hashed where BI users read
    assert {r["external_id"]: r["phone"] for r in feed["bitrix24"]}["F1_10"] == CLEAR_PHONE


def test_the_tables_are_the_outbound_namespace(feed):
    from elt_platform.iceberg.catalog import load_catalog

    catalog = load_catalog()
    # dbt created the namespace itself (nothing else in this lakehouse did) and put both tables there only.
    tables = {
        ".".join(t) for (namespace,) in catalog.list_namespaces() for t in catalog.list_tables(namespace)
    }
    assert {t for t in tables if t.endswith("_deals")} == set(TABLES.values())


@pytest.mark.parametrize("crm", TABLES)
def test_rows_satisfy_their_contract(feed, crm):
    contract = _contract(crm)
    validator = jsonschema.Draft202012Validator(contract, format_checker=jsonschema.FormatChecker())
    assert set(feed[crm][0]) == set(contract["properties"])
    for row in feed[crm]:
        validator.validate({column: _as_json(value) for column, value in row.items()})


@pytest.mark.parametrize("crm", TABLES)
def test_row_hash_is_sha256_of_the_sent_fields(feed, crm):
    sent = _contract(crm)["x-sent-fields"]
    for row in feed[crm]:
        text = json.dumps(
            {field: _as_spark_string(row[field]) for field in sent}, ensure_ascii=False, separators=(",", ":")
        )
        assert row["row_hash"] == hashlib.sha256(text.encode()).hexdigest(), row["external_id"]


def test_the_data_tests_pass_and_only_the_branchless_reception_warns(feed):
    # run_dbt raises on any error or failure; the one warning is silver's count of receptions whose
    # chair is in no branch (reception 13), which the feed leaves out.
    statuses = feed["build"].statuses
    assert set(statuses) <= {"success", "pass", "warn", "no-op"} and statuses["warn"] == 1, statuses


def test_dbt_unit_tests_pass(feed):
    from elt_platform.transform.dbt import run_dbt

    # The outbound models' own and those of the step they share (ephemeral, so not in the path).
    summary = run_dbt(
        ["test", "--select", SELECTOR, "int_receptions_prepared_as_deals", "--resource-type", "unit_test"]
    )
    assert summary.statuses == {"pass": 6}, summary
