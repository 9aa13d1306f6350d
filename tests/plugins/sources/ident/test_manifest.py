"""The iDent manifest: validation errors, naming, branches, and agreement with the bronze declarations."""

from __future__ import annotations

import copy
import os
import subprocess
import sys

import pytest
import sqlglot
import yaml

from elt_platform.iceberg.tables import load_spec
from elt_platform.sources.ident import pipeline, queries
from elt_platform.sources.ident.declarations import DECLARATIONS_DIR, render, spec_path
from elt_platform.sources.ident.manifest import (
    BRONZE_TYPES,
    MANIFEST_PATH,
    ManifestError,
    bronze_identifier,
    load_manifest,
    parse_manifest,
    snake,
)

DOCUMENT = yaml.safe_load(MANIFEST_PATH.read_text(encoding="utf-8"))
MANIFEST = load_manifest()


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("ID_Patients", "id_patients"),
        ("PlanStart", "plan_start"),
        ("DateTimeChanged", "date_time_changed"),
        ("RowVersion", "row_version"),
        ("ID_OwnCompanies", "id_own_companies"),
        ("SMSRejection", "smsrejection"),
        ("OrderServiceRelation", "order_service_relation"),
    ],
)
def test_snake(name, expected):
    assert snake(name) == expected


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (
            ("tables", "Receptions", "key"),
            ["Nope"],
            "tables.Receptions: key columns ['Nope'] are not among the columns",
        ),
        (("tables", "Orders", "change_tracking"), {"audit": ["Bogus"]}, "change-tracking columns ['Bogus']"),
        (("tables", "Orders", "load"), "full", "load 'full' contradicts change_tracking"),
        (("tables", "Orders", "columns", "ID"), "money", "tables.Orders.columns.ID: Input should be"),
        (("tables", "Receptions", "change_tracking"), {"rowversion": "ID"}, "ID must have type rowversion"),
        (("branches", 2, "database"), "9", "branch 2 names unknown database '9'"),
        (("branches", 2, "own_companies"), [1], "OwnCompanies 1 of database '1' is in branches 1 and 2"),
        (("databases", "2", "timezone"), "Mars/Olympus", "unknown time zone 'Mars/Olympus'"),
        (("databases", "2", "connection"), "ident_1", "databases share connections ['ident_1']"),
        (("tables", "Orders", "colour"), "red", "tables.Orders.colour: Extra inputs are not permitted"),
        (("chunk_rows",), 0, "chunk_rows: Input should be greater than 0"),
    ],
)
def test_bad_manifest_one_line_error(path, value, message):
    document = copy.deepcopy(DOCUMENT)
    node = document
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    with pytest.raises(ManifestError) as caught:
        parse_manifest(document, origin="ident.yaml")
    assert "\n" not in str(caught.value)
    assert str(caught.value).startswith("ident.yaml: ")
    assert message in str(caught.value)


def test_two_branches_share_a_database():
    assert MANIFEST.branches_in("1") == [1, 2]
    assert (MANIFEST.branch_of("1", 1), MANIFEST.branch_of("1", 2)) == (1, 2)
    assert MANIFEST.branch_of("2", 1) == 3
    assert MANIFEST.branch_of("2", 2) is None


def test_every_database_has_its_connection():
    assert {k: d.connection for k, d in MANIFEST.databases.items()} == {
        str(n): f"ident_{n}" for n in range(1, 5)
    }


@pytest.mark.parametrize("table", sorted(MANIFEST.tables))
def test_declaration_agrees_with_manifest(table):
    path = DECLARATIONS_DIR / spec_path(table).rsplit("/", 1)[1]
    assert path.read_text(encoding="utf-8") == render(MANIFEST, table), "rerun write_declarations()"
    spec = load_spec(spec_path(table))
    source = MANIFEST.tables[table]
    assert spec.identifier == bronze_identifier(table)
    declared = {c.name: c.type for c in spec.columns if not c.name.startswith("_")}
    expected = {"source_db": "string", "extract_date": "date", "is_deleted": "boolean"}
    expected |= {snake(c): BRONZE_TYPES[t] for c, t in source.columns.items()}
    assert declared == expected
    assert spec.natural_key == ("source_db", *(snake(k) for k in source.key))


def test_no_stray_declarations():
    assert {p.stem for p in DECLARATIONS_DIR.glob("*.yaml")} == {snake(t) for t in MANIFEST.tables}


def test_registry_lists_the_manifest_tables():
    assert set(pipeline.TABLES) == {snake(t) for t in MANIFEST.tables}
    assert pipeline.SOURCE.bronze_tables == tuple(f"bronze.ident_{t}" for t in pipeline.TABLES)


@pytest.mark.parametrize("dialect", ["tsql", "postgres"])
def test_every_query_round_trips(dialect):
    rendered = [(q, q.render(dialect)) for q in queries.all_queries(MANIFEST, dialect)]
    assert len(rendered) >= 3 * len(MANIFEST.tables)
    for query, sql in rendered:
        # T-SQL text parses as T-SQL and renders back to the same tree (SQL Server would take it).
        tree = sqlglot.parse_one(query.tsql, read="tsql")
        assert sqlglot.parse_one(tree.sql("tsql"), read="tsql") == tree, query.name
        assert sql.count("?") == query.parameters, query.name
        assert "%s" not in sql
        if dialect == "postgres":
            assert "[" not in sql and "ISNULL" not in sql, query.name
            sqlglot.parse_one(sql.replace("?", "NULL"), read="postgres")


def test_sql_server_gets_the_text_as_written_without_loading_sqlglot():
    assert all(q.render("tsql") == q.tsql for q in queries.all_queries(MANIFEST, "tsql"))
    probe = (
        "import sys; from elt_platform.sources.ident import extract, queries;"
        "from elt_platform.sources.ident.manifest import load_manifest;"
        "[q.render('tsql') for q in queries.all_queries(load_manifest())];"
        "print('sqlglot' in sys.modules)"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, env=env)
    assert done.stdout.strip() == "False"


def test_postgres_rendering_quotes_camel_case():
    sql = queries.by_audit(MANIFEST, "Orders").render("postgres")
    assert 'FROM "dbo"."Orders"' in sql
    assert (
        '("DateTimeChanged" >= ? AND "DateTimeChanged" < ?) OR ("DateTimeAdded" >= ? AND "DateTimeAdded" < ?)'
        in sql
    )
    assert queries.probe(MANIFEST, "Receptions").render("postgres").endswith("LIMIT 0")
    assert 'CAST("RowVersion" AS BIGINT) AS "RowVersion"' in queries.full(MANIFEST, "Receptions").render(
        "postgres"
    )


def test_sql_server_high_water_uses_min_active_rowversion():
    assert "MIN_ACTIVE_ROWVERSION()" in queries.high_water(MANIFEST, "Receptions", "tsql").render("tsql")
    assert "MAX(" in queries.high_water(MANIFEST, "Receptions", "postgres").render("postgres")
