"""The iDent sandbox: a real PostgreSQL cluster shaped like iDent's SQL Server, read via pyodbc + psqlODBC.

One cluster per module holds the four databases of the layout and, for the determinism test, a copy
of them loaded from the same seed. Skips when the PostgreSQL binaries or the ODBC driver are missing.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from elt_platform.config import REPO_ROOT
from elt_platform.sandbox.ident import catalog
from elt_platform.sandbox.ident.activity import tick
from elt_platform.sandbox.ident.cluster import ClusterError, PostgresCluster, postgres_bindir
from elt_platform.sandbox.ident.driver import DriverMissingError, ensure_driver
from elt_platform.sandbox.ident.generator import generate, load
from elt_platform.sandbox.ident.truth import ground_truth

pyodbc = pytest.importorskip("pyodbc")

NOW = datetime(2024, 7, 1, 12, 0)  # a Monday, local clinic time
SEED, SCALE = 7, 0.2
COPIES = tuple(f"copy_{number}" for number in range(1, len(catalog.LAYOUT) + 1))
FIXTURES = REPO_ROOT.parent / "shared" / "fixtures" / "ident" / "vovarama1992_ident-amo"


@pytest.fixture(scope="module")
def driver() -> str:
    if postgres_bindir() is None:
        pytest.skip("PostgreSQL binaries (initdb, pg_ctl, postgres) not found")
    try:
        return ensure_driver()
    except DriverMissingError as error:
        pytest.skip(str(error))


@pytest.fixture(scope="module")
def cluster(driver: str) -> Iterator[PostgresCluster]:
    with PostgresCluster(databases=catalog.DATABASES + COPIES) as started:
        load(started.odbc[:4], seed=SEED, scale=SCALE, now=NOW)
        yield started


def connect(cluster: PostgresCluster, name: str) -> pyodbc.Connection:
    return pyodbc.connect(cluster.odbc[cluster.names.index(name)])


def test_cluster_stops_without_leftover_process(driver: str) -> None:
    with PostgresCluster(databases=["one"]) as small:
        pid, port = small.pid, small.port
        os.kill(pid, 0)  # running
        with pyodbc.connect(small.odbc[0]) as conn:
            assert conn.cursor().execute("SELECT 1").fetchone()[0] == 1
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # past TIME_WAIT, not past a listener
        sock.bind(("127.0.0.1", port))  # nothing listens on the port any more
    assert not small.directory.exists()  # a temporary directory is removed


def test_wrong_password_is_refused(cluster: PostgresCluster) -> None:
    with pytest.raises(pyodbc.Error):
        pyodbc.connect(cluster.odbc[0].replace(f"Pwd={cluster.password}", "Pwd=wrong"))


def test_cluster_failure_is_a_named_error(tmp_path: Path) -> None:
    # As root the private pytest directory is refused before initdb; otherwise initdb is missing there.
    with pytest.raises(ClusterError, match="initdb|not reachable"):
        PostgresCluster(tmp_path, bindir=tmp_path).start()


@pytest.mark.skipif(postgres_bindir() is None, reason="PostgreSQL binaries not found")
def test_cluster_serves_sqlalchemy_urls_without_odbc() -> None:
    sqlalchemy = pytest.importorskip("sqlalchemy")
    with PostgresCluster(databases=["state"], max_connections=120) as small:
        engine = sqlalchemy.create_engine(small.databases[0].url)
        try:
            with engine.connect() as conn:
                database = conn.execute(sqlalchemy.text("SELECT current_database()")).scalar()
                limit = conn.execute(sqlalchemy.text("SHOW max_connections")).scalar()
        finally:
            engine.dispose()

    assert (database, limit) == ("state", "120")


def _real_columns() -> dict[str, list[str]]:
    real = {}
    for name in ("schema_map.json", "structure.json"):  # structure.json wins: schema_map repeats columns
        path = FIXTURES / name
        if path.exists():
            real.update(
                {table: columns for table, columns in json.loads(path.read_text()).items() if columns}
            )
    return real


@pytest.mark.parametrize(
    "table",
    ["Receptions", "Patients", "Orders", "OrderServiceRelation", "PaymentsIn", "TreatmentPlans",
     "TreatmentPlanElements", "TreatmentPlanElementRelations"],
)  # fmt: skip
def test_tables_have_the_real_columns_in_order(cluster: PostgresCluster, table: str) -> None:
    real = _real_columns()
    if table not in real:
        pytest.skip(f"{FIXTURES} has no column list for {table}")
    cursor = connect(cluster, "ident_2").cursor().execute(f'SELECT * FROM dbo."{table}" WHERE 1 = 0')
    assert [column[0] for column in cursor.description] == real[table]


def test_psqlodbc_reads_receptions_with_sql_server_types(cluster: PostgresCluster) -> None:
    cursor = connect(cluster, "ident_1").cursor()
    row = cursor.execute(
        'SELECT "ID", "PlanStart", "IsNotified", "RowVersion", "Comment" FROM dbo."Receptions"'
        ' WHERE "CheckIssued" IS NOT NULL ORDER BY "ID" LIMIT 1'
    ).fetchone()
    assert (type(row[0]), type(row[1]), type(row[2]), type(row[3])) == (int, datetime, bool, int)
    assert row[1].microsecond % 1000 == 0  # datetime at millisecond precision
    price = cursor.execute('SELECT "Price" FROM dbo."ServiceItemPrices" ORDER BY "ID" LIMIT 1').fetchone()[0]
    assert isinstance(price, Decimal) and price.as_tuple().exponent == -10  # numeric(28,10)
    name = cursor.execute('SELECT "Name" FROM dbo."OwnCompanies" WHERE "ID" = 1').fetchone()[0]
    assert name == catalog.LAYOUT[0][0]  # Cyrillic through the Unicode driver


def test_two_branches_share_the_first_database(cluster: PostgresCluster) -> None:
    branches = {}
    for name in catalog.DATABASES:
        cursor = connect(cluster, name).cursor()
        branches[name] = cursor.execute(
            'SELECT a."ID_OwnCompanies", COUNT(*) FROM dbo."Receptions" r'
            ' JOIN dbo."Armchairs" a ON a."ID" = r."ID_Armchairs" GROUP BY 1 ORDER BY 1'
        ).fetchall()
        assert (
            cursor.execute('SELECT MIN("ID") FROM dbo."Receptions"').fetchone()[0] == 1
        )  # ids restart per DB
    assert {name: [row[0] for row in rows] for name, rows in branches.items()} == {
        "ident_1": [1, 2], "ident_2": [1], "ident_3": [1], "ident_4": [1],
    }  # fmt: skip
    assert all(count > 0 for rows in branches.values() for _, count in rows)


def test_patients_key_is_the_person(cluster: PostgresCluster) -> None:
    cursor = connect(cluster, "ident_3").cursor()
    orphans = cursor.execute(
        'SELECT COUNT(*) FROM dbo."Receptions" r'
        ' LEFT JOIN dbo."Patients" p ON p."ID_Persons" = r."ID_Patients"'
        ' LEFT JOIN dbo."Persons" s ON s."ID" = p."ID_Persons" WHERE s."ID" IS NULL'
    ).fetchone()[0]
    formats = cursor.execute(
        "SELECT COUNT(*) FILTER (WHERE \"Birthday\" ~ '^\\d\\d\\.\\d\\d\\.\\d{4}$'),"
        " COUNT(*) FILTER (WHERE \"Birthday\" ~ '^\\d{4}-\\d\\d-\\d\\d$'),"
        " COUNT(*) FILTER (WHERE \"MobilePhone\" LIKE '+7(%')"
        ' FROM dbo."Persons" p JOIN dbo."Patients" pa ON pa."ID_Persons" = p."ID"'
    ).fetchone()
    assert orphans == 0
    assert all(count > 0 for count in formats)


def test_row_version_strictly_increases_on_update(cluster: PostgresCluster) -> None:
    conn = connect(cluster, "ident_4")
    cursor = conn.cursor()
    ceiling = cursor.execute('SELECT MAX("RowVersion") FROM dbo."Receptions"').fetchone()[0]
    versions = []
    for comment in ("первое", "второе"):
        cursor.execute('UPDATE dbo."Receptions" SET "Comment" = ? WHERE "ID" = 1', comment)
        versions.append(
            cursor.execute('SELECT "RowVersion" FROM dbo."Receptions" WHERE "ID" = 1').fetchone()[0]
        )
    conn.rollback()
    assert ceiling < versions[0] < versions[1]


def test_loaded_revenue_matches_the_generated_bills(cluster: PostgresCluster) -> None:
    database = generate(SEED, SCALE, NOW)[1]
    price = {row["ID"]: row["Price"] for row in database.tables["ServiceItemPrices"]}
    formed = {row["ID"] for row in database.tables["Orders"] if row["IsBillFormed"]}
    expected = sum(
        line["CountService"] * price[line["ID_ServicePrices"]] - line["DiscountSum"]
        for line in database.tables["OrderServiceRelation"]
        if line["ID_Orders"] in formed
    )
    truth = ground_truth(connect(cluster, "ident_2"))
    assert sum(truth.revenue_by_branch.values()) == expected
    assert sum(truth.statuses.values()) == truth.counts["Receptions"] == len(database.tables["Receptions"])


def test_tick_changes_exactly_what_it_reports(cluster: PostgresCluster) -> None:
    conn = connect(cluster, "ident_1")
    updated = 0
    for step in range(4):
        now = NOW + timedelta(hours=3 * step)
        before = ground_truth(conn)
        result = tick(conn, now, seed=SEED, delete_probability=1.0)
        after = ground_truth(conn)
        assert set(after.receptions) - set(before.receptions) == result.inserted
        assert set(before.receptions) - set(after.receptions) == set(result.deleted)
        assert len(result.deleted) == 1
        changed = {
            i
            for i in set(before.receptions) & set(after.receptions)
            if after.receptions[i] != before.receptions[i]
        }
        assert changed == result.updated
        assert min(after.receptions[i] for i in changed | result.inserted) > before.max_row_version
        assert after.counts["Orders"] - before.counts["Orders"] == len(result.orders)
        assert after.counts["Patients"] - before.counts["Patients"] == len(result.new_patients)
        stamped = (
            conn.cursor()
            .execute('SELECT COUNT(*) FROM dbo."Receptions" WHERE "DateTimeChanged" = ?', now)
            .fetchone()[0]
        )
        assert stamped == len(result.updated)
        updated += len(result.updated)
    assert updated > 0


def test_same_seed_same_data_same_ticks(cluster: PostgresCluster) -> None:
    assert generate(SEED, SCALE, NOW)[2].tables == generate(SEED, SCALE, NOW)[2].tables
    assert generate(SEED, SCALE, NOW)[2].tables != generate(SEED + 1, SCALE, NOW)[2].tables
    load(cluster.odbc[4:], seed=SEED, scale=SCALE, now=NOW)
    original, copy = connect(cluster, "ident_3"), connect(cluster, "copy_3")
    for step in range(3):
        now = NOW + timedelta(hours=2 * step + 1)
        assert tick(original, now, seed=1) == tick(copy, now, seed=1)
    first, second = ground_truth(original), ground_truth(copy)
    assert (first.counts, first.receptions, first.revenue_by_branch) == (
        second.counts, second.receptions, second.revenue_by_branch,
    )  # fmt: skip
