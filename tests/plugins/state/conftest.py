"""Fixtures of the state-store tests: a database per test on each dialect, and a pool of OS processes.

``state_url`` is parametrized over SQLite and Postgres so every store test proves both dialects. The
Postgres cluster is the iDent sandbox's throw-away ``PostgresCluster`` (local ``initdb``/``pg_ctl``, a
free 127.0.0.1 port), started once per session with one database; each test gets its own schema.
Without the binaries the Postgres cases skip (with the reason); a cluster that is present but fails to
start is an error.

``process_pool`` holds three spawned interpreters in which ``tests/plugins/state/workers.py`` plays the
other processes of a race. Both the cluster and the pool start in the background when the first test
of this folder begins, so their start-up overlaps the SQLite tests instead of adding to them.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.pool
import shutil
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from elt_platform.sandbox.ident.cluster import POSTGRES_BINARIES, PostgresCluster, postgres_bindir
from elt_platform.state.schema import metadata
from elt_platform.state.store import StateStore, open_state_store
from state import workers

STATE_DATABASE = "elt_state_tests"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run this folder's SQLite tests first, then Postgres, then the cross-process races.

    The cluster and the worker pool start in the background with the first test; ordering the tests
    that need them last lets their start-up overlap the rest instead of stalling the first test.
    Only the slots this folder's tests already occupy are reordered.
    """
    here = Path(__file__).parent
    slots = [index for index, item in enumerate(items) if here in item.path.parents]
    ordered = sorted((items[index] for index in slots), key=_run_order)
    for index, item in zip(slots, ordered, strict=True):
        items[index] = item


def _run_order(item: pytest.Item) -> tuple[bool, bool]:
    params = getattr(item, "callspec", None)
    on_postgres = params is not None and params.params.get("dialect") == "postgres"
    return "process_pool" in getattr(item, "fixturenames", ()), on_postgres


class BackgroundPostgres:
    """A :class:`PostgresCluster` holding :data:`STATE_DATABASE`, started on a background thread.

    Args:
        bindir: the directory holding ``initdb`` and ``pg_ctl``.
    """

    def __init__(self, bindir: Path) -> None:
        self.cluster = PostgresCluster(databases=(STATE_DATABASE,), bindir=bindir)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._start, name="throwaway-postgres", daemon=True)
        self._thread.start()

    def database_url(self) -> str:
        """Wait for the cluster; the SQLAlchemy URL of :data:`STATE_DATABASE`.

        Raises:
            RuntimeError: initdb or the server failed (with their output).
        """
        self._thread.join()
        if self._error is not None:
            raise RuntimeError(f"throw-away Postgres failed to start: {self._error}")
        (database,) = self.cluster.databases
        return (
            f"postgresql+psycopg://{database.user}:{database.password}@{database.host}:{database.port}"
            f"/{database.name}"
        )

    def stop(self) -> None:
        self._thread.join()
        self.cluster.stop()

    def _start(self) -> None:
        try:
            self.cluster.start()
        except Exception as error:  # re-raised in the test thread by database_url()
            self._error = error


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


@pytest.fixture(scope="session", autouse=True)
def _background_services() -> Iterator[dict]:
    """Start the Postgres cluster (if installed) and the worker pool without waiting for either."""
    bindir = postgres_bindir()
    postgres = BackgroundPostgres(bindir) if bindir is not None else None
    pool = multiprocessing.get_context("spawn").Pool(3)
    # Each worker imports the store and the race functions now; the sleep spreads one task per worker.
    for _ in range(3):
        pool.apply_async(workers.warm_up, (0.2,))
    try:
        yield {"postgres": postgres, "pool": pool}
    finally:
        pool.terminate()
        pool.join()
        if postgres is not None:
            postgres.stop()


@pytest.fixture(scope="session")
def postgres_database(_background_services: dict) -> str:
    """The URL of the cluster's one database for the session; tests work in schemas of their own."""
    postgres = _background_services["postgres"]
    if postgres is None:
        pytest.skip(f"PostgreSQL binaries ({', '.join(POSTGRES_BINARIES)}) not found on PATH")
    return postgres.database_url()


def _new_postgres_schema(database: str) -> str:
    """The URL of a new, empty schema of ``database`` (selected through ``search_path``).

    As isolated for these tables as a new database, and ten times cheaper than ``CREATE DATABASE``.
    """
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_libpq(database), autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    return f"{database}?options=-csearch_path%3D{schema}"


@pytest.fixture(params=["sqlite", "postgres"])
def dialect(request: pytest.FixtureRequest) -> str:
    """Each test taking it runs once per supported state database."""
    return request.param


@pytest.fixture
def state_url(dialect: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """The URL of an empty, never migrated state database of each dialect, private to the test."""
    if dialect == "sqlite":
        return f"sqlite:///{tmp_path / 'fresh.db'}"
    return _new_postgres_schema(request.getfixturevalue("postgres_database"))


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file that tests copy instead of migrating their own."""
    path = tmp_path_factory.mktemp("state-template") / "state.db"
    open_state_store(f"sqlite:///{path}").close()  # the last close checkpoints the WAL into the file
    return path


@pytest.fixture(scope="session")
def _postgres_store(request: pytest.FixtureRequest) -> Iterator[str]:
    """The URL of one migrated Postgres schema shared by the tests, emptied before each."""
    url = _new_postgres_schema(request.getfixturevalue("postgres_database"))
    yield url
    open_state_store(url).close()


@pytest.fixture
def store(dialect: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[StateStore]:
    """A migrated, empty store of each dialect, private to the test."""
    if dialect == "sqlite":
        path = tmp_path / "state.db"
        shutil.copyfile(request.getfixturevalue("_sqlite_template"), path)
        opened = open_state_store(f"sqlite:///{path}")
        yield opened
        opened.close()
        return
    opened = open_state_store(request.getfixturevalue("_postgres_store"))
    with opened.transaction() as conn:
        conn.execute(text(f"TRUNCATE {', '.join(table.name for table in metadata.sorted_tables)}"))
    yield opened  # kept open for the next test: reconnecting costs more than the test


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """An empty SQLite state database, for behaviour that is the same on every dialect."""
    return f"sqlite:///{tmp_path / 'state.db'}"


@pytest.fixture
def sqlite_store(sqlite_url: str, _sqlite_template: Path) -> Iterator[StateStore]:
    """A migrated, empty SQLite store at :func:`sqlite_url`."""
    shutil.copyfile(_sqlite_template, sqlite_url.removeprefix("sqlite:///"))
    opened = open_state_store(sqlite_url)
    yield opened
    opened.close()


@pytest.fixture
def process_pool(_background_services: dict) -> multiprocessing.pool.Pool:
    """Three spawned worker processes (spawn: no engine or lock state is inherited from pytest)."""
    return _background_services["pool"]
