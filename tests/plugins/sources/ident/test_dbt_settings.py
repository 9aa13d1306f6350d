"""The clinic models' settings: branch map, time zones and snapshot tables from the iDent manifest (or,
without one, ``ELT_IDENT_BRANCHES`` / ``ELT_IDENT_TIMEZONES`` and defaults), and the platform's
personal-data masking; the hash key never travels as a dbt var."""

from __future__ import annotations

import json
import re

import pytest

from elt_platform.config import REPO_ROOT
from elt_platform.sources.ident.dbt import (
    DEFAULT_BRANCHES,
    DEFAULT_SNAPSHOT_TABLES,
    IdentDbtConfigError,
    dbt_settings,
)
from elt_platform.sources.ident.manifest import MANIFEST_PATH, ManifestError, load_manifest

MACROS = REPO_ROOT / "dbt" / "macros" / "ident_clinic.sql"
CLEAR = {"ELT_PII_MASKING": "clear"}


@pytest.fixture
def no_manifest(tmp_path):
    return tmp_path / "absent.yaml"


def test_the_manifest_gives_branches_zones_and_snapshot_tables():
    settings = dbt_settings({"ELT_PII_HASH_KEY": "k-123"})
    manifest = load_manifest()
    branches = settings.vars["ident_branches"]
    assert branches == {
        str(n): {"database": b.database, "own_companies": list(b.own_companies)}
        for n, b in manifest.branches.items()
    }
    assert settings.vars["ident_timezones"] == {k: d.timezone for k, d in manifest.databases.items()}
    assert set(settings.vars["ident_snapshot_tables"]) == {
        re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()
        for name, table in manifest.tables.items()
        if table.load == "full"
    }
    assert settings.vars["pii_masking"] == "hash"
    assert settings.spark_conf == {"spark.elt.iin_hash_key": "k-123"}
    assert "k-123" not in repr(settings.vars) + repr(settings.summary)


def test_the_sandbox_manifest_has_two_branches_in_database_1():
    branches = dbt_settings(CLEAR).vars["ident_branches"]
    assert [n for n, b in branches.items() if b["database"] == "1"] == ["1", "2"]
    assert len(branches) == 5
    assert len({b["database"] for b in branches.values()}) == 4


def test_without_a_manifest_the_defaults_are_the_sandbox(no_manifest):
    settings = dbt_settings(CLEAR, manifest_path=no_manifest)
    assert settings.vars["ident_branches"] == DEFAULT_BRANCHES
    assert settings.vars["ident_timezones"] == {
        "1": "Asia/Almaty",
        "2": "Asia/Almaty",
        "3": "Asia/Almaty",
        "4": "Asia/Almaty",
    }
    assert settings.vars["ident_snapshot_tables"] == list(DEFAULT_SNAPSHOT_TABLES)
    assert settings.summary["iDent branches"] == "5 over 4 database(s) (defaults)"


def test_without_a_manifest_the_environment_gives_branches_and_zones(no_manifest):
    env = {
        **CLEAR,
        "ELT_IDENT_BRANCHES": json.dumps({"7": {"database": "main", "own_companies": [3, 4]}}),
        "ELT_IDENT_TIMEZONES": json.dumps({"main": " Asia/Aqtobe "}),
    }
    settings = dbt_settings(env, manifest_path=no_manifest)
    assert settings.vars["ident_branches"] == {"7": {"database": "main", "own_companies": [3, 4]}}
    assert settings.vars["ident_timezones"] == {"main": "Asia/Aqtobe"}


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("ELT_IDENT_BRANCHES", "{not json", "is not JSON"),
        ("ELT_IDENT_BRANCHES", "[1]", "non-empty JSON object"),
        ("ELT_IDENT_BRANCHES", '{"x": {"database": "1", "own_companies": [1]}}', "branch number 'x'"),
        ("ELT_IDENT_BRANCHES", '{"1": {"database": "1"}}', "branch 1 must be"),
        ("ELT_IDENT_BRANCHES", '{"1": {"database": "1\'; drop", "own_companies": [1]}}', "not a plain key"),
        ("ELT_IDENT_BRANCHES", '{"1": {"database": "1", "own_companies": []}}', "non-empty list"),
        ("ELT_IDENT_BRANCHES", '{"1": {"database": "1", "own_companies": [true]}}', "non-empty list"),
        (
            "ELT_IDENT_BRANCHES",
            '{"1": {"database": "1", "own_companies": [1]}, "2": {"database": "1", "own_companies": [1]}}',
            "OwnCompanies 1 of database '1' is in branches 1 and 2",
        ),
        ("ELT_IDENT_TIMEZONES", '{"1": "Mars/Olympus"}', "not an IANA time zone"),
        ("ELT_IDENT_TIMEZONES", '{"1\'": "Asia/Almaty"}', "not a plain key"),
    ],
)
def test_unusable_environment_settings_are_refused(no_manifest, name, value, message):
    # Database keys, ids and zone names end up in SQL: only plain keys, integers and real zones pass.
    with pytest.raises(IdentDbtConfigError, match=message):
        dbt_settings({**CLEAR, name: value}, manifest_path=no_manifest)


def test_an_invalid_manifest_fails(tmp_path):
    path = tmp_path / "ident.yaml"
    path.write_text(MANIFEST_PATH.read_text(encoding="utf-8").replace('database: "2"', 'database: "9"'))
    with pytest.raises(ManifestError, match="unknown database"):
        dbt_settings(CLEAR, manifest_path=path)


def test_the_macro_fallbacks_equal_the_python_defaults():
    # Runs without vars (a bare `dbt build`) use the macros' copies: they must not drift.
    text = MACROS.read_text(encoding="utf-8")
    branches = re.search(r"set given = fromjson\('(\{.*?\})'\)", text)
    assert branches and json.loads(branches[1]) == DEFAULT_BRANCHES
    snapshots = re.search(r"var\('ident_snapshot_tables', (\[.*?\])\)", text)
    assert snapshots and json.loads(snapshots[1].replace("'", '"')) == list(DEFAULT_SNAPSHOT_TABLES)


def test_the_default_snapshot_tables_are_the_manifests_full_loads():
    assert set(DEFAULT_SNAPSHOT_TABLES) == set(dbt_settings(CLEAR).vars["ident_snapshot_tables"])
