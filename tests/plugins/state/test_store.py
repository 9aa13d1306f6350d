"""The store: migrations on first open, the URL setting, SQLite locking pragmas, joined transactions."""

from __future__ import annotations

import os
import sqlite3
import time
import warnings
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, select, text

from elt_platform.state.migrations import VERSION_TABLE, head_revision
from elt_platform.state.schema import metadata, watermarks
from elt_platform.state.store import StateStore, default_url, open_state_store, utcnow
from elt_platform.state.watermarks import get_watermark, set_watermark
from state import workers

STATE_TABLES = {
    "oauth_tokens",
    "request_budgets",
    "circuit_breakers",
    "watermarks",
    "transform_ledger",
    "reverse_etl_records",
    "reverse_etl_plan",
    "reverse_etl_runs",
    "alert_breaches",
}
HEAD = "0003"


def test_first_open_creates_every_table_at_head(state_url: str) -> None:
    store = open_state_store(state_url)
    tables = set(inspect(store.engine).get_table_names())
    revision = store.current_revision()
    store.close()

    assert tables == STATE_TABLES | {VERSION_TABLE}
    assert revision == HEAD == head_revision()


def test_upgrade_again_changes_nothing(store: StateStore) -> None:
    assert store.upgrade() == HEAD

    with store.engine.connect() as conn:
        versions = conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars().all()
    assert versions == [HEAD]


def test_migrated_schema_matches_schema_module(store: StateStore) -> None:
    # The queries use schema.py, the database is built by the migrations: they must describe one schema.
    with store.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
        differences = compare_metadata(context, metadata)

    assert differences == []


def test_two_processes_opening_a_fresh_database_both_end_at_head(state_url: str, process_pool) -> None:
    start_at = time.time() + 0.2
    jobs = [process_pool.apply_async(workers.first_open, (state_url, start_at)) for _ in range(2)]
    results = [job.get(timeout=60) for job in jobs]

    assert len({pid for pid, _ in results}) == 2
    assert [revision for _, revision in results] == [HEAD, HEAD]
    store = open_state_store(state_url)
    assert set(inspect(store.engine).get_table_names()) == STATE_TABLES | {VERSION_TABLE}
    store.close()


@pytest.mark.parametrize(
    ("pragma", "expected"),
    [("journal_mode", "wal"), ("busy_timeout", 30000), ("synchronous", 1)],
)
def test_sqlite_connections_use_wal_and_wait_for_locks(sqlite_store: StateStore, pragma, expected) -> None:
    with sqlite_store.engine.connect() as conn:
        assert conn.exec_driver_sql(f"PRAGMA {pragma}").scalar() == expected


def test_sqlite_write_transaction_takes_the_write_lock_at_begin(
    sqlite_store: StateStore, tmp_path: Path
) -> None:
    # Before any write, the open transaction already excludes other writers: a second writer with a
    # short busy timeout fails at its own BEGIN IMMEDIATE instead of reading a value about to change.
    other = sqlite3.connect(tmp_path / "state.db", timeout=0.05, isolation_level=None)
    with sqlite_store.transaction():
        with pytest.raises(sqlite3.OperationalError, match="database is locked"):
            other.execute("BEGIN IMMEDIATE")
    other.execute("BEGIN IMMEDIATE")
    other.execute("ROLLBACK")
    other.close()


def test_sqlite_read_transaction_does_not_wait_for_a_writer(sqlite_url: str) -> None:
    writer = open_state_store(sqlite_url)
    reader = StateStore(sqlite_url)
    with writer.transaction() as conn:
        writer.upsert(conn, watermarks, {"key": "k", "value": "uncommitted", "updated_at": utcnow()})
        with reader.transaction(write=False) as read:
            assert read.execute(select(watermarks.c.value)).all() == []
    reader.close()
    writer.close()


def test_nested_transaction_joins_the_outer_one(store: StateStore) -> None:
    with pytest.raises(RuntimeError, match="abort"), store.transaction() as outer:
        with store.transaction() as inner:
            assert inner is outer
            store.upsert(inner, watermarks, {"key": "k", "value": "v", "updated_at": utcnow()})
        raise RuntimeError("abort")

    with store.transaction(write=False) as conn:
        assert conn.execute(select(watermarks.c.key)).all() == []


def test_write_transaction_cannot_join_a_read_only_one(sqlite_store: StateStore) -> None:
    with sqlite_store.transaction(write=False), pytest.raises(RuntimeError, match="cannot join"):
        with sqlite_store.transaction():
            pass


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"ELT_STATE_DB_URL": "postgresql+psycopg://u@db/state"}, "postgresql+psycopg://u@db/state"),
        ({"ELT_HOME": "/srv/elt"}, "sqlite:////srv/elt/state.db"),
        ({"ELT_HOME": "/srv/elt", "ELT_STATE_DB_URL": ""}, "sqlite:////srv/elt/state.db"),
    ],
)
def test_default_url_reads_one_setting(env: dict[str, str], expected: str) -> None:
    assert default_url(env) == expected


def test_open_state_store_reuses_one_store_per_url(tmp_path: Path) -> None:
    first = open_state_store(f"sqlite:///{tmp_path / 'a.db'}")
    other = open_state_store(f"sqlite:///{tmp_path / 'b.db'}")

    assert open_state_store(f"sqlite:///{tmp_path / 'a.db'}") is first
    assert other is not first
    first.close()
    other.close()


def test_forked_child_opens_its_own_connections(sqlite_store: StateStore, tmp_path: Path) -> None:
    set_watermark(sqlite_store, "k", "parent")
    parent_connection = sqlite_store.engine.raw_connection()
    parent_id = id(parent_connection.dbapi_connection)
    parent_connection.close()  # back to the pool, where a forked child would find it

    read, write = os.pipe()
    with warnings.catch_warnings():
        # Python 3.12+ warns about fork() in a threaded process; the child only reads SQLite and exits.
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # the child: report whether the pool handed it the parent's connection
        child_connection = sqlite_store.engine.raw_connection()
        reused = id(child_connection.dbapi_connection) == parent_id
        os.write(write, b"reused" if reused else get_watermark(sqlite_store, "k").encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    answer = os.read(read, 100)
    os.close(read)

    assert answer == b"parent"


def test_password_is_masked_in_repr() -> None:
    store = StateStore("postgresql+psycopg://elt:s3cret-pw@db.internal:5432/state")

    assert repr(store) == "StateStore('postgresql+psycopg://elt:***@db.internal:5432/state')"
    store.close()


def test_unsupported_dialect_is_refused() -> None:
    with pytest.raises(ValueError, match="unsupported state database 'mysql'"):
        StateStore("mysql://u@h/db")
