"""Iceberg table maintenance: expire old snapshots, compact small files, cut busy tables' history.

Bronze writers commit once per chunk of days and every dbt run commits each model, so snapshot
metadata grows with every load; commits slow down as it grows. :func:`run` (weekly) keeps history for
``--older-than-days`` (rollback window) and at least ``--retain-last`` snapshots, and optionally
rewrites small data files. :func:`trim` (hourly, the tables the freshness path commits every few seconds)
keeps a busy table's newest snapshots only. Uses Iceberg's Spark procedures, so it runs wherever Spark
runs; expiring deletes the files only expired snapshots used.

Usage: ``python -m spark_jobs.maintain_tables [--namespaces bronze silver gold outbound ops] [--compact]``
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime, timedelta

from spark_jobs.session import CATALOG_NAME, build_session


def maintenance_statements(
    table: str, *, expire_before: datetime, retain_last: int, compact: bool
) -> list[str]:
    """The Spark SQL ``CALL`` statements maintaining one table.

    Args:
        table: ``namespace.table``.
        expire_before: snapshots older than this may be expired.
        retain_last: snapshots always kept, whatever their age.
        compact: also rewrite small data files (binpack).

    Returns:
        Statements in execution order.
    """
    if retain_last < 1:
        raise ValueError("retain_last must keep at least the current snapshot")
    stamp = expire_before.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    statements = []
    if compact:
        statements.append(
            f"CALL {CATALOG_NAME}.system.rewrite_data_files(table => '{table}', "
            "options => map('min-input-files', '5', 'partial-progress.enabled', 'true'))"
        )
    statements.append(
        f"CALL {CATALOG_NAME}.system.expire_snapshots(table => '{table}', "
        f"older_than => TIMESTAMP '{stamp}', retain_last => {retain_last})"
    )
    return statements


#: Every namespace the platform writes: what the maintenance goes over.
NAMESPACES = ("bronze", "silver", "gold", "outbound", "ops")

#: Metadata files kept per table: every commit writes a new ``metadata.json`` holding every live snapshot;
#: without these properties a table committed twice a minute leaves thousands of them a day.
METADATA_PROPERTIES = {
    "write.metadata.delete-after-commit.enabled": "true",
    "write.metadata.previous-versions-max": "20",
}


def trim_statements(table: str, *, keep_since: datetime, retain_last: int, set_properties: bool) -> list[str]:
    """The statements that cut a busy table's history to ``retain_last`` snapshots (never one committed
    after ``keep_since``), deleting the files only expired snapshots used.

    Args:
        table: ``namespace.table``.
        keep_since: snapshots committed after this are kept, however many.
        retain_last: snapshots always kept.
        set_properties: also set :data:`METADATA_PROPERTIES` (old ``metadata.json`` files deleted on commit).
    """
    statements = []
    if set_properties:
        pairs = ", ".join(f"'{k}' = '{v}'" for k, v in METADATA_PROPERTIES.items())
        statements.append(f"ALTER TABLE {CATALOG_NAME}.{table} SET TBLPROPERTIES ({pairs})")
    return statements + maintenance_statements(
        table, expire_before=keep_since, retain_last=retain_last, compact=False
    )


def trim(tables: dict[str, bool], *, keep_hours: float, retain_last: int) -> dict[str, int]:
    """Cut the history of each busy table (``table → its metadata properties are missing``), see
    :func:`trim_statements`. Returns the snapshots each expiry removed."""
    spark = build_session("maintenance")
    keep_since = datetime.now(UTC) - timedelta(hours=keep_hours)
    done: dict[str, int] = {}
    for table, set_properties in sorted(tables.items()):
        statements = trim_statements(
            table, keep_since=keep_since, retain_last=retain_last, set_properties=set_properties
        )
        for statement in statements[:-1]:
            spark.sql(statement).collect()
        row = spark.sql(statements[-1]).collect()[0].asDict()
        done[table] = int(row.get("deleted_manifest_lists_count") or 0)
        print(f"trimmed {table}: {done[table]} snapshot(s) expired, {_deleted_files(row)} file(s) deleted")
    return done


def _deleted_files(row: dict) -> int:
    return sum(int(v or 0) for k, v in row.items() if k.startswith("deleted_") and k.endswith("_count"))


def run(namespaces: list[str], *, older_than_days: int, retain_last: int, compact: bool) -> dict[str, int]:
    """Maintain every table of ``namespaces``; returns the number of statements run per table."""
    spark = build_session("maintenance")
    expire_before = datetime.now(UTC) - timedelta(days=older_than_days)
    done: dict[str, int] = {}
    existing = {row[0] for row in spark.sql("SHOW NAMESPACES").collect()}
    for namespace in namespaces:
        if namespace not in existing:  # nothing written there yet
            continue
        for row in spark.sql(f"SHOW TABLES IN {namespace}").collect():
            table = f"{namespace}.{row['tableName']}"
            statements = maintenance_statements(
                table, expire_before=expire_before, retain_last=retain_last, compact=compact
            )
            for statement in statements:
                spark.sql(statement).collect()
            done[table] = len(statements)
            print(f"maintained {table}: {len(statements)} procedure call(s)")
    return done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--namespaces", nargs="+", default=list(NAMESPACES))
    parser.add_argument("--older-than-days", type=int, default=7)
    parser.add_argument("--retain-last", type=int, default=10)
    parser.add_argument("--compact", action="store_true")
    args = parser.parse_args(argv)
    run(
        args.namespaces,
        older_than_days=args.older_than_days,
        retain_last=args.retain_last,
        compact=args.compact,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
