"""The iDent extract against the sandbox: four PostgreSQL databases via psqlODBC, clinic ticks between runs.

Expected values come from the sandbox's own ground truth (``tick`` returns the ids it changed), not from
the extract's SQL.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from elt_platform.iceberg.tables import load_spec
from elt_platform.sources.ident.client import IdentClient, OdbcSettings
from elt_platform.sources.ident.declarations import spec_path
from elt_platform.sources.ident.extract import get, load, watermark_key
from elt_platform.sources.ident.manifest import load_manifest
from elt_platform.sources.ident.staging import PiecewiseSliceTransaction

pyodbc = pytest.importorskip("pyodbc")
cluster_module = pytest.importorskip("elt_platform.sandbox.ident.cluster")
from elt_platform.sandbox.ident import catalog as sandbox_catalog  # noqa: E402
from elt_platform.sandbox.ident.activity import tick  # noqa: E402
from elt_platform.sandbox.ident.driver import DRIVER, driver_installed  # noqa: E402
from elt_platform.sandbox.ident.generator import load as load_sandbox  # noqa: E402

pytestmark = pytest.mark.skipif(
    cluster_module.postgres_bindir() is None or not driver_installed(DRIVER),
    reason="needs PostgreSQL binaries and psqlODBC",
)
MANIFEST = load_manifest()
NOW = datetime(2025, 3, 10, 9, 0)
DAY = date(2025, 3, 10)


@pytest.fixture(scope="module")
def cluster():
    with cluster_module.PostgresCluster(databases=sandbox_catalog.DATABASES) as running:
        load_sandbox(running.odbc, seed=7, scale=0.05, now=NOW)
        yield running


@pytest.fixture
def clock():
    """Tick times, increasing across the module's tests (the cluster is shared)."""

    def advance(minutes: int = 1) -> datetime:
        clock.offset += minutes
        return NOW + timedelta(minutes=clock.offset)

    return advance


clock.offset = 0  # type: ignore[attr-defined]


@pytest.fixture
def store(tmp_path):
    from elt_platform.state.store import open_state_store

    return open_state_store(f"sqlite:///{tmp_path}/state.db")


@pytest.fixture
def opener(cluster):
    databases = dict(zip(MANIFEST.databases, cluster.databases, strict=True))
    opened: list[IdentClient] = []

    def open_client(key: str, chunk_rows: int = MANIFEST.chunk_rows) -> IdentClient:
        db = databases[key]
        settings = OdbcSettings(DRIVER, db.host, db.name, db.user, db.password, db.port)
        client = IdentClient(settings, chunk_rows=chunk_rows)
        opened.append(client)
        return client

    open_client.databases = databases  # type: ignore[attr-defined]
    open_client.opened = opened  # type: ignore[attr-defined]
    return open_client


def _tick_all(opener, now: datetime, **options):
    results = {}
    for key, db in opener.databases.items():
        conn = pyodbc.connect(db.odbc)
        try:
            results[key] = tick(conn, now, seed=3, **options)
        finally:
            conn.close()
    return results


def _rows(catalog, table: str, batch: str | None = None):
    data = catalog.load_table(load_spec(spec_path(table)).identifier).scan().to_arrow()
    if batch is not None:
        data = data.filter(pc.equal(data.column("_batch_id"), batch))
    return data


def _run(opener, store, catalog, *, mode, run_id, start=DAY, end=DAY + timedelta(days=1), **options):
    return load(
        MANIFEST,
        start,
        end,
        run_id=run_id,
        mode=mode,
        open_client=opener,
        store=store,
        catalog=catalog,
        today=DAY,
        **options,
    )


def _source_count(opener, table: str) -> int:
    total = 0
    for db in opener.databases.values():
        conn = pyodbc.connect(db.odbc)
        try:
            total += conn.cursor().execute(f'SELECT COUNT(*) FROM dbo."{table}"').fetchone()[0]
        finally:
            conn.close()
    return total


