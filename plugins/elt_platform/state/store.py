"""The transactional state store: one SQLAlchemy engine, migrated on first open, one way to lock a row.

What must never be lost or raced (OAuth token pairs, request budgets, circuit breakers, watermarks, the
transform ledger) is kept in a small OLTP database selected by one setting, ``ELT_STATE_DB_URL``:
SQLite under ``$ELT_HOME/state.db`` when embedded, Postgres (``postgresql+psycopg://…``) in production.

:meth:`StateStore.transaction` hides the dialect difference for read-modify-write:

* SQLite locks the whole database. Every write transaction starts with ``BEGIN IMMEDIATE`` so it takes
  the write lock before its first read; a second process waits (``busy_timeout``) instead of reading a
  value that is about to change. WAL mode lets readers proceed while a writer holds the lock.
* Postgres locks rows: :meth:`StateStore.lock_row` inserts a missing row (``ON CONFLICT DO NOTHING``)
  and then reads it ``FOR UPDATE``, so two workers on the same account queue on that row only.

A transaction opened while the same thread already has one open on the same store joins it instead of
opening a second connection: on SQLite a second connection would wait for the write lock its own thread
holds (a 30-second stall, then an error), e.g. when a token refresher acquires a request budget.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, Row, Table, create_engine, event, select, text
from sqlalchemy.engine import make_url

from elt_platform.config import PlatformConfig

if TYPE_CHECKING:
    from sqlalchemy.dialects.postgresql import Insert as PostgresInsert
    from sqlalchemy.dialects.sqlite import Insert as SqliteInsert

#: The one setting that selects the state database.
URL_VARIABLE = "ELT_STATE_DB_URL"
#: Seconds a SQLite writer waits for another process's write lock before failing.
SQLITE_BUSY_TIMEOUT_S = 30.0
#: Postgres: how long a statement waits for a row lock before failing (ms); a stuck holder surfaces.
POSTGRES_LOCK_TIMEOUT_MS = 60_000

_stores: dict[tuple[int, str], StateStore] = {}
_stores_lock = threading.Lock()
#: Every store of this process, for the after-fork hook below.
_all_stores: weakref.WeakSet[StateStore] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    # Airflow's task runner forks. Pooled connections belong to the parent: the child must open its
    # own (close=False leaves the parent's sockets alone), and a lock held by another parent thread
    # at fork time would never be released in the child.
    global _stores_lock
    _stores_lock = threading.Lock()
    for store in list(_all_stores):
        store.engine.dispose(close=False)


os.register_at_fork(after_in_child=_after_fork_in_child)


def default_url(env: Mapping[str, str] | None = None) -> str:
    """The state database URL: ``ELT_STATE_DB_URL``, else SQLite under ``ELT_HOME``.

    Args:
        env: variables to read (default ``os.environ``).

    Returns:
        A SQLAlchemy URL string.
    """
    env = os.environ if env is None else env
    url = env.get(URL_VARIABLE)
    if url:
        return url
    home = PlatformConfig.from_env(dict(env)).home
    return f"sqlite:///{home / 'state.db'}"


def open_state_store(url: str | None = None) -> StateStore:
    """The migrated state store for ``url`` (default :func:`default_url`), one per process and URL.

    The cache is keyed by process id as well: an engine's pooled connections must not cross a
    ``fork`` (Airflow's task runner forks), so a child process opens its own.

    Args:
        url: SQLAlchemy URL; ``None`` reads ``ELT_STATE_DB_URL`` at call time.

    Returns:
        The store, with its schema upgraded to the newest migration.
    """
    url = url or default_url()
    key = (os.getpid(), url)
    with _stores_lock:
        store = _stores.get(key)
        if store is None:
            store = StateStore(url)
            store.ensure_migrated()
            _stores[key] = store
        return store


class StateStore:
    """An engine on the state database plus the transaction and locking conventions of this package.

    Args:
        url: SQLAlchemy URL (``sqlite:///path`` or ``postgresql+psycopg://…``).

    Use :func:`open_state_store` rather than this constructor: it migrates the schema and reuses
    the engine within a process.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        parsed = make_url(url)
        self.dialect_name = parsed.get_backend_name()
        if self.dialect_name == "sqlite":
            self.engine = _sqlite_engine(url)
        elif self.dialect_name == "postgresql":
            self.engine = _postgres_engine(url)
        else:
            raise ValueError(
                f"unsupported state database {self.dialect_name!r} in {URL_VARIABLE}: "
                "use sqlite:///… or postgresql+psycopg://…"
            )
        _all_stores.add(self)
        # The transaction open in this thread (or task), and whether it writes.
        self._current: ContextVar[tuple[Connection, bool] | None] = ContextVar(
            f"state-tx-{id(self)}", default=None
        )

    @property
    def display_url(self) -> str:
        """The URL with any password masked, for logs and CLI output."""
        return self.engine.url.render_as_string(hide_password=True)

    def __repr__(self) -> str:
        return f"StateStore({self.display_url!r})"

    @contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[Connection]:
        """A transaction that commits on success and rolls back on any exception.

        Args:
            write: ``True`` (default) takes SQLite's write lock at ``BEGIN``; pass ``False`` for
                pure reads, which then never wait for a writer (WAL). Postgres ignores it.

        Yields:
            The connection to execute statements on. Inside an already open transaction of this
            store in the same thread, the same connection (the outer transaction commits).
        """
        outer = self._current.get()
        if outer is not None:
            conn, outer_writes = outer
            if write and not outer_writes:
                # SQLite would have to upgrade a read lock mid-transaction, which can fail at once
                # with "database is locked" (no busy wait): open the outer one with write=True.
                raise RuntimeError("a write transaction cannot join an open read-only transaction")
            yield conn
            return
        with self.engine.connect() as conn:
            conn = conn.execution_options(elt_sqlite_begin="IMMEDIATE" if write else "DEFERRED")
            token = self._current.set((conn, write))
            try:
                with conn.begin():
                    yield conn
            finally:
                self._current.reset(token)

    def lock_row(
        self,
        conn: Connection,
        table: Table,
        key: Mapping[str, Any],
        defaults: Mapping[str, Any] | None = None,
    ) -> Row:
        """Create the row if it is missing, then read it locked until the transaction ends.

        Args:
            conn: a connection from :meth:`transaction`.
            table: the table; ``key`` must name its whole primary key.
            key: primary-key values.
            defaults: the other column values of a newly created row.

        Returns:
            The row as stored (the existing one when it was already there).
        """
        condition = [table.c[name] == value for name, value in key.items()]
        # FOR UPDATE is a no-op on SQLite, where BEGIN IMMEDIATE already holds the database lock.
        locked = select(table).where(*condition).with_for_update()
        row = conn.execute(locked).one_or_none()
        if row is None:
            # Two workers may both miss the row: ON CONFLICT lets the second wait for the first's
            # insert to commit instead of failing, then both read (and queue on) the same row.
            self.insert_missing(conn, table, {**(defaults or {}), **key})
            row = conn.execute(locked).one()
        return row

    def insert_missing(self, conn: Connection, table: Table, values: Mapping[str, Any]) -> None:
        """``INSERT … ON CONFLICT DO NOTHING``: create a row unless its primary key exists."""
        conn.execute(self._insert(table).values(**values).on_conflict_do_nothing())

    def upsert(self, conn: Connection, table: Table, values: Mapping[str, Any]) -> None:
        """Insert a row or overwrite the non-key columns given in ``values``.

        Args:
            conn: a connection from :meth:`transaction`.
            table: the table.
            values: every primary-key column plus the columns to set.
        """
        keys = [column.name for column in table.primary_key.columns]
        statement = self._insert(table).values(**values)
        updates = {name: statement.excluded[name] for name in values if name not in keys}
        conn.execute(statement.on_conflict_do_update(index_elements=keys, set_=updates))

    def upsert_many(self, conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
        """:meth:`upsert` for many rows with the same columns, in one executemany."""
        if not rows:
            return
        keys = [column.name for column in table.primary_key.columns]
        statement = self._insert(table)
        updates = {name: statement.excluded[name] for name in rows[0] if name not in keys}
        conn.execute(statement.on_conflict_do_update(index_elements=keys, set_=updates), list(rows))

    def _insert(self, table: Table) -> SqliteInsert | PostgresInsert:
        if self.dialect_name == "sqlite":
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            return sqlite_insert(table)
        from sqlalchemy.dialects.postgresql import insert as postgres_insert

        return postgres_insert(table)

    def upgrade(self) -> str:
        """Apply every pending migration (``alembic upgrade head``); safe to call from many processes.

        All migrations run in one transaction that first takes an exclusive lock (SQLite: the file
        lock beside the database plus ``BEGIN IMMEDIATE``; Postgres: a transaction-scoped advisory
        lock), so a second process opening a fresh database waits and then finds it at head.

        Returns:
            The revision the database is at afterwards.
        """
        from elt_platform.state.migrations import run_upgrade

        with self._migration_lock(), self.transaction() as conn:
            if self.dialect_name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_LOCK_KEY})
            return run_upgrade(conn)

    def ensure_migrated(self) -> str:
        """:meth:`upgrade` unless the database is already at head (then no lock is taken).

        Returns:
            The revision the database is at afterwards.
        """
        from elt_platform.state.migrations import head_revision

        current = self.current_revision()
        return current if current == head_revision() else self.upgrade()

    def current_revision(self) -> str | None:
        """The migration revision the database is at (``None`` before the first upgrade)."""
        from elt_platform.state.migrations import current_revision

        with self.transaction(write=False) as conn:
            return current_revision(conn)

    def close(self) -> None:
        """Close pooled connections and forget this store in the :func:`open_state_store` cache."""
        with _stores_lock:
            for key, store in list(_stores.items()):
                if store is self:
                    del _stores[key]
        self.engine.dispose()

    @contextmanager
    def _migration_lock(self) -> Iterator[None]:
        # SQLite: BEGIN IMMEDIATE alone would do, but the file lock also queues the connects (and
        # their journal-mode switch) of processes opening a brand-new file together.
        database = self.engine.url.database
        if self.dialect_name != "sqlite" or not database or database == ":memory:":
            yield
            return
        lock_path = Path(f"{database}.migrate.lock")
        with open(lock_path, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


#: A fixed 64-bit key for ``pg_advisory_xact_lock``, derived from the package name.
_ADVISORY_LOCK_KEY = int.from_bytes(hashlib.sha256(b"elt_platform.state").digest()[:8], "big", signed=True)


def _sqlite_engine(url: str) -> Engine:
    database = make_url(url).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S})

    # The documented SQLAlchemy recipe for real SQLite transactions (Python < 3.12): stop the sqlite3
    # driver from issuing its own deferred BEGIN, and emit BEGIN ourselves on every transaction.
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
        _enable_wal(cursor)
        # NORMAL is durable across process crashes in WAL mode; only an OS crash may lose the last commit.
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = conn.get_execution_options().get("elt_sqlite_begin", "IMMEDIATE")
        conn.exec_driver_sql(f"BEGIN {mode}")

    return engine


def _enable_wal(cursor) -> None:
    """Switch the database file to WAL, waiting out other processes doing the same.

    Changing the journal mode needs an exclusive lock and SQLite does not run the busy handler for it:
    two processes opening a brand-new file together get an immediate "database is locked".
    """
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_S
    while cursor.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def _postgres_engine(url: str) -> Engine:
    # Keep libpq options given in the URL (e.g. ``?options=-csearch_path%3Delt_state`` for a dedicated
    # schema): connect_args would otherwise replace them.
    given = make_url(url).query.get("options", "")
    if isinstance(given, tuple):  # ``?options=…&options=…``: libpq takes them space-separated
        given = " ".join(given)
    options = " ".join(filter(None, [given, f"-c lock_timeout={POSTGRES_LOCK_TIMEOUT_MS}"]))
    return create_engine(url, pool_pre_ping=True, connect_args={"options": options})


def utcnow() -> datetime:
    """The current instant, UTC-aware (the only clock the state tables record)."""
    return datetime.now(UTC)
