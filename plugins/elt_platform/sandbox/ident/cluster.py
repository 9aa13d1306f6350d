"""A throw-away PostgreSQL cluster standing in for the clinics' SQL Server instances.

``PostgresCluster`` runs ``initdb`` + ``pg_ctl start -w`` in a directory on a free 127.0.0.1 port, creates
the databases asked for, and hands out ODBC connection strings for psqlODBC (libpq ones for bulk loading,
SQLAlchemy URLs for other users of a throw-away Postgres). As root, the cluster runs as the ``postgres``
account (or ``nobody``): ``initdb`` refuses root.
TCP logins need the generated password (scram-sha-256), as a real server would.
"""

from __future__ import annotations

import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path

from elt_platform.sandbox.ident.driver import DRIVER
from elt_platform.services.postgres import (
    POSTGRES_BINARIES,
    ClusterError,
    PostgresServer,
    free_port,
    postgres_bindir,
)

SUPERUSER = "postgres"
__all__ = ["POSTGRES_BINARIES", "ClusterError", "Database", "PostgresCluster", "free_port", "postgres_bindir"]


@dataclass(frozen=True)
class Database:
    """How to reach one database of the cluster."""

    name: str
    host: str
    port: int
    user: str
    password: str
    driver: str = DRIVER

    @property
    def odbc(self) -> str:
        """The ODBC connection string (psqlODBC; ``BoolsAsChar=0`` so ``bit``-like columns read as bool)."""
        return (
            f"Driver={{{self.driver}}};Server={self.host};Port={self.port};Database={self.name};"
            f"Uid={self.user};Pwd={self.password};BoolsAsChar=0;"
        )

    @property
    def url(self) -> str:
        """The SQLAlchemy URL (``postgresql+psycopg://``) of the same database."""
        return f"postgresql+psycopg://{self.user}:{self.password}@{self.host}:{self.port}/{self.name}"

    @property
    def libpq(self) -> str:
        """A libpq conninfo string (psycopg) for the same database."""
        return (
            f"host={self.host} port={self.port} dbname={self.name} user={self.user} password={self.password}"
        )

    def airflow_connection(self) -> dict:
        """The Airflow ``odbc`` connection (``AIRFLOW_CONN_*`` JSON) ``OdbcHook`` turns into :attr:`odbc`.

        ``OdbcHook`` reads the driver from ``extra.driver`` only with ``[providers.odbc]
        allow_driver_in_extra = True``; other extra keys are appended to the connection string.
        """
        return {
            "conn_type": "odbc",
            "host": self.host,
            "port": self.port,
            "schema": self.name,
            "login": self.user,
            "password": self.password,
            "extra": {"driver": self.driver, "BoolsAsChar": "0"},
        }


class PostgresCluster(PostgresServer):
    """A throw-away cluster in ``directory`` with ``databases`` (fresh at every start, generated password).

    Args:
        directory: where the cluster lives; a temporary directory if None, removed at stop.
        databases: names of the databases to create (may be empty: ``database(name)`` reaches any,
            e.g. the ``postgres`` maintenance database).
        bindir: the PostgreSQL binaries (found on PATH or under ``/usr/lib/postgresql`` if None).
        port: the port (a free one if None).
        max_connections: the server's ``max_connections``.

    Example:
        >>> with PostgresCluster(databases=["state"]) as cluster:  # doctest: +SKIP
        ...     engine = sqlalchemy.create_engine(cluster.databases[0].url)
    """

    def __init__(
        self,
        directory: Path | str | None = None,
        databases: tuple[str, ...] | list[str] = ("ident",),
        *,
        bindir: Path | None = None,
        port: int | None = None,
        max_connections: int = 50,
    ) -> None:
        super().__init__(
            directory or tempfile.mkdtemp(prefix="ident-sandbox-"),
            databases,
            user=SUPERUSER,
            password=secrets.token_hex(12),  # hex: safe as is inside URLs and connection strings
            bindir=bindir,
            port=port,
            fresh=True,
            max_connections=max_connections,
            durable=False,
        )
        self._temporary = directory is None

    def database(self, name: str) -> Database:
        """How to reach the database ``name`` of this cluster (as the superuser, over TCP)."""
        return Database(name, self.host, self.port, SUPERUSER, self.password)

    @property
    def databases(self) -> list[Database]:
        """The databases, in the order they were asked for."""
        return [self.database(name) for name in self.names]

    @property
    def odbc(self) -> list[str]:
        """ODBC connection strings, one per database."""
        return [database.odbc for database in self.databases]

    def start(self) -> PostgresCluster:
        """initdb (an existing ``data/`` is removed), start, create the databases.

        Raises:
            ClusterError: a tool failed; its output and the server log's tail are in the message.
        """
        super().start()
        return self

    def __enter__(self) -> PostgresCluster:
        return self.start()