def test_receptions_incremental_exactly_once(opener, store, catalog, clock):
    first = _run(opener, store, catalog, mode="receptions", run_id="r1")
    assert all(first.rows["Receptions"][k] > 0 for k in MANIFEST.databases)
    ticks = _tick_all(opener, clock())
    second = _run(opener, store, catalog, mode="receptions", run_id="r2")
    batch = _rows(catalog, "Receptions", "receptions/r2")
    for key, result in ticks.items():
        mine = batch.filter(pc.equal(batch.column("source_db"), key))
        expected = (result.inserted | result.updated) - set(result.deleted)
        assert sorted(mine.column("id").to_pylist()) == sorted(expected), key
        assert second.rows["Receptions"][key] == len(expected)
    third = _run(opener, store, catalog, mode="receptions", run_id="r3")
    assert sum(third.rows["Receptions"].values()) == 0
    before, after = second.watermarks[watermark_key("1", "Receptions")].values()
    assert int(after) > int(before)
    assert set(batch.column("is_deleted").to_pylist()) == {False}


def test_failed_commit_keeps_watermark(opener, store, catalog, clock, monkeypatch):
    _run(opener, store, catalog, mode="receptions", run_id="f1")
    key = watermark_key("1", "Receptions")
    before = get(store, key)
    _tick_all(opener, clock())

    def fail(self, table, batches):
        raise RuntimeError("injected commit failure")

    monkeypatch.setattr(PiecewiseSliceTransaction, "replace_batches", fail)
    with pytest.raises(RuntimeError, match="injected"):
        _run(opener, store, catalog, mode="receptions", run_id="f2")
    assert get(store, key) == before
    monkeypatch.undo()
    retried = _run(opener, store, catalog, mode="receptions", run_id="f2")
    assert sum(retried.rows["Receptions"].values()) > 0
    assert int(get(store, key)) > int(before)


def test_rerun_replaces_the_same_slices(opener, store, catalog):
    first = _run(opener, store, catalog, mode="daily", run_id="d1")
    counts = {t: len(_rows(catalog, t)) for t in MANIFEST.tables}
    again = _run(opener, store, catalog, mode="daily", run_id="d1-rerun")
    assert {t: len(_rows(catalog, t)) for t in MANIFEST.tables} == counts
    assert again.rows["Persons"] == first.rows["Persons"]
    receptions = _rows(catalog, "Receptions")
    assert len(receptions) == len(
        set(zip(receptions.column("source_db").to_pylist(), receptions.column("id").to_pylist(), strict=True))
    )
    assert set(_rows(catalog, "OwnCompanies").column("source_db").to_pylist()) == set(MANIFEST.databases)


def test_hard_deletes_become_tombstones(opener, store, catalog, clock):
    _run(opener, store, catalog, mode="daily", run_id="x1")
    ticks = _tick_all(opener, clock(), delete_probability=1.0)
    start, end = DAY + timedelta(days=1), DAY + timedelta(days=2)
    summary = _run(opener, store, catalog, mode="daily", run_id="x2", start=start, end=end)
    tombstones = _rows(catalog, "Receptions", summary.batch_id)
    tombstones = tombstones.filter(tombstones.column("is_deleted"))
    for key, result in ticks.items():
        gone = tombstones.filter(pc.equal(tombstones.column("source_db"), key)).column("id").to_pylist()
        assert sorted(gone) == sorted(result.deleted), key
        assert summary.deleted["Receptions"][key] == len(result.deleted)
    assert any(result.deleted for result in ticks.values())
    # Rerunning the same interval keeps the tombstones (bronze outside the slice still says "live").
    _run(opener, store, catalog, mode="daily", run_id="x2", start=start, end=end)
    again = _rows(catalog, "Receptions", summary.batch_id)
    assert sum(again.column("is_deleted").to_pylist()) == len(tombstones)


def test_rows_stream_in_bounded_chunks(opener):
    with opener("1", chunk_rows=50) as client:
        from elt_platform.sources.ident import queries

        sizes = [len(rows) for _, rows in client.stream(queries.full(MANIFEST, "Receptions"))]
    assert len(sizes) > 1 and max(sizes) == 50


