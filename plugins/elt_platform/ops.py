"""Export the state store's operational rows to the ``ops`` namespace, where analysts can query them.

The state store (SQLite / Postgres) is the source of truth for what must be transactional — the
transform ledger, request budgets, circuit breakers, watermarks — but analysts and BI tools read the
lakehouse. :func:`export_state` copies the current rows into ``ops.<table>`` Iceberg tables, each
replaced whole in one commit (a snapshot of the state, not a history: Iceberg's own snapshots keep
earlier exports for time travel). It runs after every transform and as ``elt ops-export``.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, is_dataclass
from datetime import UTC, datetime, timedelta
from importlib import import_module
from typing import Any

import pyarrow as pa

from elt_platform.reverse_etl import exports as reverse_etl_exports

log = logging.getLogger(__name__)

_TS = pa.timestamp("us", tz="UTC")

#: ``ops`` table → (Arrow schema, function listing the rows from the state store).
OPS_TABLES: dict[str, tuple[pa.Schema, str]] = {
    "ops.transform_ledger": (
        pa.schema(
            [
                ("domain", pa.string()),
                ("source", pa.string()),
                ("slice_key", pa.string()),
                ("start", pa.date32()),
                ("end", pa.date32()),
                ("status", pa.string()),
                ("run_id", pa.string()),
                ("claimed_by", pa.string()),
                ("updated_at", _TS),
            ]
        ),
        "elt_platform.state:list_ledger",
    ),
    "ops.circuit_breakers": (
        pa.schema(
            [
                ("account", pa.string()),
                ("state", pa.string()),
                ("reason", pa.string()),
                ("opened_at", _TS),
                ("reset_at", _TS),
            ]
        ),
        "elt_platform.state:list_breakers",
    ),
    "ops.request_budgets": (
        pa.schema(
            [
                ("account", pa.string()),
                ("rate", pa.float64()),
                ("burst", pa.float64()),
                ("tokens", pa.float64()),
                ("updated_at", _TS),
            ]
        ),
        "elt_platform.state:list_budgets",
    ),
    "ops.watermarks": (
        pa.schema([("key", pa.string()), ("value", pa.string()), ("updated_at", _TS)]),
        "elt_platform.state:list_watermarks",
    ),
    "ops.reverse_etl_state": (
        reverse_etl_exports.STATE_SCHEMA,
        "elt_platform.reverse_etl.exports:state_rows",
    ),
    "ops.reverse_etl_runs": (reverse_etl_exports.RUNS_SCHEMA, "elt_platform.reverse_etl.exports:run_rows"),
    "ops.reverse_etl_review": (
        reverse_etl_exports.REVIEW_SCHEMA,
        "elt_platform.reverse_etl.exports:review_rows",
    ),
}


def _rows(lister: str, store: Any) -> list[dict[str, Any]]:
    module, _, name = lister.partition(":")
    found = getattr(import_module(module), name)(store)
    return [asdict(row) if is_dataclass(row) and not isinstance(row, type) else dict(row) for row in found]


def _ops_table(catalog: Any, identifier: str, schema: pa.Schema) -> Any:
    from pyiceberg.exceptions import NamespaceAlreadyExistsError, NoSuchTableError

    try:
        catalog.create_namespace("ops")
    except NamespaceAlreadyExistsError:
        pass
    try:
        return catalog.load_table(identifier)
    except NoSuchTableError:
        return catalog.create_table(identifier, schema=schema)


def export_plan(destination: str, run_id: str, *, catalog: Any = None, store: Any = None) -> int:
    """Append one reverse-ETL run's plan to ``ops.reverse_etl_plans`` in one commit (a rerun of the
    same run replaces its rows). Returns the rows written."""
    from pyiceberg.expressions import And, EqualTo

    from elt_platform.iceberg.catalog import load_catalog
    from elt_platform.state import open_state_store

    catalog = catalog or load_catalog()
    store = store or open_state_store()
    return _replace_rows(
        catalog,
        reverse_etl_exports.PLAN_TABLE,
        reverse_etl_exports.PLAN_SCHEMA,
        reverse_etl_exports.plan_rows(store, destination, run_id),
        where=And(
            EqualTo("destination", destination),  # type: ignore[call-arg, misc, arg-type]
            EqualTo("run_id", run_id),  # type: ignore[call-arg, misc, arg-type]
        ),
        properties={"elt.run_id": run_id},
    )


def _replace_rows(
    catalog: Any,
    identifier: str,
    schema: pa.Schema,
    rows: list[dict[str, Any]],
    *,
    where: Any = None,
    properties: dict[str, str],
) -> int:
    """Replace the rows of ``ops.<table>`` matching ``where`` (all of them when None) by ``rows``, in one
    commit; returns the rows written."""
    from pyiceberg.expressions import AlwaysTrue

    data = pa.Table.from_pylist([{k: r.get(k) for k in schema.names} for r in rows], schema=schema)
    table = _ops_table(catalog, identifier, schema)
    where = AlwaysTrue() if where is None else where
    table.overwrite(data, overwrite_filter=where, snapshot_properties=properties)
    return len(data)


def export_state(*, catalog: Any = None, store: Any = None) -> dict[str, int]:
    """Replace every ``ops`` table by the state store's current rows.

    Returns:
        Table → rows written.
    """
    from elt_platform.iceberg.catalog import load_catalog
    from elt_platform.state import open_state_store

    catalog = catalog or load_catalog()
    store = store or open_state_store()
    exported_at = datetime.now(UTC).isoformat()
    written = {}
    for identifier, (schema, lister) in OPS_TABLES.items():
        written[identifier] = _replace_rows(
            catalog, identifier, schema, _rows(lister, store), properties={"elt.ops_exported_at": exported_at}
        )
    log.info("ops export: %s", written)
    return written


#: The state-store watermark of :func:`export_destination` (per destination): when its last export began.
STATE_EXPORT_MARK = "ops_export:reverse_etl_state:{destination}"
#: Records updated this long before the last export began are exported again (a transaction stamps its
#: rows before it commits).
STATE_EXPORT_OVERLAP = timedelta(minutes=5)
#: A destination's rows of ``ops.reverse_etl_state`` are rewritten whole (one file) instead of merged when
#: they are spread over more files than this (each merge adds one) or more records than this changed.
STATE_EXPORT_MAX_FILES = 32
STATE_EXPORT_MAX_CHANGED = 5_000


def export_destination(
    destination: str, run_id: str, *, catalog: Any = None, store: Any = None
) -> dict[str, int]:
    """Bring the ``ops`` tables up to date for one reverse-ETL run, reading only what changed.

    ``ops.reverse_etl_runs`` gets the run's row, ``ops.reverse_etl_review`` the destination's review rows,
    and ``ops.reverse_etl_state`` the destination's records updated since its last export (masked and
    merged by external id; rewritten whole when there is no previous export, or its rows are spread over
    more than :data:`STATE_EXPORT_MAX_FILES` files). A run that touched a few of 100,000 records writes a
    few rows, where :func:`export_state` masks and writes every record of every destination.

    Returns:
        Table → rows written.
    """
    from pyiceberg.expressions import And, EqualTo, In

    from elt_platform.iceberg.catalog import load_catalog
    from elt_platform.state import get_watermark, open_state_store, set_watermark

    catalog = catalog or load_catalog()
    store = store or open_state_store()
    exports = reverse_etl_exports
    mine = EqualTo("destination", destination)  # type: ignore[call-arg, misc, arg-type]
    this_run = And(mine, EqualTo("run_id", run_id))  # type: ignore[call-arg, misc, arg-type]
    stamp = {"elt.run_id": run_id}
    written = {
        "ops.reverse_etl_runs": _replace_rows(
            catalog,
            "ops.reverse_etl_runs",
            exports.RUNS_SCHEMA,
            exports.run_rows(store, destination, run_id),
            where=this_run,
            properties=stamp,
        ),
        "ops.reverse_etl_review": _replace_rows(
            catalog,
            "ops.reverse_etl_review",
            exports.REVIEW_SCHEMA,
            exports.review_rows(store, destination),
            where=mine,
            properties=stamp,
        ),
    }

    key = STATE_EXPORT_MARK.format(destination=destination)
    began = datetime.now(UTC)
    mark = get_watermark(store, key)
    state = _ops_table(catalog, "ops.reverse_etl_state", exports.STATE_SCHEMA)
    changed = None  # None: rewrite the destination's rows whole
    if (
        mark is not None
        and sum(1 for _ in state.scan(row_filter=mine).plan_files()) <= STATE_EXPORT_MAX_FILES
    ):
        since = datetime.fromisoformat(mark) - STATE_EXPORT_OVERLAP
        changed = exports.state_rows(store, destination, updated_since=since)
        if len(changed) > STATE_EXPORT_MAX_CHANGED:
            changed = None
    where: Any = mine
    if changed is None:
        rows = exports.state_rows(store, destination)
    else:
        rows = changed
        where = And(mine, In("external_id", [r["external_id"] for r in changed]))  # type: ignore[call-arg, misc, arg-type]
    written["ops.reverse_etl_state"] = 0
    if rows or changed is None:  # nothing changed since the last export: nothing to commit
        written["ops.reverse_etl_state"] = _replace_rows(
            catalog, "ops.reverse_etl_state", exports.STATE_SCHEMA, rows, where=where, properties=stamp
        )
    set_watermark(store, key, began.isoformat())
    log.info("ops export for %s run %s: %s", destination, run_id, written)
    return written
