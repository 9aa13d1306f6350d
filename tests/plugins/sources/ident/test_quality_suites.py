"""The iDent bronze quality suites: in step with the manifest, passing on sandbox bronze, failing on bad rows.

Three kinds of tests:

* the suite files against ``schemas/sources/ident.yaml`` (read as plain YAML): one registered suite per
  table, its key columns, the branch map of the armchair check;
* every suite over bronze the real extract loaded from the sandbox (four PostgreSQL databases behind
  psqlODBC): a daily load, ticks with hard deletes, micro-batches and a daily rerun writing tombstones,
  all in one interval — the suites pass, and the phone warning counts exactly the phones silver's rules
  reject (counted here from the source rows with those rules written out in Python);
* hand-made rows written straight to bronze with the writer (no extract to stop them): a blocking
  expectation fails the gate by name, a warning-level one (unknown branch, phone) is counted and
  reported while the gate passes.
"""

from __future__ import annotations

import functools
import logging
from collections import Counter
from datetime import date, datetime, timedelta
from typing import Any

import pyarrow.compute as pc
import pytest
import yaml

from elt_platform.bronze.arrow import records_to_arrow
from elt_platform.iceberg.tables import load_spec
from elt_platform.iceberg.writer import CommitInfo, ensure_table, replace_slice
from elt_platform.quality.gate import SUITES_DIR, GateResult, QualityGateError, load_suite, run_gate
from elt_platform.sources.ident.declarations import spec_path
from elt_platform.sources.ident.manifest import MANIFEST_PATH, load_manifest, snake
from elt_platform.sources.ident.pipeline import SOURCE

MANIFEST = load_manifest()
RAW_MANIFEST = yaml.safe_load(MANIFEST_PATH.read_text(encoding="utf-8"))
DAY = date(2025, 3, 9)
NEXT = DAY + timedelta(days=1)
BATCH = f"{DAY}/{NEXT}"


def _suite_name(table: str) -> str:
    return f"bronze_ident_{snake(table)}"


def _of_type(suite: dict, expectation: str) -> list[dict]:
    return [item[expectation] for item in suite["expectations"] if expectation in item]


# -- the suite files ------------------------------------------------------------------------------------


def test_every_manifest_table_has_a_suite_and_the_source_runs_them_all():
    expected = {_suite_name(table) for table in RAW_MANIFEST["tables"]}
    assert {path.stem for path in SUITES_DIR.glob("bronze_ident_*.yaml")} == expected
    assert sorted(SOURCE.bronze_suites) == sorted(expected)


@pytest.mark.parametrize("table", sorted(RAW_MANIFEST["tables"]))
def test_suite_keys_are_the_manifest_keys_per_load(table):
    suite = load_suite(_suite_name(table))
    keys = [snake(column) for column in RAW_MANIFEST["tables"][table]["key"]]
    assert suite["table"] == f"bronze.ident_{snake(table)}"
    assert suite["date_column"] == "extract_date"
    unique = _of_type(suite, "expect_compound_columns_to_be_unique")
    assert [u["column_list"] for u in unique] == [["_batch_id", "source_db", *keys]]
    unconditional = {
        e["column"]
        for e in _of_type(suite, "expect_column_values_to_not_be_null")
        if "row_condition" not in e
    }
    assert unconditional >= {"source_db", *keys}


def test_armchair_branch_pairs_are_the_manifest_branches():
    pairs = _of_type(load_suite("bronze_ident_armchairs"), "expect_column_pair_values_to_be_in_set")
    manifest_pairs = [
        [str(branch["database"]), int(company)]
        for branch in RAW_MANIFEST["branches"].values()
        for company in branch["own_companies"]
    ]
    assert len(pairs) == 1
    assert sorted(pairs[0]["value_pairs_set"]) == sorted(manifest_pairs)


# -- bronze loaded from the sandbox ---------------------------------------------------------------------


def _phone_is_invalid(value: str | None) -> bool:
    """silver's rule (dbt/macros/phone.sql), written out: a given value that is no KZ/RU mobile number."""
    if value is None or not value.strip(" "):
        return False
    text = value.strip(" ")
    body = text[1:] if text.startswith("+") else text
    if not body or set(body) - set("0123456789 ().-"):
        return True
    digits = "".join(ch for ch in body if ch.isdigit())
    if text.startswith("+"):
        return not (len(digits) == 11 and digits[0] == "7")
    return not ((len(digits) == 11 and digits[0] in "78") or (len(digits) == 10 and digits[0] == "7"))


