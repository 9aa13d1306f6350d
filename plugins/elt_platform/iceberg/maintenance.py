"""Find and undo a run's commits: snapshots carry ``elt.run_id`` in their summary (see writer)."""

from __future__ import annotations

from elt_platform.iceberg.catalog import load_catalog


def list_snapshots(table_name: str) -> list[dict]:
    """Snapshots of a table, oldest first, with the lineage the writer stamped."""
    table = load_catalog().load_table(table_name)
    current = table.current_snapshot()
    out = []
    for snapshot in table.snapshots():
        summary = snapshot.summary.additional_properties if snapshot.summary else {}
        out.append(
            {
                "snapshot_id": snapshot.snapshot_id,
                "parent_id": snapshot.parent_snapshot_id,
                "committed_at_ms": snapshot.timestamp_ms,
                "operation": snapshot.summary.operation.value if snapshot.summary else None,
                "run_id": summary.get("elt.run_id"),
                "interval": [summary.get("elt.data_interval_start"), summary.get("elt.data_interval_end")],
                "added_records": summary.get("added-records"),
                "deleted_records": summary.get("deleted-records"),
                "current": current is not None and snapshot.snapshot_id == current.snapshot_id,
            }
        )
    return sorted(out, key=lambda s: s["committed_at_ms"])


def rollback_run(table_name: str, run_id: str) -> int:
    """Make the snapshot before ``run_id``'s first commit current again.

    Later commits by other runs are rolled back too (Iceberg history is linear); the rolled-back
    snapshots stay in history until expired, so the rollback itself can be undone.

    Returns:
        The snapshot id now current.

    Raises:
        LookupError: the run never committed to this table, or it created the table.
    """
    table = load_catalog().load_table(table_name)
    snapshots = list_snapshots(table_name)
    mine = [s for s in snapshots if s["run_id"] == run_id]
    if not mine:
        raise LookupError(f"{table_name}: no snapshot was written by run {run_id!r}")
    parent = mine[0]["parent_id"]
    if parent is None:
        raise LookupError(f"{table_name}: run {run_id!r} made the first commit; drop the table instead")
    table.manage_snapshots().set_current_snapshot(snapshot_id=parent).commit()
    return parent


#: A table with more snapshots than this is trimmed by the hourly maintenance (see :func:`long_histories`).
BUSY_SNAPSHOTS = 200
#: ... but never of a snapshot committed within this many hours.
BUSY_KEEP_HOURS = 1.0


def long_histories(namespaces: list[str], max_snapshots: int = BUSY_SNAPSHOTS) -> dict[str, bool]:
    """Tables of ``namespaces`` holding more than ``max_snapshots`` snapshots, each with whether its
    metadata-cleanup properties (``spark_jobs.maintain_tables.METADATA_PROPERTIES``) are missing.

    Each commit copies and rewrites a table's whole snapshot list (pyiceberg's commit time grows by about
    0.8 ms per snapshot: 0.04 s at 1, 0.9 s at 1,000), so a table the freshness path commits every
    30 seconds needs its history cut more often than the weekly maintenance does. Reads metadata only.
    """
    from pyiceberg.exceptions import NoSuchNamespaceError

    from spark_jobs.maintain_tables import METADATA_PROPERTIES

    catalog = load_catalog()
    found: dict[str, bool] = {}
    for namespace in namespaces:
        try:
            identifiers = catalog.list_tables(namespace)
        except NoSuchNamespaceError:
            continue
        for identifier in identifiers:
            table = catalog.load_table(identifier)
            if len(table.metadata.snapshots) > max_snapshots:
                properties = table.properties
                missing = any(properties.get(k) != v for k, v in METADATA_PROPERTIES.items())
                found[".".join(identifier)] = missing
    return found


def maintain_every_table() -> dict[str, int]:
    """The weekly maintenance: every table of the platform's namespaces compacted, and its snapshots older
    than 7 days expired (the last 10 kept), on the platform's Spark."""
    from elt_platform.iceberg.catalog import lakehouse_spark_session
    from spark_jobs.maintain_tables import NAMESPACES, run

    lakehouse_spark_session("maintenance")
    return run(list(NAMESPACES), older_than_days=7, retain_last=10, compact=True)


def trim_busy_tables() -> dict[str, int]:
    """The hourly trim: every table holding more than :data:`BUSY_SNAPSHOTS` snapshots keeps its newest
    ones and the last :data:`BUSY_KEEP_HOURS` (:func:`spark_jobs.maintain_tables.trim`). Nothing to trim:
    no Spark is started."""
    import logging

    from spark_jobs.maintain_tables import NAMESPACES, trim

    tables = long_histories(list(NAMESPACES))
    if not tables:
        logging.getLogger(__name__).info("no table holds more than %d snapshots", BUSY_SNAPSHOTS)
        return {}
    from elt_platform.iceberg.catalog import lakehouse_spark_session

    lakehouse_spark_session("maintenance")
    return trim(tables, keep_hours=BUSY_KEEP_HOURS, retain_last=BUSY_SNAPSHOTS)
