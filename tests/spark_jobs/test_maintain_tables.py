"""The maintenance job's procedure calls (pure part; the Spark run is covered end to end)."""

import time
from datetime import UTC, datetime

import pytest

from spark_jobs.maintain_tables import maintenance_statements

WHEN = datetime(2025, 3, 1, 4, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("compact", "procedures"),
    [(False, ["expire_snapshots"]), (True, ["rewrite_data_files", "expire_snapshots"])],
)
def test_statements_in_order(compact, procedures):
    statements = maintenance_statements(
        "bronze.alaqan_visits", expire_before=WHEN, retain_last=5, compact=compact
    )
    assert [s.split("system.")[1].split("(")[0] for s in statements] == procedures
    assert all("table => 'bronze.alaqan_visits'" in s for s in statements)
    assert "older_than => TIMESTAMP '2025-03-01 04:30:00'" in statements[-1]
    assert "retain_last => 5" in statements[-1]


def test_retain_last_must_keep_current_snapshot():
    with pytest.raises(ValueError, match="at least the current snapshot"):
        maintenance_statements("t.x", expire_before=WHEN, retain_last=0, compact=False)


def test_trim_sets_the_metadata_cleanup_first_and_keeps_the_newest():
    from spark_jobs.maintain_tables import trim_statements

    statements = trim_statements("ops.watermarks", keep_since=WHEN, retain_last=200, set_properties=True)
    assert statements[0] == (
        "ALTER TABLE lakehouse.ops.watermarks SET TBLPROPERTIES ("
        "'write.metadata.delete-after-commit.enabled' = 'true', "
        "'write.metadata.previous-versions-max' = '20')"
    )
    assert statements[1].startswith("CALL lakehouse.system.expire_snapshots(table => 'ops.watermarks'")
    assert "older_than => TIMESTAMP '2025-03-01 04:30:00', retain_last => 200" in statements[1]
    assert len(trim_statements("a.b", keep_since=WHEN, retain_last=1, set_properties=False)) == 1


@pytest.mark.spark
@pytest.mark.integration
def test_a_busy_table_keeps_its_newest_snapshots_and_its_rows_and_loses_dead_files():
    """31 snapshots (the first file replaced by an overwrite, then 28 appends) cut to 20: the rows stay,
    the file only expired snapshots used is deleted, a table with 3 commits is left alone, and from then
    on a commit deletes old metadata files."""
    from pathlib import Path
    from urllib.parse import urlparse

    import pyarrow as pa
    from pyiceberg.expressions import AlwaysTrue

    from elt_platform.iceberg.catalog import lakehouse_spark_session, load_catalog
    from elt_platform.iceberg.maintenance import long_histories
    from spark_jobs.maintain_tables import trim

    lakehouse_spark_session("maintenance")  # warm first: the trim follows the commits at once, as in a suite
    schema = pa.schema([("k", pa.int64()), ("v", pa.string())])
    batch = lambda n: pa.Table.from_pylist([{"k": n, "v": f"v{n}"}], schema=schema)  # noqa: E731
    catalog = load_catalog()
    catalog.create_namespace_if_not_exists("trim_test")
    busy = catalog.create_table("trim_test.busy", schema=schema)
    quiet = catalog.create_table("trim_test.quiet", schema=schema)
    busy.append(batch(-1))
    replaced = {Path(urlparse(t.file.file_path).path) for t in busy.scan().plan_files()}
    busy.overwrite(batch(0), overwrite_filter=AlwaysTrue())
    for n in range(1, 29):
        busy.append(batch(n))
    for n in range(3):
        quiet.append(batch(n))
    busy = catalog.load_table("trim_test.busy")
    # the overwrite commits twice (a delete, then an append)
    assert len(busy.metadata.snapshots) == 31 and all(path.exists() for path in replaced)

    assert long_histories(["trim_test", "no_such_namespace"], max_snapshots=20) == {"trim_test.busy": True}
    # The expiry's cut-off is a TIMESTAMP to the second: commits of the last second are not "older" yet.
    time.sleep(1.5)
    assert trim({"trim_test.busy": True}, keep_hours=0, retain_last=20) == {"trim_test.busy": 11}

    busy = catalog.load_table("trim_test.busy")
    assert len(busy.metadata.snapshots) == 20
    assert sorted(busy.scan().to_arrow()["k"].to_pylist()) == list(range(29))
    assert not any(path.exists() for path in replaced)
    assert busy.properties["write.metadata.delete-after-commit.enabled"] == "true"
    assert len(catalog.load_table("trim_test.quiet").metadata.snapshots) == 3
    metadata_dir = Path(urlparse(busy.metadata_location).path).parent
    busy.append(batch(29))
    assert len(list(metadata_dir.glob("*.metadata.json"))) <= 21
