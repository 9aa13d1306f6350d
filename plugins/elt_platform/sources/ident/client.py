"""Read-only ODBC access to one iDent database, from an Airflow ``odbc`` connection.

The connection's fields become an ODBC connection string: ``host`` (+ ``port``) → ``Server``,
``schema`` → ``Database``, ``login``/``password`` → ``UID``/``PWD``, ``extra.driver`` → ``Driver``; every
other ``extra`` key is passed as a connection-string attribute (``Encrypt``, ``TrustServerCertificate``,
``TDS_Version``, ``BoolsAsChar``…). The SQL dialect follows from the driver: psqlODBC (the sandbox) →
``postgres``; anything else (Microsoft ODBC Driver 17/18, FreeTDS) → ``tsql``.

Rows are streamed: :meth:`IdentClient.stream` yields ``fetchmany`` chunks, so memory is bounded by the
chunk size whatever the table's size.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from elt_platform.sources.ident.queries import Dialect, Query

#: Extra keys that are not connection-string attributes.
_NOT_ATTRIBUTES = {"driver", "dsn", "connect_kwargs", "sqlalchemy_scheme", "sqlalchemy_drivername"}


def dialect_of(driver: str) -> Dialect:
    """``postgres`` for psqlODBC (``PostgreSQL Unicode``/``ANSI``, ``psqlodbcw.so``), else ``tsql``."""
    lowered = driver.lower()
    return "postgres" if "postgres" in lowered or "psqlodbc" in lowered else "tsql"


def _braced(value: str) -> str:
    if any(ch in value for ch in ";{}=") or value != value.strip():
        return "{" + value.replace("}", "}}") + "}"
    return value


@dataclass(frozen=True, repr=False)
class OdbcSettings:
    """What is needed to open one database (the password is kept out of ``repr``)."""

    driver: str
    server: str
    database: str
    login: str | None = None
    password: str | None = None
    port: int | None = None
    attributes: Mapping[str, str] = field(default_factory=dict)

    @property
    def dialect(self) -> Dialect:
        return dialect_of(self.driver)

    def __repr__(self) -> str:
        return f"OdbcSettings(driver={self.driver!r}, server={self.server!r}, database={self.database!r})"

    def connection_string(self) -> str:
        """The ODBC connection string (contains the password: never log it)."""
        postgres = self.dialect == "postgres"
        server = self.server
        parts = {"Driver": "{" + self.driver + "}"}
        if postgres:
            parts |= {"Server": server, "Port": str(self.port or 5432), "Database": self.database}
            parts["BoolsAsChar"] = "0"  # booleans as booleans, not '1'/'0' text
        else:
            # SQL Server drivers take the port after a comma; a named instance (HOST\\INSTANCE) has none.
            parts |= {"Server": f"{server},{self.port}" if self.port else server, "Database": self.database}
            parts["ApplicationIntent"] = "ReadOnly"  # routes to a readable secondary where one exists
        if self.login:
            parts["UID"] = self.login
        if self.password is not None:
            parts["PWD"] = self.password
        parts |= {k: str(v) for k, v in self.attributes.items()}
        return "".join(f"{k}={_braced(v) if k != 'Driver' else v};" for k, v in parts.items())

    @classmethod
    def from_connection(cls, connection: Any) -> OdbcSettings:
        """From an Airflow connection (``conn_type`` odbc; anything with its attributes and ``extra_dejson``).

        Raises:
            ValueError: no driver or no host.
        """
        extra = dict(getattr(connection, "extra_dejson", None) or {})
        driver = str(extra.get("driver") or "").strip("{}")
        if not driver:
            raise ValueError(f"connection {connection.conn_id!r} has no extra.driver (e.g. 'FreeTDS')")
        if not connection.host:
            raise ValueError(f"connection {connection.conn_id!r} has no host")
        return cls(
            driver=driver,
            server=connection.host,
            database=connection.schema or "",
            login=connection.login,
            password=connection.password,
            port=int(connection.port) if connection.port else None,
            attributes={k: str(v) for k, v in extra.items() if k.lower() not in _NOT_ATTRIBUTES},
        )


class IdentClient:
    """A read-only pyodbc connection to one database (a context manager).

    Args:
        settings: where to connect.
        chunk_rows: rows per ``fetchmany``.
        timeout: login timeout, seconds.
    """

    def __init__(self, settings: OdbcSettings, *, chunk_rows: int = 5000, timeout: int = 30) -> None:
        self.settings = settings
        self.dialect: Dialect = settings.dialect
        self.chunk_rows = chunk_rows
        self.timeout = timeout
        self._conn: Any = None

    def __enter__(self) -> IdentClient:
        import pyodbc

        self._conn = pyodbc.connect(
            self.settings.connection_string(), autocommit=True, readonly=True, timeout=self.timeout
        )
        if self.dialect == "tsql":
            # SQL Server sends nvarchar as UTF-16LE; be explicit so Cyrillic never goes through a code page.
            self._conn.setdecoding(pyodbc.SQL_WCHAR, encoding="utf-16le")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def stream(
        self, query: Query, params: Sequence[Any] = ()
    ) -> Iterator[tuple[list[str], list[Sequence[Any]]]]:
        """Yield ``(column names, rows)`` chunks of at most ``chunk_rows`` rows (``pyodbc.Row``, tuple-like).

        Raises:
            ValueError: the parameter count does not match the query.
        """
        if len(params) != query.parameters:
            raise ValueError(f"{query.name}: {query.parameters} parameter(s) expected, got {len(params)}")
        cursor = self._conn.cursor()
        try:
            cursor.execute(query.render(self.dialect), *params)
            names = [d[0] for d in cursor.description]
            while rows := cursor.fetchmany(self.chunk_rows):
                # The rows as pyodbc returns them: a copy as tuples would hold each chunk twice.
                yield names, rows
                del rows
        finally:
            cursor.close()

    def scalar(self, query: Query, params: Sequence[Any] = ()) -> Any:
        """The first column of the first row (None without rows)."""
        for _, rows in self.stream(query, params):
            return rows[0][0] if rows else None
        return None


__all__ = ["IdentClient", "OdbcSettings", "dialect_of"]
