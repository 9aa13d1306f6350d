"""The clinic domain's fast path: an incremental build after a micro-batch equals a full rebuild.

A few iDent rows are written to bronze (one database, two branches and a chair of none), the clinic domain
is rebuilt in full as its transform does after a daily load, then a micro-batch's worth of reception
versions is written (a completion that changes a later reception's history, a hard delete's tombstone,
a reception moved to another patient, one moved into and one out of the branches, a new booking). The
transform's check must allow the fast path; the reception chain is built incrementally (through the
embedded SQL server, as under ``make airflow``), and every one of its tables must then equal, row by row,
what a full rebuild in the test's own Spark session makes of the same bronze. A daily load (here: bronze
patients written again) must then make the check ask for a full rebuild.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest

from elt_platform.config import REPO_ROOT

pytestmark = [pytest.mark.integration, pytest.mark.spark]

DAY = date(2026, 1, 12)
#: The reception chain: table → key columns.
CHAIN = {
    "silver.ident_receptions_latest": ("source_db", "reception_id"),
    "silver.ident_receptions": ("source_db", "reception_id"),
    "gold.ident_receptions": ("source_db", "reception_id"),
    "outbound.bitrix24_deals": ("source_db", "reception_id"),
    "outbound.amocrm_deals": ("source_db", "reception_id"),
}


def _reception(ident: int, patient: int, chair: int, start: datetime, **more) -> dict:
    return {
        "id": ident,
        "id_patients": patient,
        "id_armchairs": chair,
        "plan_start": start,
        "plan_end": start + timedelta(minutes=30),
        "row_version": ident,
        **more,
    }


def _at(day: int, hour: int = 10) -> datetime:
    return datetime(2026, 1, day, hour)


#: Bronze rows per iDent table (database "1"; branches 1 and 2 are its OwnCompanies 1 and 2; chair 3 is
#: in no branch).
BRONZE = {
    "own_companies": [{"id": 1, "name": "Центр"}, {"id": 2, "name": "Левый берег"}],
    "armchairs": [
        {"id": 1, "name_armchair": "Кабинет 1", "id_own_companies": 1},
        {"id": 2, "name_armchair": "Кабинет 2", "id_own_companies": 2},
        {"id": 3, "name_armchair": "Кабинет 9", "id_own_companies": 9},
    ],
    "persons": [
        {"id": 100, "surname": "Иванов", "name": "Иван", "mobile_phone": "8 (701) 123-45-67"},
        {"id": 101, "surname": "Петрова", "name": "Анна", "mobile_phone": "87017654321"},
        {"id": 102, "surname": "Сидоров", "name": "Олег", "mobile_phone": "87011112233"},
        {"id": 103, "surname": "Ким", "name": "Елена", "mobile_phone": "87014445566"},
        {"id": 104, "surname": "Нурланов", "name": "Ержан", "mobile_phone": "87017778899"},
    ],
    "patients": [{"id_persons": p, "card_number": f"c{p}"} for p in (100, 101, 102, 103, 104)],
    "receptions": [
        _reception(10, 100, 1, _at(5), reception_ended=_at(5, 11)),
        _reception(11, 100, 1, _at(12)),
        _reception(12, 101, 2, _at(6)),
        _reception(13, 101, 2, _at(12, 12)),
        _reception(14, 102, 1, _at(7), reception_ended=_at(7, 11)),
        _reception(15, 102, 1, _at(13)),
        _reception(16, 100, 1, _at(3), reception_ended=_at(3, 11)),
        _reception(18, 103, 3, _at(8)),
        _reception(19, 103, 1, _at(9)),
        _reception(20, 103, 2, _at(2), reception_ended=_at(2, 11)),
        # patient 104: untouched by the micro-batch, so never rewritten by a merge
        _reception(21, 104, 1, _at(4), reception_ended=_at(4, 11)),
        _reception(22, 104, 2, _at(15)),
    ],
    "orders": [{"id": 50, "id_receptions": 10}],
    "order_service_relation": [
        {"id": 500, "id_orders": 50, "id_service_prices": 1, "count_service": 1, "discount_sum": Decimal(500)}
    ],
    "service_item_prices": [{"id": 1, "id_service_items": 11, "price": Decimal(5000)}],
    "service_items": [{"id": 11, "name": "Консультация"}],
}

#: The micro-batch: new versions of receptions only, as ``extract_ident_receptions`` writes them.
MICRO_BATCH = [
    # completed: reception 13 of the same patient becomes a repeat (history 0 → 1 without a new version)
    _reception(12, 101, 2, _at(6), reception_ended=_at(6, 11), row_version=112),
    # hard delete, reconciled into a tombstone: reception 15 loses its earlier completed one
    {**_reception(14, 102, 1, _at(7), reception_ended=_at(7, 11), row_version=114), "is_deleted": True},
    # moved to patient 101: patient 100's receptions lose a completed one, 101's gain one
    _reception(16, 101, 1, _at(3), reception_ended=_at(3, 11), row_version=116),
    # a new booking
    _reception(17, 103, 2, _at(14), row_version=117),
    # into a branch (enters the deal feeds) and out of every branch (leaves them)
    _reception(18, 103, 1, _at(8), row_version=118),
    _reception(19, 103, 3, _at(9), row_version=119),
]


def _write(table_name: str, rows: list[dict], day: date, run_id: str) -> None:
    import pyarrow as pa

    from elt_platform.iceberg.catalog import load_catalog
    from elt_platform.iceberg.tables import load_spec
    from elt_platform.iceberg.writer import CommitInfo, ensure_table, replace_slice

    spec = load_spec(f"bronze/ident/{table_name}.yaml")
    table = ensure_table(load_catalog(), spec)
    data = pa.Table.from_pylist(
        [{"source_db": "1", "extract_date": day, "is_deleted": False, **row} for row in rows],
        schema=spec.arrow_schema(lineage=False),
    )
    commit = CommitInfo(run_id, "ident", day.isoformat(), (day + timedelta(days=1)).isoformat())
    replace_slice(table, data, column="extract_date", values=[day], commit=commit)


def _empty_bronze() -> None:
    """Delete every row of the iDent bronze tables (creating the missing ones): the test session shares one
    lakehouse, and the other iDent modules count bronze rows."""
    from pyiceberg.expressions import AlwaysTrue

    from elt_platform.iceberg.catalog import load_catalog
    from elt_platform.iceberg.tables import load_spec
    from elt_platform.iceberg.writer import ensure_table

    for path in sorted((REPO_ROOT / "schemas" / "bronze" / "ident").glob("*.yaml")):
        table = ensure_table(load_catalog(), load_spec(f"bronze/ident/{path.name}"))
        if table.current_snapshot() is not None:
            table.delete(AlwaysTrue())


def _write_bronze() -> None:
    _empty_bronze()
    for name, rows in BRONZE.items():
        _write(name, rows, DAY, "test-daily")


def _added_records() -> dict[str, int]:
    """Rows each chain table's latest commit (the fast path's merge) wrote."""
    from elt_platform.iceberg.catalog import load_catalog

    catalog = load_catalog()
    out = {}
    for name in CHAIN:
        snapshot = catalog.load_table(name).current_snapshot()
        assert snapshot is not None and snapshot.summary is not None
        out[name] = int(snapshot.summary.additional_properties.get("added-records", 0))
    return out


def _snapshot() -> dict[str, dict[tuple, dict]]:
    from elt_platform.iceberg.catalog import load_catalog

    catalog = load_catalog()
    out = {}
    for name, key in CHAIN.items():
        rows = catalog.load_table(name).scan().to_arrow().to_pylist()
        by_key = {tuple(row[k] for k in key): row for row in rows}
        assert len(by_key) == len(rows), f"{name}: duplicate keys"
        out[name] = by_key
    return out


def _build(*, incremental: bool) -> None:
    """As transform_clinic builds: the fast path in one dbt invocation, a full rebuild layer by layer."""
    from elt_platform.registry import registry
    from elt_platform.transform.layers import build_fast_path, build_layer

    domain = registry().domains["clinic"]
    if incremental:
        build_fast_path(domain)
        return
    for layer in ("silver", "gold"):
        build_layer(domain, layer, None, None)


def _build_through_the_sql_server() -> dict:
    """The fast path as ``make airflow`` runs it: dbt's ``prod`` target on the embedded SQL server (a
    local Spark Thrift server in its own JVM, over the same catalog). Returns dbt's run results."""
    import json
    import os

    from elt_platform.config import PlatformConfig
    from elt_platform.services import sql_server
    from elt_platform.services.postgres import free_port

    port = free_port()
    env = {**os.environ, "ELT_SQL_SERVER": "on"}
    env.pop("DBT_TARGET", None)
    with sql_server.serving(env, port=port) as sql, pytest.MonkeyPatch.context() as mp:
        for name, value in sql.env.items():
            mp.setenv(name, value)
        _build(incremental=True)
        assert sql.failure() is None
    results = PlatformConfig.from_env().home / "dbt" / "target" / "run_results.json"
    return json.loads(results.read_text())


