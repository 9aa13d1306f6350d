"""A throw-away PostgreSQL cluster standing in for the clinics' SQL Server instances.

``PostgresCluster`` runs ``initdb`` + ``pg_ctl start -w`` in a directory on a free 127.0.0.1 port, creates
the databases asked for, and hands out ODBC connection strings for psqlODBC (libpq ones for bulk loading,
SQLAlchemy URLs for other users of a throw-away Postgres). As root, the cluster runs as the ``postgres``
account (or ``nobody``): ``initdb`` refuses root.
TCP logins need the generated password (scram-sha-256), as a real server would.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from elt_platform.sandbox.ident.driver import DRIVER

POSTGRES_BINARIES = ("initdb", "pg_ctl", "postgres")
SUPERUSER = "postgres"


class ClusterError(RuntimeError):
    """The cluster could not be created, started or stopped (with the tools' output)."""


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


def postgres_bindir() -> Path | None:
    """The first directory holding ``initdb``, ``pg_ctl`` and ``postgres`` (PATH, then Debian's layout)."""
    candidates = [os.path.dirname(shutil.which("pg_ctl") or "")]
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    for directory in filter(None, candidates):
        if all((Path(directory) / name).is_file() for name in POSTGRES_BINARIES):
            return Path(directory)
    return None


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PostgresCluster:
    """Start a cluster in ``directory`` with ``databases``; a context manager that stops it on exit.

    Args:
        directory: where the cluster lives (``data/``, ``server.log``); a temporary directory if None,
            removed at stop. As root the directory must be reachable by the unprivileged account.
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
        found = bindir or postgres_bindir()
        if found is None:
            raise ClusterError(f"PostgreSQL binaries ({', '.join(POSTGRES_BINARIES)}) not found")
        self.bindir = found
        self._temporary = directory is None
        self.directory = Path(directory or tempfile.mkdtemp(prefix="ident-sandbox-")).resolve()
        self.data = self.directory / "data"
        self.log = self.directory / "server.log"
        self.port = port or free_port()
        self.names = tuple(databases)
        self.password = secrets.token_hex(12)  # hex: safe as is inside URLs and connection strings
        self.max_connections = max_connections
        self.pid: int | None = None
        self._prefix: list[str] = []

    def database(self, name: str) -> Database:
        """How to reach the database ``name`` of this cluster (as the superuser, over TCP)."""
        return Database(name, "127.0.0.1", self.port, SUPERUSER, self.password)

    @property
    def databases(self) -> list[Database]:
        """The databases, in the order they were asked for."""
        return [self.database(name) for name in self.names]

    @property
    def odbc(self) -> list[str]:
        """ODBC connection strings, one per database."""
        return [database.odbc for database in self.databases]

    def start(self) -> PostgresCluster:
        """initdb (fresh: an existing ``data/`` is removed), start, create the databases.

        Raises:
            ClusterError: a tool failed; its output and the server log's tail are in the message.
        """
        self.directory.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(self.data, ignore_errors=True)
        self._become_unprivileged()
        pwfile = self.directory / "pwfile"
        pwfile.write_text(self.password + "\n")
        self._chown(pwfile)
        try:
            self._run(
                "initdb", "-D", str(self.data), "-U", SUPERUSER, f"--pwfile={pwfile}",
                "--auth-local=trust", "--auth-host=scram-sha-256",
                "--no-sync", "--no-locale", "-E", "UTF8",
            )  # fmt: skip
        finally:
            pwfile.unlink(missing_ok=True)
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            f"-c max_connections={self.max_connections}"
        )
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "-o", options, "start"
        )
        self.pid = int((self.data / "postmaster.pid").read_text().split()[0])
        try:
            self._create_databases()
        except Exception:
            self.stop()
            raise
        return self

    def stop(self, timeout: float = 15) -> None:
        """Stop the server (fast shutdown, then immediate, then SIGKILL), within about ``timeout`` seconds."""
        if self.pid is not None:
            for mode in ("fast", "immediate"):
                wait = str(int(timeout / 2))
                self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", wait, "stop", check=False)
                if not _alive(self.pid):
                    break
            if _alive(self.pid):
                os.kill(self.pid, signal.SIGKILL)
                _wait_gone(self.pid, 5)
            self.pid = None
        if self._temporary:
            shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> PostgresCluster:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _create_databases(self) -> None:
        import psycopg

        with psycopg.connect(self.database("postgres").libpq, autocommit=True) as conn:
            for name in self.names:
                conn.execute(f'CREATE DATABASE "{name}"')

    def _become_unprivileged(self) -> None:
        if os.geteuid() != 0:
            return
        user = "postgres" if _user_exists("postgres") else "nobody"
        self._prefix = ["runuser", "-u", user, "--"]
        self._owner = pwd.getpwnam(user)
        self._chown(self.directory)
        probe = subprocess.run([*self._prefix, "test", "-w", str(self.directory)], check=False)
        if probe.returncode != 0:
            raise ClusterError(
                f"{self.directory} is not reachable by the {user} account (a parent is private)"
            )

    def _chown(self, path: Path) -> None:
        if self._prefix:
            os.chown(path, self._owner.pw_uid, self._owner.pw_gid)

    def _run(self, program: str, *args: str, check: bool = True) -> None:
        command = [*self._prefix, str(self.bindir / program), *args]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        if check and result.returncode != 0:
            server_log = self.log.read_text()[-2000:] if self.log.exists() else ""
            raise ClusterError(
                f"{program} failed: {result.stderr[-2000:]}{result.stdout[-500:]}\n{server_log}"
            )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _wait_gone(pid: int, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True