@pytest.fixture(scope="module")
def sandbox_bronze(tmp_path_factory):
    """Every suite run over ``[DAY, NEXT)`` of bronze loaded from the sandbox by the real extract.

    The interval holds a daily load; a tick with hard deletes and its micro-batch; a daily rerun whose
    reconciliation writes tombstones for the deletes; a second tick and micro-batch holding new versions
    of receptions the daily load holds too (the same key in two loads).
    """
    pyodbc = pytest.importorskip("pyodbc")
    cluster_module = pytest.importorskip("elt_platform.sandbox.ident.cluster")
    from elt_platform.sandbox.ident import catalog as sandbox_catalog
    from elt_platform.sandbox.ident.activity import tick
    from elt_platform.sandbox.ident.driver import DRIVER, driver_installed
    from elt_platform.sandbox.ident.generator import load as load_sandbox

    if cluster_module.postgres_bindir() is None or not driver_installed(DRIVER):
        pytest.skip("needs PostgreSQL binaries and psqlODBC")
    from elt_platform.iceberg.catalog import load_catalog
    from elt_platform.sources.ident.client import IdentClient, OdbcSettings
    from elt_platform.sources.ident.extract import load
    from elt_platform.state.store import open_state_store

    home = tmp_path_factory.mktemp("ident-suites")
    now = datetime.combine(NEXT, datetime.min.time())
    with (
        pytest.MonkeyPatch.context() as mp,
        cluster_module.PostgresCluster(databases=sandbox_catalog.DATABASES) as cluster,
    ):
        mp.setenv("ELT_HOME", str(home / "lakehouse"))
        load_sandbox(cluster.odbc, seed=11, scale=0.05, now=now)
        databases = dict(zip(MANIFEST.databases, cluster.databases, strict=True))

        def open_client(key: str) -> IdentClient:
            db = databases[key]
            return IdentClient(OdbcSettings(DRIVER, db.host, db.name, db.user, db.password, db.port))

        def tick_all(minutes: int, delete_probability: float) -> tuple[list, list]:
            """Tick every database; the deleted reception ids and every person's phone afterwards."""
            deleted, phones = [], []
            for db in databases.values():
                conn = pyodbc.connect(db.odbc)
                try:
                    result = tick(
                        conn, now + timedelta(minutes=minutes), seed=2, delete_probability=delete_probability
                    )
                    cursor = conn.cursor().execute('SELECT "MobilePhone" FROM dbo."Persons"')
                    phones += [row[0] for row in cursor.fetchall()]
                finally:
                    conn.close()
                deleted += result.deleted
            return deleted, phones

        catalog = load_catalog()
        run = functools.partial(
            load, MANIFEST, DAY, NEXT, open_client=open_client, catalog=catalog,
            store=open_state_store(f"sqlite:///{home}/state.db"),
            today=DAY,  # the micro-batches' extract_date: inside the interval the gate reads
        )  # fmt: skip
        run(run_id="daily", mode="daily")
        deleted, phones = tick_all(30, delete_probability=1.0)
        run(run_id="micro-1", mode="receptions")
        run(run_id="daily-rerun", mode="daily")  # Persons are read again here
        tick_all(60, delete_probability=0.0)
        run(run_id="micro-2", mode="receptions")
        receptions = catalog.load_table("bronze.ident_receptions").scan().to_arrow()
        gates: dict[str, GateResult] = {
            suite: run_gate(suite, DAY, NEXT, run_id="sandbox") for suite in SOURCE.bronze_suites
        }
        yield {"gates": gates, "deleted": deleted, "phones": phones, "receptions": receptions}


def test_every_suite_passes_on_sandbox_bronze(sandbox_bronze):
    gates = sandbox_bronze["gates"]
    assert {suite: gate.failed for suite, gate in gates.items()} == {suite: [] for suite in gates}
    assert all(gate.success and gate.rows > 0 for gate in gates.values())