@pytest.fixture(scope="module")
def builds(monkeypatch_module):
    from elt_platform.sources.ident.dbt import full_rebuild_reason

    monkeypatch_module.setenv("ELT_PII_MASKING", "hash")
    monkeypatch_module.setenv("ELT_PII_HASH_KEY", "test-key")
    _write_bronze()
    try:
        reason_before_any = full_rebuild_reason()
        _build(incremental=False)
        _write("receptions", MICRO_BATCH, DAY + timedelta(days=1), "test-micro")
        reason = full_rebuild_reason()
        fast_results = _build_through_the_sql_server()
        merged = _added_records()
        incremental = _snapshot()
        _build(incremental=False)
        full = _snapshot()
        _write("patients", BRONZE["patients"], DAY + timedelta(days=1), "test-daily-2")
        yield {
            "reasons": (reason_before_any, reason, full_rebuild_reason()),
            "incremental": incremental,
            "full": full,
            "merged": merged,
            "fast_results": fast_results,
        }
    finally:
        _empty_bronze()


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as mp:
        yield mp


def test_the_check_allows_the_fast_path_after_a_micro_batch_only(builds):
    before_any, after_micro_batch, after_daily = builds["reasons"]
    assert before_any is not None and before_any.startswith("no full build yet")
    assert after_micro_batch is None
    assert after_daily is not None and after_daily.startswith("bronze.ident_patients changed")


