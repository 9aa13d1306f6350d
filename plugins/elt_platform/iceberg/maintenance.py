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