def test_the_sandbox_interval_holds_several_loads_and_tombstones(sandbox_bronze):
    """What makes "unique per load" and the live-row conditions matter was really in the gated rows."""
    receptions = sandbox_bronze["receptions"]
    keys = Counter(zip(receptions["source_db"].to_pylist(), receptions["id"].to_pylist(), strict=True))
    assert max(keys.values()) >= 2
    assert set(receptions["_batch_id"].to_pylist()) == {BATCH, "receptions/micro-1", "receptions/micro-2"}
    assert sandbox_bronze["deleted"]
    assert pc.sum(receptions["is_deleted"]).as_py() == len(sandbox_bronze["deleted"])


def test_phone_warning_counts_the_phones_silver_rejects(sandbox_bronze):
    phones = sandbox_bronze["phones"]
    invalid = sum(map(_phone_is_invalid, phones))
    gate = sandbox_bronze["gates"]["bronze_ident_persons"]
    assert invalid > 0
    assert gate.success
    assert gate.warnings == [
        f"expect_column_values_to_match_regex(mobile_phone): {invalid} unexpected of {len(phones)}"
    ]


def test_sandbox_branches_are_all_known(sandbox_bronze):
    gates = sandbox_bronze["gates"]
    assert gates["bronze_ident_receptions"].warnings == []
    assert gates["bronze_ident_armchairs"].warnings == []


# -- hand-made rows -------------------------------------------------------------------------------------


def _write(catalog, table: str, rows: list[dict[str, Any]], batch: str = BATCH) -> None:
    spec = load_spec(spec_path(table))
    data = records_to_arrow(rows, spec, {"extract_date": DAY})
    commit = CommitInfo("suite-test", "ident", DAY.isoformat(), NEXT.isoformat(), batch_id=batch)
    replace_slice(ensure_table(catalog, spec), data, column="_batch_id", values=[batch], commit=commit)


def _reception(ident: int | None, db: str = "1", **changes: Any) -> dict[str, Any]:
    start = datetime(2025, 3, 9, 10, 0)
    row = {
        "source_db": db,
        "is_deleted": False,
        "id": ident,
        "id_patients": 7,
        "plan_start": start,
        "plan_end": start + timedelta(minutes=30),
        "id_armchairs": 1,
        "id_staffs": 3,
        "row_version": 1000 + (ident or 0),
    }
    return {**row, **changes}


GOOD_RECEPTIONS = [_reception(1), _reception(2), _reception(1, db="2")]
RECEPTION_ROWS = len(GOOD_RECEPTIONS) + 1
IN_TEN_YEARS = datetime.now() + timedelta(days=3650)


@pytest.mark.parametrize(
    ("bad", "failed"),
    [
        pytest.param(
            _reception(2),
            "expect_compound_columns_to_be_unique(['_batch_id', 'source_db', 'id']): 2 unexpected of 4",
            id="key-twice-in-one-load",
        ),
        pytest.param(
            _reception(None), "expect_column_values_to_not_be_null(id): 1 unexpected of 4", id="null-key"
        ),
        pytest.param(
            _reception(3, row_version=None),
            "expect_column_values_to_not_be_null(row_version): 1 unexpected of 4",
            id="live-row-without-rowversion",
        ),
        pytest.param(
            _reception(3, plan_start=None),
            "expect_column_values_to_not_be_null(plan_start): 1 unexpected of 4",
            id="live-row-without-plan-start",
        ),
        pytest.param(
            _reception(3, plan_start=datetime(1900, 1, 1)),
            "expect_column_values_to_be_between(plan_start): 1 unexpected of 4",
            id="plan-start-sql-server-default",
        ),
        pytest.param(
            _reception(3, plan_start=IN_TEN_YEARS),
            "expect_column_values_to_be_between(plan_start): 1 unexpected of 4",
            id="plan-start-ten-years-ahead",
        ),
        pytest.param(
            _reception(3, plan_end=IN_TEN_YEARS),
            "expect_column_values_to_be_between(plan_end): 1 unexpected of 4",
            id="plan-end-ten-years-ahead",
        ),
    ],
)
def test_bad_reception_fails_the_gate_naming_the_expectation(catalog, bad, failed):
    _write(catalog, "Receptions", [*GOOD_RECEPTIONS, bad])

    with pytest.raises(QualityGateError) as caught:
        run_gate("bronze_ident_receptions", DAY, NEXT, run_id="suite-test")

    message = str(caught.value)
    assert failed in message
    assert message.count("unexpected of") == 1, message


