"""Connection strings and dialect choice of the iDent ODBC client."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from elt_platform.sources.ident.client import OdbcSettings, dialect_of


def _connection(**extra):
    return SimpleNamespace(
        conn_id="ident_1", host="clinic.local", port=1433, schema="PZ", login="reader", password="p;w",
        extra_dejson=extra,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("driver", "dialect"),
    [
        ("ODBC Driver 18 for SQL Server", "tsql"),
        ("ODBC Driver 17 for SQL Server", "tsql"),
        ("FreeTDS", "tsql"),
        ("PostgreSQL Unicode", "postgres"),
        ("/usr/lib/x86_64-linux-gnu/odbc/psqlodbcw.so", "postgres"),
    ],
)
def test_dialect_follows_driver(driver, dialect):
    assert dialect_of(driver) == dialect


def test_sql_server_connection_string():
    settings = OdbcSettings.from_connection(
        _connection(driver="ODBC Driver 18 for SQL Server", Encrypt="yes")
    )
    text = settings.connection_string()
    assert text.startswith("Driver={ODBC Driver 18 for SQL Server};Server=clinic.local,1433;Database=PZ;")
    assert "ApplicationIntent=ReadOnly;" in text and "Encrypt=yes;" in text
    assert "PWD={p;w};" in text
    assert "p;w" not in repr(settings)


def test_postgres_connection_string():
    settings = OdbcSettings.from_connection(_connection(driver="PostgreSQL Unicode"))
    assert "Server=clinic.local;Port=1433;Database=PZ;BoolsAsChar=0;" in settings.connection_string()


def test_missing_driver_is_named():
    with pytest.raises(ValueError, match="no extra.driver"):
        OdbcSettings.from_connection(_connection())