def test_the_fast_path_ran_on_the_sql_server(builds):
    assert builds["fast_results"]["args"]["target"] == "prod"


def test_the_fast_path_builds_the_chain_models_and_no_data_test(builds):
    """Data tests scan whole tables: they run with the full builds, not with each micro-batch."""
    from elt_platform.registry import registry

    fast = registry().domains["clinic"].incremental
    assert fast is not None
    nodes = sorted(result["unique_id"] for result in builds["fast_results"]["results"])
    assert nodes == sorted(f"model.elt_platform.{name}" for name in (*fast.silver, *fast.gold))


@pytest.mark.parametrize("table", CHAIN)
def test_incremental_build_equals_a_full_rebuild_row_by_row(builds, table):
    incremental, full = builds["incremental"][table], builds["full"][table]
    assert sorted(incremental) == sorted(full)
    for key, row in full.items():
        assert incremental[key] == row, (table, key)


def test_the_micro_batch_reached_every_table_of_the_chain(builds):
    silver = builds["incremental"]["silver.ident_receptions"]
    history = {key[1]: row["completed_receptions_before"] for key, row in silver.items()}
    # 13: 12 and 16 (moved in) completed before it; 15: its earlier one deleted; 10, 11: 16 moved away.
    assert (history[13], history[15], history[10], history[11]) == (2, 0, 0, 1)
    assert silver[("1", 14)]["is_deleted"] is True
    gold = {key[1] for key in builds["incremental"]["gold.ident_receptions"]}
    assert 14 not in gold and 17 in gold
    for feed in ("outbound.bitrix24_deals", "outbound.amocrm_deals"):
        deals = {key[1] for key in builds["incremental"][feed]}
        assert deals == {10, 11, 12, 13, 15, 16, 17, 18, 20, 21, 22}, feed


@pytest.mark.parametrize("table", CHAIN)
def test_a_merge_rewrites_the_changed_rows_only(builds, table):
    """Staging merges the micro-batch's six reception versions; the later tables redo every reception of
    the patients it touched (100–103: a history changes with any of them) and leave patient 104's rows
    where they are. A merge that recomputed everything (e.g. a high-water mark read as the epoch) would
    rewrite those too."""
    rows = builds["incremental"][table].values()
    assert any(row["patient_id"] == 104 for row in rows)
    expected = (
        6 if table == "silver.ident_receptions_latest" else sum(1 for r in rows if r["patient_id"] != 104)
    )
    assert builds["merged"][table] == expected


def test_dbt_unit_tests_of_the_clinic_models_pass(builds):
    from elt_platform.transform.dbt import run_dbt

    # After the builds: unit tests read their inputs' columns from the tables (loaded_at is new).
    summary = run_dbt(["test", "--select", "tag:ident", "tag:clinic", "--resource-type", "unit_test"])
    assert set(summary.statuses) == {"pass"} and summary.statuses["pass"] >= 7, summary