def test_a_reception_in_two_loads_and_a_tombstone_pass(catalog):
    tombstone = {"source_db": "1", "is_deleted": True, "id": 5}  # a deleted key carries only the key
    _write(catalog, "Receptions", [*GOOD_RECEPTIONS, tombstone])
    _write(catalog, "Receptions", [_reception(1, row_version=2000)], batch="receptions/run-1")

    gate = run_gate("bronze_ident_receptions", DAY, NEXT, run_id="suite-test")

    assert (gate.success, gate.failed, gate.warnings) == (True, [], [])
    assert gate.rows == RECEPTION_ROWS + 1


@pytest.mark.parametrize(
    ("table", "rows", "warning"),
    [
        pytest.param(
            "Receptions",
            [*GOOD_RECEPTIONS, _reception(3, id_armchairs=None)],
            f"expect_column_values_to_not_be_null(id_armchairs): 1 unexpected of {RECEPTION_ROWS}",
            id="reception-without-chair",
        ),
        pytest.param(
            "Armchairs",
            [
                {"source_db": "1", "is_deleted": False, "id": 1, "id_own_companies": 1},
                {"source_db": "1", "is_deleted": False, "id": 2, "id_own_companies": 2},
                # OwnCompanies 2 is a branch of database 1 only; database 3 has no company 9 mapped.
                {"source_db": "2", "is_deleted": False, "id": 1, "id_own_companies": 2},
                {"source_db": "3", "is_deleted": False, "id": 1, "id_own_companies": 9},
                {"source_db": "4", "is_deleted": False, "id": 1, "id_own_companies": None},
            ],
            "expect_column_pair_values_to_be_in_set(source_db, id_own_companies): 3 unexpected of 5",
            id="chairs-of-unmapped-companies",
        ),
        pytest.param(
            "Persons",
            [
                {"source_db": "1", "is_deleted": False, "id": 1, "mobile_phone": "8 701 123-45-67"},
                {"source_db": "1", "is_deleted": False, "id": 2, "mobile_phone": "+7(747)7654321"},
                {"source_db": "1", "is_deleted": False, "id": 3, "mobile_phone": ""},
                {"source_db": "1", "is_deleted": False, "id": 4, "mobile_phone": None},
                {"source_db": "1", "is_deleted": False, "id": 5, "mobile_phone": "нет телефона"},
                {"source_db": "1", "is_deleted": False, "id": 6, "mobile_phone": "12345"},
            ],
            "expect_column_values_to_match_regex(mobile_phone): 2 unexpected of 6",
            id="phones-that-are-no-number",
        ),
    ],
)
def test_warning_level_findings_are_counted_and_reported_without_failing(
    catalog, caplog, table, rows, warning
):
    _write(catalog, table, rows)

    with caplog.at_level(logging.WARNING, logger="elt_platform"):
        gate = run_gate(_suite_name(table), DAY, NEXT, run_id="suite-test")

    assert (gate.success, gate.failed, gate.warnings) == (True, [], [warning])
    assert f"{warning} for [{DAY}, {NEXT}) (warning, not blocking)" in caplog.text
    assert "нет телефона" not in caplog.text and "8 701 123-45-67" not in caplog.text


@pytest.mark.parametrize("table", sorted(RAW_MANIFEST["tables"]))
def test_every_suite_refuses_a_key_twice_in_one_load(catalog, table):
    keys = [snake(column) for column in RAW_MANIFEST["tables"][table]["key"]]
    row = {"source_db": "1", "is_deleted": False, **dict.fromkeys(keys, 1)}
    if table == "Receptions":
        row = _reception(1)

    _write(catalog, table, [row, dict(row)])

    with pytest.raises(QualityGateError) as caught:
        run_gate(_suite_name(table), DAY, NEXT, run_id="suite-test")
    assert (
        f"expect_compound_columns_to_be_unique({['_batch_id', 'source_db', *keys]}): 2 unexpected of 2"
        in str(caught.value)
    )