def test_daily_rerun_after_a_micro_batch_tombstones_keys_deleted_since(opener, store, catalog, clock):
    """A daily rerun keeps its Receptions rows (another batch moved the watermark); a key deleted since
    must leave as a tombstone, not stay live through the kept row."""
    start, end = DAY + timedelta(days=3), DAY + timedelta(days=4)
    first = _run(opener, store, catalog, mode="daily", run_id="k1", start=start, end=end)
    ticks = _tick_all(opener, clock(), delete_probability=1.0)
    _run(opener, store, catalog, mode="receptions", run_id="k-micro")
    rerun = _run(opener, store, catalog, mode="daily", run_id="k1-rerun", start=start, end=end)
    batch = _rows(catalog, "Receptions", first.batch_id)
    assert any(result.deleted for result in ticks.values())
    for key, result in ticks.items():
        mine = batch.filter(pc.equal(batch.column("source_db"), key))
        dead = mine.filter(mine.column("is_deleted")).column("id").to_pylist()
        live = mine.filter(pc.invert(mine.column("is_deleted"))).column("id").to_pylist()
        assert set(result.deleted) <= set(dead), key
        assert not set(result.deleted) & set(live), key
        assert len(live) + len(dead) == len(set(live) | set(dead)), key  # one row per key in the slice
        assert rerun.deleted["Receptions"][key] >= len(result.deleted)
    # The rerun's kept rows are stamped anew: a version the micro-batch superseded must not be kept.
    everything = _rows(catalog, "Receptions")
    latest = {}
    for row in sorted(everything.to_pylist(), key=lambda r: r["_loaded_at"]):
        latest[row["source_db"], row["id"]] = row
    for key, result in ticks.items():
        for ident in result.updated - set(result.deleted):
            assert latest[key, ident]["_batch_id"] == "receptions/k-micro", (key, ident)


def test_initial_daily_load_reads_the_whole_history_and_its_rerun_too(opener, store, catalog):
    """No watermark yet: an audit table's first load is every row, not the interval's day; rerunning that
    batch (the last one) re-reads the same range, so the history stays in bronze."""
    audit = [name for name, table in MANIFEST.tables.items() if table.audit]
    start, end = DAY + timedelta(days=5), DAY + timedelta(days=6)  # after every tick of the module
    source = {}
    for key, db in opener.databases.items():
        conn = pyodbc.connect(db.odbc)
        try:
            cur = conn.cursor()
            for name in audit:
                source[name, key] = cur.execute(f'SELECT COUNT(*) FROM dbo."{name}"').fetchone()[0]
        finally:
            conn.close()
    for run_id in ("h1", "h1-rerun"):
        summary = _run(opener, store, catalog, mode="daily", run_id=run_id, start=start, end=end)
        for name in audit:
            for key in MANIFEST.databases:
                assert summary.rows[name][key] == source[name, key], (run_id, name, key)
                assert len(_rows(catalog, name)) == sum(source[name, k] for k in MANIFEST.databases)


def test_a_slice_commits_in_pieces_as_one_transaction_and_reruns_to_the_same_rows(opener, store, catalog):
    """Pieces of ~4 KiB: Receptions' slice is written a piece (a row group) at a time, in one commit."""
    start, end = DAY + timedelta(days=7), DAY + timedelta(days=8)
    expected = _source_count(opener, "Receptions")
    identifier = load_spec(spec_path("Receptions")).identifier

    def committed():
        table = catalog.load_table(identifier)
        rows = table.scan(selected_fields=("source_db", "id", "row_version")).to_arrow()
        keys = list(zip(*(rows.column(c).to_pylist() for c in rows.column_names), strict=True))
        groups = []
        for path in table.inspect.files().column("file_path").to_pylist():
            meta = pq.read_metadata(path.removeprefix("file://"))
            groups += [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
        return keys, groups, len(table.metadata.metadata_log)

    first = _run(opener, store, catalog, mode="daily", run_id="p1", start=start, end=end, commit_bytes=4096)
    keys, groups, commits = committed()
    _run(opener, store, catalog, mode="daily", run_id="p1-rerun", start=start, end=end, commit_bytes=4096)
    again, groups_again, commits_again = committed()

    assert first.written[identifier] == expected == len(keys) == len(set(keys))
    assert len(groups) > 2 and max(groups) < expected and sum(groups) == expected
    assert commits_again == commits + 1  # the rerun's delete and its pieces: one commit
    assert sorted(again) == sorted(keys)
    assert len(groups_again) > 2 and sum(groups_again) == expected
