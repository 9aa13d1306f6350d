"""A PostgreSQL server from the distribution's own binaries (``initdb`` + ``pg_ctl``), no Docker.

:class:`PostgresServer` creates a cluster in a directory (or keeps the one there), starts it on
``host:port`` and creates the databases asked for. Two users: the production-local profile (Airflow's
metadata DB, the state store and the Iceberg JDBC catalog, with the role and password of ``.env``) and
the iDent sandbox (a throw-away cluster standing in for the clinics' SQL Servers). As root the server
runs as the ``postgres`` account (or ``nobody``): ``initdb`` refuses root. TCP logins need the password
(scram-sha-256), as a real server would.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

POSTGRES_BINARIES = ("initdb", "pg_ctl", "postgres")


class ClusterError(RuntimeError):
    """The cluster could not be created, started or stopped (with the tools' output)."""


def postgres_bindir() -> Path | None:
    """The first directory holding ``initdb``, ``pg_ctl`` and ``postgres`` (PATH, then Debian's layout)."""
    candidates = [os.path.dirname(shutil.which("pg_ctl") or "")]
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    for directory in filter(None, candidates):
        if all((Path(directory) / name).is_file() for name in POSTGRES_BINARIES):
            return Path(directory)
    return None


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class PostgresServer:
    """A PostgreSQL server in ``directory``; a context manager that stops it on exit.

    Args:
        directory: where the cluster lives (``data/``, ``server.log``); a temporary directory if None,
            removed at stop. As root the directory must be reachable by the unprivileged account.
        databases: names of the databases to create when missing.
        user / password: the superuser role, created by ``initdb`` (a new cluster only: an existing
            one keeps the password it was created with).
        host / port: where it listens (a free port if None). Only ``host``: no Unix socket.
        fresh: remove an existing ``data/`` first (throw-away servers); otherwise it is kept.
        bindir: the PostgreSQL binaries (found on PATH or under ``/usr/lib/postgresql`` if None).
        max_connections: the server's ``max_connections``.
        durable: fsync and full-page writes on (production data); off for throw-away servers.
    """

    def __init__(
        self,
        directory: Path | str | None,
        databases: tuple[str, ...] | list[str],
        *,
        user: str,
        password: str,
        host: str = "127.0.0.1",
        port: int | None = None,
        fresh: bool = False,
        bindir: Path | None = None,
        max_connections: int = 50,
        durable: bool = True,
    ) -> None:
        found = bindir or postgres_bindir()
        if found is None:
            raise ClusterError(
                f"PostgreSQL binaries ({', '.join(POSTGRES_BINARIES)}) not found: apt-get install postgresql"
            )
        self.bindir = found
        self._temporary = directory is None
        self.directory = Path(directory or tempfile.mkdtemp(prefix="postgres-")).resolve()
        self.data = self.directory / "data"
        self.log = self.directory / "server.log"
        self.host = host
        self.port = port or free_port(host)
        self.names = tuple(databases)
        self.user = user
        self.password = password
        self.fresh = fresh
        self.max_connections = max_connections
        self.durable = durable
        self.pid: int | None = None
        self._prefix: list[str] = []

    def start(self) -> PostgresServer:
        """initdb (a new or ``fresh`` cluster), start, create the missing databases.

        Raises:
            ClusterError: a tool failed; its output and the server log's tail are in the message.
        """
        self.directory.mkdir(parents=True, exist_ok=True)
        if self.fresh:
            shutil.rmtree(self.data, ignore_errors=True)
        self._become_unprivileged()
        if not (self.data / "PG_VERSION").is_file():
            self._initdb()
        options = (
            f"-p {self.port} -c listen_addresses={self.host} -c unix_socket_directories='' "
            f"-c max_connections={self.max_connections}"
        )
        if not self.durable:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
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

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def libpq(self, name: str) -> str:
        """A libpq conninfo string (psycopg) for the database ``name``, as the superuser."""
        return f"host={self.host} port={self.port} dbname={name} user={self.user} password={self.password}"

    def _initdb(self) -> None:
        shutil.rmtree(self.data, ignore_errors=True)
        pwfile = self.directory / "pwfile"
        fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(self.password + "\n")
        self._chown(pwfile)
        try:
            self._run(
                "initdb", "-D", str(self.data), "-U", self.user, f"--pwfile={pwfile}",
                "--auth-local=trust", "--auth-host=scram-sha-256",
                "--no-locale", "-E", "UTF8", *(() if self.durable else ("--no-sync",)),
            )  # fmt: skip
        finally:
            pwfile.unlink(missing_ok=True)

    def _create_databases(self) -> None:
        import psycopg

        with psycopg.connect(self.libpq("postgres"), autocommit=True) as conn:
            existing = {row[0] for row in conn.execute("SELECT datname FROM pg_database")}
            for name in self.names:
                if name not in existing:
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
